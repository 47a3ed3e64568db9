"""The one image loader: any photo a user may have → an (H, W, 3) uint8 RGB array, or one clear error.

:func:`load_image` is used by every command and by :func:`cameras.models.read_rgb` /
:class:`cameras.models.Preprocess`. What it accepts and what it does:

* **sources** — a file path (any format Pillow reads: JPEG, PNG, TIFF, WebP, GIF, BMP, AVIF, …), the name of a
  bundled photo (:data:`cameras.data.SAMPLES`: ``chelsea``, ``coffee``, ``rocket``, ``motorcycle``; used when no
  file of that name exists), the bytes of a file or a binary file object, a ``PIL.Image.Image``, or a numpy array
  (H×W, H×W×1, H×W×3 or H×W×4; ``uint8``, ``uint16``, ``bool``, or floating point in [0, 1]).
* **EXIF orientation** — applied as a photo viewer does (a portrait photo stored sideways comes out upright); an
  unreadable EXIF block is ignored, as viewers ignore it.
* **animated / multi-page files** (GIF, APNG, WebP, TIFF, …) — the first frame.
* **modes** — grayscale (``L``, ``1``) is repeated over three channels; palette (``P``), ``CMYK`` (Pillow's
  conversion), ``YCbCr``, ``RGBX`` … are converted to RGB. High bit depths are scaled to 8 bits by the range of the
  mode: ``I;16*`` (16-bit, e.g. 16-bit grayscale PNG) and ``uint16`` arrays are divided by 257 (65535 → 255,
  rounded); ``I`` (32-bit integers) is taken as 8-bit when its values lie in 0…255, as 16-bit when in 0…65535, and
  is min–max stretched to 0…255 otherwise; ``F`` (32-bit float) is multiplied by 255 when in [0, 1], taken as is
  when in [0, 255], min–max stretched otherwise (NaN / inf are refused).
* **alpha** (``RGBA``, ``LA``, ``PA``, a palette with a transparent colour, H×W×4 arrays) — composited over a
  white background (``background=``), as a viewer shows a transparent image on a white page. The colours stored
  under fully transparent pixels are undefined and never reach the model.
* **sizes** — the photo's pixel count is checked against ``limits.max_photo_pixels`` from the header, before
  anything is decoded (:class:`~cameras.io.limits.SizeLimits`).

Anything unusable — a missing file, a folder, an empty or truncated file, a file that is not an image, a zero-size
image, an unsupported mode, a photo over the size limit — raises :class:`ImageError` (a :class:`ValueError`) whose
message names the source and says why; a missing file raises :class:`ImageNotFoundError` (also a
:class:`FileNotFoundError`). Wrong Python types raise :class:`TypeError`.

Example:
    >>> photo = load_image("chelsea")           # a bundled photo, by name
    >>> photo.rgb.shape, photo.name
    ((300, 451, 3), 'chelsea')
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from .errors import ImageError, ImageNotFoundError
from .limits import DEFAULT_LIMITS, SizeLimits

__all__ = [
    "ImageError",
    "ImageNotFoundError",
    "ImageSource",
    "Photo",
    "is_sample_name",
    "load_image",
    "source_name",
]

ImageSource = Any
"""A path (``str`` / ``os.PathLike``), a bundled photo name, ``bytes`` or a binary file object holding an image file,
a ``PIL.Image.Image``, or a numpy array (H×W, H×W×1, H×W×3 or H×W×4)."""

WHITE: tuple[int, int, int] = (255, 255, 255)


@dataclass(frozen=True)
class Photo:
    """A decoded photo and what the loader did to it.

    Attributes:
        rgb: (H, W, 3) ``uint8`` RGB array, as displayed (EXIF orientation applied); a fresh array.
        name: a short name for messages and output files: the file's stem, the bundled photo's name, or ``"image"``.
        source: where it came from, for messages: the path as given, ``"sample:chelsea"``, ``"<bytes>"``,
            ``"<PIL image>"`` or ``"<array>"``.
        mode: the PIL mode (``"RGB"``, ``"I;16"``, …) or numpy dtype of the original.
        frames: frames in the file (the first is used).
        notes: what was done beyond decoding, in words (``"alpha composited over white"``, ``"16-bit scaled to
            8-bit"``, ``"EXIF orientation 6 applied"``, ``"first of 3 frames"``).
    """

    rgb: np.ndarray
    name: str
    source: str
    mode: str
    frames: int = 1
    notes: tuple[str, ...] = ()

    @property
    def size(self) -> tuple[int, int]:
        """(H, W)."""
        return (int(self.rgb.shape[0]), int(self.rgb.shape[1]))


def is_sample_name(text: object) -> bool:
    """Whether ``text`` names a bundled photo (:data:`cameras.data.SAMPLES`, case-insensitive).

    Example:
        >>> is_sample_name(" Chelsea "), is_sample_name("chelsea.png")
        (True, False)
    """
    from ..data import SAMPLES

    return isinstance(text, str) and text.strip().lower() in SAMPLES


def source_name(source: ImageSource) -> str:
    """The short name :func:`load_image` gives a source (file stem, sample name, or ``"image"``)."""
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if isinstance(path, str):
            if not os.path.exists(path) and is_sample_name(path):
                return path.strip().lower()
            stem = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
            return stem or "image"
    return "image"


def load_image(
    source: ImageSource,
    *,
    limits: SizeLimits | None = None,
    background: tuple[int, int, int] = WHITE,
    samples: bool = True,
) -> Photo:
    """Decode an image into an RGB :class:`Photo` (see the module docstring for every rule).

    Args:
        source: see :data:`ImageSource`.
        limits: size bounds; only ``max_photo_pixels`` applies here (default :data:`~cameras.io.DEFAULT_LIMITS`).
        background: RGB colour that transparent pixels are composited over.
        samples: accept bundled photo names for paths that do not exist.

    Returns:
        :class:`Photo` with ``rgb`` of shape (H, W, 3), dtype ``uint8``.

    Raises:
        ImageNotFoundError: no such file (and not a bundled photo name).
        ImageError: anything else that makes the image unusable (the message says what).
        TypeError: an unsupported Python type or array dtype.

    Example:
        >>> import numpy as np
        >>> load_image(np.zeros((4, 5), dtype=np.uint16)).rgb.shape
        (4, 5, 3)
    """
    lim = DEFAULT_LIMITS if limits is None else limits
    if not isinstance(lim, SizeLimits):
        raise TypeError(f"limits must be a cameras.io.SizeLimits, got {type(limits).__name__}.")
    bg = _check_background(background)
    from PIL import Image

    if isinstance(source, str | os.PathLike):
        return _load_path(source, lim, bg, samples)
    if isinstance(source, bytes | bytearray | memoryview):
        return _load_file(io.BytesIO(bytes(source)), "<bytes>", "image", lim, bg)
    if isinstance(source, Image.Image):
        lim.check_photo((source.height, source.width), "<PIL image>")
        rgb, notes = _pil_to_rgb(source, bg, "<PIL image>")
        return Photo(rgb, "image", "<PIL image>", source.mode, getattr(source, "n_frames", 1), notes)
    if isinstance(source, np.ndarray):
        rgb, notes = _array_to_rgb(source, bg)
        lim.check_photo(rgb.shape[:2], "<array>")
        return Photo(rgb, "image", "<array>", str(source.dtype), 1, notes)
    if hasattr(source, "read") and callable(source.read):
        name = getattr(source, "name", None)
        label = name if isinstance(name, str) else "<file object>"
        return _load_file(source, label, source_name(label) if isinstance(name, str) else "image", lim, bg)
    if type(source).__module__.startswith("torch"):
        raise TypeError(
            "load_image takes a path, PIL image or numpy array, not a torch.Tensor; for an H×W×3 tensor pass "
            "tensor.cpu().numpy()."
        )
    raise TypeError(
        "Expected a path, a bundled photo name, bytes, a PIL.Image.Image or a numpy array, "
        f"got {type(source).__name__}."
    )


def _check_background(background: Any) -> tuple[int, int, int]:
    try:
        values = tuple(int(v) for v in background)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or not all(0 <= v <= 255 for v in values):
        raise ValueError(f"background must be an RGB triple of ints in 0..255, got {background!r}.")
    return (values[0], values[1], values[2])


def _load_path(source: str | os.PathLike[Any], lim: SizeLimits, bg: tuple[int, int, int], samples: bool) -> Photo:
    raw = os.fspath(source)
    path = raw.decode() if isinstance(raw, bytes) else raw
    if not os.path.exists(path):
        if samples and is_sample_name(path):
            from ..data import sample_image

            key = path.strip().lower()
            rgb = sample_image(key)
            return Photo(rgb, key, f"sample:{key}", "RGB")
        hint = ""
        if samples:
            from ..data import SAMPLES

            hint = f" (and not a bundled photo: {', '.join(SAMPLES)})"
        raise ImageNotFoundError(f"{path}: no such file{hint}.")
    if os.path.isdir(path):
        raise ImageError(f"{path}: is a folder, not an image file.")
    if not os.path.isfile(path):
        raise ImageError(f"{path}: not a regular file.")
    try:
        size = os.path.getsize(path)
        handle = open(path, "rb")  # closed below
    except OSError as err:
        raise ImageError(f"{path}: cannot open: {err.strerror or err}.") from err
    if size == 0:
        handle.close()
        raise ImageError(f"{path}: empty file (0 bytes), not an image.")
    with handle:
        return _load_file(handle, path, source_name(path), lim, bg)


_PIL_LOCK = threading.Lock()


@contextlib.contextmanager
def _pillow_bomb_check(lim: SizeLimits) -> Iterator[None]:
    """Pillow's own decompression-bomb check, aligned with ``lim.max_photo_pixels``: its warning is silenced (our
    check replaces it) and, only when the limit was raised past Pillow's hard threshold, the threshold is lifted for
    this call (under a lock)."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        pillow_max = Image.MAX_IMAGE_PIXELS
        if pillow_max is None or lim.max_photo_pixels < 2 * pillow_max:
            yield
            return
        with _PIL_LOCK:
            Image.MAX_IMAGE_PIXELS = None
            try:
                yield
            finally:
                Image.MAX_IMAGE_PIXELS = pillow_max


def _describe(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _load_file(fp: IO[bytes], label: str, name: str, lim: SizeLimits, bg: tuple[int, int, int]) -> Photo:
    from PIL import Image, UnidentifiedImageError

    try:
        with _pillow_bomb_check(lim):
            pil = Image.open(fp)
    except UnidentifiedImageError as err:
        raise ImageError(f"{label}: not an image file (no format Pillow reads recognises it).") from err
    except Image.DecompressionBombError as err:
        raise ImageError(f"{label}: {err} Raise the limit with --max-photo-pixels / SizeLimits.") from err
    except Exception as err:  # plugins fail in many ways on foreign bytes (SyntaxError, struct.error, ...)
        raise ImageError(f"{label}: cannot read the image ({_describe(err)}).") from err
    with pil:
        w, h = pil.size
        if w < 1 or h < 1:
            raise ImageError(f"{label}: the image has no pixels ({h}×{w}).")
        lim.check_photo((h, w), label)
        frames = int(getattr(pil, "n_frames", 1) or 1)
        mode = pil.mode
        try:
            pil.seek(0)
            pil.load()
        except Exception as err:  # truncated data, bad compression, missing codec (EPS without Ghostscript), ...
            raise ImageError(
                f"{label}: cannot decode the image, the file may be truncated ({_describe(err)})."
            ) from err
        rgb, notes = _pil_to_rgb(pil, bg, label)
    if frames > 1:
        notes = (*notes, f"first of {frames} frames")
    return Photo(rgb, name, label, mode, frames, notes)


def _exif_transpose(pil: Any) -> tuple[Any, tuple[str, ...]]:
    from PIL import ImageOps

    try:
        orientation = int(pil.getexif().get(0x0112, 1) or 1)
    except Exception:  # unreadable EXIF: show the pixels as stored, as viewers do
        return pil, ()
    if orientation == 1:
        return pil, ()
    try:
        turned = ImageOps.exif_transpose(pil)
    except Exception:  # pragma: no cover - a broken orientation tag
        return pil, ()
    return (turned if turned is not None else pil), (f"EXIF orientation {orientation} applied",)


def _composite(rgba: np.ndarray, bg: tuple[int, int, int]) -> np.ndarray:
    """Straight-alpha (H, W, 4) uint8 over an opaque background, rounded."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    color = rgba[..., :3].astype(np.float32)
    out = color * alpha + np.asarray(bg, dtype=np.float32) * (1.0 - alpha)
    result: np.ndarray = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return result


def _scale_to_uint8(arr: np.ndarray, mode: str) -> tuple[np.ndarray, str]:
    """A high-bit-depth or float single-channel array → uint8, by the rules of the module docstring."""
    if arr.dtype == np.uint16 or mode.startswith("I;16"):
        return np.rint(arr.astype(np.float64) / 257.0).astype(np.uint8), "16-bit scaled to 8-bit"
    values = arr.astype(np.float64)
    if not np.isfinite(values).all():
        raise ImageError("the image holds NaN or infinite values.")
    lo, hi = float(values.min()), float(values.max())
    if np.issubdtype(arr.dtype, np.floating):
        if lo >= 0.0 and hi <= 1.0:
            return np.rint(values * 255.0).astype(np.uint8), "float [0, 1] scaled to 8-bit"
        if lo >= 0.0 and hi <= 255.0:
            return np.rint(values).astype(np.uint8), "float 0..255 taken as 8-bit"
    else:
        if lo >= 0 and hi <= 255:
            return values.astype(np.uint8), "32-bit integers 0..255 taken as 8-bit"
        if lo >= 0 and hi <= 65535:
            return np.rint(values / 257.0).astype(np.uint8), "16-bit scaled to 8-bit"
    span = hi - lo
    if span == 0:
        return np.zeros(arr.shape, dtype=np.uint8), f"constant {mode} image (value {lo:g}) mapped to 0"
    return np.rint((values - lo) * (255.0 / span)).astype(np.uint8), f"{mode} range [{lo:g}, {hi:g}] stretched to 8-bit"


_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def _pil_to_rgb(pil: Any, bg: tuple[int, int, int], label: str) -> tuple[np.ndarray, tuple[str, ...]]:
    pil, notes = _exif_transpose(pil)
    mode = pil.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        gray, note = _scale_to_uint8(np.asarray(pil), mode)
        return np.repeat(gray[..., None], 3, axis=2), (*notes, note)
    try:
        if mode in _ALPHA_MODES or (mode == "P" and "transparency" in pil.info):
            rgba = np.asarray(pil.convert("RGBA"))
            return _composite(rgba, bg), (*notes, "alpha composited over the background")
        if mode != "RGB":
            pil = pil.convert("RGB")  # L, 1, P, CMYK, YCbCr, RGBX, HSV, ...
    except ValueError as err:  # e.g. LAB: no direct conversion
        raise ImageError(f"{label}: unsupported image mode {mode!r} ({err}); save it as RGB.") from err
    return np.array(pil, dtype=np.uint8, copy=True), notes


def _array_to_rgb(arr: np.ndarray, bg: tuple[int, int, int]) -> tuple[np.ndarray, tuple[str, ...]]:
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        raise ImageError(f"Expected a channels-last H×W×3 array, got shape {arr.shape} (channels first?).")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise ImageError(f"Expected an H×W, H×W×1, H×W×3 or H×W×4 array, got shape {arr.shape}.")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageError(f"Empty image of shape {arr.shape}.")
    notes: tuple[str, ...] = ()
    if arr.dtype == np.uint8:
        out = arr
    elif arr.dtype == np.bool_:
        out = arr.astype(np.uint8) * 255
    elif arr.dtype == np.uint16:
        out, note = _scale_to_uint8(arr, "uint16")
        notes = (note,)
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or arr.min() < 0.0 or arr.max() > 1.0:
            finite = arr[np.isfinite(arr)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (float("nan"), float("nan"))
            raise ImageError(
                f"A floating-point image must hold finite values in [0, 1] (got min {lo:.4g}, max {hi:.4g}"
                f"{', and NaN/inf' if finite.size < arr.size else ''}); pass uint8 for 0..255."
            )
        out = np.rint(arr.astype(np.float64) * 255.0).astype(np.uint8)
    else:
        raise TypeError(
            f"Expected a uint8 (0..255), uint16, bool or float ([0, 1]) image array, got dtype {arr.dtype}."
        )
    if out.shape[-1] == 1:
        out = np.repeat(out, 3, axis=-1)
    elif out.shape[-1] == 4:
        out = _composite(out, bg)
        notes = (*notes, "alpha composited over the background")
    return np.ascontiguousarray(out).copy(), notes
