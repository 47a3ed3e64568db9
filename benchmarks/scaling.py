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
sys.path.insert(0, str(ROOT / "benchmarks"))

from _idle import wait_idle  # noqa: E402


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
    p.add_argument("--json", default="")
    args = p.parse_args()
    if args.worker:
        worker(args.worker, args.runs)
        return
    rows = []
    for k in range(1, 9):
        cmd = [sys.executable, __file__, "--worker", str(k), "--runs", str(args.runs)]
        wait_idle()
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
    largest_mpx = largest.astype(float) ** 2 / 1e6
    m_slope, m_intercept = np.polyfit(largest_mpx, peak, 1)
    m_r = np.corrcoef(largest_mpx, peak)[0, 1]
    a2.plot(largest_mpx, peak, "o", label="measured")
    a2.plot(largest_mpx, m_slope * largest_mpx + m_intercept, "-", label=f"linear fit (r = {m_r:.3f})")
    for x_mpx, y_mb, r_px in zip(largest_mpx, peak, largest):
        a2.annotate(f"{r_px}", (x_mpx, y_mb), textcoords="offset points", xytext=(4, -10), fontsize=7)
    a2.set_xlabel("largest scale r² (megapixels; labels: r in px)")
    a2.set_ylabel("peak RSS above the loaded model (MB)")
    a2.set_title("Peak memory vs largest scale (Lite0, CPU)")
    a2.legend()
    for ax in (a1, a2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    summary = {
        "slope_s_per_mpx": slope,
        "intercept_s": intercept,
        "pearson_r": r,
        "memory_slope_mb_per_mpx_of_largest": m_slope,
        "memory_pearson_r": m_r,
        "rows": rows,
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
