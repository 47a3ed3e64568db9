"""Per-scale recording of activations and gradients, with per-image keep masks (class consistency).

For each scale the input is resized (bicubic), run once through a :class:`~cameras.engine.tap.LayerTap`, and the
gradient of the chosen logits is taken back to the layer only. What is kept per scale is the layer-resolution pair
(A, G) — a few MB even at 924 px — never an upsampled C×H×W copy; the autograd graph of the scale is released before
the next scale runs. Upsampling and averaging happen later, channel chunk by channel chunk, in :mod:`.fusion`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .contrast import Contrast
from .layout import Reshape
from .scales import resize
from .tap import LayerTap

__all__ = ["Recording", "ScaleRecord", "bytes_per_pixel", "images_per_pass", "record_scales", "run_order"]


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
        contrast: (B, K, M) rival classes each target was explained against, or ``None`` (plain logits).
        gamma: weight of the rivals in the explained score (``None`` without a contrast).
    """

    scales: list[ScaleRecord]
    targets: Tensor
    probabilities: Tensor
    keep: Tensor
    chosen: bool
    contrast: Tensor | None = None
    gamma: float | None = None

    @property
    def sizes(self) -> list[tuple[int, int]]:
        return [s.size for s in self.scales]

    @property
    def scale_top1(self) -> Tensor:
        return torch.stack([s.top1 for s in self.scales], dim=1)


def run_order(sizes: Sequence[tuple[int, int]], base_first: bool = True) -> list[int]:
    """Order in which the scales run: the base scale first (it chooses the classes) when ``base_first``, then the
    others largest first, so that the largest allocations happen early (an out-of-memory error surfaces at once and
    a caching allocator reuses the big blocks for the smaller scales).

    Example:
        >>> run_order([(224, 224), (324, 324), (424, 424)])
        [0, 2, 1]
        >>> run_order([(224, 224), (324, 324), (424, 424)], base_first=False)
        [2, 1, 0]
    """
    rest = sorted(range(1 if base_first else 0, len(sizes)), key=lambda s: -sizes[s][0] * sizes[s][1])
    return ([0] if base_first else []) + rest


def images_per_pass(size: tuple[int, int], batch: int, max_pixels: int | None) -> int:
    """Images run through the model at once at ``size`` so that images × h × w ≤ ``max_pixels`` (at least one).

    Example:
        >>> images_per_pass((224, 224), 32, 8 * 924 * 924)
        32
        >>> images_per_pass((924, 924), 32, 8 * 924 * 924)
        8
    """
    if max_pixels is None:
        return batch
    return max(1, min(batch, max_pixels // max(1, size[0] * size[1])))


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
    max_pixels: int | None = None,
    contrast: Contrast | None = None,
    reshape: Reshape = None,
) -> Recording:
    r"""Run ``images`` at every size and record the layer's activations and class-score gradients.

    Args:
        model: classifier returning (B, num_classes) logits.
        layer: dotted name or module to tap.
        images: (B, 3, H, W) on the model's device and dtype.
        sizes: (h, w) per scale; ``sizes[0]`` is the base scale.
        targets: (B, K) int64 classes, or ``None`` to explain the top-``top_k`` classes at the base scale.
        top_k: number of classes per image when ``targets`` is ``None``.
        need_gradients: record gradients (False for activation-only methods such as CAM).
        progress: a progress bar over scales on standard error (tqdm: count, rate, ETA, and the size now running);
            it only counts finished scales on the host, so it adds no device synchronisation.
        autocast_dtype: run the forward passes under ``torch.autocast`` with this dtype (e.g. ``torch.bfloat16``);
            activations and gradients are still recorded, averaged and fused in float32.
        channels_last: feed each resized input in channels-last memory format (convert the model with
            ``model.to(memory_format=torch.channels_last)`` yourself to benefit).
        max_pixels: memory bound: at each scale (h, w) the batch is split into passes of at most
            ``max(1, max_pixels // (h·w))`` images, so small scales run large batches and the largest scale small
            ones. ``None``: the whole batch at every scale. Results do not depend on it (beyond float rounding of
            batched kernels).
        contrast: explain each target against rival classes: the gradients are those of
            :math:`y_c - \gamma\,\mathrm{mean}_j\,y_{d_j}` (:mod:`cameras.engine.contrast`). The rivals are resolved
            once, at the base scale (``"auto"``: each target's most probable other classes there), and are the same
            at every scale. ``None``: the plain class logits.
        reshape: the layer output's layout (tokens, channels-last maps, a callable; see
            :mod:`~cameras.engine.layout`); ``None``: the model's default, else (B, C, h, w) maps and (B, N, C) tokens.

    Returns:
        A :class:`Recording`, scales in the order of ``sizes`` (they *run* base first, then largest first; see
        :func:`run_order`). Keep rule (paper): with targets chosen by the model, scale s is kept for class k of
        image b when that class is among the top-``top_k`` classes at scale s (for ``top_k=1``: the scale's top-1
        agrees with the base scale's). With given targets every scale is kept. A contrast does not change the rule:
        it is about the target class, not the explained score.

    Raises:
        ValueError: a target outside ``[0, num_classes)``, ``top_k`` above the number of classes, an empty schedule,
            ``max_pixels`` < 1, or a contrast class out of range or equal to its target.
    """
    if len(sizes) == 0:
        raise ValueError("At least one scale is needed.")
    if max_pixels is not None and max_pixels < 1:
        raise ValueError(f"max_pixels must be ≥ 1, got {max_pixels}.")
    batch = images.shape[0]
    chosen = targets is None
    records: dict[int, ScaleRecord] = {}
    scale_topk: dict[int, Tensor] = {}
    probabilities = torch.empty(0)
    rivals: Tensor | None = None
    with LayerTap(model, layer, reshape=reshape) as tap:
        order = run_order(sizes)
        iterator = tqdm(order, desc="scales", unit="scale", leave=False, disable=not progress)
        for index in iterator:
            size = (int(sizes[index][0]), int(sizes[index][1]))
            if progress:
                iterator.set_postfix_str(f"{size[0]}×{size[1]}")  # shown now: the scale that runs
            step = images_per_pass(size, batch, max_pixels)
            acts: list[Tensor] = []
            grads: list[Tensor] = []
            logit_parts: list[Tensor] = []
            picked: list[Tensor] = []
            rival_parts: list[Tensor] = []
            for b0 in range(0, batch, step):
                x = resize(images[b0 : b0 + step], size)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(
                    images.device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None
                ):
                    out = tap.forward(x, grad=need_gradients)
                logits = out.logits.detach()
                num_classes = logits.shape[1]
                if index == 0 and targets is None:
                    if top_k > num_classes:
                        raise ValueError(f"top_k={top_k} exceeds the model's {num_classes} classes.")
                    sub_targets = logits.topk(top_k, dim=1).indices
                    picked.append(sub_targets)
                else:
                    assert targets is not None
                    if index == 0:
                        bad = (targets < 0) | (targets >= num_classes)
                        if bool(bad.any()):
                            raise ValueError(
                                f"Target class {int(targets[bad][0])} is out of range for a model with "
                                f"{num_classes} classes (valid: 0..{num_classes - 1})."
                            )
                        targets = targets.to(logits.device)
                    sub_targets = targets[b0 : b0 + step]
                sub_rivals: Tensor | None = None
                if contrast is not None:
                    if index == 0:
                        sub_rivals = contrast.rows(b0, b0 + step).resolve(logits, sub_targets)
                        rival_parts.append(sub_rivals)
                    else:
                        assert rivals is not None
                        sub_rivals = rivals[b0 : b0 + step]
                if need_gradients:
                    gamma = contrast.gamma if contrast is not None else 1.0
                    grads.append(LayerTap.gradient(out, sub_targets, sub_rivals, gamma).detach().float())
                acts.append(out.activations.detach().float())
                logit_parts.append(logits)
                del out, logits  # release this pass's graph before the next one runs
            logits = torch.cat(logit_parts)
            if index == 0:
                if targets is None:
                    targets = torch.cat(picked)
                probabilities = logits.float().softmax(dim=1).gather(1, targets)
                if contrast is not None:
                    rivals = torch.cat(rival_parts)
            assert targets is not None
            scale_topk[index] = logits.topk(targets.shape[1], dim=1).indices  # (B, K)
            records[index] = ScaleRecord(
                size=size,
                activations=acts[0] if len(acts) == 1 else torch.cat(acts),
                gradients=(grads[0] if len(grads) == 1 else torch.cat(grads))
                if need_gradients
                else torch.empty(0, device=logits.device),
                top1=logits.argmax(dim=1),
            )
            del acts, grads, logit_parts, logits
    assert targets is not None
    keep_cols = [
        (targets[:, :, None] == scale_topk[s][:, None, :]).any(dim=2)
        if chosen and s > 0
        else torch.ones_like(targets, dtype=torch.bool)
        for s in range(len(sizes))
    ]
    return Recording(
        scales=[records[s] for s in range(len(sizes))],
        targets=targets,
        probabilities=probabilities,
        keep=torch.stack(keep_cols, dim=2),
        chosen=chosen,
        contrast=rivals,
        gamma=None if contrast is None else contrast.gamma,
    )


def bytes_per_pixel(
    model: nn.Module,
    layer: str | nn.Module,
    image: Tensor,
    size: tuple[int, int],
    *,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    reshape: Reshape = None,
) -> float:
    """Memory of one image's pass at ``size`` (tap forward + gradient), per input pixel: the unit of ``max_pixels``.

    On CUDA it is measured: the peak of ``torch.cuda.max_memory_allocated`` above the memory in use, during one pass
    of the first image (this resets the device's peak-memory counter). On other devices it is estimated from the
    tensors the pass creates: three times the largest module output (a block's input, output and residual alive at
    once) plus the layer's activations and gradient, which is a rough bound for feed-forward CNNs.

    Args:
        model: the classifier.
        layer: the tapped layer.
        image: (B, 3, H, W); only the first image is used.
        size: (h, w) of the probe pass; use the largest scale.
        autocast_dtype: as in :func:`record_scales`.
        channels_last: as in :func:`record_scales`.
        reshape: as in :func:`record_scales`.

    Returns:
        bytes per pixel of the resized input (> 0).
    """
    x = resize(image[:1], size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    device = x.device
    largest = [0]
    handles = []
    if device.type != "cuda":

        def track(_m: nn.Module, _i: object, out: object) -> None:
            if isinstance(out, Tensor):
                largest[0] = max(largest[0], out.numel() * out.element_size())

        handles = [m.register_forward_hook(track) for m in model.modules() if next(m.children(), None) is None]
    try:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            start = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
        with LayerTap(model, layer, reshape=reshape) as tap:
            with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
                out = tap.forward(x)
            grad = LayerTap.gradient(out, out.logits.detach().argmax(dim=1, keepdim=True))
            layer_bytes = 2 * out.activations.numel() * 4 + grad.numel() * 4
            del out, grad
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            used = torch.cuda.max_memory_allocated(device) - start
        else:
            used = 3 * largest[0] + layer_bytes
    finally:
        for h in handles:
            h.remove()
    return max(1.0, float(used) / (size[0] * size[1]))
