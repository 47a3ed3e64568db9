"""Overlays for notebooks: several maps (methods, classes) side by side over one photo, as a matplotlib figure.

:func:`show` (and :meth:`cameras.Result.plot`, which calls it) blends each map over the photo with
:func:`cameras.viz.overlay` — the same pixels ``cameras explain`` writes — and lays the panels out on a grid with one
colour bar. It uses matplotlib's object API (``matplotlib.figure.Figure`` on an Agg canvas), never pyplot: nothing is
shown or changed globally, and a notebook displays the returned figure as the cell's value.

Example:
    >>> import numpy as np, torchvision, cameras
    >>> from cameras.models import Preprocess
    >>> net = torchvision.models.resnet18(num_classes=3).eval()
    >>> photo = Preprocess(size=64)(np.zeros((64, 96, 3), np.uint8))
    >>> fig = cameras.viz.show(photo, {
    ...     "Grad-CAM": cameras.GradCAM(net, layer="layer4")(photo.tensor),
    ...     "CAMERAS": cameras.CAMERAS(net, layer="layer4", resolutions=[1.0, 1.5])(photo.tensor),
    ... })
    >>> [ax.get_title().split("\\n")[0] for ax in fig.axes[:3]]
    ['photo', 'Grad-CAM', 'CAMERAS']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from .overlay import overlay

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..engine.result import Result

__all__ = ["show"]

Maps = Any
"""What :func:`show` draws: a :class:`~cameras.engine.result.Result`, an (H, W) or (K, H, W) map (tensor or array),
a sequence of these, or a mapping title → one of these."""


def show(
    photo: Any,
    maps: Maps,
    *,
    labels: Sequence[str] | None = None,
    index: int = 0,
    alpha: float = 0.5,
    cmap: str = "jet",
    columns: int | None = None,
    panel_size: float = 3.0,
    title: str | None = None,
) -> Figure:
    """Draw maps over a photo, side by side, and return the figure.

    Args:
        photo: the :class:`~cameras.models.PreparedImage` the maps were computed on (``m.preprocess(...)``; the maps
            are brought back onto its photo with ``to_original``), or an (H, W, 3) uint8 array / PIL image (maps of
            another size are resized to it bilinearly).
        maps: a :class:`~cameras.engine.result.Result` (one panel per class: (B, H, W) → 1, (B, K, H, W) → K, of
            image ``index``), an (H, W) or (K, H, W) tensor or array in [0, 1], a sequence of these, or a mapping
            ``{title: ...}`` to compare methods (``{"CAMERAS": out, "Grad-CAM": out2}``).
        labels: class names, to title a Result's panels (``m.labels``); default: the class index.
        index: which image of a batched Result or (B, ...) map to draw.
        alpha: weight of the colour map over the photo (0 = photo only, 1 = map only).
        cmap: matplotlib colour map.
        columns: panels per row (default: all in one row up to 5, then rows of 4).
        panel_size: width of a panel in inches.
        title: figure title.

    Returns:
        ``matplotlib.figure.Figure``: the photo, then one panel per map, each titled (method · class · p for a
        Result), and one colour bar for the [0, 1] scale.

    Raises:
        ValueError: a map that is not (H, W) / (K, H, W) (or that does not come back to the photo's size),
            ``index`` out of range, ``alpha`` outside [0, 1], ``columns`` < 1, nothing to draw.
        TypeError: a photo or map of another type.
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    rgb = _photo_rgb(photo)
    panels = _panels(maps, labels, index, None)
    if not panels:
        raise ValueError("Nothing to draw: give at least one map.")
    h0, w0 = rgb.shape[:2]
    drawn = [(name, overlay(rgb, _on_photo(photo, sal, (h0, w0)), alpha=alpha, cmap=cmap)) for name, sal in panels]
    n = 1 + len(drawn)
    ncols = columns if columns is not None else (n if n <= 5 else 4)
    if ncols < 1:
        raise ValueError(f"columns must be ≥ 1, got {columns}.")
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(ncols * panel_size + 0.8, nrows * (panel_size * h0 / w0 + 0.6) + 0.3), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    cells: list[tuple[str, NDArray[np.uint8]] | None] = [(f"photo\n{h0}×{w0} px", rgb), *drawn]
    cells += [None] * (nrows * ncols - n)
    for ax, cell in zip(axes.flat, cells):
        ax.set_xticks([])
        ax.set_yticks([])
        if cell is None:
            ax.set_axis_off()
            continue
        ax.imshow(cell[1])
        ax.set_title(cell[0], fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11, fontweight="bold")
    mappable = ScalarMappable(norm=Normalize(0.0, 1.0), cmap=colormaps[cmap])
    fig.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.8, aspect=30, pad=0.01, label="saliency (0–1)")
    return fig


def _photo_rgb(photo: Any) -> NDArray[np.uint8]:
    rgb = getattr(photo, "original_rgb", photo)
    if hasattr(rgb, "convert") and not isinstance(rgb, np.ndarray):  # a PIL image
        rgb = np.asarray(rgb.convert("RGB"))
    if isinstance(rgb, Tensor):
        rgb = rgb.detach().cpu().numpy()
    if not isinstance(rgb, np.ndarray):
        raise TypeError(f"photo must be a PreparedImage, an (H, W, 3) uint8 array or a PIL image, got {type(photo)}.")
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"photo must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}.")
    return rgb


def _on_photo(photo: Any, saliency: Tensor, size: tuple[int, int]) -> NDArray[np.float32]:
    """An (h, w) map on the photo's (H0, W0) pixels: the PreparedImage's own mapping, else a bilinear resize."""
    from ..models.preprocess import resize_map

    to_original = getattr(photo, "to_original", None)
    on = to_original(saliency) if callable(to_original) else resize_map(saliency, size)
    out = on.detach().float().cpu().numpy()
    if out.shape != size:
        raise ValueError(f"A map of shape {tuple(saliency.shape)} does not come back to the photo's {size}.")
    return np.asarray(out, dtype=np.float32)


def _panels(maps: Maps, labels: Sequence[str] | None, index: int, name: str | None) -> list[tuple[str, Tensor]]:
    """(title, (h, w) map) for every panel of ``maps``."""
    from ..engine.result import Result

    if isinstance(maps, Result):
        return _result_panels(maps, labels, index, name)
    if isinstance(maps, Mapping):
        return [p for key, value in maps.items() for p in _panels(value, labels, index, str(key))]
    if isinstance(maps, np.ndarray):
        maps = torch.from_numpy(np.asarray(maps, dtype=np.float32))
    if isinstance(maps, Tensor):
        if maps.dim() == 2:
            return [(name or "map", maps)]
        if maps.dim() == 3:
            return [(f"{name or 'map'} {k + 1}" if maps.shape[0] > 1 else name or "map", m) for k, m in enumerate(maps)]
        raise ValueError(f"A map must be (H, W) or (K, H, W), got shape {tuple(maps.shape)}.")
    if isinstance(maps, Sequence) and not isinstance(maps, str):
        return [p for value in maps for p in _panels(value, labels, index, name)]
    raise TypeError(f"maps must be a Result, a tensor or array, a sequence or a mapping, got {type(maps).__name__}.")


def _result_panels(
    result: Result, labels: Sequence[str] | None, index: int, name: str | None
) -> list[tuple[str, Tensor]]:
    batch = result.batch_size
    if not -batch <= index < batch:
        raise ValueError(f"index {index} is out of range for a result of {batch} image(s).")
    sal = result.saliency[index]
    targets = result.targets[index].reshape(-1).tolist()
    probs = result.probabilities[index].reshape(-1).tolist()
    flat = sal.reshape(-1, *sal.shape[-2:])
    head = name or result.method or "map"
    out = []
    for k, (cls, p) in enumerate(zip(targets, probs)):
        label = labels[cls] if labels is not None and 0 <= cls < len(labels) else f"class {cls}"
        extra = "" if math.isnan(p) else f" (p={p:.2f})"
        out.append((f"{head}\n{label}{extra}", flat[k]))
    return out
