"""Scale schedules: which input resolutions the engine runs, and how inputs are resized.

The paper (Jalwana et al., CVPR 2021, Sec. 3) upsamples a 224×224 input to 224, 324, …, 924 pixels (steps of 100) with
bicubic interpolation. For an H×W input the default schedule applies the same *factors* (1, 324/224, …, 924/224) to
both sides, so a 224×224 input runs exactly the paper's resolutions and other inputs keep their aspect ratio.

One meaning everywhere (the Python API and the ``--resolutions`` option of every command): an int is the **shorter
side** of a scale, the aspect ratio of the input kept (``224`` on a 224×359 input runs 224×359, ``324`` runs
324×519); squares only when asked (``square=True`` in Python, ``--square`` on the command line), as in the paper.
On a square input both readings agree, so the paper's schedule is unchanged.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "MAX_GIVEN_SIDE",
    "MAX_SCALE_SIDE",
    "MIN_SCALE_SIDE",
    "PAPER_FACTORS",
    "PAPER_RESOLUTIONS",
    "Resolutions",
    "parse_resolutions",
    "resize",
    "schedule",
]

MAX_SCALE_SIDE = 1 << 16
"""Largest side (65 536 px) :func:`schedule` accepts: a sanity bound against absurd values (a factor of 1e300), far
above any size that fits in memory. Policy bounds for real runs live in :class:`cameras.io.SizeLimits`."""

PAPER_RESOLUTIONS: tuple[int, ...] = tuple(range(224, 1000, 100))
"""The paper's absolute resolutions: 224, 324, …, 924."""

PAPER_FACTORS: tuple[float, ...] = tuple(r / 224 for r in PAPER_RESOLUTIONS)
"""The paper's schedule as factors of the input size: 1, 324/224, …, 924/224."""

MIN_SCALE_SIDE = 16
"""Smallest absolute size (px) a user's ``resolutions`` may give: below it a CNN's last feature map is 1×1 or empty."""

MAX_GIVEN_SIDE = 16384
"""Largest absolute size (px) a user's ``resolutions`` may give (:func:`parse_resolutions`); the pixel bound
(:class:`cameras.io.SizeLimits`) applies too."""

Resolutions = Sequence[int | float | tuple[int, int]] | None
"""A schedule: ``None`` (paper factors), ints (shorter sides, aspect kept), floats (factors), or (h, w) pairs."""


def schedule(resolutions: Resolutions, input_hw: tuple[int, int], *, square: bool = False) -> list[tuple[int, int]]:
    """Turn a user schedule into concrete (h, w) sizes for an input of size ``input_hw``.

    The one interpretation of a schedule: every method and every command calls this function.

    Args:
        resolutions: ``None`` for the paper's factors (1, 324/224, …, 924/224); a sequence whose items are ints
            (the **shorter side** of each scale in pixels, the input's aspect ratio kept: ``[224, 324, 424]``),
            floats (factors of the input size: ``[1.0, 1.5]``) or ``(h, w)`` pairs (both sides given). The first
            entry is the *base* scale at which the class is chosen.
        input_hw: (H, W) of the input batch.
        square: every scale a square whose side is the shorter side the scale has without it (an int ``s`` runs
            s×s, a factor ``f`` runs a square of side ``round(f·min(H, W))``): the paper's setting, the input
            squashed when it is not square. ``(h, w)`` pairs set both sides and are refused with ``square=True``.
            On a square input it changes nothing.

    Returns:
        A non-empty list of (h, w), in the given order.

    Raises:
        ValueError: empty schedule, non-positive, non-finite or absurd sizes or factors (a side above
            :data:`MAX_SCALE_SIDE`), items of an unknown kind, or ``(h, w)`` pairs with ``square=True``. Never an
            OverflowError.

    Example:
        >>> schedule(None, (224, 224))[:3]
        [(224, 224), (324, 324), (424, 424)]
        >>> schedule([224, 324], (224, 359))
        [(224, 359), (324, 519)]
        >>> schedule([224, 324], (224, 359), square=True)
        [(224, 224), (324, 324)]
        >>> schedule([1.0, 2.0], (100, 150))
        [(100, 150), (200, 300)]
    """
    if resolutions is None:
        resolutions = PAPER_FACTORS
    if isinstance(resolutions, int | float | str) or not isinstance(resolutions, Sequence):
        raise ValueError(
            "resolutions must be a sequence (e.g. [224, 324, 424] or [1.0, 1.5]) or None, "
            f"got {type(resolutions).__name__}."
        )
    if len(resolutions) == 0:
        raise ValueError("resolutions is empty: give at least one scale (or None for the paper schedule).")
    h, w = (int(v) for v in input_hw)
    if h < 1 or w < 1:
        raise ValueError(f"input size must be positive, got {input_hw}.")
    short = min(h, w)
    sizes: list[tuple[int, int]] = []
    for item in resolutions:
        if isinstance(item, bool):
            raise ValueError(f"Invalid scale {item!r}.")
        if isinstance(item, numbers.Integral):
            side = int(item)
            _side_pair(side, side, item)
            factor = side / short
        elif isinstance(item, numbers.Real):
            factor = float(item)
            if not math.isfinite(factor) or factor <= 0:
                raise ValueError(f"Scale factors must be finite and positive, got {item!r}.")
        elif (
            isinstance(item, tuple)
            and len(item) == 2
            and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in item)
        ):
            if square:
                raise ValueError(f"Scale {item!r} sets both sides: square=True takes sizes or factors, not pairs.")
            sizes.append(_side_pair(int(item[0]), int(item[1]), item))
            continue
        else:
            raise ValueError(f"Invalid scale {item!r}: use an int (shorter side), a float (factor) or an (h, w) pair.")
        if square:
            side = int(item) if isinstance(item, numbers.Integral) else max(1, round(short * factor))
            sizes.append(_side_pair(side, side, item))
            continue
        if max(h, w) * factor > MAX_SCALE_SIDE:
            raise ValueError(f"Scale {item!r} would make a {h}×{w} input larger than {MAX_SCALE_SIDE} px a side.")
        if isinstance(item, numbers.Integral):  # the shorter side exactly as given
            hw = (int(item), max(1, round(w * factor))) if h <= w else (max(1, round(h * factor)), int(item))
        else:
            hw = (max(1, round(h * factor)), max(1, round(w * factor)))
        sizes.append(hw)
    return sizes


def _side_pair(h: int, w: int, item: object) -> tuple[int, int]:
    if h <= 0 or w <= 0:
        raise ValueError(f"Resolutions must be positive, got {item!r}.")
    if max(h, w) > MAX_SCALE_SIDE:
        raise ValueError(f"Resolution {item!r} exceeds {MAX_SCALE_SIDE} px a side.")
    return (h, w)


def resize(images: Tensor, size: tuple[int, int]) -> Tensor:
    """Bicubic resize (align_corners=False) of (B, C, H, W) images; the identity when the size already matches."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    with torch.no_grad():
        return F.interpolate(images, size=size, mode="bicubic", align_corners=False)


def parse_resolutions(text: str | None) -> list[int] | list[float] | None:
    """Parse a user's resolutions (``--resolutions``; the rules are in :mod:`cameras.cli.options`' docstring).

    Returns:
        ``None`` for the paper's schedule, a list of ints (shorter-side sizes) or a list of floats (factors).

    Raises:
        ValueError: the message says which rule was broken.

    Example:
        >>> parse_resolutions("224,324, 424"), parse_resolutions("1,1.5"), parse_resolutions("paper")
        ([224, 324, 424], [1.0, 1.5], None)
    """
    if text is None:
        return None
    if not isinstance(text, str):
        raise ValueError(f"expected text, got {type(text).__name__}")
    if text.strip().lower() == "paper":
        return None
    items = [t for t in re.split(r"[,\s]+", text.strip()) if t]
    if not items:
        raise ValueError("is empty: give sizes (224,324,424), factors (1,1.5,2.0) or 'paper'")
    ints: list[int] = []
    factors: list[float] = []
    for t in items:
        if re.fullmatch(r"[+-]?\d+", t):
            ints.append(int(t))
            continue
        try:
            value = float(t)
        except ValueError:
            raise ValueError(f"{t!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{t!r} is not a finite number")
        factors.append(value)
    sizes = ints
    if factors:
        # in a list of factors, small integers (1, 2) are factors too; one that can only be a size is a mix
        sizes = [i for i in ints if i >= MIN_SCALE_SIDE]
        if sizes:
            raise ValueError(
                f"mixes absolute sizes ({', '.join(map(str, sizes))}) and factors "
                f"({', '.join(f'{f:g}' for f in factors)}): give only sizes (224,336) or only factors (1.0,1.5)"
            )
        factors = [float(t) for t in items]
    values: list[int] | list[float] = sizes or factors
    if len(set(values)) != len(values):
        raise ValueError("lists a scale twice")
    if sizes:
        small = [s for s in sizes if s < MIN_SCALE_SIDE]
        if small:
            hint = " (for factors write 1.0,2.0)" if all(s <= 8 for s in small) else ""
            raise ValueError(f"sizes must be at least {MIN_SCALE_SIDE} px, got {small[0]}{hint}")
        large = [s for s in sizes if s > MAX_GIVEN_SIDE]
        if large:
            raise ValueError(f"sizes must be at most {MAX_GIVEN_SIDE} px, got {large[0]}")
        return sizes
    bad = [f for f in factors if not 1 / 16 <= f <= 64]
    if bad:
        raise ValueError(f"factors must lie between 1/16 and 64, got {bad[0]:g}")
    return factors
