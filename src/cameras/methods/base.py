"""The common call of every saliency method: input validation, targets, device and dtype handling."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..engine.layout import Reshape, resolve_layout
from ..engine.result import Result
from ..engine.scales import Resolutions, schedule
from ..engine.tap import resolve_layer

__all__ = [
    "CPU_PIXELS_PER_PASS",
    "Explainer",
    "Targets",
    "explain_in_groups",
    "images_per_pass",
    "model_device_dtype",
    "normalize_targets",
    "validate_images",
]

CPU_PIXELS_PER_PASS = 1 << 20
"""On the CPU, images explained together by default by the multi-scale methods: as many as keep the largest scale's
input within this many pixels (≈ one 1024² image; one image at a time for the paper's schedule on 224 px inputs).
On 2 cores this was 1.6–2.3× faster per image than whole batches of 8, whose large-scale activations fall out of
cache (``benchmarks/cpu_batching.py``, BENCHMARKS.md)."""

Targets = int | Sequence[int] | Tensor | None
"""``None`` (model's top class), one int for every image, B ints, a (B,) tensor, or a (B, K) tensor of K classes."""


def model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """The device and floating dtype of the model's first parameter (CPU/float32 for a parameter-free model)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.device, p.dtype
    for b in model.buffers():
        if b.is_floating_point():
            return b.device, b.dtype
    return torch.device("cpu"), torch.float32


def images_per_pass(images: Tensor, sizes: Sequence[tuple[int, int]], max_batch: int | None) -> int:
    """How many of ``images`` (B, C, H, W) a multi-scale method explains together at the scales ``sizes``:
    ``max_batch`` if given; else, on the CPU, as many as keep the largest scale within :data:`CPU_PIXELS_PER_PASS`
    pixels (at least one); elsewhere the whole batch."""
    if max_batch is not None:
        return max_batch
    if images.device.type == "cpu":
        return max(1, CPU_PIXELS_PER_PASS // max(h * w for h, w in sizes))
    return max(1, int(images.shape[0]))


def explain_in_groups(
    images: Tensor,
    targets: Tensor | None,
    resolutions: Resolutions,
    max_batch: int | None,
    explain: Callable[[Tensor, Tensor | None, list[tuple[int, int]]], Result],
) -> Result:
    """Run a multi-scale method's ``explain(images, targets, sizes)`` on consecutive groups of
    :func:`images_per_pass` images (and their targets) at the scales ``schedule(resolutions, (H, W))``; the results
    are concatenated in order."""
    sizes = schedule(resolutions, (int(images.shape[-2]), int(images.shape[-1])))
    step = images_per_pass(images, sizes, max_batch)
    parts = [
        explain(images[i : i + step], None if targets is None else targets[i : i + step], sizes)
        for i in range(0, images.shape[0], step)
    ]
    return parts[0] if len(parts) == 1 else Result.cat(parts)


def _expected_channels(model: nn.Module) -> int | None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return int(m.in_channels)
    return None


def validate_images(images: Any, model: nn.Module | None = None) -> Tensor:
    """Check a batch of images and return it unchanged.

    Args:
        images: (B, C, H, W) floating tensor, already normalised for the model.
        model: if given, C must equal the ``in_channels`` of its first convolution.

    Raises:
        TypeError: not a tensor, or not floating point.
        ValueError: wrong rank, empty batch, wrong channel count, NaN/inf values, spatial size below 2.
    """
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch.Tensor of shape (B, C, H, W), got {type(images).__name__}.")
    if images.dim() != 4:
        hint = " Add a batch dimension with images.unsqueeze(0)." if images.dim() == 3 else ""
        raise ValueError(f"images must have shape (B, C, H, W), got {tuple(images.shape)} (rank {images.dim()}).{hint}")
    if not images.is_floating_point():
        raise TypeError(f"images must be a floating tensor normalised for the model, got dtype {images.dtype}.")
    if images.shape[0] == 0:
        raise ValueError("images is an empty batch (B = 0).")
    if images.shape[-1] < 2 or images.shape[-2] < 2:
        raise ValueError(f"images are too small: {tuple(images.shape[-2:])}.")
    if model is not None:
        expected = _expected_channels(model)
        if expected is not None and images.shape[1] != expected:
            raise ValueError(
                f"images have {images.shape[1]} channels but the model's first convolution expects {expected}."
            )
    if not bool(torch.isfinite(images).all()):
        raise ValueError("images contain NaN or infinite values.")
    return images


def normalize_targets(targets: Targets, batch: int, device: torch.device) -> Tensor | None:
    """Turn any accepted ``targets`` into a (B, K) int64 tensor on ``device`` (or ``None``).

    Raises:
        TypeError: floats, bools or other types.
        ValueError: a count different from the batch size, negative classes, empty sequences.
    """
    if targets is None:
        return None
    if isinstance(targets, bool):
        raise TypeError("targets must be class indices, not a bool.")
    if isinstance(targets, int):
        t = torch.full((batch, 1), targets, dtype=torch.long)
    elif isinstance(targets, Tensor):
        if targets.is_floating_point() or targets.dtype == torch.bool or targets.is_complex():
            raise TypeError(f"targets must be an integer tensor, got {targets.dtype}.")
        if targets.dim() == 0:
            t = targets.reshape(1, 1).expand(batch, 1).long()
        elif targets.dim() == 1:
            t = targets.long().unsqueeze(1)
        elif targets.dim() == 2:
            t = targets.long()
        else:
            raise ValueError(f"targets must be (B,) or (B, K), got shape {tuple(targets.shape)}.")
    elif isinstance(targets, Sequence) and not isinstance(targets, str):
        items = list(targets)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            raise TypeError("targets must be a sequence of ints.")
        t = torch.tensor(items, dtype=torch.long).unsqueeze(1)
    else:
        raise TypeError(f"targets must be None, an int, a sequence of ints or a LongTensor, got {type(targets)}.")
    if t.shape[0] != batch:
        raise ValueError(f"Got {t.shape[0]} targets for a batch of {batch} images.")
    if t.shape[1] == 0:
        raise ValueError("targets has no classes (K = 0).")
    if bool((t < 0).any()):
        raise ValueError(f"Target classes must be non-negative, got {int(t.min())}.")
    return t.to(device)


class Explainer(abc.ABC):
    """Base class: ``Method(model, layer=...)(images, targets=None) -> Result``.

    Subclasses implement :meth:`explain` on validated inputs; this class validates images and targets, moves the
    images to the model's device and dtype, and returns results on the images' own device.

    Args:
        model: a classifier returning logits (B, num_classes).
        layer: dotted name or module of the layer to explain (for layer-based methods).
        reshape: the layer output's layout (layer-based methods; :mod:`cameras.engine.layout`): ``None`` (the
            model's ``cameras_default_reshape``, set by :func:`cameras.models.load` for timm models; else
            ``"auto"``: (B, C, h, w) maps, Vision Transformer tokens (B, N, C) with the model's prefix tokens and
            patch grid, and channels-last maps on a patch model's grid),
            ``"nchw"``, ``"tokens"``, ``"nhwc"`` (Swin's channels-last maps), a
            :class:`~cameras.engine.layout.TokenLayout`, or a callable ``(output, input_size) -> (B, C, h, w)``.
    """

    name: ClassVar[str] = ""
    needs_layer: ClassVar[bool] = True

    def __init__(self, model: nn.Module, layer: str | nn.Module | None = None, *, reshape: Reshape = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
        self.model = model
        self.reshape = reshape
        resolve_layout(reshape, model)  # validate early
        self.layer_name: str | None = None
        if self.needs_layer:
            if layer is None:
                layer = getattr(model, "cameras_default_layer", None)
                if layer is None:
                    raise ValueError(
                        "No layer given. Pass layer='<dotted name>' (e.g. 'layer4' for ResNets), or load the model "
                        "through cameras.models.load(), which knows each model's default layer."
                    )
            self.layer_name, _ = resolve_layer(model, layer)

    def __call__(self, images: Tensor, targets: Targets = None, **kwargs: Any) -> Result:
        validate_images(images, self.model)
        device, dtype = model_device_dtype(self.model)
        x = images.to(device=device, dtype=dtype)
        t = normalize_targets(targets, images.shape[0], device)
        result = self.explain(x, t, **kwargs)
        if t is not None and not (isinstance(targets, Tensor) and targets.dim() == 2):
            result = result.select(0) if result.targets.dim() == 2 else result
        return result.to(images.device)

    @abc.abstractmethod
    def explain(self, images: Tensor, targets: Tensor | None, **kwargs: Any) -> Result:
        """Compute maps for validated ``images`` (B, C, H, W) and ``targets`` (B, K) or ``None``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={type(self.model).__name__}, layer={self.layer_name!r})"
