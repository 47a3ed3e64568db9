"""Size bounds of what the library decodes and runs, so that an odd photo fails with a message instead of a 50 GB
allocation.

Three bounds, all adjustable (:class:`SizeLimits`; the CLI's ``--max-photo-pixels``, ``--max-side`` and
``--max-pixels``):

* ``max_photo_pixels`` — pixels (H0·W0) of a photo the loader decodes (default 89 478 485, Pillow's own
  decompression-bomb threshold, about 9459²);
* ``max_side`` — the longer side of the model input after preprocessing (default 1024 px). An aspect-keeping resize
  makes the shorter side the model's native size (224 px), so a 4000×20 photo would become a 224×44 800 input; with
  the default it is refused (crop it, pass ``square=True`` / ``--square``, or raise the bound);
* ``max_pixels`` — pixels (h·w) of the largest scale an explainer runs (default 2048² = 4 194 304). The paper's
  schedule reaches 924/224 ≈ 4.1× the input, so every input within ``max_side`` passes with the default schedule,
  while ``--resolutions 224,3000`` or a factor of 1e300 is refused before anything runs.

``min_side`` (default 16 px) is the smallest side a scale may have: below it a CNN's last feature map is 1×1 or
empty and every map is constant.

Example:
    >>> limits = SizeLimits()
    >>> try:
    ...     limits.check_input((20, 4000), (224, 44800), "strip.png")
    ... except SizeLimitError as err:
    ...     print(str(err)[:60])
    strip.png: the 20×4000 photo would become a 224×44800 model
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import SizeLimitError

__all__ = ["DEFAULT_LIMITS", "SizeLimitError", "SizeLimits"]


def _hw(size: Sequence[int]) -> str:
    return f"{int(size[0])}×{int(size[1])}"


@dataclass(frozen=True)
class SizeLimits:
    """Bounds on the photo, the model input and the scales an explainer runs (see the module docstring).

    Args:
        max_photo_pixels: largest H0·W0 of a decoded photo.
        max_side: largest side of the model input (h or w after preprocessing).
        max_pixels: largest h·w of any scale an explainer runs (the input itself included).
        min_side: smallest side of any scale.

    Raises:
        ValueError: a bound that is not a positive int, or ``min_side`` above ``max_side``.
    """

    max_photo_pixels: int = 89_478_485
    max_side: int = 1024
    max_pixels: int = 2048 * 2048
    min_side: int = 16

    def __post_init__(self) -> None:
        for name in ("max_photo_pixels", "max_side", "max_pixels", "min_side"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SizeLimits.{name} must be a positive int, got {value!r}.")
        if self.min_side > self.max_side:
            raise ValueError(f"SizeLimits.min_side ({self.min_side}) exceeds max_side ({self.max_side}).")

    def check_photo(self, photo_hw: Sequence[int], name: str = "image") -> None:
        """Refuse a photo of more than ``max_photo_pixels`` pixels (checked from the header, before decoding).

        Raises:
            SizeLimitError: the message gives the size and how to raise the bound.
        """
        h, w = int(photo_hw[0]), int(photo_hw[1])
        if h * w > self.max_photo_pixels:
            raise SizeLimitError(
                f"{name}: the photo is {h}×{w} = {h * w:,} pixels, more than the limit of {self.max_photo_pixels:,}: "
                "downscale it or raise the limit (--max-photo-pixels, SizeLimits(max_photo_pixels=...))."
            )

    def check_input(self, photo_hw: Sequence[int], input_hw: Sequence[int], name: str = "image") -> None:
        """Refuse a model input whose longer side exceeds ``max_side`` or whose pixels exceed ``max_pixels``
        (``min_side`` does not apply: the input's size is the model's native one).

        Args:
            photo_hw: (H0, W0) of the photo (for the message).
            input_hw: (h, w) the preprocessing would produce.
            name: the photo's name for the message.

        Raises:
            SizeLimitError: the message gives both sizes and the ways out.
        """
        h, w = int(input_hw[0]), int(input_hw[1])
        if max(h, w) > self.max_side:
            raise SizeLimitError(
                f"{name}: the {_hw(photo_hw)} photo would become a {h}×{w} model input, longer than the limit of "
                f"{self.max_side} px: crop it, use a square input (--square, square=True) or raise the limit "
                "(--max-side, SizeLimits(max_side=...))."
            )
        if h * w > self.max_pixels:
            raise SizeLimitError(
                f"{name}: the {_hw(photo_hw)} photo would become a {h}×{w} = {h * w:,} pixel model input, more than "
                f"the limit of {self.max_pixels:,}: raise it (--max-pixels, SizeLimits(max_pixels=...))."
            )

    def check_scales(self, sizes: Sequence[tuple[int, int]], name: str = "image") -> None:
        """Refuse a schedule whose largest scale exceeds ``max_pixels`` or whose smallest side is below ``min_side``.

        Args:
            sizes: the (h, w) of every scale (:func:`cameras.engine.scales.schedule`).
            name: the photo's name, for the message.

        Raises:
            SizeLimitError: the message names the offending scale and the bound.
        """
        for h, w in sizes:
            if h * w > self.max_pixels:
                raise SizeLimitError(
                    f"{name}: a scale of {h}×{w} = {h * w:,} pixels exceeds the limit of {self.max_pixels:,}: "
                    "use smaller --resolutions or raise the limit (--max-pixels, SizeLimits(max_pixels=...))."
                )
            if min(h, w) < self.min_side:
                raise SizeLimitError(
                    f"{name}: a scale of {h}×{w} is below the smallest side of {self.min_side} px (the model's "
                    "last feature map would be 1×1 or empty): use larger --resolutions."
                )


DEFAULT_LIMITS = SizeLimits()
"""The bounds used when none are given."""
