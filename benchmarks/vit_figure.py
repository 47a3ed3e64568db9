"""CAMERAS vs HiResCAM vs Grad-CAM on a timm Vision Transformer: writes docs/vit_cameras_gradcam.png and prints the
seconds each map took.

No pretrained ViT weights can be downloaded on the machines this project is built on, and no PyPI package ships
them, so the model is timm's ``vit_tiny_patch16_224`` (``cameras.models.load("timm:vit_tiny_patch16_224",
weights=None)``: dynamic image size, default layer ``blocks.11.norm1``) with **random weights**, seed 0, drawn so
that activations stay O(1): matrices N(0, 1/fan_in), LayerNorm gains U(0.5, 1.5), position/class embeddings
N(0, 0.5²), other vectors N(0, 0.1²). (timm's own initialisation, std 0.02, gives an all-zero CAMERAS map and a
single hot token at this layer for this photo.) The maps therefore show how the methods *resolve* a ViT's patch grid
(14×21 tokens for the 224×337 input), not what a trained ViT looks at; rerun with ``--weights PATH`` (a timm
checkpoint of that architecture, used as it is) for a trained model.

    python benchmarks/vit_figure.py [--weights PATH] [--out docs/vit_cameras_gradcam.png]
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch import nn

from cameras import data, models
from cameras.viz.compare import compare_methods


def random_weights(model: nn.Module) -> None:
    """Redraw every parameter (seeded by the caller) as the module docstring says."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("pos_embed", "cls_token")):
                p.normal_(0.0, 0.5)
            elif p.dim() >= 2:
                p.normal_(0.0, 1.0 / math.sqrt(p[0].numel()))
            elif "norm" in name and name.endswith("weight"):
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(0.0, 0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="timm checkpoint of vit_tiny_patch16_224 (default: random)")
    parser.add_argument("--out", default="docs/vit_cameras_gradcam.png")
    args = parser.parse_args()
    torch.manual_seed(0)
    loaded = models.load("timm:vit_tiny_patch16_224", weights=args.weights)
    if args.weights is None:
        random_weights(loaded.model)
    start = time.perf_counter()
    view = compare_methods(
        loaded,
        data.sample_image("chelsea"),
        ["cameras", "hirescam", "gradcam"],
        image_name="chelsea.png (ViT-Ti/16, random weights)" if args.weights is None else "chelsea.png",
    )
    print(f"timm:vit_tiny_patch16_224, weights {loaded.weights or 'random (seed 0)'}, layer {loaded.layer}")
    print(f"input {view.info.get('input_size')}, three maps in {time.perf_counter() - start:.1f} s")
    for panel in view.panels:
        print(f"  {panel.method:10s} {panel.seconds:6.2f} s  class {panel.class_index}")
    view.figure.savefig(args.out, dpi=110, facecolor="white")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
