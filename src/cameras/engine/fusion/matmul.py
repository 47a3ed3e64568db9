"""The fusion for any channel rule as dense matrix products: the generic path (``fuse(..., impl="matmul")``).

Bilinear resizing is linear and separable (:mod:`.resize`), so the weighted average over scales of the upsampled
maps of one channel chunk is exactly two matrix products: each scale's map times its column-resize matrix, the
weighted results stacked along the rows, times the stacked row-resize matrices. That replaces S separate
upsamplings per channel with one dense product. It still forms the (B, K, c, H, W) averages of each chunk, which is
what a rule other than CAMERAS' needs (Grad-CAM's spatial means, Grad-CAM++'s α, …: the ``MultiScale(...)``
methods). On a 2-core CPU it is 2.9× faster than the literal definition (BENCHMARKS.md); on an H100 it was not faster
than it, so ``"auto"`` uses it for other rules on the CPU only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .definition import ChannelRule, cameras_rule, fuse_chunked
from .resize import bilinear_matrix, check_fusion_inputs

__all__ = ["fuse_matmul"]


def fuse_matmul(
    acts: Sequence[Tensor],
    grads: Sequence[Tensor],
    weights: Tensor,
    out_size: tuple[int, int],
    rule: ChannelRule = cameras_rule,
    *,
    chunk_size: int | None = None,
) -> Tensor:
    """``Σ_chunks rule(Ā, Ḡ)`` with the averages over scales formed by resize-matrix products.

    Args:
        acts: S tensors (B, C, h_s, w_s), one per scale.
        grads: S tensors (B, K, C, h_s, w_s).
        weights: (B, K, S) scale weights (1/n_kept on kept scales, 0 elsewhere).
        out_size: (H, W).
        rule: per-chunk rule (default: CAMERAS' Σ_c Ā_c Ḡ_c).
        chunk_size: channels per chunk (default: :func:`~.resize.auto_chunk_size`, ≈16 MB buffers).

    Returns:
        (B, K, H, W) float32 map before the ReLU; equal to :func:`~.definition.fuse_interpolate` up to float
        rounding.

    Example:
        >>> a, g = [torch.ones(1, 2, 3, 3)], [torch.ones(1, 1, 2, 3, 3)]
        >>> fuse_matmul(a, g, torch.ones(1, 1, 1), (5, 4)).unique().tolist()
        [2.0]
    """
    check_fusion_inputs(acts, grads, weights)  # before the resize matrices are built from the shapes
    height, width = out_size
    device = acts[0].device
    rows = torch.cat([bilinear_matrix(a.shape[-2], height, device) for a in acts], 1).T  # (Σh, H)
    cols = [bilinear_matrix(a.shape[-1], width, device).T for a in acts]  # (w_s, W)

    def averages(w: Tensor, c0: int, c1: int) -> tuple[Tensor, Tensor]:
        batch, classes = w.shape[:2]
        parts_a, parts_g = [], []
        for s, (a, g, col) in enumerate(zip(acts, grads, cols)):
            w_s = w[:, :, s].reshape(batch, classes, 1, 1, 1)
            parts_a.append((a[:, c0:c1].float() @ col).unsqueeze(1) * w_s)  # (B, K, c, h_s, W)
            parts_g.append((g[:, :, c0:c1].float() @ col) * w_s)
        # (…, Σh, W) → transpose → (…, W, Σh) @ rows (Σh, H) → (…, W, H) → logical (…, H, W) view
        mean_a = (torch.cat(parts_a, dim=3).transpose(-1, -2) @ rows).transpose(-1, -2)
        del parts_a
        mean_g = (torch.cat(parts_g, dim=3).transpose(-1, -2) @ rows).transpose(-1, -2)
        return mean_a, mean_g

    return fuse_chunked(acts, grads, weights, out_size, rule, chunk_size, averages)
