"""Fused CAMERAS fusion kernel (Triton, CUDA): low-resolution A and G in, the H×W map out.

The exact fusion (:func:`cameras.engine.fuse.fuse`) upsamples every channel of every kept scale's activations
``A_s`` (B, C, h_s, w_s) and gradients ``G_s`` (B, K, C, h_s, w_s) bilinearly to H×W, averages them over the kept
scales with per-(image, class) weights ``w_{b,k,s}`` (1/n_kept or 0) and sums ``Ā_c ⊙ Ḡ_c`` over channels. The kernel
computes the same quantity without materialising any upsampled tensor: each program owns a tile of ``BLOCK_P`` output
pixels of one (image, class) pair and loops over channels ``BLOCK_C`` at a time; for each scale it reads the four
bilinear neighbours of each pixel in ``A_s`` and ``G_s`` (PyTorch's ``align_corners=False`` source indices, computed
on the host into small per-scale row/column tables), accumulates ``Σ_s w_s up(A_s)`` and ``Σ_s w_s up(G_s)`` in
registers, multiplies them and reduces over the channel block into a per-pixel float32 accumulator. Only the
(B, K, H, W) result is written.

Triton is imported lazily, only when the kernel is first used; nothing here is imported on machines without it.
:func:`fuse_gather` is the same arithmetic (four-neighbour gathers, per-channel sum over scales, then the product,
accumulated over channels) written with PyTorch tensor ops: it runs anywhere and is what the tests compare with the
exact path; the kernel itself is also tested on CPU under Triton's interpreter (``TRITON_INTERPRET=1``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "bilinear_taps",
    "check_fusion_inputs",
    "fuse_gather",
    "fuse_triton",
    "fuse_triton_gram",
    "gram_transposed",
    "interpreter_enabled",
    "step_sizes",
    "triton_available",
    "triton_usable",
]

BLOCK_P = 64
"""Output pixels per program."""
BLOCK_C = 32
"""Channels per inner step of a program."""


@lru_cache(maxsize=128)
def _taps_cpu(n_in: int, n_out: int) -> tuple[Tensor, Tensor, Tensor]:
    dst = torch.arange(n_out, dtype=torch.float64)
    # PyTorch's source coordinate for align_corners=False with an explicit output size: (dst + 0.5)·in/out − 0.5,
    # clamped at 0; the upper neighbour is clamped to the last row/column.
    src = ((dst + 0.5) * (n_in / n_out) - 0.5).clamp_min(0.0)
    i0 = src.floor().long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    lam = (src - i0.double()).float()
    return i0.int(), i1.int(), lam


def bilinear_taps(n_in: int, n_out: int, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor, Tensor]:
    """The two source indices and the weight of the second one for a 1-D bilinear resize (align_corners=False).

    ``up(x)[i] = (1 - lam[i]) · x[i0[i]] + lam[i] · x[i1[i]]``, exactly as ``F.interpolate(mode="bilinear")``.

    Args:
        n_in: input length.
        n_out: output length.
        device: where to put the tables.

    Returns:
        ``(i0, i1, lam)``: (n_out,) int32, (n_out,) int32, (n_out,) float32.

    Example:
        >>> i0, i1, lam = bilinear_taps(2, 4)
        >>> i0.tolist(), i1.tolist(), lam.tolist()
        ([0, 0, 0, 1], [1, 1, 1, 1], [0.0, 0.25, 0.75, 0.0])
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f"Sizes must be positive, got n_in={n_in}, n_out={n_out}.")
    return tuple(t.to(device) for t in _taps_cpu(n_in, n_out))  # type: ignore[return-value]


def _require_triton(device: torch.device, fallback: str) -> None:
    if not triton_available(device):
        raise RuntimeError(
            f"The Triton fusion kernel needs a CUDA device and an importable `triton` (got device {device}); "
            f"use impl={fallback!r} instead."
        )


def gram_transposed(acts: Sequence[Tensor], out_size: tuple[int, int]) -> bool:
    """Whether the Gram-form fusion is cheaper with rows and columns swapped: it costs ∝ W·(Σh)² as written and
    ∝ H·(Σw)² transposed (Σ over the scales' heights h_s and widths w_s).

    Example:
        >>> gram_transposed([torch.zeros(1, 1, 3, 9)], (20, 20))  # contracting the 3 rows is cheaper
        False
        >>> gram_transposed([torch.zeros(1, 1, 9, 3)], (20, 20))
        True
    """
    height, width = out_size
    sum_h = sum(int(a.shape[-2]) for a in acts)
    sum_w = sum(int(a.shape[-1]) for a in acts)
    return height * sum_w * sum_w > width * sum_h * sum_h


def step_sizes(
    channels: int, per_channel: int, budget: int, *, cuda: bool, chunk_size: int | None, images_per_step: int | None
) -> tuple[int, int]:
    """(channels, images) per step of a chunked fusion whose step buffers hold ``per_channel`` values per image and
    channel: as many channels as fit ``budget`` values for one image (or ``chunk_size``), and on CUDA as many images
    as then fit the budget (elsewhere one; or ``images_per_step``)."""
    step = min(channels, chunk_size or max(1, budget // per_channel))
    group = images_per_step or (max(1, budget // (per_channel * step)) if cuda else 1)
    return step, group


def check_fusion_inputs(acts: Sequence[Tensor], grads: Sequence[Tensor], weights: Tensor) -> tuple[int, int, int]:
    """Check one (A (B, C, h_s, w_s), G (B, K, C, h_s, w_s)) pair per scale and (B, K, S) weights; return (B, K, C)."""
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


def fuse_gather(
    acts: Sequence[Tensor],
    grads: Sequence[Tensor],
    weights: Tensor,
    out_size: tuple[int, int],
    *,
    chunk_size: int = 64,
) -> Tensor:
    """The fused kernel's arithmetic in PyTorch: Σ_c (Σ_s w_s up(A_s)_c) (Σ_s w_s up(G_s)_c), up = 4-tap bilinear.

    Args:
        acts: S tensors (B, C, h_s, w_s).
        grads: S tensors (B, K, C, h_s, w_s).
        weights: (B, K, S) float weights (1/n_kept on kept scales, 0 elsewhere).
        out_size: (H, W).
        chunk_size: channels per step.

    Returns:
        (B, K, H, W) float32, before the ReLU. Equal to the interpolate-based fusion up to float rounding.

    Example:
        >>> a, g = [torch.ones(1, 2, 3, 3)], [torch.ones(1, 1, 2, 3, 3)]
        >>> fuse_gather(a, g, torch.ones(1, 1, 1), (5, 4)).unique().tolist()
        [2.0]
    """
    batch, classes, channels = check_fusion_inputs(acts, grads, weights)
    height, width = out_size
    device = acts[0].device
    w = weights.to(device=device, dtype=torch.float32)
    taps = []
    for a in acts:
        i0, i1, lam = bilinear_taps(a.shape[-2], height, device)
        j0, j1, mu = bilinear_taps(a.shape[-1], width, device)
        taps.append((i0.long(), i1.long(), j0.long(), j1.long(), lam[:, None], mu[None, :]))

    def up(x: Tensor, t: tuple[Tensor, ...]) -> Tensor:  # (..., h, w) → (..., H, W), four neighbours per pixel
        i0, i1, j0, j1, lam, mu = t
        r0, r1 = x.index_select(-2, i0), x.index_select(-2, i1)  # the neighbours' rows, then their columns
        x00, x01 = r0.index_select(-1, j0), r0.index_select(-1, j1)
        x10, x11 = r1.index_select(-1, j0), r1.index_select(-1, j1)
        return (1 - lam) * ((1 - mu) * x00 + mu * x01) + lam * ((1 - mu) * x10 + mu * x11)

    out = torch.zeros(batch, classes, height, width, device=device, dtype=torch.float32)
    for c0 in range(0, channels, max(1, chunk_size)):
        c1 = min(channels, c0 + max(1, chunk_size))
        sum_a = torch.zeros(batch, classes, c1 - c0, height, width, device=device)
        sum_g = torch.zeros_like(sum_a)
        for s, (a, g) in enumerate(zip(acts, grads)):
            ws = w[:, :, s].reshape(batch, classes, 1, 1, 1)
            sum_a += ws * up(a[:, c0:c1].float(), taps[s]).unsqueeze(1)
            sum_g += ws * up(g[:, :, c0:c1].float(), taps[s])
        out += (sum_a * sum_g).sum(dim=2)
    return out


# -- Triton ----------------------------------------------------------------------------------------------------------


def interpreter_enabled() -> bool:
    """True when Triton's CPU interpreter is switched on (``TRITON_INTERPRET=1``); used by the tests."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@lru_cache(maxsize=1)
def _triton_importable() -> bool:
    try:
        import triton.language  # noqa: F401
    except Exception:  # ImportError, or a broken install raising anything else at import time
        return False
    return True


def triton_available(device: torch.device | str) -> bool:
    """Whether the Triton kernel can run on ``device``: a CUDA device with Triton importable (or, for tests, any
    device while Triton's interpreter is enabled)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.is_available() and _triton_importable()
    return interpreter_enabled() and _triton_importable()


_KERNELS: dict[tuple[bool, bool], Any] = {}

AUTOTUNE_CONFIGS: tuple[tuple[int, int, int], ...] = (
    (64, 32, 4),
    (128, 32, 4),
    (128, 16, 4),
    (64, 16, 2),
    (256, 16, 8),
)
"""(BLOCK_P, BLOCK_C, num_warps) candidates tried once per (C, H, W, S) on CUDA when no block sizes are given."""


def _kernel(autotune: bool = False) -> Any:
    """Build (once per interpreter setting) the jitted kernel; Triton is imported here and nowhere else."""
    interp = interpreter_enabled()
    autotune = autotune and not interp  # the autotuner times candidates on a GPU
    if (interp, autotune) in _KERNELS:
        return _KERNELS[(interp, autotune)]
    import triton
    import triton.language as tl

    @triton.jit  # type: ignore[untyped-decorator]
    def cameras_fuse_kernel(  # type: ignore[no-untyped-def]
        a_ptr,  # float32, all scales' A (B, C, h_s, w_s) concatenated flat
        g_ptr,  # float32, all scales' G (B, K, C, h_s, w_s) concatenated flat
        a_off_ptr,  # int64 (S,) start of each scale in a_ptr
        g_off_ptr,  # int64 (S,)
        hs_ptr,  # int32 (S,) rows of each scale
        ws_ptr,  # int32 (S,) columns of each scale
        ri0_ptr,  # int32 (S, H) upper source row of each output row
        ri1_ptr,  # int32 (S, H) lower source row
        rlam_ptr,  # float32 (S, H) weight of the lower row
        cj0_ptr,  # int32 (S, W) left source column of each output column
        cj1_ptr,  # int32 (S, W) right source column
        cmu_ptr,  # float32 (S, W) weight of the right column
        w_ptr,  # float32 (B, K, S) scale weights
        out_ptr,  # float32 (B, K, H, W)
        K,
        C,
        H,
        W,
        S,
        BLOCK_P: tl.constexpr,
        BLOCK_C: tl.constexpr,
    ):
        pid_p = tl.program_id(0)
        bk = tl.program_id(1)  # = b * K + k
        b = bk // K
        p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
        pmask = p < H * W
        y = p // W
        x = p % W
        cs = tl.arange(0, BLOCK_C)
        acc = tl.zeros([BLOCK_P], dtype=tl.float32)
        for c0 in range(0, C, BLOCK_C):
            c = c0 + cs
            m2 = (c < C)[:, None] & pmask[None, :]
            sum_a = tl.zeros([BLOCK_C, BLOCK_P], dtype=tl.float32)
            sum_g = tl.zeros([BLOCK_C, BLOCK_P], dtype=tl.float32)
            for s in range(S):
                wt = tl.load(w_ptr + bk * S + s)
                hs = tl.load(hs_ptr + s)
                wd = tl.load(ws_ptr + s)
                a_off = tl.load(a_off_ptr + s)
                g_off = tl.load(g_off_ptr + s)
                i0 = tl.load(ri0_ptr + s * H + y, mask=pmask, other=0)
                i1 = tl.load(ri1_ptr + s * H + y, mask=pmask, other=0)
                lam = tl.load(rlam_ptr + s * H + y, mask=pmask, other=0.0)
                j0 = tl.load(cj0_ptr + s * W + x, mask=pmask, other=0)
                j1 = tl.load(cj1_ptr + s * W + x, mask=pmask, other=0)
                mu = tl.load(cmu_ptr + s * W + x, mask=pmask, other=0.0)
                plane = (hs * wd).to(tl.int64)
                a_chan = a_off + (b * C + c).to(tl.int64) * plane  # (BLOCK_C,)
                g_chan = g_off + (bk * C + c).to(tl.int64) * plane
                o00 = (i0 * wd + j0)[None, :]
                o01 = (i0 * wd + j1)[None, :]
                o10 = (i1 * wd + j0)[None, :]
                o11 = (i1 * wd + j1)[None, :]
                ly = lam[None, :]
                lx = mu[None, :]
                a00 = tl.load(a_ptr + a_chan[:, None] + o00, mask=m2, other=0.0)
                a01 = tl.load(a_ptr + a_chan[:, None] + o01, mask=m2, other=0.0)
                a10 = tl.load(a_ptr + a_chan[:, None] + o10, mask=m2, other=0.0)
                a11 = tl.load(a_ptr + a_chan[:, None] + o11, mask=m2, other=0.0)
                up_a = (1.0 - ly) * ((1.0 - lx) * a00 + lx * a01) + ly * ((1.0 - lx) * a10 + lx * a11)
                sum_a += wt * up_a
                g00 = tl.load(g_ptr + g_chan[:, None] + o00, mask=m2, other=0.0)
                g01 = tl.load(g_ptr + g_chan[:, None] + o01, mask=m2, other=0.0)
                g10 = tl.load(g_ptr + g_chan[:, None] + o10, mask=m2, other=0.0)
                g11 = tl.load(g_ptr + g_chan[:, None] + o11, mask=m2, other=0.0)
                up_g = (1.0 - ly) * ((1.0 - lx) * g00 + lx * g01) + ly * ((1.0 - lx) * g10 + lx * g11)
                sum_g += wt * up_g
            acc += tl.sum(sum_a * sum_g, axis=0)
        tl.store(out_ptr + bk.to(tl.int64) * H * W + p, acc, mask=pmask)

    kernel = cameras_fuse_kernel
    if autotune:
        configs = [triton.Config({"BLOCK_P": p, "BLOCK_C": c}, num_warps=w) for p, c, w in AUTOTUNE_CONFIGS]
        kernel = triton.autotune(configs=configs, key=["C", "H", "W", "S"])(cameras_fuse_kernel)
    _KERNELS[(interp, autotune)] = kernel
    return kernel


def fuse_triton(
    acts: Sequence[Tensor],
    grads: Sequence[Tensor],
    weights: Tensor,
    out_size: tuple[int, int],
    *,
    block_p: int | None = None,
    block_c: int | None = None,
) -> Tensor:
    """Σ_c Ā_c ⊙ Ḡ_c with the fused Triton kernel (CAMERAS rule only), no upsampled tensor materialised.

    Args:
        acts: S tensors (B, C, h_s, w_s) on one CUDA device (any float dtype; read as float32).
        grads: S tensors (B, K, C, h_s, w_s).
        weights: (B, K, S) scale weights (1/n_kept on kept scales, 0 elsewhere).
        out_size: (H, W).
        block_p: output pixels per program (a power of two); with ``block_c`` also ``None`` (default) the block
            sizes are autotuned on CUDA among :data:`AUTOTUNE_CONFIGS` (once per channel count and sizes) and are
            :data:`BLOCK_P`, :data:`BLOCK_C` under the interpreter.
        block_c: channels per inner step (a power of two).

    Returns:
        (B, K, H, W) float32 map before the ReLU; equals :func:`fuse_gather` up to float rounding.

    Raises:
        RuntimeError: Triton or a CUDA device is unavailable (see :func:`triton_available`).
    """
    batch, classes, channels = check_fusion_inputs(acts, grads, weights)
    device = acts[0].device
    _require_triton(device, "matmul")
    for v in (block_p, block_c):
        if v is not None and (v < 1 or v & (v - 1)):
            raise ValueError(f"block sizes must be powers of two, got {v}.")
    autotune = block_p is None and block_c is None
    height, width = out_size
    n_scales = len(acts)
    a_flat = torch.cat([a.float().contiguous().reshape(-1) for a in acts])
    g_flat = torch.cat([g.float().contiguous().reshape(-1) for g in grads])
    a_sizes = [a.numel() for a in acts]
    g_sizes = [g.numel() for g in grads]
    a_off = torch.tensor([sum(a_sizes[:s]) for s in range(n_scales)], dtype=torch.int64, device=device)
    g_off = torch.tensor([sum(g_sizes[:s]) for s in range(n_scales)], dtype=torch.int64, device=device)
    hs = torch.tensor([a.shape[-2] for a in acts], dtype=torch.int32, device=device)
    ws = torch.tensor([a.shape[-1] for a in acts], dtype=torch.int32, device=device)
    rows = [bilinear_taps(a.shape[-2], height, device) for a in acts]
    cols = [bilinear_taps(a.shape[-1], width, device) for a in acts]
    ri0, ri1, rlam = (torch.stack([r[i] for r in rows]).contiguous() for i in range(3))
    cj0, cj1, cmu = (torch.stack([c[i] for c in cols]).contiguous() for i in range(3))
    w = weights.to(device=device, dtype=torch.float32).contiguous()
    out = torch.empty(batch, classes, height, width, device=device, dtype=torch.float32)
    args = (a_flat, g_flat, a_off, g_off, hs, ws, ri0, ri1, rlam, cj0, cj1, cmu, w, out)
    sizes = (classes, channels, height, width, n_scales)
    kernel = _kernel(autotune)
    if autotune and not interpreter_enabled():
        kernel[lambda meta: (triton_cdiv(height * width, meta["BLOCK_P"]), batch * classes)](*args, *sizes)
    else:
        bp, bc = block_p or BLOCK_P, block_c or BLOCK_C
        kernel[(triton_cdiv(height * width, bp), batch * classes)](*args, *sizes, BLOCK_P=bp, BLOCK_C=bc)
    return out


def triton_cdiv(a: int, b: int) -> int:
    """Ceiling division (the number of programs covering ``a`` items ``b`` at a time)."""
    return -(-a // b)


_VERIFIED: dict[str, bool] = {}


def triton_usable(device: torch.device | str, check: Callable[[], bool] | None = None) -> bool:
    """Whether the opt-in kernels (``fusion="triton"`` / ``"triton-gather"``) work on ``device``: Triton available
    *and* a one-time self-check of both kernels on small random problems agrees with :func:`fuse_gather` within 1e-4
    (relative). A failing check (or an exception) warns once; the verdict is cached per device. The default fusion
    (``"gram"``) never needs Triton."""
    dev = torch.device(device)
    if not triton_available(dev):
        return False
    key = str(dev)
    if key not in _VERIFIED:
        try:
            ok = (check or (lambda: _self_check(dev)))()
        except Exception as err:  # a compile or launch failure must not break the exact path
            warnings.warn(f"Triton fusion kernel unusable on {dev} ({err!r}); use fusion='gram'.", stacklevel=2)
            ok = False
        else:
            if not ok:
                warnings.warn(f"Triton fusion kernel failed its self-check on {dev}; use fusion='gram'.", stacklevel=2)
        _VERIFIED[key] = ok
    return _VERIFIED[key]


def _self_check(device: torch.device) -> bool:
    gen = torch.Generator().manual_seed(0)
    sizes = [(3, 4), (5, 6), (7, 9)]
    acts = [torch.randn(2, 37, h, w, generator=gen).to(device) for h, w in sizes]
    grads = [torch.randn(2, 2, 37, h, w, generator=gen).to(device) for h, w in sizes]
    weights = torch.tensor([[[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]]] * 2, device=device)
    for out in ((19, 23), (23, 19)):  # both orientations of the Gram kernel
        ref = fuse_gather(acts, grads, weights, out)
        tol = 1e-4 * ref.abs().max().clamp_min(1.0)
        if not bool((fuse_triton_gram(acts, grads, weights, out) - ref).abs().max() <= tol):
            return False
        if not bool((fuse_triton(acts, grads, weights, out) - ref).abs().max() <= tol):
            return False
    return True


# -- Triton, Gram form -----------------------------------------------------------------------------------------------

GRAM_AUTOTUNE_CONFIGS: tuple[tuple[int, int, int, int], ...] = (
    (64, 64, 32, 4),
    (64, 128, 32, 8),
    (128, 64, 32, 8),
    (32, 128, 32, 4),
    (64, 256, 16, 8),
)
"""(BLOCK_I, BLOCK_J, BLOCK_C, num_warps) candidates of the Gram kernel, tried once per problem shape on CUDA."""

_GRAM_KERNELS: dict[tuple[bool, bool], Any] = {}


def _gram_kernel(autotune: bool = False) -> Any:
    """Build (once) the jitted Gram kernel; see :func:`fuse_triton_gram`."""
    interp = interpreter_enabled()
    autotune = autotune and not interp
    if (interp, autotune) in _GRAM_KERNELS:
        return _GRAM_KERNELS[(interp, autotune)]
    import triton
    import triton.language as tl

    @triton.jit  # type: ignore[untyped-decorator]
    def cameras_gram_kernel(  # type: ignore[no-untyped-def]
        a_ptr,  # float32, every scale's A in channels-last layout (B, h_s, w_s, C), concatenated flat
        g_ptr,  # float32, every scale's G as (B, K, h_s, w_s, C), concatenated flat
        abase_ptr,  # int64 (Σh,) offset of stacked row i (scale s, source row r) in a_ptr for image 0: off_s + r·w_s·C
        gbase_ptr,  # int64 (Σh,) the same in g_ptr
        plane_ptr,  # int64 (Σh,) h_s·w_s·C: elements of one image (A) or one (image, class) (G) at row i's scale
        j0_ptr,  # int32 (W, Σh) left source column of output column x at row i's scale
        j1_ptr,  # int32 (W, Σh) right source column
        mu_ptr,  # float32 (W, Σh) weight of the right column
        out_ptr,  # float32 (B, K, W, Σh, Σh) Gram matrices
        K,
        C,
        SH,
        BLOCK_I: tl.constexpr,
        BLOCK_J: tl.constexpr,
        BLOCK_C: tl.constexpr,
    ):
        x = tl.program_id(0)
        n_j = tl.cdiv(SH, BLOCK_J)
        blk_i = tl.program_id(1) // n_j
        blk_j = tl.program_id(1) % n_j
        bk = tl.program_id(2)  # b · K + k
        b = bk // K
        i = blk_i * BLOCK_I + tl.arange(0, BLOCK_I)
        j = blk_j * BLOCK_J + tl.arange(0, BLOCK_J)
        mi = i < SH
        mj = j < SH
        # A side (rows i): image b's plane at row i's scale, the two source columns and the weight for column x
        a_row = tl.load(abase_ptr + i, mask=mi, other=0) + b.to(tl.int64) * tl.load(plane_ptr + i, mask=mi, other=0)
        a_c0 = tl.load(j0_ptr + x * SH + i, mask=mi, other=0).to(tl.int64) * C
        a_c1 = tl.load(j1_ptr + x * SH + i, mask=mi, other=0).to(tl.int64) * C
        a_mu = tl.load(mu_ptr + x * SH + i, mask=mi, other=0.0)
        g_row = tl.load(gbase_ptr + j, mask=mj, other=0) + bk.to(tl.int64) * tl.load(plane_ptr + j, mask=mj, other=0)
        g_c0 = tl.load(j0_ptr + x * SH + j, mask=mj, other=0).to(tl.int64) * C
        g_c1 = tl.load(j1_ptr + x * SH + j, mask=mj, other=0).to(tl.int64) * C
        g_mu = tl.load(mu_ptr + x * SH + j, mask=mj, other=0.0)
        cs = tl.arange(0, BLOCK_C)
        acc = tl.zeros([BLOCK_I, BLOCK_J], dtype=tl.float32)
        for c0 in range(0, C, BLOCK_C):
            c = c0 + cs
            mc = c < C
            ma = mi[:, None] & mc[None, :]
            a0 = tl.load(a_ptr + (a_row + a_c0)[:, None] + c[None, :], mask=ma, other=0.0)
            a1 = tl.load(a_ptr + (a_row + a_c1)[:, None] + c[None, :], mask=ma, other=0.0)
            t_a = (1.0 - a_mu)[:, None] * a0 + a_mu[:, None] * a1  # (BLOCK_I, BLOCK_C) column-resized A
            mg = mc[:, None] & mj[None, :]
            g0 = tl.load(g_ptr + (g_row + g_c0)[None, :] + c[:, None], mask=mg, other=0.0)
            g1 = tl.load(g_ptr + (g_row + g_c1)[None, :] + c[:, None], mask=mg, other=0.0)
            t_g = (1.0 - g_mu)[None, :] * g0 + g_mu[None, :] * g1  # (BLOCK_C, BLOCK_J) column-resized G
            acc = tl.dot(t_a, t_g, acc, input_precision="tf32x3")
        dst = out_ptr + (bk.to(tl.int64) * tl.num_programs(0) + x) * SH * SH
        tl.store(dst + i[:, None] * SH + j[None, :], acc, mask=mi[:, None] & mj[None, :])

    kernel = cameras_gram_kernel
    if autotune:
        configs = [
            triton.Config({"BLOCK_I": bi, "BLOCK_J": bj, "BLOCK_C": bc}, num_warps=w)
            for bi, bj, bc, w in GRAM_AUTOTUNE_CONFIGS
        ]
        kernel = triton.autotune(configs=configs, key=["K", "C", "SH"])(cameras_gram_kernel)
    _GRAM_KERNELS[(interp, autotune)] = kernel
    return kernel


def fuse_triton_gram(
    acts: Sequence[Tensor],
    grads: Sequence[Tensor],
    weights: Tensor,
    out_size: tuple[int, int],
    *,
    blocks: tuple[int, int, int] | None = None,
    max_images: int | None = None,
) -> Tensor:
    r"""Σ_c Ā_c ⊙ Ḡ_c in Gram form (:func:`cameras.engine.fuse.fuse_gram`) with one Triton kernel for the heavy part.

    The kernel reads each scale's low-resolution A and G (moved once to channels-last, so that a tile's channels are
    contiguous), resizes them along the columns on the fly (two taps per element), and contracts the channels on
    tensor cores with three TF32 products of split operands (``input_precision="tf32x3"``: float32 accuracy). It
    writes only the (W, Σh, Σh) Gram matrices of each (image, class); the map is then
    :math:`M(y, x) = \sum_{p,q} v_{y,p} v_{y,q}\,\mathrm{Gram}_x(n_{y,p}, n_{y,q})` over the 2·S rows
    :math:`n_{y,\cdot}` that the bilinear row resize of output row y reads (weights :math:`v` include the scale
    weights), a small gather done in PyTorch. No C×H×W (or C×Σh×W) tensor is ever allocated.

    Args:
        acts: S tensors (B, C, h_s, w_s) on one CUDA device.
        grads: S tensors (B, K, C, h_s, w_s).
        weights: (B, K, S) scale weights (1/n_kept on kept scales, 0 elsewhere).
        out_size: (H, W).
        blocks: (BLOCK_I, BLOCK_J, BLOCK_C) powers of two ≥ 16; ``None`` autotunes on CUDA among
            :data:`GRAM_AUTOTUNE_CONFIGS` (and uses the first one under the interpreter).
        max_images: images per kernel launch (bounds the Gram buffer; default: ≈256 MB of Gram matrices).

    Returns:
        (B, K, H, W) float32 map before the ReLU; equals :func:`fuse_gather` up to float rounding (≈1e-6 relative).

    Raises:
        RuntimeError: Triton or a CUDA device is unavailable (see :func:`triton_available`).
    """
    batch, classes, channels = check_fusion_inputs(acts, grads, weights)
    device = acts[0].device
    _require_triton(device, "gram")
    if blocks is not None and any(v < 16 or v & (v - 1) for v in blocks):
        raise ValueError(f"block sizes must be powers of two ≥ 16, got {blocks}.")
    height, width = out_size
    if gram_transposed(acts, out_size):  # contract along the cheaper side
        out_t = fuse_triton_gram(
            [a.transpose(-1, -2) for a in acts],
            [g.transpose(-1, -2) for g in grads],
            weights,
            (width, height),
            blocks=blocks,
            max_images=max_images,
        )
        return out_t.transpose(-1, -2).contiguous()
    n_scales = len(acts)
    sum_h = sum(a.shape[-2] for a in acts)
    a_flat = torch.cat([a.float().permute(0, 2, 3, 1).reshape(-1) for a in acts])  # (B, h, w, C) per scale
    g_flat = torch.cat([g.float().permute(0, 1, 3, 4, 2).reshape(-1) for g in grads])  # (B, K, h, w, C)
    a_off = g_off = 0
    abase: list[int] = []
    gbase: list[int] = []
    plane: list[int] = []
    j0s, j1s, mus, row_scale, row_src = [], [], [], [], []
    for s, a in enumerate(acts):
        h_s, w_s = int(a.shape[-2]), int(a.shape[-1])
        p = h_s * w_s * channels
        abase += [a_off + r * w_s * channels for r in range(h_s)]
        gbase += [g_off + r * w_s * channels for r in range(h_s)]
        plane += [p] * h_s
        row_scale += [s] * h_s
        row_src += list(range(h_s))
        a_off += batch * p
        g_off += batch * classes * p
        j0, j1, mu = _taps_cpu(w_s, width)
        j0s.append(j0[:, None].expand(width, h_s))
        j1s.append(j1[:, None].expand(width, h_s))
        mus.append(mu[:, None].expand(width, h_s))
    abase_t = torch.tensor(abase, dtype=torch.int64, device=device)
    gbase_t = torch.tensor(gbase, dtype=torch.int64, device=device)
    plane_t = torch.tensor(plane, dtype=torch.int64, device=device)
    j0_t = torch.cat(j0s, 1).contiguous().to(device)
    j1_t = torch.cat(j1s, 1).contiguous().to(device)
    mu_t = torch.cat(mus, 1).contiguous().to(device)
    # sparse row resize: output row y reads rows n[y, 2s], n[y, 2s+1] of the stack with weights lam
    starts = [0]
    for a in acts:
        starts.append(starts[-1] + int(a.shape[-2]))
    n_idx = torch.empty(height, 2 * n_scales, dtype=torch.int64)
    n_val = torch.empty(height, 2 * n_scales, dtype=torch.float32)
    for s, a in enumerate(acts):
        i0, i1, lam = _taps_cpu(int(a.shape[-2]), height)
        n_idx[:, 2 * s], n_idx[:, 2 * s + 1] = starts[s] + i0.long(), starts[s] + i1.long()
        n_val[:, 2 * s], n_val[:, 2 * s + 1] = 1.0 - lam, lam
    n_idx, n_val = n_idx.to(device), n_val.to(device)
    scale_of = torch.arange(n_scales, device=device).repeat_interleave(2)  # column p of n_idx belongs to scale p // 2
    w = weights.to(device=device, dtype=torch.float32)
    per_image = classes * width * sum_h * sum_h
    step = max_images or max(1, (1 << 26) // per_image)
    kernel = _gram_kernel(autotune=blocks is None)
    out = torch.empty(batch, classes, height, width, device=device, dtype=torch.float32)
    for b0 in range(0, batch, step):
        b1 = min(batch, b0 + step)
        nb = b1 - b0
        gram = torch.empty(nb, classes, width, sum_h, sum_h, device=device, dtype=torch.float32)
        # the kernel addresses image b0 + b through offsets of image 0: shift the base pointers by b0 images
        args = (
            a_flat,
            g_flat,
            abase_t + b0 * plane_t,
            gbase_t + b0 * classes * plane_t,
            plane_t,
            j0_t,
            j1_t,
            mu_t,
            gram,
            classes,
            channels,
            sum_h,
        )
        if blocks is None and not interpreter_enabled():

            def grid(meta: dict[str, int], nb: int = nb) -> tuple[int, int, int]:
                return (width, triton_cdiv(sum_h, meta["BLOCK_I"]) * triton_cdiv(sum_h, meta["BLOCK_J"]), nb * classes)

            kernel[grid](*args)
        else:
            bi, bj, bc = blocks or GRAM_AUTOTUNE_CONFIGS[0][:3]
            kernel[(width, triton_cdiv(sum_h, bi) * triton_cdiv(sum_h, bj), nb * classes)](
                *args, BLOCK_I=bi, BLOCK_J=bj, BLOCK_C=bc
            )
        vals = n_val[None, None] * w[b0:b1, :, scale_of][:, :, None, :]  # (nb, K, H, 2S)
        quad = (vals[..., :, None] * vals[..., None, :])[:, :, None]  # (nb, K, 1, H, 2S, 2S)
        pairs = gram[:, :, :, n_idx[:, :, None], n_idx[:, None, :]]  # (nb, K, W, H, 2S, 2S)
        out[b0:b1] = (pairs * quad).sum(dim=(-1, -2)).transpose(-1, -2)  # (nb, K, W, H) → (nb, K, H, W)
        del gram, pairs
    return out
