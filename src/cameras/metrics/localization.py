"""Localisation metrics: does the map point at the annotated object?

Conventions shared by every function here:

* ``saliency`` is a (B, H, W) floating tensor;
* ``boxes`` is a list of B float tensors of shape (K_i, 4), one per image, each row ``(x0, y0, x1, y1)`` in the
  map's pixel coordinates, **half-open**: pixel (x, y) (integer column x, row y) is inside when
  ``x0 <= x < x1`` and ``y0 <= y < y1``. Several boxes of one image count as their union; parts of a box outside
  the map are ignored. An image with no box (K_i = 0) has no pixel inside.
* **undefined is NaN**: a score is undefined — ``nan``, never a made-up 0 or 1 — for an image whose map is constant
  (:func:`cameras.engine.normalize.constant_maps`: it points nowhere; e.g. a degenerate map of a 1×1 feature map) or
  which has no box pixel on the map (no box, or every box outside the map). Average with ``torch.nanmean`` and count
  the undefined items with ``torch.isnan(scores).sum()``.

Everything is computed with batched torch operations on the maps' device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ..engine.normalize import constant_maps
from ._checks import check_boxes, check_saliency

__all__ = ["boxes_to_mask", "energy_in_box", "energy_in_mask", "pointing_game"]


def _flatten_boxes(boxes: list[Tensor], device: torch.device) -> tuple[Tensor, Tensor]:
    """All boxes as one (N, 4) float64 tensor, with the (N,) index of the image each belongs to."""
    counts = torch.tensor([b.shape[0] for b in boxes], device=device)
    owner = torch.repeat_interleave(torch.arange(len(boxes), device=device), counts)
    flat = torch.cat(boxes, dim=0) if boxes else torch.empty(0, 4, dtype=torch.float64, device=device)
    return flat, owner


def boxes_to_mask(boxes: Sequence[Tensor], size: tuple[int, int], device: torch.device | str = "cpu") -> Tensor:
    """Rasterise boxes into a (B, H, W) boolean mask (union of each image's boxes, half-open convention).

    Args:
        boxes: list of B tensors (K_i, 4), rows ``(x0, y0, x1, y1)`` in pixel coordinates.
        size: the map size ``(H, W)``.
        device: where the mask is made.

    Returns:
        BoolTensor (B, H, W): ``mask[b, y, x]`` is True when pixel (x, y) lies in one of image b's boxes.

    Example:
        >>> import torch
        >>> boxes_to_mask([torch.tensor([[1.0, 0.0, 3.0, 1.0]])], (2, 4)).int()
        tensor([[[0, 1, 1, 0],
                 [0, 0, 0, 0]]], dtype=torch.int32)
    """
    dev = torch.device(device)
    if isinstance(boxes, Tensor) or not isinstance(boxes, Sequence):
        raise TypeError(f"boxes must be a list of (K_i, 4) tensors, got {type(boxes).__name__}.")
    checked = check_boxes(boxes, len(boxes), dev)
    h, w = int(size[0]), int(size[1])
    flat, owner = _flatten_boxes(checked, dev)
    xs = torch.arange(w, device=dev, dtype=torch.float64)
    ys = torch.arange(h, device=dev, dtype=torch.float64)
    in_x = (xs >= flat[:, 0:1]) & (xs < flat[:, 2:3])  # (N, W)
    in_y = (ys >= flat[:, 1:2]) & (ys < flat[:, 3:4])  # (N, H)
    per_box = (in_y[:, :, None] & in_x[:, None, :]).to(torch.float32)  # (N, H, W)
    counts = torch.zeros(len(checked), h, w, device=dev, dtype=torch.float32)
    counts.index_add_(0, owner, per_box)
    return counts > 0


def pointing_game(saliency: Tensor, boxes: Sequence[Tensor], tolerance: float = 15) -> Tensor:
    """Pointing game: is the map's maximum on the object?

    A hit is scored when the location of the map's maximum (the first one in row-major order when several pixels
    share the maximum value) lies inside one of the image's boxes, or within Euclidean distance ``tolerance``
    pixels of a pixel inside one (distance measured between integer pixel positions, ``<= tolerance``). The
    accuracy of a method is the mean of the hits over a data set (``torch.nanmean``: undefined images are left out).

    Source: Zhang, Bargal, Lin, Brandt, Shen, Sclaroff, "Top-down Neural Attention by Excitation Backprop"
    (ECCV 2016); the 15-pixel tolerance is the convention of TorchRay's pointing-game benchmark (Fong et al. 2019).

    Better: **higher** (more hits).

    Args:
        saliency: (B, H, W) maps, any floating dtype and device.
        boxes: list of B tensors (K_i, 4), rows ``(x0, y0, x1, y1)`` in the maps' pixel coordinates (half-open).
        tolerance: non-negative distance in pixels (0 = the maximum must be inside a box).

    Returns:
        float32 tensor (B,) on the maps' device: 1.0 hit, 0.0 miss, ``nan`` undefined (a constant map, or no box
        pixel on the map: no box, or every box outside it).

    Raises:
        TypeError, ValueError: malformed maps or boxes, negative or non-finite tolerance.

    Example:
        >>> import torch
        >>> sal = torch.zeros(2, 8, 8)
        >>> sal[0, 2, 3] = 1.0  # max at (x=3, y=2): inside the box
        >>> sal[1, 7, 7] = 1.0  # max at (x=7, y=7): 5 px from the box's corner pixel (4, 3)
        >>> box = torch.tensor([[2.0, 1.0, 5.0, 4.0]])
        >>> pointing_game(sal, [box, box], tolerance=0).tolist()
        [1.0, 0.0]
        >>> pointing_game(sal, [box, box], tolerance=5).tolist()
        [1.0, 1.0]
        >>> pointing_game(torch.zeros(1, 8, 8), [box]).tolist()  # a constant map points nowhere
        [nan]
    """
    saliency = check_saliency(saliency)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
        raise TypeError(f"tolerance must be a number of pixels, got {type(tolerance).__name__}.")
    if not math.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance}.")
    dev = saliency.device
    b, h, w = saliency.shape
    checked = check_boxes(boxes, b, dev)
    flat_idx = saliency.reshape(b, -1).argmax(dim=1)  # first maximum in row-major order
    py = torch.div(flat_idx, w, rounding_mode="floor").to(torch.float64)
    px = (flat_idx % w).to(torch.float64)
    flat, owner = _flatten_boxes(checked, dev)
    # Integer pixels covered by a half-open box: ceil(x0) .. ceil(x1) - 1, clipped to the map.
    x_lo = torch.ceil(flat[:, 0]).clamp(min=0)
    x_hi = (torch.ceil(flat[:, 2]) - 1).clamp(max=w - 1)
    y_lo = torch.ceil(flat[:, 1]).clamp(min=0)
    y_hi = (torch.ceil(flat[:, 3]) - 1).clamp(max=h - 1)
    nonempty = (x_lo <= x_hi) & (y_lo <= y_hi)
    bx, by = px[owner], py[owner]
    dx = (x_lo - bx).clamp(min=0) + (bx - x_hi).clamp(min=0)
    dy = (y_lo - by).clamp(min=0) + (by - y_hi).clamp(min=0)
    box_hit = nonempty & (dx * dx + dy * dy <= float(tolerance) ** 2)
    hits = torch.zeros(b, device=dev, dtype=torch.float32)
    hits.index_add_(0, owner, box_hit.to(torch.float32))
    on_map = torch.zeros(b, device=dev, dtype=torch.float32)
    on_map.index_add_(0, owner, nonempty.to(torch.float32))
    score = (hits > 0).to(torch.float32)
    undefined = (on_map == 0) | constant_maps(saliency)
    return torch.where(undefined, torch.full_like(score, math.nan), score)


def energy_in_box(saliency: Tensor, boxes: Sequence[Tensor]) -> Tensor:
    """Energy-based pointing game: the share of the map's total mass that falls inside the boxes.

    .. math:: E = \\frac{\\sum_{(x,y) \\in \\text{boxes}} S(x,y)}{\\sum_{(x,y)} S(x,y)}

    computed on the non-negative map as given (union of the image's boxes, half-open convention). Undefined
    (``nan``) for a constant map — all zero, or uniform, which would just score the boxes' share of the area — and
    for an image with no box pixel on the map.

    Source: Wang, Wang, Du, Yang, Zhang, Ding, Mardziel, Hu, "Score-CAM: Score-Weighted Visual Explanations for
    Convolutional Neural Networks" (CVPR Workshops 2020), Sec. 5.2 ("energy-based pointing game").

    Better: **higher** (1 = all the mass on the object).

    Args:
        saliency: (B, H, W) non-negative maps (e.g. the ``saliency`` of any method here, which is in [0, 1]).
        boxes: list of B tensors (K_i, 4), rows ``(x0, y0, x1, y1)`` in the maps' pixel coordinates (half-open).

    Returns:
        FloatTensor (B,) in [0, 1] or ``nan`` (undefined) on the maps' device (float64 for float64 maps, float32
        otherwise).

    Raises:
        TypeError, ValueError: malformed maps or boxes, or negative map values (take ``.abs()`` or
            ``.clamp(min=0)`` of a signed map first, whichever your definition needs).

    Example:
        >>> import torch
        >>> sal = torch.tensor([[[1.0, 3.0], [0.0, 4.0]]])
        >>> energy_in_box(sal, [torch.tensor([[1.0, 0.0, 2.0, 2.0]])])  # right column: (3 + 4) / 8
        tensor([0.8750])
    """
    saliency = check_saliency(saliency)
    b, h, w = saliency.shape
    return _energy(
        saliency, boxes_to_mask(check_boxes(boxes, b, saliency.device), (h, w), saliency.device), "energy_in_box"
    )


def energy_in_mask(saliency: Tensor, masks: Tensor) -> Tensor:
    """Energy-based pointing game on instance masks: the share of the map's total mass inside each image's mask
    (e.g. the union of a class's COCO instance masks, :func:`cameras.metrics.instance_mask`).

    The definition of :func:`energy_in_box` (Score-CAM, Wang et al. 2020, Sec. 5.2) with the object's pixels given
    by a mask instead of the union of its boxes; the two share one implementation. Undefined (``nan``) for a
    constant map and for an empty mask.

    Better: **higher**.

    Args:
        saliency: (B, H, W) non-negative maps.
        masks: (B, H, W) bool masks on the maps' pixels.

    Returns:
        FloatTensor (B,) in [0, 1] or ``nan`` (float64 for float64 maps, float32 otherwise).

    Raises:
        TypeError, ValueError: malformed maps, a mask that is not a bool tensor of the maps' shape, or negative map
            values.

    Example:
        >>> import torch
        >>> sal = torch.tensor([[[1.0, 3.0], [0.0, 4.0]]])
        >>> energy_in_mask(sal, torch.tensor([[[False, True], [False, False]]]))  # 3 / 8
        tensor([0.3750])
    """
    saliency = check_saliency(saliency)
    if not isinstance(masks, Tensor) or masks.dtype != torch.bool:
        raise TypeError(f"masks must be a bool tensor (B, H, W), got {getattr(masks, 'dtype', type(masks).__name__)}.")
    if tuple(masks.shape) != tuple(saliency.shape):
        raise ValueError(f"masks must have the maps' shape {tuple(saliency.shape)}, got {tuple(masks.shape)}.")
    return _energy(saliency, masks.to(saliency.device), "energy_in_mask")


def _energy(saliency: Tensor, mask: Tensor, name: str) -> Tensor:
    """Share of each non-negative (B, H, W) map's mass inside the (B, H, W) bool ``mask``; NaN when undefined."""
    if bool((saliency < 0).any()):
        raise ValueError(
            f"{name} needs a non-negative map; got negative values. Use saliency.abs() or saliency.clamp(min=0) first."
        )
    acc = torch.float64 if saliency.dtype == torch.float64 else torch.float32
    s = saliency.to(acc)
    total = s.sum(dim=(1, 2))
    inside = (s * mask).sum(dim=(1, 2))
    energy = inside / total.clamp(min=torch.finfo(acc).tiny)
    undefined = ~mask.flatten(1).any(dim=1) | constant_maps(saliency) | ~(total > 0)
    return torch.where(undefined, torch.full_like(energy, math.nan), energy)
