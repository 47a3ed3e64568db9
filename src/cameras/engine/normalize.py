"""Min–max normalisation of saliency maps to [0, 1], shared by every method and :class:`~.result.Result`."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["minmax_normalize"]


def minmax_normalize(maps: Tensor) -> Tensor:
    """Min–max normalise each map of (..., H, W) to [0, 1]; a constant map becomes all zeros (never NaN)."""
    flat = maps.flatten(-2)
    lo = flat.amin(dim=-1, keepdim=True)
    hi = flat.amax(dim=-1, keepdim=True)
    span = hi - lo
    safe = torch.where(span > 0, span, torch.ones_like(span))
    norm = torch.where(span > 0, (flat - lo) / safe, torch.zeros_like(flat))
    return norm.reshape(maps.shape)
