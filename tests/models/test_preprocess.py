"""Preprocessing: reading, sizes, resize values, normalisation, and the maps/boxes round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cameras.models import PreparedImage, Preprocess, read_rgb, resize_map, scale_box
from cameras.models.preprocess import IMAGENET_MEAN, IMAGENET_STD


def _photo(h: int = 30, w: int = 45, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _to_pixels(prep: Preprocess, tensor: torch.Tensor) -> np.ndarray:
    """Undo the normalisation without rounding: (h, w, 3) float in 0..255."""
    x = tensor[0].permute(1, 2, 0).double()
    return (
        (x * torch.tensor(prep.std, dtype=torch.float64) + torch.tensor(prep.mean, dtype=torch.float64)) * 255
    ).numpy()


# ----------------------------------------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    ("original", "square", "expected"),
    [
        ((300, 451), False, (224, 337)),  # 451 * 224 / 300 = 336.75
        ((451, 300), False, (337, 224)),  # portrait
        ((224, 224), False, (224, 224)),
        ((100, 100), False, (224, 224)),  # upscaling
        ((300, 451), True, (224, 224)),  # paper mode
        ((500, 741), False, (224, 332)),  # 741 * 224 / 500 = 331.97
    ],
)
def test_input_size(original: tuple[int, int], square: bool, expected: tuple[int, int]) -> None:
    prep = Preprocess(size=224, square=square)
    assert prep.input_size_for(original) == expected
    out = prep(np.zeros((*original, 3), dtype=np.uint8))
    assert out.tensor.shape == (1, 3, *expected)
    assert out.tensor.dtype == torch.float32
    assert out.original_size == original and out.input_size == expected
    assert out.original_rgb.shape == (*original, 3)


def test_square_override_per_call_and_max_size() -> None:
    prep = Preprocess(size=32)
    img = np.zeros((40, 80, 3), dtype=np.uint8)
    assert prep(img).input_size == (32, 64)
    assert prep(img, square=True).input_size == (32, 32)
    assert Preprocess(size=32, square=True)(img, square=False).input_size == (32, 64)
    capped = Preprocess(size=32, max_size=48)
    assert capped.input_size_for((40, 80)) == (24, 48)  # the longer side binds: 80 -> 48, 40 -> 24
    assert capped.input_size_for((40, 50)) == (32, 40)  # cap not reached
    with pytest.raises(ValueError, match="max_size"):
        Preprocess(size=32, max_size=16)
    with pytest.raises(ValueError, match="size"):
        Preprocess(size=0)


# ----------------------------------------------------------------------------------------------------------- values


def test_normalisation_constants_by_hand() -> None:
    img = np.zeros((4, 4, 3), dtype=np.uint8)
    img[0, 0] = (255, 127, 0)
    prep = Preprocess(size=4)
    x = prep(img).tensor[0, :, 0, 0]
    expected = [(255 / 255 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], (127 / 255 - IMAGENET_MEAN[1]) / IMAGENET_STD[1]]
    expected.append((0 - IMAGENET_MEAN[2]) / IMAGENET_STD[2])
    torch.testing.assert_close(x, torch.tensor(expected), rtol=0, atol=1e-6)

    lite = Preprocess(size=4, mean=(127 / 255,) * 3, std=(128 / 255,) * 3)  # (x - 127) / 128
    torch.testing.assert_close(lite(img).tensor[0, :, 0, 0], torch.tensor([1.0, 0.0, -127 / 128]), rtol=0, atol=1e-6)


@pytest.mark.parametrize("shape", [(300, 451), (75, 113)])  # down- and up-sampling
def test_resize_matches_pil_bilinear(shape: tuple[int, int]) -> None:
    """Independent reference: PIL's bilinear resize (antialiased, 8-bit output) is within one grey level."""
    img = _photo(*shape, seed=1)
    prep = Preprocess(size=224)
    out = prep(img)
    h, w = out.input_size
    ref = np.asarray(Image.fromarray(img).resize((w, h), Image.Resampling.BILINEAR)).astype(np.float64)
    diff = np.abs(_to_pixels(prep, out.tensor) - ref)
    assert diff.max() <= 1.0 + 1e-6
    assert diff.mean() < 0.5


def test_antialias_removes_aliasing() -> None:
    """A 1-pixel checkerboard downscaled 3x must become near-flat grey (antialiased); plain bilinear sampling would
    land on single pixels and return a full-contrast 0/255 pattern."""
    board = ((np.indices((48, 48)).sum(0) % 2) * 255).astype(np.uint8)
    prep = Preprocess(size=16)
    pixels = _to_pixels(prep, prep(board).tensor)
    assert np.abs(pixels - 127.5).max() < 3.0


def test_denormalize_round_trip_and_errors() -> None:
    img = _photo(16, 20)
    prep = Preprocess(size=16)  # native size: no resize, so the round trip is exact
    out = prep(img)
    np.testing.assert_array_equal(prep.denormalize(out.tensor), img)
    np.testing.assert_array_equal(prep.denormalize(out.tensor[0]), img)
    with pytest.raises(ValueError, match="one image"):
        prep.denormalize(torch.cat([out.tensor, out.tensor]))
    with pytest.raises(ValueError, match=r"\(3, h, w\)"):
        prep.denormalize(torch.zeros(4, 5, 5))


# ----------------------------------------------------------------------------------------------------------- reading


def test_grayscale_rgba_and_float_inputs() -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    rgb = read_rgb(gray)
    assert rgb.shape == (3, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(rgb[..., c], gray)
    np.testing.assert_array_equal(read_rgb(gray[..., None]), rgb)

    # alpha is composited over white: transparent → white, opaque → the colour, half → the average (rounded)
    color = _photo(5, 6)
    alpha = np.zeros((5, 6), dtype=np.uint8)
    alpha[1] = 255
    alpha[2] = 128
    rgba = np.dstack([color, alpha])
    expected = np.rint(color * (alpha[..., None] / 255.0) + 255.0 * (1 - alpha[..., None] / 255.0)).astype(np.uint8)
    assert (expected[0] == 255).all() and (expected[1] == color[1]).all()
    np.testing.assert_array_equal(read_rgb(rgba), expected)
    np.testing.assert_array_equal(read_rgb(Image.fromarray(rgba, mode="RGBA")), expected)
    np.testing.assert_array_equal(read_rgb(Image.fromarray(gray, mode="L")), rgb)

    floats = np.array([[[0.0, 0.5, 1.0]]])
    np.testing.assert_array_equal(read_rgb(floats), [[[0, 128, 255]]])

    src = _photo(5, 6)
    out = read_rgb(src)
    out[0, 0] = 0
    assert not np.shares_memory(out, src)


def test_files(tmp_path: Path) -> None:
    img = _photo(20, 30)
    png = tmp_path / "a.png"
    Image.fromarray(img).save(png)
    np.testing.assert_array_equal(read_rgb(png), img)
    np.testing.assert_array_equal(read_rgb(str(png)), img)
    Image.fromarray(img).convert("P").save(tmp_path / "p.png")
    assert read_rgb(tmp_path / "p.png").shape == (20, 30, 3)

    bad = tmp_path / "not_an_image.png"
    bad.write_bytes(b"this is text, not a PNG")
    with pytest.raises(ValueError, match="not an image file"):
        Preprocess()(bad)
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_rgb(tmp_path / "missing.jpg")
    with pytest.raises(ValueError, match="folder"):
        read_rgb(tmp_path)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    img = _photo(20, 30)
    path = tmp_path / "rot.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    Image.fromarray(img).save(path, exif=exif, quality=95)
    assert read_rgb(path).shape == (30, 20, 3)
    assert Preprocess(size=20)(path).original_size == (30, 20)


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        (np.zeros((3, 8, 8), dtype=np.uint8), ValueError, "channels first"),
        (np.zeros((8, 8, 2), dtype=np.uint8), ValueError, "H×W×3"),
        (np.zeros((2, 8, 8, 3), dtype=np.uint8), ValueError, "H×W×3"),
        (np.zeros((8, 8, 3), dtype=np.int32), TypeError, "dtype"),
        (np.full((8, 8, 3), 2.0), ValueError, r"\[0, 1\]"),
        (torch.zeros(8, 8, 3), TypeError, "numpy"),
        (42, TypeError, "path"),
    ],
)
def test_bad_inputs(bad: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Preprocess()(bad)


# ----------------------------------------------------------------------------------------------------------- maps


def test_resize_map_by_hand() -> None:
    """align_corners=False bilinear: [0, 1] on 2 pixels becomes [0, .25, .75, 1] on 4 (half-pixel centres)."""
    out = resize_map(torch.tensor([[0.0, 1.0]]), (1, 4))
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.25, 0.75, 1.0]]))
    torch.testing.assert_close(resize_map(torch.tensor([[2.0, -1.0]]), (1, 2)), torch.tensor([[1.0, 0.0]]))  # clamped


def test_to_original_shapes_and_constant_maps() -> None:
    prep = Preprocess(size=32)
    out = prep(_photo(30, 45))
    assert out.input_size == (32, 48)
    assert out.to_original(torch.full((32, 48), 0.3)).shape == (30, 45)
    batch = torch.rand(2, 32, 48)
    back = out.to_original(batch)
    assert back.shape == (2, 30, 45)
    assert float(back.min()) >= 0.0 and float(back.max()) <= 1.0
    torch.testing.assert_close(out.to_original(torch.full((2, 3, 32, 48), 0.3)), torch.full((2, 3, 30, 45), 0.3))
    torch.testing.assert_close(prep.to_original(batch, out.original_size), back)
    with pytest.raises(ValueError, match="shape"):
        out.to_original(torch.zeros(32))


def test_box_mapping_by_hand_and_round_trip() -> None:
    prep = Preprocess(size=224)
    box = (45.0, 30.0, 450.0, 300.0)
    expected = (45 * 336 / 450, 30 * 224 / 300, 336.0, 224.0)  # 300×450 → 224×336
    mapped = prep.box_to_input(box, original_size=(300, 450))
    assert mapped == pytest.approx(expected)
    assert prep.box_to_original(mapped, original_size=(300, 450)) == pytest.approx(box)

    out = PreparedImage(torch.zeros(1, 3, 224, 336), np.zeros((300, 450, 3), np.uint8), (300, 450), (224, 336))
    assert out.box_to_input(box) == pytest.approx(expected)
    many = np.array([box, (0, 0, 450, 300)])
    np.testing.assert_allclose(out.box_to_input(many), [expected, (0, 0, 336, 224)])
    t = torch.tensor([box])
    torch.testing.assert_close(out.box_to_original(out.box_to_input(t)), t)
    assert prep.box_to_input(box, original_size=(300, 450), square=True) == pytest.approx(
        (45 * 224 / 450, 30 * 224 / 300, 224.0, 224.0)
    )
    with pytest.raises(ValueError, match="x0, y0, x1, y1"):
        scale_box((1, 2, 3), (10, 10), (20, 20))


def test_box_region_survives_the_map_round_trip() -> None:
    """An indicator map of a box drawn in the input frame comes back (threshold 0.5) on the photo's box ± 1 px."""
    prep = Preprocess(size=64)
    out = prep(_photo(90, 150))
    box = (30.0, 15.0, 111.0, 72.0)
    x0, y0, x1, y1 = out.box_to_input(box)
    h, w = out.input_size
    ys = torch.arange(h).float() + 0.5
    xs = torch.arange(w).float() + 0.5
    inside = ((ys >= y0) & (ys < y1))[:, None] & ((xs >= x0) & (xs < x1))[None, :]
    back = out.to_original(inside.float()) > 0.5
    rows = torch.nonzero(back.any(1)).flatten()
    cols = torch.nonzero(back.any(0)).flatten()
    found = (float(cols[0]), float(rows[0]), float(cols[-1]) + 1, float(rows[-1]) + 1)
    assert found == pytest.approx(box, abs=1.0 + 1e-6)
