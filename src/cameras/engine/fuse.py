"""Fusion of per-scale activations and gradients into one map, chunked over channels.

CAMERAS (Jalwana et al., CVPR 2021, Eq. 2-4): every kept scale's activations A_s and gradients G_s are upsampled
(bilinear, align_corners=False) to the output resolution and averaged over the kept scales,
``Ā = mean_s up(A_s)``, ``Ḡ = mean_s up(G_s)``; the map is ``ReLU(Σ_c Ā_c ⊙ Ḡ_c)``.

Any rule that is a sum over channels of a per-channel term (CAMERAS, HiResCAM, LayerCAM, Grad-CAM, …) can be fused
the same way, so :func:`fuse` takes the per-channel-chunk rule as an argument. Only one chunk of channels is ever
upsampled at a time: no C×H×W tensor of all channels exists, and memory is bounded by ``chunk_size``.

Implementations (``impl``), all computing the same float32 quantity:

* ``"matmul"``: bilinear resizing is linear and separable, so the weighted average over scales is two dense matrix
  products per channel chunk (the CPU default, and the GPU path for rules other than CAMERAS').
* ``"triton"``: for the CAMERAS rule on CUDA, one fused kernel reads each scale's low-resolution A and G and writes
  the H×W map directly (:mod:`.fuse_triton`); nothing of size C×H×W is ever allocated.
* ``"gather"``: the kernel's arithmetic in PyTorch (four-neighbour gathers); a portable cross-check.
* ``"interpolate"``: the literal definition, ``F.interpolate`` per scale and chunk.
* ``"auto"`` (default): ``"triton"`` for the CAMERAS rule on a CUDA device where Triton is importable and the kernel
  passed a one-time self-check, ``"matmul"`` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from .accumulate import Recording
from .fuse_triton import fuse_gather, fuse_triton, triton_usable

__all__ = [
    "IMPLS",
    "ChannelRule",
    "auto_chunk_size",
    "bilinear_matrix",
    "cameras_rule",
    "fuse",
    "minmax_normalize",
    "scale_weights",
]

ChannelRule = Callable[[Tensor, Tensor], Tensor]
"""``rule(mean_a, mean_g) -> partial_map``: (B, K, c, H, W) × (B, K, c, H, W) → (B, K, H, W) for one channel chunk."""

_CHUNK_ELEMENTS = 1 << 22  # ≈ 16 MB of float32 per buffer

IMPLS: tuple[str, ...] = ("auto", "matmul", "triton", "gather", "interpolate")
"""Accepted values of ``fuse(..., impl=...)``."""


def cameras_rule(mean_a: Tensor, mean_g: Tensor) -> Tensor:
    """The CAMERAS fusion term of one channel chunk: Σ_c Ā_c ⊙ Ḡ_c (the ReLU comes after all chunks)."""
    return (mean_a * mean_g).sum(dim=2)


def scale_weights(keep: Tensor) -> Tensor:
    """(B, K, S) bool keep mask → (B, K, S) float weights 1/n_kept on kept scales, 0 elsewhere."""
    w = keep.float()
    return w / w.sum(dim=-1, keepdim=True).clamp_min(1.0)


def auto_chunk_size(batch: int, classes: int, out_hw: tuple[int, int]) -> int:
    """Channels per chunk so that one (B, K, c, H, W) float32 buffer stays near 16 MB."""
    per_channel = max(1, batch * classes * out_hw[0] * out_hw[1])
    return max(1, _CHUNK_ELEMENTS // per_channel)


def _up(x: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


@lru_cache(maxsize=64)
def _bilinear_matrix_cpu(n_in: int, n_out: int) -> Tensor:
    dst = torch.arange(n_out, dtype=torch.float64)
    # PyTorch's source index for align_corners=False upsampling: (dst + 0.5) · in/out − 0.5, clamped at 0
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
    """
    return _bilinear_matrix_cpu(n_in, n_out).to(device)


def fuse(
    recording: Recording,
    out_size: tuple[int, int],
    rule: ChannelRule = cameras_rule,
    *,
    chunk_size: int | None = None,
    impl: str = "auto",
) -> Tensor:
    """Average upsampled A and G over the kept scales and apply ``rule`` chunk by chunk.

    Args:
        recording: per-scale (A, G) and keep masks from :func:`~cameras.engine.accumulate.record_scales`.
        out_size: (H, W) of the output map.
        rule: per-chunk rule (default: CAMERAS' Σ_c Ā_c Ḡ_c).
        chunk_size: channels per chunk (default: :func:`auto_chunk_size`). The result does not depend on it beyond
            float rounding.
        impl: one of :data:`IMPLS` (see the module docstring). ``"matmul"``: bilinear upsampling is linear and
            separable, so the weighted average over scales of the upsampled maps is computed exactly as two matrix
            products — each scale's map times its column-resize matrix, the weighted results stacked along the rows,
            times the stacked row-resize matrices — which replaces S separate upsamplings per channel with one dense
            product. ``"triton"`` (CAMERAS rule, CUDA): the fused kernel. ``"gather"`` (CAMERAS rule): the kernel's
            arithmetic in PyTorch. ``"interpolate"``: the literal definition, F.interpolate per scale.
            ``"auto"`` (default): ``"triton"`` when usable, else ``"matmul"``.

    Returns:
        (B, K, H, W) float32 map *before* the ReLU.

    Raises:
        ValueError: unknown ``impl``, ``"triton"``/``"gather"`` with a rule other than :func:`cameras_rule`, or
            ``chunk_size`` < 1.
        RuntimeError: ``impl="triton"`` where Triton or CUDA is unavailable.

    Example:
        >>> import torch
        >>> from cameras.engine import record_scales
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        >>> rec = record_scales(net, "0", torch.randn(1, 3, 16, 16), [(16, 16), (24, 24)])
        >>> fuse(rec, (16, 16)).shape
        torch.Size([1, 1, 16, 16])
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {', '.join(map(repr, IMPLS))}, got {impl!r}.")
    if impl in ("triton", "gather") and rule is not cameras_rule:
        raise ValueError(f"impl={impl!r} implements the CAMERAS rule only; use impl='matmul' for other rules.")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be ≥ 1, got {chunk_size}.")
    first = recording.scales[0]
    batch, channels = first.activations.shape[:2]
    classes = recording.targets.shape[1]
    height, width = out_size
    device = first.activations.device
    weights = scale_weights(recording.keep).to(device)  # (B, K, S)
    step = chunk_size or auto_chunk_size(batch, classes, out_size)
    active = [s for s in range(len(recording.scales)) if bool((weights[:, :, s] != 0).any())]
    if impl == "auto":
        impl = "triton" if rule is cameras_rule and device.type == "cuda" and triton_usable(device) else "matmul"
    if impl in ("triton", "gather"):
        acts = [recording.scales[s].activations for s in active]
        grads = [recording.scales[s].gradients for s in active]
        if impl == "triton":
            return fuse_triton(acts, grads, weights[:, :, active], out_size)
        return fuse_gather(acts, grads, weights[:, :, active], out_size, chunk_size=chunk_size or 64)
    out = torch.zeros(batch, classes, height, width, device=device, dtype=torch.float32)
    if impl == "matmul":
        rows = torch.cat(
            [bilinear_matrix(recording.scales[s].activations.shape[-2], height, device) for s in active], 1
        )
        cols = [bilinear_matrix(recording.scales[s].activations.shape[-1], width, device).T for s in active]
    for c0 in range(0, channels, step):
        c1 = min(channels, c0 + step)
        c = c1 - c0
        if impl == "matmul":
            parts_a, parts_g = [], []
            for s, col in zip(active, cols):
                rec = recording.scales[s]
                w = weights[:, :, s].reshape(batch, classes, 1, 1, 1)
                parts_a.append((rec.activations[:, c0:c1] @ col).unsqueeze(1) * w)  # (B, K, c, h_s, W)
                parts_g.append((rec.gradients[:, :, c0:c1] @ col) * w)
            # (…, Σh, W) → transpose → (…, W, Σh) @ rows.T (Σh, H) → (…, W, H) → logical (…, H, W) view
            mean_a = (torch.cat(parts_a, dim=3).transpose(-1, -2) @ rows.T).transpose(-1, -2)
            del parts_a
            mean_g = (torch.cat(parts_g, dim=3).transpose(-1, -2) @ rows.T).transpose(-1, -2)
            del parts_g
            out += rule(mean_a, mean_g)
            del mean_a, mean_g
            continue
        sum_a = torch.zeros(batch, classes, c, height, width, device=device, dtype=torch.float32)
        sum_g = torch.zeros_like(sum_a)
        for s in active:
            rec = recording.scales[s]
            w = weights[:, :, s].reshape(batch, classes, 1, 1, 1)
            up_a = _up(rec.activations[:, c0:c1], out_size)  # (B, c, H, W)
            sum_a.addcmul_(up_a.unsqueeze(1), w)
            del up_a
            g = rec.gradients[:, :, c0:c1]
            h, wd = g.shape[-2:]
            up_g = _up(g.reshape(batch * classes, c, h, wd), out_size).reshape(batch, classes, c, height, width)
            sum_g.addcmul_(up_g, w)
            del up_g
        out += rule(sum_a, sum_g)
        del sum_a, sum_g
    return out


def minmax_normalize(maps: Tensor) -> Tensor:
    """Min–max normalise each map of (..., H, W) to [0, 1]; a constant map becomes all zeros (never NaN)."""
    flat = maps.flatten(-2)
    lo = flat.amin(dim=-1, keepdim=True)
    hi = flat.amax(dim=-1, keepdim=True)
    span = hi - lo
    safe = torch.where(span > 0, span, torch.ones_like(span))
    norm = torch.where(span > 0, (flat - lo) / safe, torch.zeros_like(flat))
    return norm.reshape(maps.shape)
