"""The literal definition of the fusion: ``F.interpolate`` per scale and channel chunk (the cross-check).

CAMERAS (Jalwana et al., CVPR 2021, Eq. 2-4): every kept scale's activations A_s and gradients G_s are upsampled
(bilinear, align_corners=False) to the output resolution and averaged over the kept scales,
``Ā = Σ_s w_s up(A_s)``, ``Ḡ = Σ_s w_s up(G_s)`` with ``w_s`` = 1/n_kept on kept scales and 0 elsewhere; the map is
``ReLU(Σ_c Ā_c ⊙ Ḡ_c)``. Any rule that is a sum over channels of a per-channel term (CAMERAS, HiResCAM, LayerCAM,
Grad-CAM, …) is fused the same way, one chunk of channels at a time, so the rule is an argument
(:data:`ChannelRule`). Every faster path in this package computes the same float32 quantity and is tested against
this one (and against a float64 version of it in the tests).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .resize import auto_chunk_size, check_fusion_inputs

__all__ = ["ChannelRule", "ChunkAverages", "cameras_rule", "fuse_chunked", "fuse_interpolate"]

ChannelRule = Callable[[Tensor, Tensor], Tensor]
"""``rule(mean_a, mean_g) -> partial_map``: (B, K, c, H, W) × (B, K, c, H, W) → (B, K, H, W) for one channel chunk."""


def cameras_rule(mean_a: Tensor, mean_g: Tensor) -> Tensor:
    """The CAMERAS fusion term of one channel chunk: Σ_c Ā_c ⊙ Ḡ_c (the ReLU comes after all chunks).

    Example:
        >>> cameras_rule(torch.ones(1, 1, 3, 2, 2), torch.full((1, 1, 3, 2, 2), 2.0)).tolist()
        [[[[6.0, 6.0], [6.0, 6.0]]]]
    """
    return (mean_a * mean_g).sum(dim=2)


ChunkAverages = Callable[[Tensor, int, int], tuple[Tensor, Tensor]]
"""``averages(weights, c0, c1) -> (Ā, Ḡ)``: the (B, K, c, H, W) float32 averages over scales of channels c0:c1,
given the (B, K, S) float32 scale weights on the inputs' device."""


def fuse_chunked(
    acts: Sequence[Tensor],
    grads: Sequence[Tensor],
    weights: Tensor,
    out_size: tuple[int, int],
    rule: ChannelRule,
    chunk_size: int | None,
    averages: ChunkAverages,
) -> Tensor:
    """``Σ_chunks rule(Ā, Ḡ)`` over chunks of ``chunk_size`` channels (default:
    :func:`~.resize.auto_chunk_size`), the averages of each chunk from ``averages``: the loop of the paths that form
    the full-resolution averages (this module's and :mod:`.matmul`'s). Returns (B, K, H, W) float32."""
    batch, classes, channels = check_fusion_inputs(acts, grads, weights)
    device = acts[0].device
    w = weights.to(device=device, dtype=torch.float32)
    step = chunk_size or auto_chunk_size(batch, classes, out_size)
    out = torch.zeros(batch, classes, *out_size, device=device, dtype=torch.float32)
    for c0 in range(0, channels, step):
        mean_a, mean_g = averages(w, c0, min(channels, c0 + step))
        out += rule(mean_a, mean_g)
        del mean_a, mean_g
    return out


def _up(x: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def fuse_interpolate(
    acts: Sequence[Tensor],
    grads: Sequence[Tensor],
    weights: Tensor,
    out_size: tuple[int, int],
    rule: ChannelRule = cameras_rule,
    *,
    chunk_size: int | None = None,
) -> Tensor:
    """``Σ_chunks rule(Σ_s w_s up(A_s), Σ_s w_s up(G_s))`` with ``up`` = ``F.interpolate`` (bilinear,
    align_corners=False), one chunk of channels at a time.

    Args:
        acts: S tensors (B, C, h_s, w_s), one per scale.
        grads: S tensors (B, K, C, h_s, w_s).
        weights: (B, K, S) scale weights (1/n_kept on kept scales, 0 elsewhere).
        out_size: (H, W).
        rule: per-chunk rule (default: CAMERAS' Σ_c Ā_c Ḡ_c).
        chunk_size: channels per chunk (default: :func:`~.resize.auto_chunk_size`, ≈16 MB buffers).

    Returns:
        (B, K, H, W) float32 map before the ReLU.

    Example:
        >>> a, g = [torch.ones(1, 2, 3, 3)], [torch.ones(1, 1, 2, 3, 3)]
        >>> fuse_interpolate(a, g, torch.ones(1, 1, 1), (5, 4)).unique().tolist()
        [2.0]
    """

    def averages(w: Tensor, c0: int, c1: int) -> tuple[Tensor, Tensor]:
        batch, classes = w.shape[:2]
        sum_a = torch.zeros(batch, classes, c1 - c0, *out_size, device=w.device, dtype=torch.float32)
        sum_g = torch.zeros_like(sum_a)
        for s, (a, g) in enumerate(zip(acts, grads)):
            w_s = w[:, :, s].reshape(batch, classes, 1, 1, 1)
            sum_a.addcmul_(_up(a[:, c0:c1].float(), out_size).unsqueeze(1), w_s)  # (B, 1, c, H, W) · (B, K, 1, 1, 1)
            up_g = _up(g[:, :, c0:c1].float().flatten(0, 1), out_size)  # (B·K, c, H, W)
            sum_g.addcmul_(up_g.reshape(sum_g.shape), w_s)
            del up_g
        return sum_a, sum_g

    return fuse_chunked(acts, grads, weights, out_size, rule, chunk_size, averages)
