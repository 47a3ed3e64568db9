"""Input validation shared by the metrics (shapes, boxes, targets)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["check_boxes", "check_images_and_maps", "check_saliency", "check_targets", "check_unit_maps"]


def check_saliency(saliency: Any, name: str = "saliency") -> Tensor:
    """Check a (B, H, W) floating, finite map batch and return it.

    Raises:
        TypeError: not a floating tensor.
        ValueError: wrong rank, empty batch or NaN/inf values.
    """
    if not isinstance(saliency, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, H, W), got {type(saliency).__name__}.")
    if saliency.dim() != 3:
        hint = " Add a batch dimension with saliency.unsqueeze(0)." if saliency.dim() == 2 else ""
        raise ValueError(f"{name} must have shape (B, H, W), got {tuple(saliency.shape)}.{hint}")
    if not saliency.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got dtype {saliency.dtype}.")
    if saliency.shape[0] == 0 or saliency.shape[1] == 0 or saliency.shape[2] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(saliency.shape)}.")
    if not bool(torch.isfinite(saliency).all()):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return saliency


def check_boxes(boxes: Any, batch: int, device: torch.device) -> list[Tensor]:
    """Check a list of B box tensors (K_i, 4) and return them as float64 tensors on ``device``.

    Each row is (x0, y0, x1, y1), half-open, in the map's pixel coordinates; ``x1 >= x0`` and ``y1 >= y0``.

    Raises:
        TypeError: not a list/tuple of tensors.
        ValueError: wrong count, wrong shape, NaN, or reversed corners.
    """
    if isinstance(boxes, Tensor) or not isinstance(boxes, Sequence):
        raise TypeError(
            "boxes must be a list of B tensors of shape (K_i, 4) (one per image, rows (x0, y0, x1, y1)), "
            f"got {type(boxes).__name__}."
        )
    if len(boxes) != batch:
        raise ValueError(f"Got {len(boxes)} box tensors for a batch of {batch} maps; give one (K_i, 4) per image.")
    out: list[Tensor] = []
    for i, b in enumerate(boxes):
        if not isinstance(b, Tensor):
            raise TypeError(f"boxes[{i}] must be a tensor of shape (K, 4), got {type(b).__name__}.")
        if b.dim() == 1 and b.numel() == 4:
            b = b.unsqueeze(0)
        if b.dim() != 2 or b.shape[1] != 4:
            raise ValueError(f"boxes[{i}] must have shape (K, 4) with rows (x0, y0, x1, y1), got {tuple(b.shape)}.")
        b = b.to(device=device, dtype=torch.float64)
        if not bool(torch.isfinite(b).all()):
            raise ValueError(f"boxes[{i}] contains NaN or infinite coordinates.")
        if bool((b[:, 2] < b[:, 0]).any()) or bool((b[:, 3] < b[:, 1]).any()):
            raise ValueError(f"boxes[{i}] has a row with x1 < x0 or y1 < y0; rows must be (x0, y0, x1, y1).")
        out.append(b)
    return out


def check_images_and_maps(images: Any, saliency: Any) -> tuple[Tensor, Tensor]:
    """Check (B, C, H, W) images and (B, H, W) maps of the same batch size and spatial size."""
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch.Tensor of shape (B, C, H, W), got {type(images).__name__}.")
    if images.dim() != 4:
        raise ValueError(f"images must have shape (B, C, H, W), got {tuple(images.shape)}.")
    if not images.is_floating_point():
        raise TypeError(f"images must be a floating tensor normalised for the model, got {images.dtype}.")
    if not bool(torch.isfinite(images).all()):
        raise ValueError("images contain NaN or infinite values.")
    saliency = check_saliency(saliency)
    if saliency.shape[0] != images.shape[0]:
        raise ValueError(f"Got {saliency.shape[0]} maps for {images.shape[0]} images.")
    if tuple(saliency.shape[-2:]) != tuple(images.shape[-2:]):
        raise ValueError(
            f"saliency is {tuple(saliency.shape[-2:])} but the images are {tuple(images.shape[-2:])}; "
            "resize the maps to the images' size first."
        )
    return images, saliency


def check_targets(targets: Any, batch: int, device: torch.device) -> Tensor:
    """Turn an int, B ints or a (B,) integer tensor into a (B,) int64 tensor on ``device``.

    Raises:
        TypeError: floats, bools or other types.
        ValueError: a count different from ``batch`` or negative classes.
    """
    if isinstance(targets, bool):
        raise TypeError("targets must be class indices, not a bool.")
    if isinstance(targets, int):
        t = torch.full((batch,), targets, dtype=torch.long)
    elif isinstance(targets, Tensor):
        if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
            raise TypeError(f"targets must be an integer tensor, got {targets.dtype}.")
        t = targets.reshape(1).expand(batch) if targets.dim() == 0 else targets
        if t.dim() != 1:
            raise ValueError(f"targets must be an int or a (B,) tensor, got shape {tuple(targets.shape)}.")
        t = t.long()
    elif isinstance(targets, Sequence) and not isinstance(targets, str):
        items = list(targets)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            raise TypeError("targets must be a sequence of ints.")
        t = torch.tensor(items, dtype=torch.long)
    else:
        raise TypeError(f"targets must be an int, a sequence of ints or a (B,) LongTensor, got {type(targets)}.")
    if t.shape[0] != batch:
        raise ValueError(f"Got {t.shape[0]} targets for a batch of {batch} images.")
    if bool((t < 0).any()):
        raise ValueError(f"Target classes must be non-negative, got {int(t.min())}.")
    return t.to(device)


def check_unit_maps(saliency: Tensor, name: str = "saliency") -> Tensor:
    """Raise a ValueError naming ``name`` when a value of the maps lies outside [0, 1]; return them unchanged."""
    if bool((saliency < 0).any()) or bool((saliency > 1).any()):
        raise ValueError(
            f"{name} must be in [0, 1] (got values in [{float(saliency.min()):.3g}, {float(saliency.max()):.3g}]);"
            " min-max normalise each map first."
        )
    return saliency
