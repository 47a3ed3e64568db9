"""Scaling of the engine with the schedule: time vs Σ r² over scales, peak memory vs the largest scale (CPU).

Runs CAMERAS on the bundled Lite0 with the first k paper resolutions (k = 1 … 8), each in a fresh subprocess for its
own peak RSS, and plots both relations to docs/scaling.png. Usage: ``python benchmarks/scaling.py [--runs 2]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def worker(k: int, runs: int) -> None:
    import torch

    import cameras
    from cameras import data, models

    loaded = models.load("efficientnet_lite0")
    x = loaded.preprocess(data.sample_image("chelsea"), square=True).tensor
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    res = list(range(224, 1000, 100))[:k]
    explainer = cameras.CAMERAS(loaded.model, layer=loaded.layer, resolutions=res)
    explainer(x, targets=285)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        explainer(x, targets=285)
        times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "k": k,
                "res": res,
                "seconds": statistics.median(times),
                "peak_rss_mb": peak / 1024,
                "model_rss_mb": base_rss / 1024,
                "threads": torch.get_num_threads(),
            }
        )
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--out", default=str(ROOT / "docs" / "scaling.png"))
    args = p.parse_args()
    if args.worker:
        worker(args.worker, args.runs)
        return
    rows = []
    for k in range(1, 9):
        cmd = [sys.executable, __file__, "--worker", str(k), "--runs", str(args.runs)]
        rows.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1]))
        print(rows[-1], file=sys.stderr)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    area = np.array([sum(r * r for r in row["res"]) for row in rows]) / 1e6
    secs = np.array([row["seconds"] for row in rows])
    largest = np.array([row["res"][-1] for row in rows])
    peak = np.array([row["peak_rss_mb"] - row["model_rss_mb"] for row in rows])
    slope, intercept = np.polyfit(area, secs, 1)
    r = np.corrcoef(area, secs)[0, 1]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(area, secs, "o", label="measured")
    a1.plot(area, slope * area + intercept, "-", label=f"linear fit (r = {r:.3f})")
    a1.set_xlabel("Σ r² over scales (megapixels)")
    a1.set_ylabel("seconds per image")
    a1.set_title("Time vs total pixels (Lite0, CPU)")
    a1.legend()
    a2.plot(largest, peak, "o-")
    a2.set_xlabel("largest scale r (px)")
    a2.set_ylabel("peak RSS above the loaded model (MB)")
    a2.set_title("Peak memory vs largest scale")
    for ax in (a1, a2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(json.dumps({"slope_s_per_mpx": slope, "intercept_s": intercept, "pearson_r": r, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
