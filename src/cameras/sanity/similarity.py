"""Similarity between two saliency maps, as used by the model-randomisation sanity check.

The four measures follow Adebayo et al., "Sanity Checks for Saliency Maps" (NeurIPS 2018), Sec. 3 / Appendix:
Spearman rank correlation of the absolute maps and of the signed maps, the structural similarity index (SSIM), and
the Pearson correlation of the histogram-of-oriented-gradients (HOG) descriptors of the two maps. Library
implementations are used: :func:`scipy.stats.spearmanr`, :func:`skimage.metrics.structural_similarity`,
:func:`skimage.feature.hog`.

For all four, **1 means identical** and lower means the map changed; a saliency method that passes the sanity
check shows a clear drop as the model is randomised.

A constant map (:func:`cameras.engine.normalize.constant_maps`: all zero, uniform, or flat to a few ulps) has no
ranking, no structure and no gradients, so every measure involving one is **undefined**: ``nan``, never a made-up 0
(which would read as "the map changed completely", even for a map compared with itself).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from numpy.typing import NDArray
from scipy import stats
from skimage.feature import hog
from skimage.metrics import structural_similarity

from ..engine.normalize import constant_maps

__all__ = ["METRICS", "compare_maps", "hog_similarity", "is_constant", "spearman", "ssim"]

METRICS: tuple[str, ...] = ("spearman_abs", "spearman", "ssim", "hog")
"""Names of the measures returned by :func:`compare_maps`, in order."""

Array = NDArray[np.floating]


def _check_pair(a: Array, b: Array) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    if a64.ndim != 2 or a64.shape != b64.shape:
        raise ValueError(f"Expected two (H, W) maps of the same shape, got {a64.shape} and {b64.shape}.")
    if not (np.isfinite(a64).all() and np.isfinite(b64).all()):
        raise ValueError("Maps contain NaN or infinite values.")
    return a64, b64


def is_constant(m: Array) -> bool:
    """Whether a map is constant in the sense of :func:`cameras.engine.normalize.constant_maps`."""
    return bool(constant_maps(torch.from_numpy(np.ascontiguousarray(m, dtype=np.float64))))


def spearman(a: Array, b: Array, absolute: bool = False) -> float:
    """Spearman rank correlation between two (H, W) maps (of ``|a|`` and ``|b|`` when ``absolute``).

    A constant map carries no ranking, so the correlation is undefined: ``nan``.

    Example:
        >>> import numpy as np
        >>> spearman(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[10.0, 20.0], [30.0, 40.0]]))
        1.0
    """
    x, y = _check_pair(a, b)
    if absolute:
        x, y = np.abs(x), np.abs(y)
    if is_constant(x) or is_constant(y):
        return float("nan")
    return float(stats.spearmanr(x.ravel(), y.ravel()).statistic)


def ssim(a: Array, b: Array) -> float:
    """Structural similarity (Wang et al. 2004) of two (H, W) maps in [0, 1] (``data_range=1``).

    The window is skimage's default 7×7 (smaller odd window for maps under 7 pixels a side). Undefined (``nan``)
    when either map is constant.

    Example:
        >>> import numpy as np
        >>> m = np.random.default_rng(0).random((16, 16))
        >>> round(ssim(m, m), 6)
        1.0
    """
    x, y = _check_pair(a, b)
    side = min(x.shape)
    win = min(7, side if side % 2 == 1 else side - 1)
    if win < 3:
        raise ValueError(f"SSIM needs maps of at least 3×3 pixels, got {x.shape}.")
    if is_constant(x) or is_constant(y):
        return float("nan")
    return float(structural_similarity(x, y, data_range=1.0, win_size=win))  # type: ignore[no-untyped-call]


def _hog(m: NDArray[np.float64], cell: int) -> NDArray[np.float64]:
    feats: NDArray[np.float64] = hog(
        m, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2), feature_vector=True
    )
    return feats


def hog_similarity(a: Array, b: Array, cell: int | None = None) -> float:
    """Pearson correlation of the HOG descriptors of two (H, W) maps.

    HOG (Dalal & Triggs 2005) via :func:`skimage.feature.hog` with 9 orientations, 2×2-cell blocks (L2-Hys) and
    square cells of ``cell`` pixels (default ``max(2, min(H, W) // 28)``, i.e. 8 px at 224 px). The similarity is
    the Pearson correlation of the two descriptor vectors, as described by Adebayo et al. (2018), Sec. 3. When a map
    or a descriptor is constant (e.g. a flat map) the correlation is undefined: ``nan``.

    Example:
        >>> import numpy as np
        >>> m = np.random.default_rng(0).random((32, 32))
        >>> round(hog_similarity(m, m), 6)
        1.0
    """
    x, y = _check_pair(a, b)
    if cell is None:
        cell = max(2, min(x.shape) // 28)
    if min(x.shape) < 2 * cell:
        raise ValueError(f"HOG needs maps of at least {2 * cell}×{2 * cell} pixels for {cell}-pixel cells.")
    if is_constant(x) or is_constant(y):
        return float("nan")
    hx, hy = _hog(x, cell), _hog(y, cell)
    if np.ptp(hx) == 0 or np.ptp(hy) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = float(np.corrcoef(hx, hy)[0, 1])
    return r if np.isfinite(r) else float("nan")


def compare_maps(original_raw: Array, new_raw: Array, original_map: Array, new_map: Array) -> dict[str, float]:
    """All four measures between an original and a new map.

    Args:
        original_raw, new_raw: (H, W) maps before normalisation (possibly signed), used by the Spearman measures.
        original_map, new_map: (H, W) displayed maps in [0, 1], used by SSIM and HOG.

    Returns:
        ``{"spearman_abs", "spearman", "ssim", "hog"}`` → float; all ``nan`` when either map is constant (raw or
        displayed), since the map carries nothing to compare.
    """
    if any(is_constant(m) for m in (original_raw, new_raw, original_map, new_map)):
        return dict.fromkeys(METRICS, float("nan"))
    return {
        "spearman_abs": spearman(original_raw, new_raw, absolute=True),
        "spearman": spearman(original_raw, new_raw, absolute=False),
        "ssim": ssim(original_map, new_map),
        "hog": hog_similarity(original_map, new_map),
    }
