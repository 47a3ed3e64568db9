"""What every fusion path shares: the bilinear resize matrices, the scale weights, the input check and step sizes.

Bilinear resizing (``F.interpolate(mode="bilinear", align_corners=False)``) is linear and separable: an (h, w) map X
resized to (H, W) is ``U_h @ X @ U_w.T`` with the (n_out, n_in) matrices of :func:`bilinear_matrix`. The
``"matmul"``, ``"gram"`` and ``"tiles"`` paths are exact rewritings of the CAMERAS average over scales built on these
matrices; only the literal definition (:mod:`.definition`) calls ``F.interpolate`` itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch
from torch import Tensor

__all__ = [
    "CHUNK_ELEMENTS",
    "auto_chunk_size",
    "bilinear_matrix",
    "check_fusion_inputs",
    "scale_weights",
    "step_sizes",
]

CHUNK_ELEMENTS = 1 << 22
"""Values of one float32 step buffer (≈16 MB) of the chunked paths on the CPU."""


@lru_cache(maxsize=64)
def _bilinear_matrix_cpu(n_in: int, n_out: int) -> Tensor:
    dst = torch.arange(n_out, dtype=torch.float64)
    # PyTorch's source index for align_corners=False resizing: (dst + 0.5) · in/out − 0.5, clamped at 0
    src = ((dst + 0.5) * (n_in / n_out) - 0.5).clamp_min(0.0)
    i0 = src.floor().long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    lam = src - i0.double()
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    m.index_put_((rows, i0), 1.0 - lam, accumulate=True)
    m.index_put_((rows, i1), lam, accumulate=True)
    return m.float()


def bilinear_matrix(n_in: int, n_out: int, device: torch.device | str = "cpu") -> Tensor:
    """(n_out, n_in) matrix U with ``U @ x`` = 1-D bilinear resize of x (align_corners=False), as F.interpolate.

    A 2-D bilinear resize is separable: ``up(X) = U_h @ X @ U_w.T`` for an (h, w) map X.

    Example:
        >>> bilinear_matrix(2, 4).tolist()
        [[1.0, 0.0], [0.75, 0.25], [0.25, 0.75], [0.0, 1.0]]
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f"Sizes must be positive, got n_in={n_in}, n_out={n_out}.")
    return _bilinear_matrix_cpu(int(n_in), int(n_out)).to(device)


def scale_weights(keep: Tensor) -> Tensor:
    """(B, K, S) bool keep mask → (B, K, S) float32 weights 1/n_kept on kept scales, 0 elsewhere.

    Example:
        >>> scale_weights(torch.tensor([[[True, False, True]]])).tolist()
        [[[0.5, 0.0, 0.5]]]
    """
    w = keep.float()
    return w / w.sum(dim=-1, keepdim=True).clamp_min(1.0)


def auto_chunk_size(batch: int, classes: int, out_hw: tuple[int, int]) -> int:
    """Channels per chunk of the full-resolution paths (``"matmul"``, ``"interpolate"``) so that one
    (B, K, c, H, W) float32 buffer stays near 16 MB."""
    per_channel = max(1, batch * classes * out_hw[0] * out_hw[1])
    return max(1, CHUNK_ELEMENTS // per_channel)


def step_sizes(
    channels: int, per_channel: int, budget: int, *, cuda: bool, chunk_size: int | None, images_per_step: int | None
) -> tuple[int, int]:
    """(channels, images) per step of a chunked fusion whose step buffers hold ``per_channel`` values per image and
    channel: as many channels as fit ``budget`` values for one image (or ``chunk_size``), and on CUDA as many images
    as then fit the budget (elsewhere one; or ``images_per_step``).

    Example:
        >>> step_sizes(2048, 1000, 100_000, cuda=False, chunk_size=None, images_per_step=None)
        (100, 1)
        >>> step_sizes(50, 1000, 100_000, cuda=True, chunk_size=None, images_per_step=None)
        (50, 2)
    """
    step = min(channels, chunk_size or max(1, budget // per_channel))
    group = images_per_step or (max(1, budget // (per_channel * step)) if cuda else 1)
    return step, group


def check_fusion_inputs(acts: Sequence[Tensor], grads: Sequence[Tensor], weights: Tensor) -> tuple[int, int, int]:
    """Check one (A (B, C, h_s, w_s), G (B, K, C, h_s, w_s)) pair per scale and (B, K, S) weights; return (B, K, C).

    Raises:
        ValueError: no scale, unequal numbers of A and G, wrong ranks, shapes that disagree across scales, or
            weights not of shape (B, K, S).
    """
    if len(acts) == 0 or len(acts) != len(grads):
        raise ValueError(f"Need one (A, G) pair per scale, got {len(acts)} activations and {len(grads)} gradients.")
    batch, channels = acts[0].shape[:2]
    classes = grads[0].shape[1]
    for a, g in zip(acts, grads):
        if a.dim() != 4 or g.dim() != 5:
            raise ValueError(f"Expected A (B, C, h, w) and G (B, K, C, h, w), got {tuple(a.shape)}, {tuple(g.shape)}.")
        if a.shape[:2] != (batch, channels) or g.shape[:3] != (batch, classes, channels) or g.shape[3:] != a.shape[2:]:
            raise ValueError(f"Inconsistent shapes across scales: A {tuple(a.shape)}, G {tuple(g.shape)}.")
    if weights.shape != (batch, classes, len(acts)):
        raise ValueError(f"weights must be (B, K, S) = {(batch, classes, len(acts))}, got {tuple(weights.shape)}.")
    return int(batch), int(classes), int(channels)
