"""Per-scale recording of activations and gradients, with per-image keep masks (class consistency).

For each scale the input is resized (bicubic), run once through a :class:`~cameras.engine.tap.LayerTap`, and the
gradient of the chosen logits is taken back to the layer only. What is kept per scale is the layer-resolution pair
(A, G) — a few MB even at 924 px — never an upsampled C×H×W copy; the autograd graph of the scale is released before
the next scale runs. Upsampling and averaging happen later, channel chunk by channel chunk, in :mod:`.fuse`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .scales import resize
from .tap import LayerTap

__all__ = ["Recording", "ScaleRecord", "record_scales"]


@dataclass
class ScaleRecord:
    """One scale: layer-resolution activations (B, C, h, w) and gradients (B, K, C, h, w), float32, no graph."""

    size: tuple[int, int]
    activations: Tensor
    gradients: Tensor
    top1: Tensor


@dataclass
class Recording:
    """Everything the fusion needs.

    Attributes:
        scales: one :class:`ScaleRecord` per scale, in schedule order (scale 0 is the base).
        targets: (B, K) classes explained.
        probabilities: (B, K) softmax probability of each target at the base scale.
        keep: (B, K, S) bool, scale s enters the averages of class k of image b.
        chosen: True when the targets were chosen by the model (top-k at the base scale).
    """

    scales: list[ScaleRecord]
    targets: Tensor
    probabilities: Tensor
    keep: Tensor
    chosen: bool

    @property
    def sizes(self) -> list[tuple[int, int]]:
        return [s.size for s in self.scales]

    @property
    def scale_top1(self) -> Tensor:
        return torch.stack([s.top1 for s in self.scales], dim=1)


def record_scales(
    model: nn.Module,
    layer: str | nn.Module,
    images: Tensor,
    sizes: Sequence[tuple[int, int]],
    targets: Tensor | None = None,
    *,
    top_k: int = 1,
    need_gradients: bool = True,
    progress: bool = False,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> Recording:
    """Run ``images`` at every size and record the layer's activations and class-logit gradients.

    Args:
        model: classifier returning (B, num_classes) logits.
        layer: dotted name or module to tap.
        images: (B, 3, H, W) on the model's device and dtype.
        sizes: (h, w) per scale; ``sizes[0]`` is the base scale.
        targets: (B, K) int64 classes, or ``None`` to explain the top-``top_k`` classes at the base scale.
        top_k: number of classes per image when ``targets`` is ``None``.
        need_gradients: record gradients (False for activation-only methods such as CAM).
        progress: show a progress bar over scales.
        autocast_dtype: run the forward passes under ``torch.autocast`` with this dtype (e.g. ``torch.bfloat16``);
            activations and gradients are still recorded, averaged and fused in float32.
        channels_last: feed each resized input in channels-last memory format (convert the model with
            ``model.to(memory_format=torch.channels_last)`` yourself to benefit).

    Returns:
        A :class:`Recording`. Keep rule (paper): with targets chosen by the model, scale s is kept for class k of
        image b when that class is among the top-``top_k`` classes at scale s (for ``top_k=1``: the scale's top-1
        agrees with the base scale's). With given targets every scale is kept.

    Raises:
        ValueError: a target outside ``[0, num_classes)``.
    """
    if len(sizes) == 0:
        raise ValueError("At least one scale is needed.")
    records: list[ScaleRecord] = []
    keep_cols: list[Tensor] = []
    chosen = targets is None
    probabilities = torch.empty(0)
    with LayerTap(model, layer) as tap:
        iterator = tqdm(sizes, desc="scales", leave=False, disable=not progress)
        for index, size in enumerate(iterator):
            x = resize(images, size)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(
                images.device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None
            ):
                out = tap.forward(x, grad=need_gradients)
            logits = out.logits.detach()
            num_classes = logits.shape[1]
            if index == 0:
                if targets is None:
                    if top_k > num_classes:
                        raise ValueError(f"top_k={top_k} exceeds the model's {num_classes} classes.")
                    targets = logits.topk(top_k, dim=1).indices
                else:
                    bad = (targets < 0) | (targets >= num_classes)
                    if bool(bad.any()):
                        raise ValueError(
                            f"Target class {int(targets[bad][0])} is out of range for a model with "
                            f"{num_classes} classes (valid: 0..{num_classes - 1})."
                        )
                targets = targets.to(logits.device)
                probabilities = logits.float().softmax(dim=1).gather(1, targets)
            assert targets is not None
            if need_gradients:
                grads = LayerTap.gradient(out, targets).detach().float()
            else:
                grads = torch.empty(0, device=logits.device)
            if chosen and index > 0:
                scale_topk = logits.topk(targets.shape[1], dim=1).indices  # (B, K)
                keep_cols.append((targets[:, :, None] == scale_topk[:, None, :]).any(dim=2))
            else:
                keep_cols.append(torch.ones_like(targets, dtype=torch.bool))
            records.append(
                ScaleRecord(
                    size=(int(size[0]), int(size[1])),
                    activations=out.activations.detach().float(),
                    gradients=grads,
                    top1=logits.argmax(dim=1),
                )
            )
            del out, logits  # release this scale's graph before the next one runs
    assert targets is not None
    return Recording(
        scales=records,
        targets=targets,
        probabilities=probabilities,
        keep=torch.stack(keep_cols, dim=2),
        chosen=chosen,
    )
