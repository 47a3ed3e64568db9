"""Figures for the randomisation test: similarity curves and a strip of maps per step.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot state, any backend).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import NDArray
from torch import Tensor

from ..io.atomic import write_figure
from .randomization import SanityResult
from .similarity import METRICS

__all__ = ["plot_similarity", "plot_strip"]

_TITLES = {
    "spearman_abs": "Spearman rank corr. (absolute)",
    "spearman": "Spearman rank corr. (signed)",
    "ssim": "SSIM",
    "hog": "HOG similarity (Pearson)",
}


def plot_similarity(
    result: SanityResult, path: str | os.PathLike[str] | None = None, metrics: Sequence[str] = METRICS
) -> Figure:
    """Similarity to the original maps versus randomisation depth: one panel per metric (two per row), one line
    per method.

    The x axis lists the steps (``original``, then each randomised block); lines are means over images with a
    band of ± one standard deviation when there are several images.

    Args:
        result: output of :func:`~cameras.sanity.cascading_randomization`.
        path: if given, the figure is saved there (format from the extension).
        metrics: which measures to draw.

    Returns:
        the matplotlib Figure.
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"Unknown metric(s) {unknown}; choose from {list(METRICS)}.")
    steps = result.steps
    n = len(metrics)
    ncols = min(n, 2)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(max(4.5, 0.3 * len(steps) + 2.5) * ncols, 3.9 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    xs = np.arange(len(steps))
    for ax, metric in zip(axes, metrics):
        for method in result.methods:
            values = result.similarity[method][metric]
            mean = result.mean(method, metric)  # over defined images; nan (a gap in the line) where none is
            (line,) = ax.plot(xs, mean, marker="o", markersize=3, label=method)
            if values.shape[1] > 1:
                with warnings.catch_warnings():  # a step where every image is undefined: nan, no band
                    warnings.simplefilter("ignore", RuntimeWarning)
                    std = np.nanstd(values, axis=1)
                ax.fill_between(xs, mean - std, mean + std, color=line.get_color(), alpha=0.15)
        ax.axhline(0.0, color="0.6", linewidth=0.8, linestyle="--")
        ax.set_title(_TITLES.get(metric, metric))
        ax.set_xticks(xs, steps, rotation=70, ha="right", fontsize=7)
        ax.set_ylim(-1.05 if metric.startswith("spearman") or metric == "hog" else -0.05, 1.05)
        ax.set_xlabel(f"{result.variant} randomisation (from the logits down)", fontsize=8)
        ax.set_ylabel("similarity to the original map", fontsize=8)
    axes[0].legend(loc="best", fontsize=8)
    if path is not None:
        write_figure(path, fig, dpi=120)
    return fig


def plot_strip(
    result: SanityResult,
    image: NDArray[np.floating] | Tensor | None = None,
    index: int = 0,
    path: str | os.PathLike[str] | None = None,
    cmap: str = "inferno",
) -> Figure:
    """A strip of maps: one row per method, one column per randomisation step (like Adebayo et al.'s Fig. 2).

    Args:
        result: output of :func:`~cameras.sanity.cascading_randomization` run with ``keep_maps=True``.
        image: optional (H, W, 3) image in [0, 1] (numpy or tensor) shown in an extra first column.
        index: which image of the batch to show.
        path: if given, the figure is saved there.
        cmap: matplotlib colour map for the maps (drawn on a fixed [0, 1] scale).

    Returns:
        the matplotlib Figure.
    """
    if not result.maps:
        raise ValueError("The result holds no maps; run cascading_randomization(..., keep_maps=True).")
    batch = int(next(iter(result.maps.values())).shape[1])
    if not 0 <= index < batch:
        raise ValueError(f"index {index} out of range for {batch} image(s).")
    steps = result.steps
    extra = 1 if image is not None else 0
    rows, cols = len(result.methods), len(steps) + extra
    fig = Figure(figsize=(1.25 * cols + 0.8, 1.35 * rows + 0.9), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for r, method in enumerate(result.methods):
        if image is not None:
            img = image.detach().cpu().numpy() if isinstance(image, Tensor) else np.asarray(image)
            axes[r, 0].imshow(np.clip(img, 0.0, 1.0))
            if r == 0:
                axes[r, 0].set_title("input", fontsize=7)
        maps = result.maps[method]
        for c, label in enumerate(steps):
            ax = axes[r, c + extra]
            ax.imshow(maps[c, index].numpy(), cmap=cmap, vmin=0.0, vmax=1.0)
            if r == 0:
                ax.set_title(label, fontsize=7, rotation=45, ha="left", va="bottom")
        axes[r, 0].set_ylabel(method, fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{result.variant} randomisation, class {int(result.targets[index])}", fontsize=9)
    if path is not None:
        write_figure(path, fig, dpi=120)
    return fig
