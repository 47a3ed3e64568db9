"""Sample photos of cameras.data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from cameras import data


def test_samples_are_skimage_photos() -> None:
    assert data.SAMPLES == ("chelsea", "coffee", "rocket", "motorcycle")
    expected = {
        "chelsea": skimage.data.chelsea(),
        "coffee": skimage.data.coffee(),
        "rocket": skimage.data.rocket(),
        "motorcycle": skimage.data.stereo_motorcycle()[0],
    }
    for name in data.SAMPLES:
        img = data.sample_image(name)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        np.testing.assert_array_equal(img, expected[name])
    assert data.sample_image().shape == (300, 451, 3)  # chelsea by default
    assert data.sample_image(" Coffee ").shape == (400, 600, 3)


def test_fresh_copy_each_call() -> None:
    a = data.sample_image("chelsea")
    a[:] = 0
    assert data.sample_image("chelsea").any()


def test_sample_path(tmp_path: Path) -> None:
    png = data.sample_path("rocket", tmp_path / "new")
    assert png == tmp_path / "new" / "rocket.png"
    np.testing.assert_array_equal(np.asarray(Image.open(png)), data.sample_image("rocket"))  # lossless
    jpg = data.sample_path("chelsea", tmp_path, fmt="jpg")
    decoded = np.asarray(Image.open(jpg)).astype(float)
    assert decoded.shape == (300, 451, 3)
    assert np.abs(decoded - data.sample_image("chelsea")).mean() < 3.0  # quality 95


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="chelsea, coffee, rocket, motorcycle"):
        data.sample_image("astronaut")
    with pytest.raises(ValueError, match="fmt"):
        data.sample_path("chelsea", tmp_path, fmt="gif")
    with pytest.raises(TypeError, match="string"):
        data.sample_image(3)  # type: ignore[arg-type]
