r"""Tiled Gram fusion: the CAMERAS map from small local channel contractions, one per output tile
(``fuse(..., impl="tiles")``; the fastest path measured on the CPU, 108 ms/image for ResNet-50's 2048 channels on 2
cores, 4.4–4.8× faster than ``"gram"``; not yet timed on a GPU).

The CAMERAS fusion (Jalwana et al., CVPR 2021, Eq. 2-4) is, for one (image, class),

.. math:: M(p) = \sum_c \bar A_c(p)\,\bar G_c(p),\qquad
          \bar A_c(p) = \sum_s w_s\,\mathrm{up}_s(A_{s,c})(p) = \sum_{q} u_p(q)\,A_c(q),

where q runs over the low-resolution positions of all kept scales stacked together and :math:`u_p` holds pixel p's
bilinear weights times the scale weights (at most four non-zeros per scale). Re-associating the sums,

.. math:: M(p) = u_p^\top\,\Gamma\,u_p,\qquad \Gamma(q, q') = \sum_c A_c(q)\,G_c(q'),

a Gram matrix of low-resolution positions. Only entries whose positions are both read by some pixel are ever used,
and the bilinear footprint of a pixel is local, so :func:`fuse_tiles` cuts the output into tiles, gathers the
N positions (over all scales) that a tile's pixels read, contracts the channels of those N rows once per tile (an
N × N Gram, one batched matrix product over all tiles), and evaluates each pixel's quadratic form with a dense
(pixels × N) interpolation matrix. Nothing of size C × H × W exists; per (image, class) the work is
≈ 2·n·N²·(C + P) multiply-adds for n tiles of P pixels, against 2·W·(Σh)²·C for the column-wise Gram
(:func:`.gram.fuse_gram`), and the gathered tiles hold n·N·C values instead of its W·Σh·C.

:func:`tile_plan` precomputes, per (scale shapes, output size, tile), which positions each tile reads and the
interpolation weights of its pixels; it is cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import Tensor

from .resize import bilinear_matrix, check_fusion_inputs, step_sizes

__all__ = ["TilePlan", "auto_tile", "fuse_tiles", "taps_bytes", "tile_plan"]

_STEP_ELEMENTS = 1 << 23
"""Values in the gathered A and G tiles of one step on the CPU (≈32 MB of float32 each: ≈450 channels for ResNet-50
at 224 px; 2-core CPU timings of 64, ≈450 and 512 channels per step: 160, 108, 127 ms, benchmarks/fusion_cpu.json);
×32 (≈1 GB) on CUDA."""


@dataclass(frozen=True)
class TilePlan:
    """Where each output tile reads from and how its pixels weight what they read.

    Attributes:
        index: (n, N) int64, the stacked low-resolution positions (scale-major, then row-major within a scale) read
            by each of the n tiles; a tile that reads fewer than N repeats one of its positions with zero weight.
        scale: (n, N) int64, the scale of each of those positions.
        taps: (n, P, N) float32, the bilinear weight of position j for pixel i of the tile (P = tile height × width,
            row-major; pixels outside the output have all-zero rows).
        grid: tiles along the output's height and width, ``n = grid[0] · grid[1]`` (row-major).
        tile: (tile height, tile width) in output pixels.
    """

    index: Tensor
    scale: Tensor
    taps: Tensor
    grid: tuple[int, int]
    tile: tuple[int, int]

    def to(self, device: torch.device | str) -> TilePlan:
        return TilePlan(self.index.to(device), self.scale.to(device), self.taps.to(device), self.grid, self.tile)


@lru_cache(maxsize=256)
def _axis_read(n_in: int, n_out: int, t: int) -> tuple[Tensor, Tensor]:
    """The bilinear weights (tiles, t, n_in) of each tile of t output coordinates along one axis (zero past n_out),
    and which source indices each tile reads (tiles, n_in) bool."""
    tiles = -(-n_out // t)
    padded = torch.zeros(tiles * t, n_in, dtype=torch.float64)
    padded[:n_out] = bilinear_matrix(n_in, n_out).double()
    weights = padded.view(tiles, t, n_in)
    return weights, weights.abs().sum(1) > 0


def _axis_windows(n_in: int, n_out: int, t: int) -> tuple[Tensor, Tensor]:
    """Per tile of t output coordinates along one axis: the start of a window of L source indices holding all those
    the tile reads (L = the most any tile spans), and the (tiles, t, L) bilinear weights on that window."""
    weights, read = _axis_read(n_in, n_out, t)
    cols = torch.arange(n_in)
    first = torch.where(read, cols, n_in).amin(1)
    length = int((torch.where(read, cols, -1).amax(1) + 1 - first).max())
    start = torch.minimum(first, torch.full_like(first, n_in - length))  # keep [start, start + L) inside the input
    window = start[:, None] + torch.arange(length)  # (tiles, L)
    return start, torch.gather(weights, 2, window[:, None, :].expand(-1, t, length))


def _tile_counts(
    sizes: tuple[tuple[int, int], ...], out_size: tuple[int, int], tile: tuple[int, int]
) -> tuple[int, int]:
    """(n, N) of :func:`tile_plan` without building it: tiles, and the most positions any tile reads."""
    counts = sum(
        _axis_read(h, out_size[0], tile[0])[1].sum(1)[:, None] * _axis_read(w, out_size[1], tile[1])[1].sum(1)
        for h, w in sizes
    )  # (nty, ntx): Σ_s rows read × columns read
    assert isinstance(counts, Tensor)
    return counts.numel(), int(counts.max())


@lru_cache(maxsize=8)
def _plan_cpu(sizes: tuple[tuple[int, int], ...], out_size: tuple[int, int], tile: tuple[int, int]) -> TilePlan:
    height, width = out_size
    ty, tx = tile
    # Per scale and axis, a fixed-length window per tile; a window slot (s, i, j) is row i, column j of scale s's
    # window. Row quantities of all scales are concatenated along one axis (likewise columns).
    row_w, col_w, row_abs, col_abs, row_read, col_read = [], [], [], [], [], []
    slot_scale, slot_row, slot_col, slot_base, slot_width = [], [], [], [], []
    offset = 0
    for s, (h, w) in enumerate(sizes):
        r0, rw = _axis_windows(h, height, ty)  # (nty,), (nty, ty, Lr)
        c0, cw = _axis_windows(w, width, tx)  # (ntx,), (ntx, tx, Lc)
        lr, lc = rw.shape[-1], cw.shape[-1]
        rows = r0[:, None] + torch.arange(lr)  # (nty, Lr) absolute source rows
        cols = c0[:, None] + torch.arange(lc)
        row_w.append(rw)
        col_w.append(cw)
        row_abs.append(rows)
        col_abs.append(cols)
        row_read.append(torch.gather(_axis_read(h, height, ty)[1], 1, rows))
        col_read.append(torch.gather(_axis_read(w, width, tx)[1], 1, cols))
        i, j = torch.meshgrid(torch.arange(lr), torch.arange(lc), indexing="ij")
        slot_row.append(i.flatten() + sum(r.shape[-1] for r in row_w[:-1]))
        slot_col.append(j.flatten() + sum(c.shape[-1] for c in col_w[:-1]))
        slot_scale.append(torch.full((lr * lc,), s))
        slot_base.append(torch.full((lr * lc,), offset))
        slot_width.append(torch.full((lr * lc,), w))
        offset += h * w
    rw_all, cw_all = torch.cat(row_w, 2).float(), torch.cat(col_w, 2).float()  # (nty, ty, ΣLr), (ntx, tx, ΣLc)
    rabs, cabs = torch.cat(row_abs, 1), torch.cat(col_abs, 1)  # absolute source row / column of each window slot
    rread, cread = torch.cat(row_read, 1), torch.cat(col_read, 1)
    srow, scol, sscale = torch.cat(slot_row), torch.cat(slot_col), torch.cat(slot_scale)
    sbase, swidth = torch.cat(slot_base), torch.cat(slot_width)
    nty, ntx = rw_all.shape[0], cw_all.shape[0]
    # a window slot is read by the tile iff its row and its column are: pack the read slots first, in order
    used = (rread[:, None, srow] & cread[None, :, scol]).reshape(nty * ntx, -1)  # (n, N_window)
    n_used = int(used.sum(1).max())
    order = torch.sort((~used).to(torch.uint8), dim=1, stable=True).indices[:, :n_used]  # (n, N) window slots
    keep = torch.gather(used, 1, order)
    order = torch.where(keep, order, order[:, :1])  # pad with the tile's first slot, at zero weight
    tile_row = torch.arange(nty).repeat_interleave(ntx)[:, None]  # (n, 1)
    tile_col = torch.arange(ntx).repeat(nty)[:, None]
    index = sbase[order] + rabs[tile_row, srow[order]] * swidth[order] + cabs[tile_col, scol[order]]
    r_sel = torch.gather(rw_all[tile_row[:, 0]], 2, srow[order][:, None, :].expand(-1, ty, -1))  # (n, ty, N)
    c_sel = torch.gather(cw_all[tile_col[:, 0]], 2, scol[order][:, None, :].expand(-1, tx, -1))  # (n, tx, N)
    taps = (r_sel[:, :, None, :] * c_sel[:, None, :, :] * keep[:, None, None, :]).reshape(nty * ntx, ty * tx, -1)
    return TilePlan(index.contiguous(), sscale[order].contiguous(), taps, (nty, ntx), tile)


@lru_cache(maxsize=8)
def _plan_on(
    sizes: tuple[tuple[int, int], ...], out_size: tuple[int, int], tile: tuple[int, int], device: str
) -> TilePlan:
    return _plan_cpu(sizes, out_size, tile).to(device)


def tile_plan(
    sizes: Sequence[tuple[int, int]],
    out_size: tuple[int, int],
    tile: tuple[int, int],
    device: torch.device | str = "cpu",
) -> TilePlan:
    """The (cached) :class:`TilePlan` of scales with feature maps ``sizes`` fused into ``out_size`` by ``tile``.

    Example:
        >>> plan = tile_plan([(2, 2), (3, 3)], (8, 8), (4, 4))
        >>> plan.grid, plan.taps.shape[:2]
        ((2, 2), torch.Size([4, 16]))
        >>> bool(torch.allclose(plan.taps.sum(-1), torch.full((4, 16), 2.0)))  # each pixel: weights 1 per scale
        True
    """
    if tile[0] < 1 or tile[1] < 1:
        raise ValueError(f"tile must be positive, got {tile}.")
    key = tuple((int(h), int(w)) for h, w in sizes)
    out = (int(out_size[0]), int(out_size[1]))
    t = (min(int(tile[0]), out[0]), min(int(tile[1]), out[1]))
    return _plan_on(key, out, t, str(torch.device(device)))


_TILE_CANDIDATES = (8, 12, 16, 20, 24, 28, 32, 40, 48, 64)
_EVAL_WEIGHT = 4
_GATHER_WEIGHT = 128
"""Cost-model weights, in Gram multiply-adds, of one multiply-add of the per-pixel evaluation (a smaller batched
product followed by a memory-bound reduction) and of one gathered value (copied, written, read back): fitted roughly
to timings of ResNet-50 and EfficientNet-Lite0 shapes on a 2-core CPU; a GPU's ratio of float32 throughput to memory
bandwidth is of the same order."""


def auto_tile(
    sizes: Sequence[tuple[int, int]],
    out_size: tuple[int, int],
    channels: int,
    classes: int = 1,
    *,
    max_taps_bytes: int | None = None,
) -> int | None:
    """The square tile side among a few candidates with the smallest modelled cost: multiply-adds of the Gram
    (n·N²·C·K) and of the per-pixel evaluation (n·P·N²·K) and the gathered values (n·N·C·(1 + K)), the last two
    weighted by :data:`_EVAL_WEIGHT` and :data:`_GATHER_WEIGHT`.

    Args:
        sizes: (h_s, w_s) of each scale's feature map.
        out_size: (H, W) of the map.
        channels: C.
        classes: K.
        max_taps_bytes: only tiles whose :class:`TilePlan` keeps at most this many bytes of interpolation weights
            (:func:`taps_bytes`); ``None`` if no candidate does.

    Example:
        >>> auto_tile([(7, 7), (14, 14), (29, 29)], (224, 224), channels=2048) in _TILE_CANDIDATES
        True
    """
    key = tuple((int(h), int(w)) for h, w in sizes)
    out = (int(out_size[0]), int(out_size[1]))
    best, best_cost = None, float("inf")
    for t in _TILE_CANDIDATES:
        tile = (min(t, out[0]), min(t, out[1]))
        n, n_pos = _tile_counts(key, out, tile)
        if max_taps_bytes is None or 4 * n * tile[0] * tile[1] * n_pos <= max_taps_bytes:
            cost = n * n_pos * n_pos * (channels + _EVAL_WEIGHT * tile[0] * tile[1]) * classes
            cost += _GATHER_WEIGHT * n * n_pos * channels * (1 + classes)
            if cost < best_cost:
                best, best_cost = t, cost
        if t >= max(out):
            break
    return best


def taps_bytes(sizes: Sequence[tuple[int, int]], out_size: tuple[int, int], tile: int | tuple[int, int]) -> int:
    """Bytes of the interpolation weights a :class:`TilePlan` keeps: H·W·N float32 values, rounded up to whole tiles."""
    t = (tile, tile) if isinstance(tile, int) else tile
    t = (min(t[0], out_size[0]), min(t[1], out_size[1]))
    n, n_pos = _tile_counts(tuple((int(h), int(w)) for h, w in sizes), (out_size[0], out_size[1]), t)
    return 4 * n * t[0] * t[1] * n_pos


def fuse_tiles(
    acts: Sequence[Tensor],
    grads: Sequence[Tensor],
    weights: Tensor,
    out_size: tuple[int, int],
    *,
    tile: int | tuple[int, int] | None = None,
    chunk_size: int | None = None,
    images_per_step: int | None = None,
) -> Tensor:
    """The CAMERAS fusion Σ_c Ā_c ⊙ Ḡ_c by per-tile Gram matrices (see the module docstring); exact up to float
    rounding, float32 throughout.

    Args:
        acts: S tensors (B, C, h_s, w_s), one per kept scale.
        grads: S tensors (B, K, C, h_s, w_s).
        weights: (B, K, S) scale weights (1/n_kept on kept scales, 0 elsewhere).
        out_size: (H, W).
        tile: output tile side, or (height, width) (default: :func:`auto_tile`).
        chunk_size: channels per step (default: the gathered tiles of one step hold ≈32 MB per buffer on the CPU,
            ≈1 GB on CUDA).
        images_per_step: images per step (default: 1 on the CPU, as many as fit the budget on CUDA).

    Returns:
        (B, K, H, W) float32 map before the ReLU.

    Example:
        >>> a, g = [torch.ones(1, 2, 3, 3)], [torch.ones(1, 1, 2, 3, 3)]
        >>> fuse_tiles(a, g, torch.ones(1, 1, 1), (5, 4)).unique().tolist()
        [2.0]
    """
    batch, classes, channels = check_fusion_inputs(acts, grads, weights)
    sizes = [(int(a.shape[-2]), int(a.shape[-1])) for a in acts]
    height, width = out_size
    device = acts[0].device
    if tile is None:
        tile = auto_tile(sizes, out_size, channels, classes) or _TILE_CANDIDATES[0]
    plan = tile_plan(sizes, out_size, (tile, tile) if isinstance(tile, int) else tile, device)
    n, pixels, n_pos = plan.taps.shape
    (nty, ntx), (ty, tx) = plan.grid, plan.tile
    flat = plan.index.flatten()
    n_stacked = sum(h * w for h, w in sizes)
    cuda = device.type == "cuda"
    budget = _STEP_ELEMENTS * (32 if cuda else 1)
    per_channel = n * n_pos * (1 + classes)
    step, group = step_sizes(
        channels, per_channel, budget, cuda=cuda, chunk_size=chunk_size, images_per_step=images_per_step
    )
    w_local = weights.to(device=device, dtype=torch.float32)[:, :, plan.scale]  # (B, K, n, N)
    out = torch.empty(batch, classes, height, width, device=device, dtype=torch.float32)
    for b0 in range(0, batch, group):
        b1 = min(batch, b0 + group)
        nb = b1 - b0
        # Γ of every (image, tile) with the K classes side by side: (nb·n, N, N·K), column index q·K + k
        gram = torch.zeros(nb * n, n_pos, n_pos * classes, device=device, dtype=torch.float32)
        for c0 in range(0, channels, step):
            c1 = min(channels, c0 + step)
            c = c1 - c0
            # every scale's positions stacked, channels last: (nb, Σhw, c) and (nb, Σhw, K·c)
            pos_a = torch.cat([a[b0:b1, c0:c1].float().flatten(2).transpose(1, 2) for a in acts], 1)
            pos_g = torch.cat(
                [g[b0:b1, :, c0:c1].float().flatten(3).permute(0, 3, 1, 2).reshape(nb, -1, classes * c) for g in grads],
                1,
            )
            # row gathers of 2-D tensors (10× faster on a CPU than index_select along dim 1 of a 3-D one)
            rows = (torch.arange(nb, device=device)[:, None] * n_stacked + flat).flatten()
            tile_a = torch.index_select(pos_a.view(nb * n_stacked, c), 0, rows).view(nb * n, n_pos, c)
            tile_g = torch.index_select(pos_g.view(nb * n_stacked, classes * c), 0, rows)
            tile_g = tile_g.view(nb * n, n_pos * classes, c)
            gram.baddbmm_(tile_a, tile_g.transpose(1, 2))
            del pos_a, pos_g, tile_a, tile_g
        g5 = gram.view(nb, n, n_pos, n_pos, classes)
        wl = w_local[b0:b1].permute(0, 2, 3, 1)  # (nb, n, N, K)
        g5 *= wl[:, :, :, None, :] * wl[:, :, None, :, :]
        # per tile, all (image, class) Grams side by side: (n, N, nb·K·N); then z = taps @ Γ and M(p) = Σ_q z u_p(q)
        rhs = g5.permute(1, 2, 0, 4, 3).reshape(n, n_pos, nb * classes * n_pos)
        z = torch.bmm(plan.taps, rhs).view(n, pixels, nb * classes, n_pos)
        vals = (z * plan.taps[:, :, None, :]).sum(-1)  # (n, P, nb·K)
        del gram, g5, rhs, z
        full = vals.view(nty, ntx, ty, tx, nb, classes).permute(4, 5, 0, 2, 1, 3).reshape(nb, classes, nty * ty, -1)
        out[b0:b1] = full[:, :, :height, :width]
    return out
