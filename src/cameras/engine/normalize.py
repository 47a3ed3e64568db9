"""Min–max normalisation of saliency maps to [0, 1], shared by every method and :class:`~.result.Result`, and the
test that tells a real map from a constant (degenerate) one."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["CONSTANT_RTOL_ULPS", "constant_maps", "minmax_normalize"]

CONSTANT_RTOL_ULPS = 64
"""A map counts as constant when its range (max − min) is at most this many float32 units in the last place of its
largest magnitude (64 · 2⁻²³ ≈ 7.6e-6 relative; the dtype's own ulp when coarser, for float16 / bfloat16): the
few-ulp ripples that bilinear upsampling of a 1×1 feature map or a sum over scales leave on a constant map, which a
plain min–max normalisation would blow up into full-range noise. float32 resolution is the floor even for float64
maps, since maps computed in float32 keep their float32 ripples when converted."""


def constant_maps(maps: Tensor) -> Tensor:
    """Which maps of (..., H, W) are constant (degenerate): range ≤ :data:`CONSTANT_RTOL_ULPS` float32 ulps of their
    largest magnitude (an all-zero map is constant).

    Such a map ranks no pixel above another: there is nothing to show, and every metric of it is undefined.

    Args:
        maps: (..., H, W) floating (or integer) tensor.

    Returns:
        BoolTensor of shape (...,) on the maps' device.

    Example:
        >>> m = torch.full((2, 4, 4), 1.2089293)
        >>> m[0, 0, 0] += 2.4e-7                       # one-ulp ripple: still constant
        >>> m[1, 0, 0] += 0.1
        >>> constant_maps(m).tolist()
        [True, False]
    """
    flat = maps.flatten(-2)
    if not flat.is_floating_point():
        flat = flat.float()
    if flat.shape[-1] == 0:
        return torch.ones(flat.shape[:-1], dtype=torch.bool, device=flat.device)
    lo = flat.amin(dim=-1)
    hi = flat.amax(dim=-1)
    scale = torch.maximum(lo.abs(), hi.abs())
    eps = max(torch.finfo(flat.dtype).eps, torch.finfo(torch.float32).eps)
    return (hi - lo) <= CONSTANT_RTOL_ULPS * eps * scale


def minmax_normalize(maps: Tensor) -> Tensor:
    """Min–max normalise each map of (..., H, W) to [0, 1]; a constant map (range within a few ulps, e.g. the
    upsampling ripple of a 1×1 feature map; see :func:`constant_maps`) becomes all zeros, never stretched noise or
    NaN."""
    flat = maps.flatten(-2)
    lo = flat.amin(dim=-1, keepdim=True)
    hi = flat.amax(dim=-1, keepdim=True)
    span = hi - lo
    ok = ~constant_maps(maps).unsqueeze(-1)
    safe = torch.where(ok, span, torch.ones_like(span))
    norm = torch.where(ok, (flat - lo) / safe, torch.zeros_like(flat))
    return norm.reshape(maps.shape)
