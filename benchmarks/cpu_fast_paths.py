"""Do the GPU-oriented fast paths help on the CPU? Exact fp32 vs channels-last vs bf16 autocast, same inputs.

For EfficientNet-Lite0 (bundled weights) and ResNet-50 (seeded random weights), 8 paper scales, batch 1 (the
chelsea photo): median seconds of ``--runs`` calls after a warm-up for each configuration, and the map difference
from the exact path. Usage: ``python benchmarks/cpu_fast_paths.py [--runs 3] [--batch 1]``.
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

import cameras
from cameras import data, models


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--models", default="efficientnet_lite0,resnet50")
    p.add_argument("--configs", default="fp32,fp32_channels_last,bf16,bf16_channels_last")
    args = p.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _idle import wait_idle

    wait_idle()
    lite = models.load("efficientnet_lite0")
    x = torch.cat([lite.preprocess(data.sample_image("chelsea"), square=True).tensor] * args.batch)
    for name in args.models.split(","):
        if name == "resnet50":
            torch.manual_seed(0)
            net, layer = torchvision.models.resnet50(weights=None).eval(), "layer4"
        else:
            net, layer = lite.model, lite.layer
        exact = None
        for config in args.configs.split(","):
            cl = "channels_last" in config
            dtype = torch.bfloat16 if config.startswith("bf16") else None
            net.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
            explainer = cameras.CAMERAS(net, layer=layer, dtype=dtype, channels_last=cl)
            out = explainer(x)
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                explainer(x)
                times.append(time.perf_counter() - t)
            if exact is None:
                exact = out
            row = {
                "model": name,
                "config": config,
                "batch": args.batch,
                "ms_per_image": 1000 * statistics.median(times) / args.batch,
                "max_abs_diff_vs_fp32": float((out.saliency - exact.saliency).abs().max()),
                "same_class": bool(torch.equal(out.targets, exact.targets)),
            }
            print(json.dumps(row), flush=True)
        net.to(memory_format=torch.contiguous_format)


if __name__ == "__main__":
    main()
