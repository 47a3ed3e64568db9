"""The fusion step alone: the kept paths and chunk sizes, on real recordings (8 paper scales, 224 px output).

Records EfficientNet-Lite0 (bundled weights, 1280 channels) and ResNet-50 (seeded random weights, 2048 channels) once
(targets given, so all 8 scales enter the fusion), then times :func:`cameras.engine.fuse` for each path of
:data:`cameras.engine.fusion.IMPLS` (``interpolate``, ``matmul``, ``gram``, ``tiles``) and chunk size on the same
recording, checks every result against the literal ``"interpolate"`` definition, and prints a Markdown table (JSON
with ``--json``). ``--rule gradcam++`` times the two paths for any rule (``matmul``, ``interpolate``) with
Grad-CAM++'s rule instead, the ``MultiScale(...)`` methods' case.

Usage: ``python benchmarks/fusion_bench.py [--device cpu|cuda] [--batch 1] [--runs 3] [--rule cameras|gradcam++]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torchvision

from cameras import data, models
from cameras.engine import fuse, record_scales, schedule
from cameras.engine.fusion import ChannelRule, auto_chunk_size, cameras_rule
from cameras.methods.cam_rules import gradcampp_rule


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--models", default="efficientnet_lite0,resnet50")
    p.add_argument("--json", default="")
    p.add_argument("--rule", default="cameras", choices=["cameras", "gradcam++"])
    args = p.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _idle import wait_idle

    wait_idle()
    device = torch.device(args.device)
    lite = models.load("efficientnet_lite0", device=device)
    photos = [lite.preprocess(data.sample_image(n), square=True).tensor for n in data.SAMPLES]
    x = torch.cat([photos[i % 4] for i in range(args.batch)]).to(device)
    sizes = schedule(None, (224, 224))
    rule: ChannelRule = cameras_rule if args.rule == "cameras" else gradcampp_rule
    rows = []
    for name in args.models.split(","):
        if name == "resnet50":
            torch.manual_seed(0)
            net, layer = torchvision.models.resnet50(weights=None).eval().to(device), "layer4"
        else:
            net, layer = lite.model, lite.layer
        with torch.no_grad():
            top1 = net(x).argmax(dim=1, keepdim=True)
        rec = record_scales(net, layer, x, sizes, top1)  # given targets: all 8 scales kept and fused
        channels = rec.scales[0].activations.shape[1]
        ref = fuse(rec, (224, 224), rule, impl="interpolate")
        auto = auto_chunk_size(args.batch, 1, (224, 224))  # the matmul/interpolate default
        configs = [("interpolate", c) for c in (16, auto, 512)]
        configs += [("matmul", c) for c in (16, 64, auto, 256, channels)]
        if rule is cameras_rule:
            configs += [("gram", c) for c in (32, 64, None, 256)]
            configs += [("tiles", c) for c in (64, None, 512)]
        for impl, chunk in configs:
            fuse(rec, (224, 224), rule, impl=impl, chunk_size=chunk)  # warm-up
            _sync(device)
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                out = fuse(rec, (224, 224), rule, impl=impl, chunk_size=chunk)
                _sync(device)
                times.append(time.perf_counter() - t)
            rel = float((out - ref).abs().max() / ref.abs().max())
            rows.append(
                {
                    "model": name,
                    "rule": args.rule,
                    "channels": channels,
                    "batch": args.batch,
                    "impl": impl,
                    "chunk": chunk if chunk is not None else "auto",
                    "ms_per_image": 1000 * statistics.median(times) / args.batch,
                    "max_rel_diff_vs_interpolate": rel,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    meta = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }
    print(f"\n{meta}\n")
    print("| model | C | impl | chunk | ms/image | max rel. diff vs interpolate |\n|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['channels']} | {r['impl']} | {r['chunk']} | {r['ms_per_image']:.1f} | "
            f"{r['max_rel_diff_vs_interpolate']:.1e} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
