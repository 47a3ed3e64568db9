"""Sample photos for examples, tests and benchmarks, from scikit-image's bundled data (no download).

========== ===================================== =========
name       scikit-image source                   size
========== ===================================== =========
chelsea    ``skimage.data.chelsea()`` (a cat)    300×451
coffee     ``skimage.data.coffee()``             400×600
rocket     ``skimage.data.rocket()``             427×640
motorcycle ``skimage.data.stereo_motorcycle()[0]`` (left view) 500×741
========== ===================================== =========

Example:
    >>> from cameras import data
    >>> data.sample_image("chelsea").shape
    (300, 451, 3)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["SAMPLES", "sample_image", "sample_path"]

SAMPLES: tuple[str, ...] = ("chelsea", "coffee", "rocket", "motorcycle")
"""Names accepted by :func:`sample_image` and :func:`sample_path`."""


def _check(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"A sample name is a string, got {type(name).__name__}.")
    key = name.strip().lower()
    if key not in SAMPLES:
        raise ValueError(f"Unknown sample photo {name!r}; choose one of {', '.join(SAMPLES)}.")
    return key


def sample_image(name: str = "chelsea") -> np.ndarray:
    """One of the sample photos as an RGB array.

    Args:
        name: one of :data:`SAMPLES` (case-insensitive).

    Returns:
        (H, W, 3) ``uint8`` array (a fresh copy each call).

    Raises:
        ValueError: unknown name.

    Example:
        >>> sample_image("coffee").shape
        (400, 600, 3)
    """
    import skimage.data as skd

    key = _check(name)
    if key == "motorcycle":
        img = skd.stereo_motorcycle()[0]  # type: ignore[no-untyped-call]
    else:
        img = getattr(skd, key)()
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:  # pragma: no cover - fixed data
        raise RuntimeError(f"scikit-image's {key} is not an RGB uint8 photo ({arr.dtype}, {arr.shape}).")
    return np.array(arr, copy=True)


def sample_path(name: str, directory: str | os.PathLike[str], fmt: str = "png") -> Path:
    """Write a sample photo to ``directory/<name>.<fmt>`` and return the path (for code that wants files).

    Args:
        name: one of :data:`SAMPLES`.
        directory: folder to write into (created if missing).
        fmt: ``"png"`` (lossless, default) or ``"jpg"``/``"jpeg"`` (quality 95, so pixels change slightly).

    Returns:
        the written file's path.

    Example:
        >>> import tempfile
        >>> sample_path("rocket", tempfile.mkdtemp()).name
        'rocket.png'
    """
    from ..io.atomic import write_image

    key = _check(name)
    ext = fmt.lower().lstrip(".")
    if ext not in ("png", "jpg", "jpeg"):
        raise ValueError(f"fmt must be 'png', 'jpg' or 'jpeg', got {fmt!r}.")
    path = Path(directory) / f"{key}.{ext}"
    if ext == "png":
        return write_image(path, sample_image(key), format="PNG")
    return write_image(path, sample_image(key), format="JPEG", quality=95)
