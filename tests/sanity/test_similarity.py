"""Similarity measures of the sanity check, against hand values and independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage
from skimage.feature import hog

from cameras.sanity import compare_maps, hog_similarity, spearman, ssim
from cameras.sanity.similarity import is_constant


def _ssim_reference(x: np.ndarray, y: np.ndarray, win: int = 7) -> float:
    """SSIM from Wang et al. (2004): uniform 7x7 window, sample covariances, K1 = 0.01, K2 = 0.03, L = 1."""
    n = win * win
    f = lambda a: ndimage.uniform_filter(a, size=win)  # noqa: E731
    mx, my = f(x), f(y)
    vx = (f(x * x) - mx * mx) * n / (n - 1)
    vy = (f(y * y) - my * my) * n / (n - 1)
    cxy = (f(x * y) - mx * my) * n / (n - 1)
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    pad = (win - 1) // 2
    return float(s[pad:-pad, pad:-pad].mean())


def test_spearman_hand_values() -> None:
    a = np.array([[-3.0, -1.0], [2.0, 4.0]])
    assert spearman(a, a**3) == pytest.approx(1.0)  # monotone transform keeps the ranks
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, -a, absolute=True) == pytest.approx(1.0)
    # |a| = [3, 1, 2, 4] vs b = [1, 2, 3, 4]: d = [2, -1, -1, 0], rho = 1 - 6 * 6 / (4 * 15) = 0.4
    assert spearman(a, np.array([[1.0, 2.0], [3.0, 4.0]]), absolute=True) == pytest.approx(0.4)
    assert math.isnan(spearman(a, np.zeros((2, 2))))  # constant map: no ranking, undefined (not a fake 0)


def test_ssim_matches_reference() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((20, 24))
    y = np.clip(x + 0.3 * rng.standard_normal((20, 24)), 0, 1)
    assert ssim(x, y) == pytest.approx(_ssim_reference(x, y), abs=1e-10)
    assert ssim(x, x) == pytest.approx(1.0)
    assert ssim(x, y) < 0.9


def test_hog_similarity_is_pearson_of_descriptors() -> None:
    rng = np.random.default_rng(1)
    x = ndimage.gaussian_filter(rng.random((32, 32)), 2)
    y = ndimage.gaussian_filter(rng.random((32, 32)), 2)
    hx = hog(x, orientations=9, pixels_per_cell=(4, 4), cells_per_block=(2, 2))
    hy = hog(y, orientations=9, pixels_per_cell=(4, 4), cells_per_block=(2, 2))
    dx, dy = hx - hx.mean(), hy - hy.mean()
    pearson = float((dx * dy).sum() / np.sqrt((dx * dx).sum() * (dy * dy).sum()))
    assert hog_similarity(x, y, cell=4) == pytest.approx(pearson, abs=1e-12)
    assert hog_similarity(x, 0.5 * x) > 0.99  # block normalisation: contrast does not matter
    assert math.isnan(hog_similarity(x, np.zeros_like(x)))


def test_constant_maps_are_undefined_even_against_themselves() -> None:
    """The issue's case: a degenerate (constant) map compared with itself scored Spearman 0.000. Every measure of a
    constant map is NaN; a one-ulp ripple (bilinear upsampling of a 1×1 map) is still constant."""
    flat = np.full((16, 16), 1.2089293003082275)
    rippled = flat.copy()
    rippled[3, 4] = np.nextafter(np.float32(flat[0, 0]), np.float32(2.0))
    assert is_constant(flat) and is_constant(rippled) and not is_constant(flat + np.eye(16))
    for a, b in ((flat, flat), (rippled, rippled), (flat, flat + np.eye(16))):
        out = compare_maps(a, b, np.zeros_like(a), np.clip(b - b.min(), 0, 1))
        assert all(math.isnan(v) for v in out.values()), out
    assert math.isnan(ssim(np.zeros((8, 8)), np.eye(8)))


def test_compare_maps_uses_raw_for_ranks_and_maps_for_structure() -> None:
    rng = np.random.default_rng(2)
    raw = rng.standard_normal((16, 16))
    shown = (raw - raw.min()) / np.ptp(raw)
    out = compare_maps(raw, -raw, shown, shown)
    assert out["spearman"] == pytest.approx(-1.0)
    assert out["spearman_abs"] == pytest.approx(1.0)
    assert out["ssim"] == pytest.approx(1.0) and out["hog"] == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 1)), np.zeros((5, 4)), np.full((4, 4), np.nan)])
def test_rejects_bad_maps(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        spearman(np.zeros((4, 4)), bad)
