"""Faithfulness metrics: does the model's confidence follow the map?

Both metrics run the model on perturbed copies of the images; forward passes are batched, chunked (at most
``batch_size`` images per pass), run without autograd in eval mode inside :class:`~cameras.engine.state.ModelState`
(BatchNorm statistics untouched; every module's training flag and ``requires_grad`` restored afterwards, also on an
error), and on the model's device and dtype. Results come back on the images' device.

A constant map (:func:`cameras.engine.normalize.constant_maps`, e.g. the all-zero map of a degenerate explanation)
orders no pixel before another and shows nothing, so both metrics are **undefined** for it: ``nan`` in every field
of that image (its forward passes are skipped), never a number an arbitrary pixel order would give. Average with
``torch.nanmean``; ``.undefined`` counts such images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torchvision.transforms.functional as TF
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..engine.normalize import constant_maps
from ..engine.state import ModelState
from ..engine.tap import extract_logits
from ..methods.base import model_device_dtype
from ._checks import check_images_and_maps, check_targets, check_unit_maps

__all__ = ["Baseline", "ConfidenceChange", "InsertionDeletion", "confidence_change", "insertion_deletion"]

Baseline = str | float | Tensor
"""What replaces removed pixels: ``"blur"`` (Gaussian blur of the image, kernel 11, sigma 5, as in RISE),
``"zero"`` (zeros of the model's input space: the mean colour for mean/std-normalised inputs), a number, or a
tensor broadcastable to the images (e.g. (C, 1, 1) or (B, C, H, W))."""


@dataclass
class InsertionDeletion:
    """Insertion and deletion curves and their areas.

    Attributes:
        insertion: (B,) area under the insertion curve, in [0, 1]. **Higher is better.**
        deletion: (B,) area under the deletion curve, in [0, 1]. **Lower is better.**
        insertion_curve: (B, S + 1) target-class probability after inserting ``fractions[i]`` of the pixels.
        deletion_curve: (B, S + 1) target-class probability after deleting ``fractions[i]`` of the pixels.
        fractions: (S + 1,) share of pixels inserted / deleted at each point, from 0 to 1.

    Every field of an image with a constant map is ``nan`` (undefined).
    """

    insertion: Tensor
    deletion: Tensor
    insertion_curve: Tensor
    deletion_curve: Tensor
    fractions: Tensor

    @property
    def undefined(self) -> int:
        """Number of images whose scores are undefined (constant maps)."""
        return int(torch.isnan(self.insertion).sum())


@dataclass
class ConfidenceChange:
    """Confidence on the full image versus on the map-weighted image.

    Attributes:
        original: (B,) probability of the target class on the full image (Y).
        explained: (B,) probability of the target class on the map-weighted image (O); ``nan`` where undefined.
        drop: (B,) ``max(0, Y - O) / Y``, in [0, 1]; ``nan`` where undefined. **Lower is better.**
        increase: (B,) float, 1.0 when ``O > Y``, else 0.0; ``nan`` where undefined. **More is better.**

    Undefined (``nan``): images with a constant map (it weights every pixel alike and explains nothing).
    """

    original: Tensor
    explained: Tensor
    drop: Tensor
    increase: Tensor

    @property
    def undefined(self) -> int:
        """Number of images whose scores are undefined (constant maps)."""
        return int(torch.isnan(self.drop).sum())

    @property
    def average_drop(self) -> float:
        """Average Drop in percent: ``100 * mean(drop)`` over the defined images (``nan`` if none). Lower is
        better."""
        return float(self.drop.double().nanmean()) * 100.0

    @property
    def increase_in_confidence(self) -> float:
        """% Increase in Confidence: ``100 * mean(increase)`` over the defined images (``nan`` if none). Higher is
        better."""
        return float(self.increase.double().nanmean()) * 100.0


def _blur(images: Tensor) -> Tensor:
    side = min(int(images.shape[-2]), int(images.shape[-1]))
    k = min(11, 2 * ((side - 1) // 2) + 1)  # reflect padding needs kernel // 2 < side
    blurred: Tensor = TF.gaussian_blur(images, kernel_size=[k, k], sigma=[5.0, 5.0])
    return blurred


def _make_baseline(spec: Baseline, images: Tensor) -> Tensor:
    if isinstance(spec, str):
        if spec == "blur":
            return _blur(images)
        if spec == "zero":
            return torch.zeros_like(images)
        raise ValueError(f"Unknown baseline {spec!r}: use 'blur', 'zero', a number or a tensor.")
    if isinstance(spec, bool):
        raise TypeError("baseline must be 'blur', 'zero', a number or a tensor, not a bool.")
    if isinstance(spec, int | float):
        return torch.full_like(images, float(spec))
    if isinstance(spec, Tensor):
        try:
            return spec.to(device=images.device, dtype=images.dtype).expand_as(images).clone()
        except RuntimeError:
            raise ValueError(
                f"baseline of shape {tuple(spec.shape)} does not broadcast to the images {tuple(images.shape)}."
            ) from None
    raise TypeError(f"baseline must be 'blur', 'zero', a number or a tensor, got {type(spec).__name__}.")


def _probabilities(model: nn.Module, batch: Tensor, targets: Tensor) -> Tensor:
    logits = extract_logits(model(batch)).float()
    if int(targets.max()) >= logits.shape[1]:
        raise ValueError(f"Target class {int(targets.max())} out of range for {logits.shape[1]} model outputs.")
    return torch.softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return value


def _run_eval(model: nn.Module, fn: Callable[[], Tensor]) -> Tensor:
    with ModelState(model), torch.no_grad():
        return fn()


def insertion_deletion(
    model: nn.Module,
    images: Tensor,
    saliency: Tensor,
    targets: int | list[int] | Tensor,
    steps: int = 100,
    baseline: Baseline | tuple[Baseline, Baseline] = ("blur", "zero"),
    batch_size: int = 64,
    progress: bool = False,
) -> InsertionDeletion:
    """Insertion and deletion games: area under the target probability as pixels are added / removed by saliency.

    Pixels are ranked by decreasing saliency (ties in row-major order). At point ``i`` of ``steps``, the first
    ``n_i = floor(i * H * W / steps)`` pixels (all channels) are

    * **inserted**: copied from the image into the insertion baseline (the image "appears" from the baseline);
    * **deleted**: replaced by the deletion baseline in the image.

    The curve is the softmax probability of the target class; its area is the trapezoidal integral over the share
    of pixels ``n_i / (H W)`` in [0, 1]. A good map makes the probability rise early when inserting and fall early
    when deleting.

    Source: Petsiuk, Das, Saenko, "RISE: Randomized Input Sampling for Explanation of Black-box Models" (BMVC 2018),
    Sec. 4.1. The default baselines are the paper's: a blurred image for insertion, zeros for deletion.

    Better: insertion **higher**, deletion **lower**.

    Args:
        model: classifier returning logits (B, num_classes); left on its device, run in eval mode.
        images: (B, C, H, W) images as the model takes them (normalised).
        saliency: (B, H, W) maps at the images' size (only their order matters).
        targets: the class of each image: an int, B ints, or a (B,) LongTensor.
        steps: number of steps S (the curves have S + 1 points); at most H * W is useful.
        baseline: ``"blur"``, ``"zero"``, a number or a tensor (see :data:`Baseline`) used for both games, or a
            pair ``(insertion_baseline, deletion_baseline)``.
        batch_size: images per forward pass (each pass holds insertion and deletion images).
        progress: show a progress bar over forward passes.

    Returns:
        :class:`InsertionDeletion` with (B,) areas, (B, S + 1) curves and the (S + 1,) fractions, on the images'
        device; ``nan`` for images with a constant map.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        >>> out = insertion_deletion(net, torch.randn(2, 3, 16, 16), torch.rand(2, 16, 16), [0, 1], steps=8)
        >>> out.insertion.shape, out.deletion_curve.shape
        (torch.Size([2]), torch.Size([2, 9]))
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    images, saliency = check_images_and_maps(images, saliency)
    steps = _check_int("steps", steps, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    device, dtype = model_device_dtype(model)
    b, _, h, w = images.shape
    hw = h * w
    t = check_targets(targets, b, device)
    x = images.to(device=device, dtype=dtype)
    ins_spec, del_spec = baseline if isinstance(baseline, tuple) else (baseline, baseline)
    base_ins = _make_baseline(ins_spec, x)
    base_del = _make_baseline(del_spec, x)
    # rank[b, p] = position of pixel p in the order of decreasing saliency.
    order = torch.sort(saliency.to(device).reshape(b, hw), dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(hw, device=device).expand(b, hw))
    counts = torch.div(torch.arange(steps + 1, device=device) * hw, steps, rounding_mode="floor")
    defined = ~constant_maps(saliency).to(device)
    jobs_b = torch.arange(b, device=device)[defined].repeat_interleave(steps + 1)
    jobs_n = counts.repeat(int(defined.sum()))
    slots = (jobs_b * (steps + 1)).reshape(-1, steps + 1) + torch.arange(steps + 1, device=device)
    slots = slots.reshape(-1)
    per_pass = max(1, batch_size // 2)

    def run() -> Tensor:
        probs = torch.full((2, b * (steps + 1)), float("nan"), device=device)
        starts = range(0, jobs_b.numel(), per_pass)
        for s in tqdm(starts, desc="insertion/deletion", disable=not progress, leave=False):
            jb, jn = jobs_b[s : s + per_pass], jobs_n[s : s + per_pass]
            mask = (rank[jb] < jn[:, None]).reshape(-1, 1, h, w)
            inserted = torch.where(mask, x[jb], base_ins[jb])
            deleted = torch.where(mask, base_del[jb], x[jb])
            p = _probabilities(model, torch.cat([inserted, deleted]), torch.cat([t[jb], t[jb]]))
            probs[:, slots[s : s + jb.numel()]] = p.reshape(2, -1)
        return probs

    probs = _run_eval(model, run).reshape(2, b, steps + 1).double()
    fractions = counts.double() / hw
    areas = torch.trapezoid(probs, fractions, dim=-1)
    out_dev = images.device
    return InsertionDeletion(
        insertion=areas[0].float().to(out_dev),
        deletion=areas[1].float().to(out_dev),
        insertion_curve=probs[0].float().to(out_dev),
        deletion_curve=probs[1].float().to(out_dev),
        fractions=fractions.float().to(out_dev),
    )


def masking_inputs(
    model: nn.Module, images: Tensor, saliency: Tensor, targets: int | list[int] | Tensor, baseline: Baseline
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Validated inputs of the metrics that show the map-weighted image ``baseline + Ψ·(images − baseline)``:
    ``(x, base, psi, t)`` on the model's device and dtype, with ``x`` and ``base`` (B, C, H, W), ``psi`` the maps
    (B, 1, H, W) in [0, 1] and ``t`` the (B,) int64 targets.

    Raises:
        TypeError, ValueError: not a model, maps outside [0, 1] or of another shape, bad targets or baseline.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    images, saliency = check_images_and_maps(images, saliency)
    check_unit_maps(saliency)
    device, dtype = model_device_dtype(model)
    t = check_targets(targets, images.shape[0], device)
    x = images.to(device=device, dtype=dtype)
    return x, _make_baseline(baseline, x), saliency.to(device=device, dtype=dtype)[:, None], t


def confidence_change(
    model: nn.Module,
    images: Tensor,
    saliency: Tensor,
    targets: int | list[int] | Tensor,
    baseline: Baseline = "zero",
    batch_size: int = 64,
) -> ConfidenceChange:
    """Average Drop and Increase in Confidence when only the map-weighted image is shown.

    With ``Y`` the softmax probability of the target class on the image ``I`` and ``O`` the probability on the
    explanation image ``E = L * I`` (the map ``L`` in [0, 1] multiplied pixel-wise into every channel), per image

    * drop: ``max(0, Y - O) / Y``; the data-set *Average Drop %* is ``100 * mean(drop)`` (lower is better);
    * increase: ``O > Y``; the data-set *% Increase in Confidence* is ``100 * mean(increase)`` (higher is better).

    With a non-zero ``baseline`` the explanation image is ``baseline + L * (I - baseline)``.

    Source: Chattopadhay, Sarkar, Howlader, Balasubramanian, "Grad-CAM++: Generalized Gradient-based Visual
    Explanations for Deep Convolutional Networks" (WACV 2018), Sec. 5.1.

    Better: drop **lower**, increase **higher**.

    Args:
        model: classifier returning logits (B, num_classes); run in eval mode on its own device.
        images: (B, C, H, W) images as the model takes them.
        saliency: (B, H, W) maps in [0, 1] at the images' size.
        targets: the class of each image: an int, B ints, or a (B,) LongTensor.
        baseline: what a zero of the map shows: ``"zero"`` (default, the paper's plain product in the model's
            input space), ``"blur"``, a number or a tensor broadcastable to the images.
        batch_size: images per forward pass.

    Returns:
        :class:`ConfidenceChange` on the images' device; ``.average_drop`` and ``.increase_in_confidence`` give
        the batch's percentages over the images whose map is not constant (the others are ``nan``).

    Raises:
        ValueError: map values outside [0, 1] (normalise first), bad shapes or targets.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        >>> out = confidence_change(net, torch.randn(2, 3, 16, 16), torch.ones(2, 16, 16), [0, 1])
        >>> out.drop.abs().max() < 1e-6  # a map of ones shows the whole image: nothing changes
        tensor(True)
    """
    x, base, psi, t = masking_inputs(model, images, saliency, targets, baseline)
    batch_size = _check_int("batch_size", batch_size, 1)
    device, b = x.device, x.shape[0]
    explained_images = base + psi * (x - base)

    def run() -> Tensor:
        probs = torch.empty(2, b, device=device)
        for s in range(0, b, batch_size):
            probs[0, s : s + batch_size] = _probabilities(model, x[s : s + batch_size], t[s : s + batch_size])
            probs[1, s : s + batch_size] = _probabilities(
                model, explained_images[s : s + batch_size], t[s : s + batch_size]
            )
        return probs

    probs = _run_eval(model, run).double()
    y, o = probs[0], probs[1]
    undefined = constant_maps(saliency).to(device)
    o = torch.where(undefined, torch.full_like(o, float("nan")), o)
    drop = (y - o).clamp(min=0) / y.clamp(min=torch.finfo(torch.float64).tiny)
    increase = torch.where(undefined, torch.full_like(o, float("nan")), (o > y).double())
    out_dev = images.device
    return ConfidenceChange(
        original=y.float().to(out_dev),
        explained=o.float().to(out_dev),
        drop=drop.float().to(out_dev),
        increase=increase.float().to(out_dev),
    )
