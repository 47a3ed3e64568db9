"""Fusion of per-scale activations and gradients into one map, chunked over channels.

CAMERAS (Jalwana et al., CVPR 2021, Eq. 2-4): every kept scale's activations A_s and gradients G_s are upsampled
(bilinear, align_corners=False) to the output resolution and averaged over the kept scales,
``Ā = mean_s up(A_s)``, ``Ḡ = mean_s up(G_s)``; the map is ``ReLU(Σ_c Ā_c ⊙ Ḡ_c)``.

Any rule that is a sum over channels of a per-channel term (CAMERAS, HiResCAM, LayerCAM, Grad-CAM, …) can be fused
the same way, so :func:`fuse` takes the per-channel-chunk rule as an argument. Only one chunk of channels is ever
upsampled at a time: no C×H×W tensor of all channels exists, and memory is bounded by ``chunk_size``.

Implementations (``impl``), all computing the same float32 quantity:

* ``"matmul"``: bilinear resizing is linear and separable, so the weighted average over scales is two dense matrix
  products per channel chunk (the path for rules other than CAMERAS').
* ``"tiles"``: for the CAMERAS rule, the channels contracted first, at low resolution, in one small Gram matrix per
  output tile of the positions that tile reads (:func:`.fuse_tiles.fuse_tiles`); the least work and memory traffic
  of all (the CPU default).
* ``"gram"``: for the CAMERAS rule, the same re-association with one Gram matrix per output column over all rows of
  all scales after a column resize (see :func:`fuse_gram`); fewer operations than ``"matmul"`` and no C×H×W tensor.
* ``"gram-tf32"``: ``"gram"`` with its two large products done as three TF32 tensor-core products of split operands
  ("3xTF32"), which keeps float32 accuracy (≈1e-6 relative) at tensor-core speed on NVIDIA GPUs since Ampere.
* ``"triton"``: for the CAMERAS rule on CUDA, the ``"gram"`` form in one Triton kernel that reads each scale's
  low-resolution A and G, resizes them along one axis on the fly and contracts the channels on tensor cores at float32
  accuracy ("3xTF32"), writing only the small Gram matrices (:func:`.fuse_triton.fuse_triton_gram`); nothing of size
  C×H×W is ever allocated.
* ``"triton-gather"``: a per-pixel Triton kernel that reads the four bilinear neighbours of every output pixel in
  every scale and writes the H×W map directly (:func:`.fuse_triton.fuse_triton`); slower than ``"triton"``.
* ``"gather"``: that kernel's arithmetic in PyTorch (four-neighbour gathers); a portable cross-check.
* ``"interpolate"``: the literal definition, ``F.interpolate`` per scale and chunk.
* ``"auto"`` (default), for the CAMERAS rule: ``"tiles"`` on the CPU (4-5× faster than ``"gram"`` on 2 cores, see
  BENCHMARKS.md) while its interpolation weights fit :data:`TILES_MAX_TAPS_BYTES`, else ``"gram"``; ``"gram"`` on
  CUDA, the fastest exact path measured on an H100 so far (``"tiles"`` is not yet timed there); ``"matmul"`` for
  other rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from .accumulate import Recording
from .fuse_tiles import auto_tile, fuse_tiles
from .fuse_triton import (
    check_fusion_inputs,
    fuse_gather,
    fuse_triton,
    fuse_triton_gram,
    gram_transposed,
    step_sizes,
)

__all__ = [
    "IMPLS",
    "ChannelRule",
    "auto_chunk_size",
    "bilinear_matrix",
    "cameras_rule",
    "fuse",
    "fuse_gram",
    "scale_weights",
]

ChannelRule = Callable[[Tensor, Tensor], Tensor]
"""``rule(mean_a, mean_g) -> partial_map``: (B, K, c, H, W) × (B, K, c, H, W) → (B, K, H, W) for one channel chunk."""

_CHUNK_ELEMENTS = 1 << 22  # ≈ 16 MB of float32 per buffer
TILES_MAX_TAPS_BYTES = 1 << 27
"""``"auto"`` uses ``"tiles"`` (on the CPU) only when its cached interpolation weights fit in this many bytes (128 MB;
about 40 MB for a 224 px map of ResNet-50's eight paper scales); beyond that, ``"gram"``."""

IMPLS: tuple[str, ...] = (
    "auto",
    "tiles",
    "gram",
    "gram-tf32",
    "matmul",
    "triton",
    "triton-gather",
    "gather",
    "interpolate",
)
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


@contextmanager
def _tf32_matmuls() -> Iterator[None]:
    """Let float32 matrix products use TF32 tensor cores inside the block (restored on exit, errors included)."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


def _tf32_split(x: Tensor) -> tuple[Tensor, Tensor]:
    """``x = hi + lo`` with ``hi`` exactly representable in TF32 (sign, exponent, 10 mantissa bits) and ``lo`` the
    exact float32 remainder (|lo| ≤ 2⁻¹⁰ |x|)."""
    hi = (x.contiguous().view(torch.int32) & -8192).view(torch.float32)  # -8192 = 0xFFFFE000: drop 13 mantissa bits
    return hi, x - hi


def _split_bmm(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` to about float32 accuracy from three TF32 tensor-core products ("3xTF32"): the hi·hi, hi·lo and
    lo·hi terms of the split operands; the dropped lo·lo term and TF32's rounding of ``lo`` are ≤ 2⁻²⁰ relative."""
    a_hi, a_lo = _tf32_split(a)
    b_hi, b_lo = _tf32_split(b)
    with _tf32_matmuls():
        return a_hi @ b_hi + (a_hi @ b_lo + a_lo @ b_hi)


def fuse_gram(
    acts: Sequence[Tensor],
    grads: Sequence[Tensor],
    weights: Tensor,
    out_size: tuple[int, int],
    *,
    chunk_size: int | None = None,
    split_tf32: bool = False,
    images_per_step: int | None = None,
) -> Tensor:
    r"""The CAMERAS fusion Σ_c Ā_c ⊙ Ḡ_c with the channels contracted at low resolution (exact re-association).

    With the row and column resize matrices of all scales stacked, :math:`R = [U^h_1 \dots U^h_S]` (H × Σh) and
    :math:`C_s = U^w_s` (W × w_s), the averaged maps are :math:`\bar A_c = R\,T^A_c` where the (Σh × W) matrix
    :math:`T^A_c` stacks :math:`w_s A_{c,s} C_s^\top` over scales (likewise :math:`\bar G_c`). For each output column
    x the map is then a quadratic form in the y-th row of R:

    .. math:: M(y, x) = \sum_c (R\,t^A_{c,x})_y (R\,t^G_{c,x})_y = r_y^\top \Big(\sum_c t^A_{c,x} {t^G_{c,x}}^\top
              \Big) r_y,

    so the channel sum becomes one batched (Σh × C)·(C × Σh) product per column (W of them), and only the small
    (W, Σh, Σh) matrices are ever kept. Cost ≈ 2·W·Σh²·C multiply-adds per (image, class) instead of 4·C·H·W·Σh for
    :func:`fuse`'s ``"matmul"``; the orientation (rows vs columns) with the smaller cost is chosen automatically.

    Args:
        acts: S tensors (B, C, h_s, w_s) (kept scales).
        grads: S tensors (B, K, C, h_s, w_s).
        weights: (B, K, S) scale weights (1/n_kept on kept scales, 0 elsewhere).
        out_size: (H, W).
        chunk_size: channels per step (default: ≈16 MB buffers on the CPU, ≈256 MB on CUDA, where fewer, larger
            products keep the GPU busy).
        split_tf32: compute the two large products (column resize, channel contraction) as three TF32 tensor-core
            products of split operands (:func:`_split_bmm`) instead of one float32 product; float32 accuracy
            (≈1e-6 relative) at tensor-core speed on GPUs that have TF32. On a CPU it changes nothing but the cost.
        images_per_step: images whose products are batched together (default: 1 on the CPU; on CUDA as many as
            fit ≈1 GB of buffers).

    Returns:
        (B, K, H, W) float32 map before the ReLU; equal to the ``"interpolate"`` fusion up to float rounding.

    Example:
        >>> a, g = [torch.ones(1, 2, 3, 3)], [torch.ones(1, 1, 2, 3, 3)]
        >>> fuse_gram(a, g, torch.ones(1, 1, 1), (5, 4)).unique().tolist()
        [2.0]
    """
    batch, classes, channels = check_fusion_inputs(acts, grads, weights)
    height, width = out_size
    if gram_transposed(acts, out_size):  # contract along the cheaper side: transpose everything
        out_t = fuse_gram(
            [a.transpose(-1, -2) for a in acts],
            [g.transpose(-1, -2) for g in grads],
            weights,
            (width, height),
            chunk_size=chunk_size,
            split_tf32=split_tf32,
            images_per_step=images_per_step,
        )
        return out_t.transpose(-1, -2).contiguous()
    sum_h = sum(int(a.shape[-2]) for a in acts)
    device = acts[0].device
    mm = _split_bmm if split_tf32 else torch.matmul
    rows = torch.cat([bilinear_matrix(a.shape[-2], height, device) for a in acts], 1)  # (H, Σh)
    cols = [bilinear_matrix(a.shape[-1], width, device) for a in acts]  # (W, w_s)
    offsets = [0]
    for a in acts:
        offsets.append(offsets[-1] + a.shape[-2])
    w = weights.to(device=device, dtype=torch.float32)
    # t^A and t^G of one step hold (1 + K)·W·Σh·c floats per image: ≈16 MB per step on the CPU, one image at a time;
    # on CUDA ≈1 GB per step and several images at once, so that each step is a few large kernels.
    cuda = device.type == "cuda"
    budget = _CHUNK_ELEMENTS * (64 if cuda else 1)
    per_channel = width * sum_h * (1 + classes)
    step, group = step_sizes(
        channels, per_channel, budget, cuda=cuda, chunk_size=chunk_size, images_per_step=images_per_step
    )
    out = torch.empty(batch, classes, height, width, device=device, dtype=torch.float32)
    for b0 in range(0, batch, group):
        b1 = min(batch, b0 + group)
        nb = b1 - b0
        gram = torch.zeros(nb * classes * width, sum_h, sum_h, device=device, dtype=torch.float32)
        for c0 in range(0, channels, step):
            c1 = min(channels, c0 + step)
            c = c1 - c0
            # column pass of every scale, written straight into the (x, row, channel) layout of the products
            t_a = torch.empty(nb, width, sum_h, c, device=device, dtype=torch.float32)
            t_g = torch.empty(nb, classes, width, sum_h, c, device=device, dtype=torch.float32)
            for s, (a, g, col) in enumerate(zip(acts, grads, cols)):
                h_s, w_s = a.shape[-2:]
                a_s = a[b0:b1, c0:c1].float().permute(0, 3, 2, 1).reshape(nb, w_s, h_s * c)  # (nb, w_s, h_s·c)
                t_a[:, :, offsets[s] : offsets[s + 1]] = mm(col, a_s).view(nb, width, h_s, c)
                g_s = g[b0:b1, :, c0:c1].float().permute(0, 1, 4, 3, 2).reshape(nb, classes, w_s, h_s * c)
                t_g[:, :, :, offsets[s] : offsets[s + 1]] = mm(col, g_s).view(nb, classes, width, h_s, c)
            # Σ_c t^A t^G^T for every (image, class, column x): one batched product
            lhs = t_a[:, None].expand(nb, classes, width, sum_h, c).reshape(-1, sum_h, c)
            rhs = t_g.reshape(-1, sum_h, c).transpose(1, 2)
            if split_tf32:
                gram += _split_bmm(lhs, rhs)
            else:
                gram.baddbmm_(lhs, rhs)
            del t_a, t_g, lhs, rhs
        row_w = torch.cat(
            [w[b0:b1, :, s, None].expand(nb, classes, offsets[s + 1] - offsets[s]) for s in range(len(acts))], 2
        )  # (nb, K, Σh) scale weight of every stacked row
        gram5 = gram.view(nb, classes, width, sum_h, sum_h)
        gram5 *= row_w[:, :, None, :, None] * row_w[:, :, None, None, :]
        z = gram5 @ rows.T  # (nb, K, W, Σh, H)
        out[b0:b1] = (z * rows.T).sum(dim=-2).transpose(-1, -2)  # out[y, x] = Σ_i R[y, i] z[x, i, y]
        del gram, gram5, z
    return out


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
            product. ``"gram"`` / ``"gram-tf32"`` (CAMERAS rule): :func:`fuse_gram` without / with ``split_tf32``.
            ``"triton"`` / ``"triton-gather"`` (CAMERAS rule, CUDA): the Gram-form / per-pixel Triton kernels.
            ``"gather"`` (CAMERAS rule): the per-pixel kernel's arithmetic in PyTorch. ``"interpolate"``: the
            literal definition, F.interpolate per scale. ``"auto"`` (default): see the module docstring.

    Returns:
        (B, K, H, W) float32 map *before* the ReLU.

    Raises:
        ValueError: unknown ``impl``, an implementation other than ``"matmul"`` or ``"interpolate"`` with a rule
            other than :func:`cameras_rule`, or ``chunk_size`` < 1.
        RuntimeError: ``impl="triton"`` or ``"triton-gather"`` where Triton or CUDA is unavailable.

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
    if impl not in ("matmul", "interpolate", "auto") and rule is not cameras_rule:
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
    tile: int | None = None
    if impl == "auto":
        impl = "gram" if rule is cameras_rule else "matmul"
        if rule is cameras_rule and device.type == "cpu":
            shapes = [recording.scales[s].activations.shape for s in active]
            sizes = [(int(sh[-2]), int(sh[-1])) for sh in shapes]
            tile = auto_tile(sizes, out_size, channels, classes, max_taps_bytes=TILES_MAX_TAPS_BYTES)
            impl = "gram" if tile is None else "tiles"
    if impl not in ("matmul", "interpolate"):
        acts = [recording.scales[s].activations for s in active]
        grads = [recording.scales[s].gradients for s in active]
        if impl == "tiles":
            return fuse_tiles(acts, grads, weights[:, :, active], out_size, tile=tile, chunk_size=chunk_size)
        if impl == "triton":
            return fuse_triton_gram(acts, grads, weights[:, :, active], out_size)
        if impl == "triton-gather":
            return fuse_triton(acts, grads, weights[:, :, active], out_size)
        if impl in ("gram", "gram-tf32"):
            split = impl == "gram-tf32"
            return fuse_gram(acts, grads, weights[:, :, active], out_size, chunk_size=chunk_size, split_tf32=split)
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

