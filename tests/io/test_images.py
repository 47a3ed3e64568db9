"""The one image loader: every kind of photo a user may have, against expectations computed from the definitions
(the pixels written, the documented scaling rules), and one clear error for everything unusable."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cameras import data
from cameras.io import ImageError, ImageNotFoundError, SizeLimitError, SizeLimits, load_image, source_name
from cameras.models import Preprocess, read_rgb


def _rgb(h: int = 12, w: int = 17, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _over_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha[..., None].astype(np.float64) / 255.0
    return np.rint(rgb * a + 255.0 * (1.0 - a)).astype(np.uint8)


# ----------------------------------------------------------------------------------------------------------- formats


@pytest.mark.parametrize("fmt", ["png", "bmp", "tiff", "ppm", "tga", "webp"])
def test_lossless_formats_give_back_the_pixels(tmp_path: Path, fmt: str) -> None:
    img = _rgb()
    path = tmp_path / f"p.{fmt}"
    Image.fromarray(img).save(path, **({"lossless": True} if fmt == "webp" else {}))
    photo = load_image(path)
    np.testing.assert_array_equal(photo.rgb, img)
    assert photo.name == "p" and photo.source == str(path) and photo.frames == 1 and photo.notes == ()


def test_jpeg_is_pillows_decoding(tmp_path: Path) -> None:
    yy, xx = np.mgrid[0:32, 0:48]
    img = np.stack([yy * 8, xx * 5, (yy + xx) * 3], axis=-1).astype(np.uint8)  # smooth: JPEG keeps it well
    Image.fromarray(img).save(tmp_path / "p.jpg", quality=95)
    got = load_image(tmp_path / "p.jpg").rgb
    with Image.open(tmp_path / "p.jpg") as im:
        np.testing.assert_array_equal(got, np.asarray(im.convert("RGB")))
    assert np.abs(got.astype(int) - img).mean() < 3


def test_grayscale_bilevel_and_palette(tmp_path: Path) -> None:
    gray = _rgb()[..., 0]
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    np.testing.assert_array_equal(load_image(tmp_path / "g.png").rgb, np.repeat(gray[..., None], 3, axis=2))
    Image.fromarray(gray > 127).save(tmp_path / "b.png")  # mode "1"
    np.testing.assert_array_equal(load_image(tmp_path / "b.png").rgb[..., 0], np.where(gray > 127, 255, 0))
    pal = Image.fromarray(_rgb()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.save(tmp_path / "p.png")
    np.testing.assert_array_equal(load_image(tmp_path / "p.png").rgb, np.asarray(pal.convert("RGB")))


def test_sixteen_bit_grayscale_is_scaled_by_its_range(tmp_path: Path) -> None:
    """The issue's I;16 PNG: 0..65535 → 0..255 (÷257, rounded), not an error and not clipped."""
    values = np.array([[0, 257, 32896, 65535], [1000, 2000, 40000, 65278]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I;16")
    photo = load_image(tmp_path / "g16.png")
    expected = np.rint(values / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(photo.rgb[..., 1], expected)
    assert photo.rgb[0].tolist()[:4] == [[0] * 3, [1] * 3, [128] * 3, [255] * 3]
    assert photo.notes == ("16-bit scaled to 8-bit",)
    np.testing.assert_array_equal(load_image(values).rgb[..., 0], expected)  # uint16 arrays: the same rule


def test_32_bit_integer_and_float_modes(tmp_path: Path) -> None:
    small = np.array([[0, 10, 255]], dtype=np.int32)  # within 0..255: taken as 8-bit
    sixteen = np.array([[0, 514, 65535]], dtype=np.int32)  # within 0..65535: ÷257
    signed = np.array([[-100, 60, 100]], dtype=np.int32)  # anything else: min–max stretched (160·255/200 = 204)
    for arr, expected in ((small, [0, 10, 255]), (sixteen, [0, 2, 255]), (signed, [0, 204, 255])):
        Image.fromarray(arr, mode="I").save(tmp_path / "i.tiff")
        assert load_image(tmp_path / "i.tiff").rgb[0, :, 0].tolist() == expected
    unit = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    wide = np.array([[0.0, 100.0, 200.0]], dtype=np.float32)
    odd = np.array([[-1.0, 0.0, 3.0]], dtype=np.float32)
    for arr, expected in ((unit, [0, 128, 255]), (wide, [0, 100, 200]), (odd, [0, 64, 255])):
        Image.fromarray(arr, mode="F").save(tmp_path / "f.tiff")
        assert load_image(tmp_path / "f.tiff").rgb[0, :, 0].tolist() == expected
    Image.fromarray(np.array([[0.0, np.nan]], dtype=np.float32), mode="F").save(tmp_path / "nan.tiff")
    with pytest.raises(ImageError, match="NaN"):
        load_image(tmp_path / "nan.tiff")


def test_alpha_is_composited_over_white(tmp_path: Path) -> None:
    rgb = _rgb()
    alpha = np.tile(np.array([0, 64, 128, 255], dtype=np.uint8), (12, 5))[:, :17]
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "a.png")
    photo = load_image(tmp_path / "a.png")
    np.testing.assert_array_equal(photo.rgb, _over_white(rgb, alpha))
    assert photo.notes == ("alpha composited over the background",)
    la = Image.fromarray(np.dstack([rgb[..., 0], alpha]), mode="LA")
    np.testing.assert_array_equal(load_image(la).rgb[..., 2], _over_white(rgb[..., :1].repeat(3, 2), alpha)[..., 2])
    black = load_image(tmp_path / "a.png", background=(0, 0, 0)).rgb
    np.testing.assert_array_equal(black[alpha == 255], rgb[alpha == 255])
    assert (black[alpha == 0] == 0).all()
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    index = int(np.asarray(pal)[0, 0])
    pal.save(tmp_path / "pt.png", transparency=index)
    out = load_image(tmp_path / "pt.png").rgb
    assert (out[np.asarray(pal) == index] == 255).all()  # the transparent palette entry shows white
    with pytest.raises(ValueError, match="background"):
        load_image(rgb, background=(0, 0, 300))


def test_cmyk_and_ycbcr(tmp_path: Path) -> None:
    rgb = _rgb()
    cmyk = Image.fromarray(rgb).convert("CMYK")
    cmyk.save(tmp_path / "c.tiff")
    np.testing.assert_array_equal(load_image(tmp_path / "c.tiff").rgb, np.asarray(cmyk.convert("RGB")))
    ycc = Image.fromarray(rgb).convert("YCbCr")
    np.testing.assert_array_equal(load_image(ycc).rgb, np.asarray(ycc.convert("RGB")))


@pytest.mark.parametrize(("orientation", "turn"), [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_as_a_viewer_shows_it(tmp_path: Path, orientation: int, turn: int) -> None:
    """Orientation 6 (camera held upright, stored sideways) is shown rotated 90° clockwise, 8 counter-clockwise, 3
    by 180°."""
    img = _rgb(20, 30)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(img).save(tmp_path / "r.png", exif=exif)
    photo = load_image(tmp_path / "r.png")
    np.testing.assert_array_equal(photo.rgb, np.rot90(img, turn))
    assert photo.notes == (f"EXIF orientation {orientation} applied",)


def test_broken_exif_is_ignored(tmp_path: Path) -> None:
    img = _rgb()
    Image.fromarray(img).save(tmp_path / "e.png", exif=b"Exif\x00\x00garbage that is no TIFF header")
    np.testing.assert_array_equal(load_image(tmp_path / "e.png").rgb, img)


@pytest.mark.parametrize("fmt", ["gif", "tiff", "png", "webp"])
def test_animations_and_pages_give_the_first_frame(tmp_path: Path, fmt: str) -> None:
    first, second = _rgb(seed=1), _rgb(seed=2)
    path = tmp_path / f"anim.{fmt}"
    extra = {"lossless": True} if fmt == "webp" else {}
    Image.fromarray(first).save(path, save_all=True, append_images=[Image.fromarray(second)], **extra)
    photo = load_image(path)
    assert photo.frames == 2 and photo.notes[-1] == "first of 2 frames"
    if fmt == "gif":  # palette quantisation: compare with Pillow's own first frame
        with Image.open(path) as im:
            np.testing.assert_array_equal(photo.rgb, np.asarray(im.convert("RGB")))
    else:
        np.testing.assert_array_equal(photo.rgb, first)


def test_other_sources(tmp_path: Path) -> None:
    img = _rgb()
    Image.fromarray(img).save(tmp_path / "x.png")
    raw = (tmp_path / "x.png").read_bytes()
    np.testing.assert_array_equal(load_image(raw).rgb, img)
    np.testing.assert_array_equal(load_image(io.BytesIO(raw)).rgb, img)
    with open(tmp_path / "x.png", "rb") as f:
        assert load_image(f).name == "x"
    np.testing.assert_array_equal(load_image(Image.fromarray(img)).rgb, img)
    np.testing.assert_array_equal(load_image(img.astype(np.float64) / 255.0).rgb, img)
    assert load_image(np.ones((3, 4), dtype=bool)).rgb.max() == 255
    out = load_image(img).rgb
    assert not np.shares_memory(out, img)  # a fresh array: writing to it never changes the input


def test_bundled_photo_names(tmp_path: Path) -> None:
    for name in data.SAMPLES:
        photo = load_image(f" {name.upper()} ")
        np.testing.assert_array_equal(photo.rgb, data.sample_image(name))
        assert photo.name == name and photo.source == f"sample:{name}"
    np.testing.assert_array_equal(read_rgb("chelsea"), data.sample_image("chelsea"))
    assert Preprocess(size=32)("coffee").original_size == (400, 600)
    # an existing file wins over a bundled name; without samples=True a missing name is just missing
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        Image.fromarray(_rgb()).save("chelsea", format="PNG")
        assert load_image("chelsea").size == (12, 17)
    finally:
        os.chdir(cwd)
    with pytest.raises(ImageNotFoundError):
        load_image(str(tmp_path / "coffee"), samples=False)
    assert source_name("rocket") == "rocket" and source_name("a/b/photo.jpg") == "photo"


# ----------------------------------------------------------------------------------------------------------- errors


def _truncated(tmp: Path) -> Path:
    Image.fromarray(_rgb(64, 64)).save(tmp / "t.png")
    data_ = (tmp / "t.png").read_bytes()
    (tmp / "t.png").write_bytes(data_[: len(data_) // 2])
    return tmp / "t.png"


def _file(name: str, content: bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        (tmp / name).write_bytes(content)
        return tmp / name

    return make


BAD: dict[str, tuple[Callable[[Path], Path], type[Exception], str]] = {
    "missing": (lambda t: t / "nope.png", ImageNotFoundError, "no such file"),
    "folder": (lambda t: t, ImageError, "is a folder"),
    "empty": (_file("e.png", b""), ImageError, "empty file"),
    "text": (_file("x.jpg", b"hello"), ImageError, "not an image file"),
    "truncated": (_truncated, ImageError, "truncated"),
    "device": (lambda t: Path("/dev/null"), ImageError, "not a regular file"),
    "html": (_file("h.png", b"<html></html>"), ImageError, "not an image file"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_unusable_files_raise_one_clear_error(tmp_path: Path, case: str) -> None:
    make, error, match = BAD[case]
    path = make(tmp_path)
    with pytest.raises(error, match=match) as info:
        load_image(path)
    assert str(path) in str(info.value)  # the message names the file
    with pytest.raises(ValueError):  # every one is a ValueError (and FileNotFoundError for the missing one)
        read_rgb(path)


def test_zero_size_and_bad_arrays() -> None:
    with pytest.raises(ImageError, match="Empty"):
        load_image(np.zeros((0, 4, 3), dtype=np.uint8))
    with pytest.raises(ImageError, match="channels first"):
        load_image(np.zeros((3, 8, 8), dtype=np.uint8))
    with pytest.raises(ImageError, match=r"\[0, 1\]"):
        load_image(np.full((2, 2, 3), np.nan))
    with pytest.raises(TypeError, match="dtype"):
        load_image(np.zeros((2, 2, 3), dtype=np.int64))
    with pytest.raises(TypeError, match="numpy"):
        load_image(torch.zeros(2, 2, 3))
    with pytest.raises(TypeError, match="path"):
        load_image(42)


def test_size_limit_is_checked_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.fromarray(_rgb(100, 200)).save(tmp_path / "big.png")
    with pytest.raises(SizeLimitError, match="20,000 pixels"):
        load_image(tmp_path / "big.png", limits=SizeLimits(max_photo_pixels=19_999))
    loads: list[int] = []
    original = Image.Image.load

    def counting_load(self: Image.Image) -> object:
        loads.append(1)
        return original(self)

    monkeypatch.setattr(Image.Image, "load", counting_load)
    with pytest.raises(SizeLimitError):
        load_image(tmp_path / "big.png", limits=SizeLimits(max_photo_pixels=100))
    assert loads == []  # refused from the header: nothing decoded
    assert load_image(tmp_path / "big.png", limits=SizeLimits(max_photo_pixels=20_000)).size == (100, 200)
