from __future__ import annotations

import numpy as np
import pytest

from cameras.viz import colorize, label_banner, overlay


def test_overlay_blends_photo_and_colour_map() -> None:
    photo = np.full((20, 30, 3), 100, dtype=np.uint8)
    sal = np.zeros((20, 30), dtype=np.float32)
    sal[5:10, 5:10] = 1.0
    heat = colorize(sal)
    out = overlay(photo, sal, alpha=0.25)
    expected = np.clip(0.75 * 100 + 0.25 * heat.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)
    assert np.array_equal(out, expected)
    assert np.array_equal(overlay(photo, sal, alpha=0.0), photo)
    # jet: 0 is dark blue, 1 is dark red
    assert heat[0, 0, 2] > heat[0, 0, 0] and heat[6, 6, 0] > heat[6, 6, 2]


def test_overlay_errors() -> None:
    with pytest.raises(ValueError, match="same size"):
        overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="alpha"):
        overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4)), alpha=2.0)


def test_label_banner_writes_text_at_the_top_only() -> None:
    img = np.full((200, 300, 3), 200, dtype=np.uint8)
    out = label_banner(img, "tiger cat 92%")
    assert out.shape == img.shape
    assert not np.array_equal(out[:20], img[:20])  # banner drawn
    assert np.array_equal(out[150:], img[150:])  # rest untouched
