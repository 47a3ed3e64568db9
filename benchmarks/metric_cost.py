"""What the metrics of ``cameras evaluate`` cost per photo, against the CAMERAS maps they score (issue #27 §2).

On EfficientNet-Lite0 (``cameras.models.load("efficientnet_lite0")``) and the bundled photos
(:data:`cameras.data.SAMPLES`, aspect kept as ``evaluate`` does), per photo and per round, interleaved:

* the CAMERAS maps at the paper's schedule (``CAMERAS(model, layer)``, the evaluator's explainer);
* **before** (the reference path, today's per-method calls, one map set at a time as the evaluator made them):
  ``insertion_deletion`` (steps 100), ``confidence_change``, ``map_density`` (black baseline), and the pointing
  game + energy;
* **after**: :func:`cameras.metrics.faithfulness_set` with one metric at a time and with all of them together
  (what the evaluator runs now), for the M methods' maps of the photo (``--methods``: CAMERAS alone, the default
  of the issue's measurement, or CAMERAS + Grad-CAM + Grad-CAM++).

It prints a table of medians (seconds per photo, and each as a ratio to the CAMERAS maps' time) and checks that
before and after agree within 1e-6. The machine may be shared: few rounds, interleaved, medians.

Usage::

    python benchmarks/metric_cost.py                       # 2 photos, 2 rounds, CAMERAS alone
    python benchmarks/metric_cost.py --photos 4 --rounds 3 --methods cameras gradcam gradcam++
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

import cameras
import cameras.methods as methods
from cameras.data import SAMPLES, sample_image
from cameras.metrics import (
    black_baseline,
    confidence_change,
    energy_in_box,
    faithfulness_set,
    insertion_deletion,
    map_density,
    pointing_game,
)


def _timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def _localisation(saliency: torch.Tensor, boxes: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return pointing_game(saliency, boxes), energy_in_box(saliency, boxes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=2, help=f"bundled photos used, 1 … {len(SAMPLES)} (default 2)")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds per photo (default 2)")
    parser.add_argument("--steps", type=int, default=100, help="insertion/deletion steps (default 100)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default 64)")
    parser.add_argument("--methods", nargs="+", default=["cameras"], help="methods whose maps are scored")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = cameras.models.load("efficientnet_lite0")
    model = loaded.model.eval()
    black = black_baseline(loaded.preprocess.mean, loaded.preprocess.std)
    explainers = {
        name: methods.get(name)(model, layer=loaded.layer) for name in dict.fromkeys(["cameras", *args.methods])
    }
    steps, bs = args.steps, args.batch_size
    times: dict[str, list[float]] = {}
    worst = 0.0

    def add(key: str, seconds: float) -> None:
        times.setdefault(key, []).append(seconds)

    for name in SAMPLES[: args.photos]:
        x = loaded.preprocess(sample_image(name)).tensor
        with torch.no_grad():
            t = model(x).argmax(1)
        h, w = x.shape[-2:]
        box = [torch.tensor([[w / 4, h / 4, 3 * w / 4, 3 * h / 4]])]
        explainers["cameras"](x, t)  # warm-up, also of the metrics' pass shapes (a first pass of a shape costs more)
        warm = explainers["cameras"](x, t).saliency.detach().float()
        faithfulness_set(model, x, [warm], t, steps=min(steps, 40), confidence=False, density=False, batch_size=bs)
        for _ in range(args.rounds):
            seconds, result = _timed(explainers["cameras"], x, t)
            add("CAMERAS maps", seconds)
            sals = [result.saliency.detach().float()]
            sals += [explainers[m](x, t).saliency.detach().float() for m in args.methods if m != "cameras"]
            unit = [s.clamp(0, 1) for s in sals]
            # before: today's functions, one map set at a time
            before: dict[str, list[Any]] = {"id": [], "cc": [], "den": []}
            cost = {"insertion/deletion": 0.0, "confidence change": 0.0, "densities": 0.0, "pointing + energy": 0.0}
            for s, u in zip(sals, unit):
                dt, r = _timed(insertion_deletion, model, x, s, t, steps=steps, batch_size=bs)
                cost["insertion/deletion"] += dt
                before["id"].append(r)
                dt, r = _timed(confidence_change, model, x, u, t, batch_size=bs)
                cost["confidence change"] += dt
                before["cc"].append(r)
                dt, r = _timed(map_density, model, x, u, t, baseline=black, batch_size=bs)
                cost["densities"] += dt
                before["den"].append(r)
                dt, _ = _timed(_localisation, s, box)
                cost["pointing + energy"] += dt
            for key, v in cost.items():
                add(f"before: {key}", v)
            add("before: all metrics", sum(cost.values()))
            # after: shared passes over every method's maps
            loc = cost["pointing + energy"]
            for key, flags in (
                ("insertion/deletion", (True, False, False)),
                ("confidence change", (False, True, False)),
                ("densities", (False, False, True)),
            ):
                dt, _ = _timed(
                    faithfulness_set, model, x, sals, t, unit_maps=unit, insertion=flags[0], confidence=flags[1],
                    density=flags[2], steps=steps, density_baseline=black, batch_size=bs,
                )  # fmt: skip
                add(f"after: {key}", dt)
            dt, out = _timed(
                faithfulness_set, model, x, sals, t, unit_maps=unit, steps=steps, density_baseline=black, batch_size=bs
            )
            add("after: all metrics", dt + loc)
            assert out.insertion_deletion is not None and out.confidence is not None and out.density is not None
            for m in range(len(sals)):
                pairs = [
                    (out.insertion_deletion[m].insertion_curve, before["id"][m].insertion_curve),
                    (out.insertion_deletion[m].deletion_curve, before["id"][m].deletion_curve),
                    (out.confidence[m].drop, before["cc"][m].drop),
                    (out.density[m].positive_probability, before["den"][m].positive_probability),
                    (out.density[m].negative_probability, before["den"][m].negative_probability),
                ]
                worst = max([worst, *(float((a.double() - b.double()).abs().max()) for a, b in pairs)])
        print(f"  {name} {tuple(x.shape[-2:])}: done", flush=True)

    maps = statistics.median(times["CAMERAS maps"])
    print(
        f"\n{datetime.date.today()}  {platform.processor() or platform.machine()}  {os.cpu_count()} CPUs, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}; EfficientNet-Lite0, photos "
        f"{', '.join(SAMPLES[: args.photos])}, {args.rounds} rounds, steps {steps}, batch {bs}, "
        f"methods scored: {', '.join(args.methods)}"
    )
    print("| what (per photo) | median s | × CAMERAS maps |\n|---|---:|---:|")
    for key, v in times.items():
        med = statistics.median(v)
        print(f"| {key} | {med:.2f} | {med / maps:.2f} |")
    b, a = statistics.median(times["before: all metrics"]), statistics.median(times["after: all metrics"])
    print(f"\nall metrics, before / after: {b / a:.2f}×;  max |after − before| = {worst:.2e}")


if __name__ == "__main__":
    main()
