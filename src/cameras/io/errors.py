"""The errors of :mod:`cameras.io`: every one a :class:`ValueError` whose message names the input and says why."""

from __future__ import annotations

__all__ = ["ImageError", "ImageNotFoundError", "SizeLimitError"]


class ImageError(ValueError):
    """An image that cannot be used: unreadable, unsupported, empty, or over a size limit."""


class ImageNotFoundError(ImageError, FileNotFoundError):
    """The image file does not exist (and the name is not a bundled photo)."""


class SizeLimitError(ImageError):
    """An image or a scale exceeds a :class:`~cameras.io.limits.SizeLimits` bound; the message names the bound and
    how to raise it."""
