"""Figure of the paper-evaluation measurements (``docs/paper_eval.png``) from the JSON files of
``benchmarks/paper_eval.py``: map densities next to the paper's Table 2, the penalised attack's matched-success L2
reduction next to the paper's 56.5 %, and the adversarial sanity test on the trained and the re-initialised model.

    python benchmarks/paper_figure.py            # reads benchmarks/paper_*.json, writes docs/paper_eval.png
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from cameras.io.atomic import write_figure

HERE = Path(__file__).parent
#: the paper's Table 2, ResNet-50 on ImageNet val: method → (ρ⁺, ρ⁻)
PAPER_DENSITY = {"cameras": (3.20, 0.81), "gradcam": (2.33, 0.86)}
PAPER_REDUCTION = 56.5


def _load(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((HERE / name).read_text())
    return result


def _density(ax: Any, d: dict[str, Any]) -> None:
    rows = [r for r in d["summary"] if r["baseline"] == "black"]
    names = [r["method"].replace(" (control)", "\n(control)") for r in rows]
    xs = np.arange(len(rows))
    ax.bar(xs - 0.2, [r["rho_pos"] for r in rows], 0.4, color="C0", label="ρ⁺ ours (↑)")
    ax.bar(xs + 0.2, [r["rho_neg"] for r in rows], 0.4, color="C1", label="ρ⁻ ours (↓)")
    for i, r in enumerate(rows):
        paper = PAPER_DENSITY.get(r["method"])
        if paper:
            ax.plot([i - 0.2], [paper[0]], "k_", markersize=18, markeredgewidth=2)
            ax.plot([i + 0.2], [paper[1]], "k_", markersize=18, markeredgewidth=2)
    ax.plot([], [], "k_", markersize=12, markeredgewidth=2, label="paper, ResNet-50 (Table 2)")
    ax.set_xticks(xs, names, fontsize=7, rotation=15)
    ax.set_title(f"map densities, {len(d['images'])} photos (black baseline)", fontsize=10)
    ax.legend(fontsize=7)


def _attack(ax: Any, d: dict[str, Any]) -> None:
    rows = [r for r in d["summary"] if r["source"] != "none"]
    xs = np.arange(len(rows))
    values = [r["matched_l2_reduction_percent"] for r in rows]
    ax.bar(
        xs, [0 if v is None else v for v in values], color=["C2" if r["source"] == "cameras" else "C7" for r in rows]
    )
    for x, r in zip(xs, rows):
        ax.text(x, 2, f"n={r['matched_n']}", ha="center", fontsize=8, color="white")
    ax.axhline(PAPER_REDUCTION, color="k", linestyle="--", label=f"paper: {PAPER_REDUCTION} % (ResNet-50)")
    ax.set_xticks(xs, [r["source"] for r in rows], fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("L2 reduction vs plain PGD, %")
    ax.set_title(
        f"penalised PGD, matched success (p ≥ {d['settings']['confidence']:g}), {len(d['images'])} photos", fontsize=10
    )
    ax.legend(fontsize=7, loc="upper right")


def _sanity(ax: Any, d: dict[str, Any]) -> None:
    methods = list(dict.fromkeys(r["method"] for r in d["rows"]))
    for k, variant in enumerate(("trained", "randomized")):
        for i, m in enumerate(methods):
            vals = [r["spearman"] for r in d["rows"] if r["method"] == m and r["variant"] == variant]
            vals = [v for v in vals if v is not None and math.isfinite(v)]
            x = i + (k - 0.5) * 0.3
            ax.scatter([x] * len(vals), vals, s=12, color=f"C{k}", alpha=0.6, label=variant if i == 0 else None)
            if vals:
                ax.plot([x - 0.1, x + 0.1], [statistics.fmean(vals)] * 2, color=f"C{k}", linewidth=2.5)
    ax.axhline(0, color="0.5", linewidth=0.8)
    ax.set_xticks(np.arange(len(methods)), methods, fontsize=8)
    ax.set_ylabel("Spearman (cell map mean vs PGD effect)")
    ax.set_title(f"adversarial sanity (our protocol), {len(d['images'])} photos", fontsize=10)
    ax.legend(fontsize=7)


def main() -> None:
    fig = Figure(figsize=(15, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    _density(axes[0], _load("paper_density.json"))
    _attack(axes[1], _load("paper_attack.json"))
    _sanity(axes[2], _load("paper_sanity.json"))
    fig.suptitle("CAMERAS paper's evaluation on EfficientNet-Lite0 (not the paper's ResNet-50), CPU", fontsize=11)
    out = write_figure(HERE.parent / "docs" / "paper_eval.png", fig, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
