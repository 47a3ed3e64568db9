"""Drawing the comparison views (:mod:`cameras.compare`): :func:`draw` makes the labelled grid of a
:class:`~cameras.compare.Comparison` — the photo, then the maps over it in 'jet', one colour scale [0, 1] shared by
all map panels (one colour bar); contrast maps ``ReLU(A − B)`` on a second bar from 0 to their largest value; the
Spearman ρ of the pairs under the grid.

Figures use matplotlib's object API (``matplotlib.figure.Figure``, Agg canvas), never pyplot, so nothing is shown
and no global state changes. ``Comparison.figure`` calls :func:`draw` on first use.

The views themselves (``compare_methods``, ``compare_classes``, ``compare_models``, ``compare_class_grid``,
``Comparison``, ``Panel``, ``spearman``, …) are computed in :mod:`cameras.compare` and re-exported here, where they
lived before.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import NDArray

from ..compare import (
    DEFAULT_METHODS,
    Comparison,
    MethodSpec,
    ModelLike,
    Panel,
    compare_class_grid,
    compare_classes,
    compare_methods,
    compare_models,
    method_label,
    spearman,
)

__all__ = [
    "DEFAULT_METHODS",
    "Comparison",
    "MethodSpec",
    "ModelLike",
    "Panel",
    "compare_class_grid",
    "compare_classes",
    "compare_methods",
    "compare_models",
    "draw",
    "method_label",
    "spearman",
]


def draw(view: Comparison) -> Figure:
    """The labelled grid of a comparison (a new figure on an Agg canvas; ``view.figure`` keeps one).

    Args:
        view: a :class:`~cameras.compare.Comparison` of any of the four views.

    Raises:
        ValueError: ``view.alpha`` is outside [0, 1], or ``view.view`` is not a known view.
    """
    image_name = view.info.get("image")
    if view.view == "class_grid":
        rows: dict[str, list[Panel]] = {}
        for p in view.panels:
            rows.setdefault(p.row, []).append(p)
        footer = _grid_footer(view.spearman)
        return _draw_grid(view.photo, list(rows.items()), image_name, view.title, footer, view.alpha)
    if view.view == "classes":
        k = len(view.panels) // 2
        side = "top-5:\n" + "\n".join(
            textwrap.shorten(f"{t['probability']:.2f}  {t['class_name']}", 30) for t in view.info["top5"]
        )
        maps, second = view.panels[:k], view.panels[k:]
        return _draw(view.photo, maps, second, image_name, view.title, _footer(view.spearman), view.alpha, side)
    if view.view in ("methods", "models"):
        head = "Spearman ρ between models' maps" if view.view == "models" else "Spearman ρ"
        return _draw(view.photo, view.panels, None, image_name, view.title, _footer(view.spearman, head), view.alpha)
    raise ValueError(f"Unknown comparison view {view.view!r}: methods, classes, models or class_grid.")


def _grid_footer(pairs: list[dict[str, Any]]) -> str:
    """One line per row: the ρ of its classes' maps in each form (pairs named when a row has several)."""
    rows = list(dict.fromkeys(p["row"] for p in pairs))
    several = len(pairs) > len(rows) * len({p["form"] for p in pairs})
    lines = []
    for row in rows:
        items = []
        for p in pairs:
            if p["row"] != row:
                continue
            rho = "n/a" if p["rho"] is None else format(p["rho"], ".2f")
            names = f" {p['a']} – {p['b']}" if several else ""
            items.append(f"{p['form']}{names} {rho}")
        lines.append(f"{row}: " + ", ".join(items))
    return "Spearman ρ between the classes' maps:\n" + "\n".join(lines)


def _footer(pairs: list[dict[str, Any]], head: str = "Spearman ρ") -> str:
    """Pairs as text lines; beyond 6 pairs only those with the first panel (all of them are in the JSON)."""
    if not pairs:
        return ""
    if len(pairs) > 6:
        first = pairs[0]["a"]
        pairs = [p for p in pairs if p["a"] == first]
        head = f"{head} with {first} (all pairs in the JSON)"
    forms = len({p.get("form") for p in pairs}) > 1  # plain and contrastive pairs: say which is which
    items = [
        (f"{p['form']} " if forms else "")
        + f"{p['a']} – {p['b']}: {'n/a' if p['rho'] is None else format(p['rho'], '.2f')}"
        for p in pairs
    ]
    lines, line = [], ""
    for item in items:
        candidate = f"{line}   ·   {item}" if line else item
        if len(candidate) > 110 and line:
            lines.append(line)
            candidate = item
        line = candidate
    lines.append(line)
    return f"{head}:  " + "\n".join(lines)


def _draw(
    photo: NDArray[np.uint8],
    row1: list[Panel],
    row2: list[Panel] | None,
    image_name: str | None,
    title: str,
    footer: str,
    alpha: float,
    side_text: str | None = None,
) -> Figure:
    """Photo + panels on a grid, maps over the photo in 'jet' on [0, 1], one shared colour bar."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    h0, w0 = photo.shape[:2]
    if row2 is not None:
        ncols, nrows = 1 + len(row1), 2
        cells: list[Panel | str | None] = ["photo", *row1, "text" if side_text else None, *row2]
    else:
        n = 1 + len(row1)
        ncols = n if n <= 4 else math.ceil(n / 2) if n <= 8 else 4
        nrows = math.ceil(n / ncols)
        cells = ["photo", *row1, *([None] * (ncols * nrows - n))]
    panel_w = 3.3
    panel_h = panel_w * h0 / w0 + 0.75
    footer_lines = footer.count("\n") + 1 if footer else 0
    fig = Figure(figsize=(ncols * panel_w + 1.1, nrows * panel_h + 0.6 + 0.22 * footer_lines), layout="constrained")
    FigureCanvasAgg(fig)  # the Agg canvas: renders off-screen, whatever pyplot's backend is
    axes = fig.subplots(nrows, ncols, squeeze=False)
    cmap = colormaps["jet"]
    contrast_max = max([float(p.saliency.max()) for p in row2 or []] + [1e-6])
    for ax, cell in zip(axes.flat, cells):
        ax.set_xticks([])
        ax.set_yticks([])
        if cell is None:
            ax.set_axis_off()
        elif cell == "text":
            ax.set_axis_off()
            ax.text(
                0.02, 0.95, side_text or "", va="top", ha="left", fontsize=9, family="monospace", transform=ax.transAxes
            )
        elif cell == "photo":
            ax.imshow(photo)
            ax.set_title(f"input\n{image_name or 'image'}\n{h0}×{w0} px", fontsize=9)
        else:
            assert isinstance(cell, Panel)
            vmax = contrast_max if cell.kind == "contrast" else 1.0
            ax.imshow(photo)
            ax.imshow(cell.saliency, cmap=cmap, vmin=0.0, vmax=vmax, alpha=alpha, interpolation="bilinear")
            ax.set_title(cell.title, fontsize=9)
    fig.suptitle(title, fontsize=11, fontweight="bold")
    mappable = ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap)
    if row2 is None or all(p.kind != "contrast" for p in row2):  # maps (and contrastive maps): one scale [0, 1]
        fig.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.8, aspect=30, pad=0.01, label="saliency (0–1)")
    else:
        fig.colorbar(mappable, ax=axes[0].tolist(), shrink=0.9, aspect=20, pad=0.01, label="saliency (0–1)")
        contrast = ScalarMappable(norm=Normalize(0.0, contrast_max), cmap=cmap)
        fig.colorbar(contrast, ax=axes[1].tolist(), shrink=0.9, aspect=20, pad=0.01, label="contrast")
    if footer:
        fig.supxlabel(footer, fontsize=9)
    return fig


def _draw_grid(
    photo: NDArray[np.uint8],
    rows: list[tuple[str, list[Panel]]],
    image_name: str | None,
    title: str,
    footer: str,
    alpha: float,
) -> Figure:
    """One row per (model, method): the photo, then the row's panels; every map on 'jet' over [0, 1], one colour
    bar for the whole grid."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    h0, w0 = photo.shape[:2]
    ncols = 1 + max(len(panels) for _, panels in rows)
    panel_w = 2.8
    panel_h = panel_w * h0 / w0 + 0.85
    footer_lines = footer.count("\n") + 1 if footer else 0
    fig = Figure(figsize=(ncols * panel_w + 1.1, len(rows) * panel_h + 0.6 + 0.22 * footer_lines), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    cmap = colormaps["jet"]
    for r, (label, panels) in enumerate(rows):
        cells: list[Panel | None] = [*panels, *([None] * (ncols - 1 - len(panels)))]
        photo_ax = axes[r, 0]
        photo_ax.imshow(photo)
        photo_ax.set_title(f"{label}\n{image_name or 'image'}", fontsize=9)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
        for ax, cell in zip(axes[r, 1:], cells):
            if cell is None:
                ax.set_axis_off()
                continue
            ax.imshow(photo)
            ax.imshow(cell.saliency, cmap=cmap, vmin=0.0, vmax=1.0, alpha=alpha, interpolation="bilinear")
            ax.set_title(cell.title, fontsize=8)
    fig.suptitle(title, fontsize=11, fontweight="bold")
    fig.colorbar(
        ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap),
        ax=axes.ravel().tolist(),
        shrink=0.8,
        aspect=30,
        pad=0.01,
        label="saliency / contrast (0–1, one scale)",
    )
    if footer:
        fig.supxlabel(footer, fontsize=9)
    return fig
