"""K class gradients from one graph: the engine's loop of K ``autograd.grad`` calls vs one ``is_grads_batched`` call.

Both take the gradients of K class logits w.r.t. the tapped layer from the same forward pass (the engine never runs
a forward per class). Times only the gradient step, on ResNet-50 (seeded random weights) at two taps: ``layer4``
(only pooling and the classifier above it, the usual case) and ``layer3`` (a whole stage above it). Checks that both
give the same gradients.

Usage: ``python benchmarks/multiclass_grads.py [--size 448] [--batch 2] [--classes 5]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torchvision
from torch import Tensor

from cameras.engine import LayerTap, TapOutput


def batched_gradient(out: TapOutput, targets: Tensor) -> Tensor:
    """(B, K, C, h, w) gradients with one vmapped backward (``is_grads_batched=True``)."""
    k = targets.shape[1]
    one_hot = torch.zeros(k, *out.logits.shape, device=out.logits.device, dtype=out.logits.dtype)
    one_hot.scatter_(2, targets.T[:, :, None], 1.0)
    (g,) = torch.autograd.grad(out.logits, out.activations, grad_outputs=one_hot, is_grads_batched=True)
    return g.transpose(0, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--size", type=int, default=448)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--classes", type=int, default=5)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    torch.manual_seed(0)
    net = torchvision.models.resnet50(weights=None).eval()
    x = torch.randn(args.batch, 3, args.size, args.size)
    targets = torch.randint(0, 1000, (args.batch, args.classes))
    for layer in ("layer4", "layer3"):
        row: dict[str, object] = {"layer": layer, "size": args.size, "batch": args.batch, "classes": args.classes}
        with LayerTap(net, layer) as tap:
            grads = {}
            for name, fn in (("loop", LayerTap.gradient), ("is_grads_batched", batched_gradient)):
                times = []
                for _ in range(args.runs):
                    out = tap.forward(x)
                    t = time.perf_counter()
                    grads[name] = fn(out, targets)
                    times.append(time.perf_counter() - t)
                row[f"{name}_ms"] = 1000 * statistics.median(times)
            t = time.perf_counter()
            tap.forward(x)
            row["forward_ms"] = 1000 * (time.perf_counter() - t)
            row["max_abs_diff"] = float((grads["loop"] - grads["is_grads_batched"]).abs().max())
        print(json.dumps(row))


if __name__ == "__main__":
    main()
