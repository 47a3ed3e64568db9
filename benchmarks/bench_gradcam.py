"""Grad-CAM speed on the CPU: ``cameras.GradCAM`` vs the bare forward pass vs pytorch-grad-cam's ``GradCAM``.

All three run side by side in one process on the same model and input, interleaved round by round (so that a slow
spell of the machine hits every contender alike), after warm-up runs; the table reports the median (and minimum)
wall time of each and the ratios the speed targets are about:

* ``cameras.GradCAM`` / bare forward (target: ≤ 1.3×),
* pytorch-grad-cam / ``cameras.GradCAM`` (target: ≥ 2×).

"Bare forward" is ``model(x)`` under ``torch.no_grad()``: the cost of one prediction. ``cameras.GradCAM`` taps the
layer so that nothing below it records autograd state and the backward pass stops there; pytorch-grad-cam runs a
full forward with autograd and a full backward (parameter gradients included).

Usage::

    python benchmarks/bench_gradcam.py                    # ResNet-50, 1×3×224×224, 7 rounds
    python benchmarks/bench_gradcam.py --runs 11 --threads 2 --batch 1 --size 224

Weights are random (seeded); speed does not depend on them. Requires the test extra (pytorch-grad-cam).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torchvision

import cameras.methods as methods


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet50", help="torchvision model name (default resnet50)")
    parser.add_argument("--layer", default="layer4", help="layer to explain (default layer4)")
    parser.add_argument("--size", type=int, default=224, help="input side in pixels (default 224)")
    parser.add_argument("--batch", type=int, default=1, help="images per call (default 1)")
    parser.add_argument("--runs", type=int, default=7, help="timed rounds, median reported (default 7, at least 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5")
    if args.threads:
        torch.set_num_threads(args.threads)

    from pytorch_grad_cam import GradCAM as PgcGradCAM

    torch.manual_seed(0)
    model = getattr(torchvision.models, args.model)(weights=None).eval()
    layer = dict(model.named_modules())[args.layer]
    x = torch.randn(args.batch, 3, args.size, args.size)
    ours = methods.GradCAM(model, layer=args.layer)
    theirs = PgcGradCAM(model, [layer])

    def bare() -> object:
        with torch.no_grad():
            return model(x)

    contenders: dict[str, Callable[[], object]] = {
        "bare forward (no_grad)": bare,
        "cameras.GradCAM": lambda: ours(x),
        "pytorch-grad-cam GradCAM": lambda: theirs(x, targets=None),
    }
    for _ in range(args.warmup):
        for fn in contenders.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.runs):
        for name, fn in contenders.items():
            times[name].append(_timed(fn))

    # the two Grad-CAMs explain the same class; report how close their maps are (pytorch-grad-cam resizes with cv2)
    a = ours(x).saliency
    b = torch.from_numpy(theirs(x, targets=None))
    delta = float((a - b).abs().max())

    median = {name: statistics.median(t) for name, t in times.items()}
    base, mine, other = median["bare forward (no_grad)"], median["cameras.GradCAM"], median["pytorch-grad-cam GradCAM"]
    print(f"# Grad-CAM on {args.model} ({args.layer}), input {args.batch}×3×{args.size}×{args.size}, CPU")
    print(
        f"# date {datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads, {args.runs} rounds (median), "
        f"{args.warmup} warm-up"
    )
    print()
    print("| contender | median ms | min ms | × bare forward |")
    print("|---|---:|---:|---:|")
    for name, t in times.items():
        print(f"| {name} | {1000 * median[name]:.1f} | {1000 * min(t):.1f} | {median[name] / base:.2f} |")
    print()
    print(f"cameras.GradCAM / bare forward: {mine / base:.2f}× (target ≤ 1.3×)")
    print(f"pytorch-grad-cam / cameras.GradCAM: {other / mine:.2f}× faster (target ≥ 2×)")
    print(f"max |Δ| between the two Grad-CAM maps at {args.size} px (cv2 vs torch resize): {delta:.2e}")


if __name__ == "__main__":
    main()
