"""CPU: the CAMERAS default batching (images grouped so that the largest scale stays within
``cameras.methods.base.CPU_PIXELS_PER_PASS`` pixels: one at a time for the paper schedule on 224 px inputs) vs the
whole batch at once (``max_batch=B``), 8 paper scales, interleaved rounds, same process.

Usage: ``python benchmarks/cpu_batching.py [--models efficientnet_lite0,resnet50] [--batch 8] [--rounds 2]
[--json benchmarks/cpu_batching.json]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cpu import _inputs

import cameras


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="efficientnet_lite0,resnet50")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for model in args.models.split(","):
        net, layer, x = _inputs(model, args.batch)
        variants = {
            "default": cameras.CAMERAS(net, layer=layer),
            "whole_batch": cameras.CAMERAS(net, layer=layer, max_batch=args.batch),
        }
        outs = {k: v(x) for k, v in variants.items()}  # warm-up, and the maps must agree
        diff = float((outs["default"].saliency - outs["whole_batch"].saliency).abs().max())
        times: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.rounds):
            for k, v in variants.items():
                t = time.perf_counter()
                v(x)
                times[k].append(time.perf_counter() - t)
                print(model, k, round(times[k][-1], 2), file=sys.stderr, flush=True)
        row = {
            "model": model,
            "batch": args.batch,
            **{f"{k}_s_per_image": statistics.median(t) / args.batch for k, t in times.items()},
            "times_s": times,
            "max_abs_diff": diff,
        }
        row["default_speedup"] = row["whole_batch_s_per_image"] / row["default_s_per_image"]
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "times_s"}), flush=True)
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": platform.platform(), "threads": args.threads}
    meta["torch"] = torch.__version__
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
