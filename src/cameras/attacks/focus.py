"""Where an attack may act: masks and weights from saliency maps, random masks of equal area, the full image.

>>> import torch
>>> from cameras.attacks import top_area_mask
>>> sal = torch.tensor([[[0.1, 0.9], [0.5, 0.2]]])
>>> top_area_mask(sal, area=0.5)
tensor([[[0., 1.],
         [1., 0.]]])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "FocusMode",
    "focus_masks",
    "full_mask",
    "random_area_mask",
    "saliency_maps",
    "soft_weight",
    "top_area_mask",
]

FocusMode = Literal["hard", "soft"]

#: focus sources that need no saliency method
BUILTIN_SOURCES = ("random", "full")


def _check_area(area: object) -> float:
    if isinstance(area, bool) or not isinstance(area, int | float) or not 0 < float(area) <= 1:
        raise ValueError(f"area must be a fraction in (0, 1], got {area!r}.")
    return float(area)


def _check_saliency(saliency: object) -> Tensor:
    if not isinstance(saliency, Tensor):
        raise TypeError(f"saliency must be a tensor of shape (B, H, W), got {type(saliency).__name__}.")
    if saliency.dim() == 4 and saliency.shape[1] == 1:
        saliency = saliency[:, 0]
    if saliency.dim() != 3 or saliency.shape[0] == 0 or saliency.numel() == 0:
        raise ValueError(f"saliency must have shape (B, H, W) with B, H, W > 0, got {tuple(saliency.shape)}.")
    if not saliency.is_floating_point():
        raise TypeError(f"saliency must be a floating tensor, got {saliency.dtype}.")
    if not bool(torch.isfinite(saliency).all()):
        raise ValueError("saliency contains NaN or infinite values.")
    return saliency


def area_pixels(height: int, width: int, area: float) -> int:
    """Number of pixels k = max(1, round(area · H · W)) that a mask of fraction ``area`` frees."""
    return max(1, round(_check_area(area) * height * width))


def top_area_mask(saliency: Tensor, area: float) -> Tensor:
    """Hard mask of the ``area`` fraction of pixels with the highest saliency.

    Args:
        saliency: (B, H, W) (or (B, 1, H, W)) maps, any real values.
        area: fraction in (0, 1]; exactly k = max(1, round(area·H·W)) pixels per image are set to 1.

    Returns:
        (B, H, W) float mask of 0s and 1s, same device and dtype as ``saliency``. Ties are broken towards the
        lower row-major index (a stable sort), so the result is deterministic.

    Example:
        >>> import torch
        >>> top_area_mask(torch.tensor([[[0.0, 1.0, 1.0, 0.5]]]), 0.5)
        tensor([[[0., 1., 1., 0.]]])
    """
    sal = _check_saliency(saliency)
    b, h, w = sal.shape
    k = area_pixels(h, w, area)
    order = torch.sort(sal.reshape(b, -1), dim=1, descending=True, stable=True).indices[:, :k]
    mask = torch.zeros(b, h * w, device=sal.device, dtype=sal.dtype)
    mask.scatter_(1, order, 1.0)
    return mask.view(b, h, w)


def soft_weight(saliency: Tensor) -> Tensor:
    """The map itself as a per-pixel step weight: each image divided by its maximum, negatives set to 0.

    Args:
        saliency: (B, H, W) maps.

    Returns:
        (B, H, W) weights in [0, 1] (all zero for an all-zero or negative map, which then cannot be attacked).

    Example:
        >>> import torch
        >>> soft_weight(torch.tensor([[[0.0, 2.0], [1.0, -1.0]]]))
        tensor([[[0.0000, 1.0000],
                 [0.5000, 0.0000]]])
    """
    sal = _check_saliency(saliency).clamp_min(0)
    peak = sal.flatten(1).amax(dim=1).view(-1, 1, 1)
    return torch.where(peak > 0, sal / peak.clamp_min(torch.finfo(sal.dtype).tiny), torch.zeros_like(sal)).clamp(0, 1)


def random_area_mask(
    batch: int, height: int, width: int, area: float, seed: int = 0, device: torch.device | str = "cpu"
) -> Tensor:
    """Hard mask of k = max(1, round(area·H·W)) uniformly random pixels per image — the control of equal area.

    The draw uses a CPU generator seeded with ``seed`` (image i uses ``seed + i``), so it is the same on every device.

    Args:
        batch, height, width: mask shape (B, H, W).
        area: fraction in (0, 1].
        seed: seed of the draw.
        device: where to put the mask.

    Returns:
        (B, H, W) float32 mask of 0s and 1s.

    Example:
        >>> int(random_area_mask(2, 10, 10, 0.1, seed=3).sum())
        20
    """
    for name, v in (("batch", batch), ("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}.")
    k = area_pixels(height, width, area)
    gen = torch.Generator()
    mask = torch.zeros(batch, height * width)
    for i in range(batch):
        gen.manual_seed(seed + i)
        mask[i, torch.randperm(height * width, generator=gen)[:k]] = 1.0
    return mask.view(batch, height, width).to(device)


def full_mask(batch: int, height: int, width: int, device: torch.device | str = "cpu") -> Tensor:
    """(B, H, W) ones: the attack may change every pixel.

    Example:
        >>> full_mask(1, 2, 2).sum().item()
        4.0
    """
    return torch.ones(batch, height, width, device=device)


def saliency_maps(
    method: str,
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    layer: str | nn.Module | None = None,
) -> Tensor:
    """Saliency maps of ``labels`` by the method registered as ``method`` in :mod:`cameras.methods`.

    Args:
        method: registered name (``"cameras"``, ``"gradcam"``, …; see ``cameras.methods.available()``).
        model: the classifier.
        images: (B, 3, H, W) in the model's input space.
        labels: (B,) classes to explain.
        layer: layer for layer-based methods (``None``: the model's default layer).

    Returns:
        (B, H, W) maps at the images' resolution, on the images' device.

    Raises:
        ValueError: unknown method name (the message lists the registered ones).
    """
    from .. import methods

    cls = methods.get(method)
    explainer = cls(model, layer=layer)
    result = explainer(images, labels)
    sal = result.saliency.detach()
    if sal.dim() == 4:
        sal = sal[:, 0]
    if tuple(sal.shape[-2:]) != tuple(images.shape[-2:]):
        sal = F.interpolate(sal[:, None], size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return sal.to(device=images.device, dtype=torch.float32)


def focus_masks(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    sources: Sequence[str] = ("cameras", "gradcam", "random", "full"),
    *,
    area: float = 0.1,
    mode: FocusMode = "hard",
    layer: str | nn.Module | None = None,
    seed: int = 0,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Masks for each focus source.

    * a saliency method by name (``"cameras"``, ``"gradcam"``, any registered one): the top ``area`` pixels of
      its map of ``labels`` (``mode="hard"``), or the map itself as a step weight (``mode="soft"``);
    * ``"random"``: ``area`` random pixels (:func:`random_area_mask`, seeded; hard in both modes);
    * ``"full"``: the whole image.

    Args:
        model, images, labels, layer: as in :func:`saliency_maps`.
        sources: names, in order; duplicates are an error.
        area: fraction of pixels for hard masks, in (0, 1].
        mode: ``"hard"`` or ``"soft"``.
        seed: seed of the random masks.

    Returns:
        ``(masks, maps)``: ``masks[source]`` a (B, H, W) tensor in [0, 1] on the images' device; ``maps[source]``
        the (B, H, W) saliency map for method sources.

    Raises:
        ValueError: unknown source or mode, duplicates, bad area.
    """
    _check_area(area)
    if mode not in ("hard", "soft"):
        raise ValueError(f"mode must be 'hard' or 'soft', got {mode!r}.")
    if isinstance(sources, str) or not sources:
        raise ValueError("sources must be a non-empty sequence of names, e.g. ['cameras', 'random', 'full'].")
    if len(set(sources)) != len(sources):
        raise ValueError(f"sources contains duplicates: {list(sources)}.")
    b, _, h, w = images.shape
    masks: dict[str, Tensor] = {}
    maps: dict[str, Tensor] = {}
    for source in sources:
        if source == "full":
            masks[source] = full_mask(b, h, w, images.device)
        elif source == "random":
            masks[source] = random_area_mask(b, h, w, area, seed=seed, device=images.device)
        else:
            sal = saliency_maps(source, model, images, labels, layer=layer)
            maps[source] = sal
            masks[source] = top_area_mask(sal, area) if mode == "hard" else soft_weight(sal)
    return masks, maps
