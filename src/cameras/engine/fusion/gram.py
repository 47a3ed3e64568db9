r"""Column-wise Gram fusion: the CAMERAS map with the channels contracted at low resolution, one Gram matrix per
output column (``fuse(..., impl="gram")``; the fastest path measured on CUDA, 2.07 ms/image on an H100 for 2048
channels, and the CPU fallback of ``"tiles"``).

With the row and column resize matrices of all scales stacked, :math:`R = [U^h_1 \dots U^h_S]` (H × Σh) and
:math:`C_s = U^w_s` (W × w_s), the averaged maps are :math:`\bar A_c = R\,T^A_c` where the (Σh × W) matrix
:math:`T^A_c` stacks :math:`w_s A_{c,s} C_s^\top` over scales (likewise :math:`\bar G_c`). For each output column x
the map is then a quadratic form in the y-th row of R:

.. math:: M(y, x) = \sum_c (R\,t^A_{c,x})_y (R\,t^G_{c,x})_y = r_y^\top \Big(\sum_c t^A_{c,x} {t^G_{c,x}}^\top
          \Big) r_y,

so the channel sum becomes one batched (Σh × C)·(C × Σh) product per column (W of them), and only the small
(W, Σh, Σh) matrices are ever kept. Cost ≈ 2·W·Σh²·C multiply-adds per (image, class) instead of 4·C·H·W·Σh for
the ``"matmul"`` path. Rows and columns may be swapped (:func:`gram_transposed`); the map is the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .resize import CHUNK_ELEMENTS, bilinear_matrix, check_fusion_inputs, step_sizes

__all__ = ["fuse_gram", "gram_transposed"]


def gram_transposed(acts: Sequence[Tensor], out_size: tuple[int, int]) -> bool:
    """Whether :func:`fuse_gram` works on the transposed problem (Gram matrices over the scales' stacked columns,
    one per output row): when H·(Σw)² > W·(Σh)² (Σ over the scales' widths w_s and heights h_s).

    That is the orientation with *more* Gram multiply-adds, yet not always the slower one: the column resize, the
    copies and the batched products' sizes count too. On a shared 2-core CPU (2026-12-01, 512 channels) this rule
    picked the faster orientation for ResNet-50's scales of a 224×320 input (0.14 s against 0.19 s) and for one tall
    case, the slower one for one wide case (0.93 s against 0.63 s); square problems (the paper's schedule) never
    transpose. A better rule needs more shapes measured; both orientations give the same map.

    Example:
        >>> gram_transposed([torch.zeros(1, 1, 3, 9)], (20, 20))
        True
        >>> gram_transposed([torch.zeros(1, 1, 9, 3)], (20, 20))
        False
    """
    height, width = out_size
    sum_h = sum(int(a.shape[-2]) for a in acts)
    sum_w = sum(int(a.shape[-1]) for a in acts)
    return height * sum_w * sum_w > width * sum_h * sum_h


def fuse_gram(
    acts: Sequence[Tensor],
    grads: Sequence[Tensor],
    weights: Tensor,
    out_size: tuple[int, int],
    *,
    chunk_size: int | None = None,
    images_per_step: int | None = None,
) -> Tensor:
    """The CAMERAS fusion Σ_c Ā_c ⊙ Ḡ_c in column-wise Gram form (see the module docstring); exact up to float
    rounding, float32 throughout.

    Args:
        acts: S tensors (B, C, h_s, w_s), one per kept scale.
        grads: S tensors (B, K, C, h_s, w_s).
        weights: (B, K, S) scale weights (1/n_kept on kept scales, 0 elsewhere).
        out_size: (H, W).
        chunk_size: channels per step (default: ≈16 MB buffers on the CPU, ≈256 MB on CUDA, where fewer, larger
            products keep the GPU busy).
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
    if gram_transposed(acts, out_size):  # contract the columns instead: transpose everything
        out_t = fuse_gram(
            [a.transpose(-1, -2) for a in acts],
            [g.transpose(-1, -2) for g in grads],
            weights,
            (width, height),
            chunk_size=chunk_size,
            images_per_step=images_per_step,
        )
        return out_t.transpose(-1, -2).contiguous()
    sum_h = sum(int(a.shape[-2]) for a in acts)
    device = acts[0].device
    rows = torch.cat([bilinear_matrix(a.shape[-2], height, device) for a in acts], 1)  # (H, Σh)
    cols = [bilinear_matrix(a.shape[-1], width, device) for a in acts]  # (W, w_s)
    offsets = [0]
    for a in acts:
        offsets.append(offsets[-1] + a.shape[-2])
    w = weights.to(device=device, dtype=torch.float32)
    # t^A and t^G of one step hold (1 + K)·W·Σh·c floats per image: ≈16 MB per step on the CPU, one image at a time;
    # on CUDA ≈1 GB per step and several images at once, so that each step is a few large kernels.
    cuda = device.type == "cuda"
    budget = CHUNK_ELEMENTS * (64 if cuda else 1)
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
                t_a[:, :, offsets[s] : offsets[s + 1]] = (col @ a_s).view(nb, width, h_s, c)
                g_s = g[b0:b1, :, c0:c1].float().permute(0, 1, 4, 3, 2).reshape(nb, classes, w_s, h_s * c)
                t_g[:, :, :, offsets[s] : offsets[s + 1]] = (col @ g_s).view(nb, classes, width, h_s, c)
            # Σ_c t^A t^G^T for every (image, class, column x): one batched product
            lhs = t_a[:, None].expand(nb, classes, width, sum_h, c).reshape(-1, sum_h, c)
            rhs = t_g.reshape(-1, sum_h, c).transpose(1, 2)
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
