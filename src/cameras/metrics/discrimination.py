"""Discrimination: does a class's map point at that class's object, and not at the other annotated classes'?

For a photo annotated with two or more classes (an orange and a lemon, a motorcycle and a bench), the map of class c
*discriminates* when its peak falls inside c's own boxes and outside the boxes of every other annotated class. A map
that peaks on the object the two classes share, or on the rival object, fails. This is the pointing game (Zhang et
al., ECCV 2016) with the other classes' boxes as forbidden ground, and with no tolerance: a tolerance would let one
peak near the edge between two objects count for both. Computing it for plain and for contrastive maps
(``contrast=``: the map of ``y_c − γ·mean y_others``) measures whether the contrastive score tells the classes apart
where the plain logit does not. The definition is ours (the CAMERAS paper argues the point in its Fig. 5 without a
number).

Conventions as in :mod:`cameras.metrics.localization`: (B, H, W) maps, lists of (K_i, 4) half-open boxes in the
maps' pixels; the peak is the first maximum in row-major order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ._checks import check_boxes, check_saliency
from .localization import pointing_game

__all__ = ["discrimination"]


def discrimination(saliency: Tensor, own_boxes: Sequence[Tensor], other_boxes: Sequence[Tensor]) -> Tensor:
    """Whether each map's peak lies in its class's own boxes and in none of the other classes' boxes.

    Better: **higher** (the mean over (photo, class) pairs is the share of classes told apart).

    Args:
        saliency: (B, H, W) maps of one class each.
        own_boxes: list of B tensors (K_i, 4): the boxes of the class each map explains, ``(x0, y0, x1, y1)`` in the
            maps' pixels (half-open).
        other_boxes: list of B tensors (L_i, 4): the union of the boxes of the photo's other annotated classes
            (L_i = 0: nothing is forbidden, and the score is the pointing game with tolerance 0).

    Returns:
        float32 tensor (B,) on the maps' device: 1.0 told apart, 0.0 not, ``nan`` undefined (as in the pointing
        game: a constant map, or no own box on the map).

    Raises:
        TypeError, ValueError: malformed maps or boxes.

    Example:
        >>> import torch
        >>> sal = torch.zeros(2, 8, 8)
        >>> sal[0, 1, 1] = 1.0  # peak at (x=1, y=1): in its own box only
        >>> sal[1, 5, 5] = 1.0  # peak at (x=5, y=5): where the two boxes overlap
        >>> own = torch.tensor([[0.0, 0.0, 6.0, 6.0]])
        >>> other = torch.tensor([[4.0, 4.0, 8.0, 8.0]])
        >>> discrimination(sal, [own, own], [other, other]).tolist()
        [1.0, 0.0]
    """
    saliency = check_saliency(saliency)
    b = saliency.shape[0]
    own = check_boxes(own_boxes, b, saliency.device)
    other = check_boxes(other_boxes, b, saliency.device)
    own_hit = pointing_game(saliency, own, tolerance=0)  # nan: undefined
    other_hit = torch.nan_to_num(pointing_game(saliency, other, tolerance=0), nan=0.0)  # no other box: not in one
    score = own_hit * (1.0 - other_hit)
    return torch.where(torch.isnan(own_hit), torch.full_like(score, math.nan), score)
