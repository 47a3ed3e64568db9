"""Iterative gradient attacks (PGD under L∞ / L2, iterative FGSM) with an exact per-pixel mask.

The attacks work in the model's *input space* (whatever the model consumes, e.g. normalised pixels), optionally
clipped to valid input values, on any device, batched, seeded.

>>> import torch, torch.nn as nn
>>> from cameras.attacks import pgd_attack
>>> _ = torch.manual_seed(0)
>>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
>>> x = torch.rand(2, 3, 16, 16)
>>> mask = torch.zeros(2, 16, 16); mask[:, 4:12, 4:12] = 1
>>> res = pgd_attack(net, x, net(x).argmax(1), eps=0.5, norm="l2", mask=mask, bounds=(0.0, 1.0))
>>> bool(((res.adversarial - x)[:, :, :4] == 0).all())  # outside the mask the image is untouched
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..engine.state import eval_mode
from ..methods.base import validate_images

__all__ = [
    "AttackResult",
    "Loss",
    "Method",
    "Norm",
    "perturbation_norms",
    "pgd_attack",
]

Norm = Literal["l2", "linf"]
Method = Literal["pgd", "ifgsm"]
Loss = Literal["margin", "ce"]
BoundValue = float | Sequence[float] | Tensor
#: ``(lo, hi)``: valid input values, each a float or C per-channel values
Bounds = tuple[BoundValue, BoundValue]
Box = tuple[Tensor, Tensor]

_NORMS = ("l2", "linf")
_METHODS = ("pgd", "ifgsm")
_LOSSES = ("margin", "ce")


@dataclass(frozen=True)
class AttackResult:
    """Outcome of an attack on a batch of B images.

    Attributes:
        adversarial: (B, 3, H, W) adversarial images in the input space, on the images' device and dtype.
        fooled: (B,) bool. Untargeted: the model's top-1 class on ``adversarial`` differs from the true class.
            Targeted: it equals the wanted class.
        l2: (B,) float, Euclidean norm of the final perturbation ``adversarial - images`` over all C·H·W values.
        linf: (B,) float, largest absolute value of the final perturbation.
        l0: (B,) float, number of *pixels* (spatial positions) where any channel changed — not channel values.
        eps: (B,) float, the budget the attack ran under (``inf`` where no budget fooled, for the minimal search).
        iterations: (B,) int64, gradient steps spent on each image (early exit counts only the steps taken).
        predictions: (B,) int64, the model's top-1 class on ``adversarial``.
    """

    adversarial: Tensor
    fooled: Tensor
    l2: Tensor
    linf: Tensor
    l0: Tensor
    eps: Tensor
    iterations: Tensor
    predictions: Tensor


# --------------------------------------------------------------------------------------------------------------
# validation


def _check_norm(norm: object) -> Norm:
    if norm not in _NORMS:
        raise ValueError(f"norm must be one of {_NORMS}, got {norm!r}.")
    return "l2" if norm == "l2" else "linf"


def _check_choice(value: object, name: str, options: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}.")
    return value


def _check_model(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module returning logits (B, classes), got {type(model).__name__}.")
    return model


def _check_images(images: object) -> Tensor:
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch.Tensor of shape (B, 3, H, W), got {type(images).__name__}.")
    if images.dim() != 4:
        raise ValueError(f"images must have shape (B, C, H, W), got {tuple(images.shape)}.")
    if not images.is_floating_point():
        raise TypeError(f"images must be a floating tensor in the model's input space, got {images.dtype}.")
    if images.shape[0] == 0:
        raise ValueError("images is an empty batch (B = 0).")
    if not bool(torch.isfinite(images).all()):
        raise ValueError("images contain NaN or infinite values.")
    return images


def _check_images_for(images: Tensor, model: nn.Module) -> None:
    """The channel count against the model's first convolution (a clear ValueError instead of conv's RuntimeError)."""
    validate_images(images, model)


def clean_logits(model: nn.Module, x: Tensor) -> Tensor:
    """The model's logits on the clean images, without autograd; a model that cannot run on them (wrong size or
    channels for its layers) raises a ValueError naming the shape, not the layer's RuntimeError."""
    try:
        with torch.no_grad():
            logits: Tensor = model(x)
    except RuntimeError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"the model cannot run on images of shape {tuple(x.shape)}: {first}") from err
    if not isinstance(logits, Tensor):
        raise ValueError(f"the model must return a logits tensor (B, classes), got {type(logits).__name__}.")
    return logits


def _check_targets(targets: object, batch: int, device: torch.device) -> Tensor:
    if not isinstance(targets, Tensor):
        raise TypeError(f"targets must be a (B,) integer tensor of class indices, got {type(targets).__name__}.")
    if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
        raise TypeError(f"targets must be an integer tensor of class indices, got {targets.dtype}.")
    if targets.shape != (batch,):
        raise ValueError(f"targets must have shape ({batch},) to match the images, got {tuple(targets.shape)}.")
    if bool((targets < 0).any()):
        raise ValueError(f"targets must be non-negative class indices, got {int(targets.min())}.")
    return targets.to(device=device, dtype=torch.long)


def _bound_tensor(value: object, channels: int, which: str) -> Tensor:
    if isinstance(value, bool):
        raise TypeError(f"bounds {which} must be a float or {channels} per-channel floats, not a bool.")
    if isinstance(value, int | float):
        t = torch.full((channels,), float(value), dtype=torch.float64)
    elif isinstance(value, Tensor | Sequence) and not isinstance(value, str):
        try:
            t = torch.as_tensor(value if isinstance(value, Tensor) else list(value), dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(
                f"bounds {which} must be a float or {channels} per-channel floats, got {value!r}."
            ) from None
        t = t.detach().cpu().reshape(-1)
        if t.numel() == 1:
            t = t.expand(channels)
        if t.numel() != channels:
            raise ValueError(
                f"bounds {which} must be a float or {channels} per-channel floats, got {t.numel()} values."
            )
    else:
        raise TypeError(f"bounds {which} must be a float or {channels} per-channel floats, got {value!r}.")
    return t.reshape(1, channels, 1, 1).clone()


def _check_bounds(bounds: object, images: Tensor) -> Box | None:
    """Validate ``bounds`` and return them as float64 CPU tensors (1, C, 1, 1); the images must lie inside."""
    if bounds is None:
        return None
    if not isinstance(bounds, tuple | list) or len(bounds) != 2:
        raise TypeError(f"bounds must be None or a pair (lo, hi) of floats or per-channel floats, got {bounds!r}.")
    c = images.shape[1]
    lo, hi = _bound_tensor(bounds[0], c, "lo"), _bound_tensor(bounds[1], c, "hi")
    if not bool(torch.isfinite(lo).all() and torch.isfinite(hi).all()) or not bool((lo < hi).all()):
        raise ValueError(f"bounds must be finite with lo < hi, got ({lo.flatten().tolist()}, {hi.flatten().tolist()}).")
    img = images.detach().to(torch.float64)
    if bool((img < lo.to(img.device)).any()) or bool((img > hi.to(img.device)).any()):
        raise ValueError(
            f"images must lie inside bounds ({_fmt_bound(lo)}, {_fmt_bound(hi)}) so that clipping never moves masked "
            f"pixels; their values span [{float(img.min())}, {float(img.max())}]. Clamp them to the bounds first."
        )
    return lo, hi


def _fmt_bound(t: Tensor) -> str:
    v = t.flatten().tolist()
    return f"{v[0]:.6g}" if all(a == v[0] for a in v) else "[" + ", ".join(f"{a:.6g}" for a in v) + "]"


def _box_like(box: Box | None, like: Tensor) -> Box | None:
    if box is None:
        return None
    return box[0].to(device=like.device, dtype=like.dtype), box[1].to(device=like.device, dtype=like.dtype)


def _clip(values: Tensor, box: Box | None) -> Tensor:
    if box is None:
        return values
    return torch.clamp(values, box[0], box[1])  # its gradient passes on the bounds themselves


def _check_mask(mask: object, images: Tensor) -> Tensor:
    """The mask as a (B, 1, H, W) weight in [0, 1] with the images' device and dtype (ones for ``None``)."""
    b, _, h, w = images.shape
    if mask is None:
        return torch.ones(b, 1, h, w, device=images.device, dtype=images.dtype)
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be None or a tensor of shape (B, H, W) or (B, 1, H, W), got {type(mask).__name__}.")
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] != b or tuple(mask.shape[2:]) != (h, w):
        raise ValueError(f"mask must have shape ({b}, {h}, {w}) or ({b}, 1, {h}, {w}), got {tuple(mask.shape)}.")
    if mask.is_complex():
        raise TypeError("mask must be real (bool or floating), got a complex tensor.")
    m = mask.to(device=images.device, dtype=images.dtype)
    if not bool(torch.isfinite(m).all()) or bool((m < 0).any()) or bool((m > 1).any()):
        raise ValueError("mask values must be finite and lie in [0, 1] (0 = never changed, 1 = free).")
    return m


def _check_eps(eps: object, batch: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    if isinstance(eps, bool):
        raise TypeError("eps must be a float or a (B,) tensor, not a bool.")
    if isinstance(eps, int | float):
        e = torch.full((batch,), float(eps), device=device, dtype=dtype)
    elif isinstance(eps, Tensor):
        if eps.dim() == 0:
            e = eps.reshape(1).expand(batch)
        elif eps.shape == (batch,):
            e = eps
        else:
            raise ValueError(f"eps must be a float or a ({batch},) tensor, got shape {tuple(eps.shape)}.")
        e = e.to(device=device, dtype=dtype)
    else:
        raise TypeError(f"eps must be a float or a (B,) tensor, got {type(eps).__name__}.")
    if not bool(torch.isfinite(e).all()) or bool((e < 0).any()):
        raise ValueError("eps must be finite and non-negative.")
    return e


def _check_positive_int(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return value


def check_classes(labels: Tensor, logits: Tensor) -> None:
    """Raise a clear error when a class index is outside the model's output."""
    if logits.dim() != 2:
        raise ValueError(f"the model must return logits of shape (B, classes), got {tuple(logits.shape)}.")
    if bool((labels >= logits.shape[1]).any()):
        raise ValueError(f"targets hold class {int(labels.max())} but the model has {logits.shape[1]} classes.")


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    for p in model.parameters():
        if p.is_floating_point():
            return p.device, p.dtype
    for buf in model.buffers():
        if buf.is_floating_point():
            return buf.device, buf.dtype
    return torch.device("cpu"), torch.float32


# --------------------------------------------------------------------------------------------------------------
# core


def perturbation_norms(adversarial: Tensor, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """L2, L∞ and L0 of ``adversarial - images`` per image, computed in float64.

    Args:
        adversarial: (B, C, H, W).
        images: (B, C, H, W), the clean images.

    Returns:
        ``(l2, linf, l0)``, each a (B,) float tensor on the images' device. ``l0`` counts *pixels* (spatial
        positions) where at least one channel changed, so it is at most H·W.

    Example:
        >>> import torch
        >>> x = torch.zeros(1, 3, 2, 2); a = x.clone(); a[0, :, 0, 0] = torch.tensor([3.0, 0.0, 4.0])
        >>> [float(v) for v in perturbation_norms(a, x)]
        [5.0, 4.0, 1.0]
    """
    delta = (adversarial.detach().to(torch.float64) - images.detach().to(torch.float64)).flatten(2)
    l2 = delta.flatten(1).norm(dim=1)
    linf = delta.flatten(1).abs().amax(dim=1)
    l0 = (delta != 0).any(dim=1).sum(dim=1).to(torch.float64)
    return l2, linf, l0


def to_caller(adversarial: Tensor, x: Tensor, images: Tensor, bounds: Box | None) -> Tensor:
    """Carry the perturbation found on the model's device / dtype back onto the caller's ``images``.

    ``images + (adversarial − x)``: where the attack left a value alone the difference is exactly 0, so the
    caller's value is returned bit for bit even when ``x`` is a rounded copy of ``images`` (another dtype).
    """
    if adversarial.dtype == images.dtype and adversarial.device == images.device:
        return adversarial
    delta = (adversarial - x).to(device=images.device, dtype=images.dtype)
    out = _clip(images.detach() + delta, _box_like(bounds, images))
    return torch.where(delta == 0, images.detach(), out)


def result_fields(
    adversarial: Tensor,
    x: Tensor,
    images: Tensor,
    bounds: Box | None,
    *,
    fooled: Tensor,
    eps: Tensor,
    iterations: Tensor,
    predictions: Tensor,
) -> dict[str, Tensor]:
    """The fields of an :class:`AttackResult`, on the caller's device: the adversarial images carried back with
    :func:`to_caller`, their perturbation norms (:func:`perturbation_norms`), and the given per-image tensors."""
    final = to_caller(adversarial, x, images, bounds)
    l2, linf, l0 = perturbation_norms(final, images)
    out = images.device
    return {
        "adversarial": final,
        "fooled": fooled.to(out),
        "l2": l2.to(out, torch.float32),
        "linf": linf.to(out, torch.float32),
        "l0": l0.to(out, torch.float32),
        "eps": eps.to(out, torch.float32),
        "iterations": iterations.to(out),
        "predictions": predictions.to(out),
    }


def _objective(logits: Tensor, labels: Tensor, targeted: bool, loss: str) -> Tensor:
    """Per-image objective to *maximise*."""
    if loss == "ce":
        ce = F.cross_entropy(logits, labels, reduction="none")
        return -ce if targeted else ce
    own = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.scatter(1, labels[:, None], float("-inf")).amax(dim=1)
    return own - others if targeted else others - own


def _is_fooled(logits: Tensor, labels: Tensor, targeted: bool) -> Tensor:
    pred = logits.argmax(dim=1)
    return pred == labels if targeted else pred != labels


def _project(delta: Tensor, x: Tensor, eps: Tensor, free: Tensor, norm: str, bounds: Box | None) -> Tensor:
    """Project ``delta`` onto {‖δ‖ ≤ ε} ∩ {x + δ within bounds} ∩ {δ = 0 outside the mask}.

    Shrinking to the ball and clipping to bounds both only move each value towards 0 (x lies inside the bounds),
    so they commute with the mask and never create a change where the mask is 0; the final ``where`` makes the
    zeros bit-exact even for NaN gradients.

    The ball's radius is reduced by a float-rounding slack s = 4u·(‖x‖ + ε) (u the dtype's machine epsilon): the
    stored image x + δ is rounded, and without the slack its true distance to x could exceed ε by a few ulps.
    With it, ‖(x + δ) − x‖ ≤ ε holds for the values actually returned.
    """
    e = eps.view(-1, 1, 1, 1)
    u = torch.finfo(x.dtype).eps
    if norm == "linf":
        size = x.flatten(1).abs().amax(dim=1).view(-1, 1, 1, 1)
        r = (e - 4 * u * (size + e)).clamp_min(0)
        delta = torch.maximum(torch.minimum(delta, r), -r)
    else:
        size = x.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        r = (e - 4 * u * (size + e)).clamp_min(0)
        n = delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        delta = delta * torch.where(n > r, r / n.clamp_min(torch.finfo(delta.dtype).tiny), torch.ones_like(n))
    if bounds is not None:
        delta = _clip(x + delta, bounds) - x
    return torch.where(free, delta, torch.zeros_like(delta))


def _direction(grad: Tensor, weight: Tensor, norm: str) -> Tensor:
    """Steepest-ascent step of unit size for the norm, weighted per pixel by the mask."""
    if norm == "linf":
        return weight * grad.sign()
    g = torch.nan_to_num(weight * grad)
    n = g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    return torch.where(n > 0, g / n.clamp_min(torch.finfo(g.dtype).tiny), torch.zeros_like(g))


def _random_start(x: Tensor, eps: Tensor, weight: Tensor, norm: str, seed: int) -> Tensor:
    """A random point of the ε-ball inside the mask; every image draws from its own generator seeded with
    ``seed``, so a batch gives the same start as single calls (L∞: uniform in the box; L2: a Gaussian direction
    with a uniform radius)."""
    gen = torch.Generator(device=x.device)
    noise = torch.empty_like(x)
    for i in range(x.shape[0]):
        gen.manual_seed(seed)
        if norm == "linf":
            u = torch.rand(x.shape[1:], generator=gen, device=x.device, dtype=x.dtype) * 2 - 1
            noise[i] = u * weight[i] * eps[i]
        else:
            u = torch.randn(x.shape[1:], generator=gen, device=x.device, dtype=x.dtype) * weight[i]
            r = torch.rand((), generator=gen, device=x.device, dtype=x.dtype)
            n = u.norm()
            noise[i] = torch.where(n > 0, u / n.clamp_min(torch.finfo(x.dtype).tiny), torch.zeros_like(u)) * r * eps[i]
    return noise


def run_pgd(
    model: nn.Module,
    x: Tensor,
    labels: Tensor,
    eps: Tensor,
    weight: Tensor,
    *,
    norm: str,
    steps: int,
    rel_step: float,
    bounds: Box | None,
    targeted: bool,
    loss: str,
    random_start: bool,
    seed: int,
    early_stop: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The attack loop on validated tensors already on the model's device and dtype.

    Returns:
        ``(adversarial, fooled, iterations, predictions)``.
    """
    free = weight > 0
    bounds = _box_like(bounds, x)
    delta = torch.zeros_like(x)
    if random_start:
        delta = _project(_random_start(x, eps, weight, norm, seed), x, eps, free, norm, bounds)
    alpha = (eps * rel_step).view(-1, 1, 1, 1)
    iterations = torch.full((x.shape[0],), steps, dtype=torch.long, device=x.device)
    done = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    # images with nothing to change (ε = 0 or an all-zero mask) are only evaluated, never stepped
    idle = (eps == 0) | ~free.flatten(1).any(dim=1)
    predictions = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    for it in range(steps):
        active = (~done & ~idle).nonzero().squeeze(1)
        if active.numel() == 0:
            break
        d = delta[active].detach().requires_grad_(True)
        with torch.enable_grad():
            logits = model(_assemble(x[active], d, free[active], bounds))
            objective = _objective(logits, labels[active], targeted, loss)
            (grad,) = torch.autograd.grad(objective.sum(), d)
        if early_stop:
            # the images fed to the model are exactly the ones returned, so a hit here is final
            logits = logits.detach()
            hit = _is_fooled(logits, labels[active], targeted)
            iterations[active[hit]] = it
            predictions[active[hit]] = logits[hit].argmax(dim=1)
            done[active[hit]] = True
            keep = ~hit
            active, grad = active[keep], grad[keep]
            if active.numel() == 0:
                continue
        step = delta[active] + alpha[active] * _direction(grad, weight[active], norm)
        delta[active] = _project(step, x[active], eps[active], free[active], norm, bounds).detach()
    iterations = torch.where(idle, torch.zeros_like(iterations), iterations)
    adversarial = _assemble(x, delta, free, bounds).detach()
    rest = (~done).nonzero().squeeze(1)
    if rest.numel() > 0:
        with torch.no_grad():
            predictions[rest] = model(adversarial[rest]).argmax(dim=1)
    fooled = predictions == labels if targeted else predictions != labels
    return adversarial, fooled, iterations, predictions


def _assemble(x: Tensor, delta: Tensor, free: Tensor, bounds: Box | None) -> Tensor:
    """x + δ clipped to the bounds (a no-op in exact arithmetic; it guards the last ulp of the sum), and exactly
    x where the mask is 0. Differentiable in δ; used both for the model's input and for the returned images."""
    return torch.where(free, _clip(x + delta, bounds), x)


@eval_mode
def pgd_attack(
    model: nn.Module,
    images: Tensor,
    targets: Tensor,
    eps: float | Tensor,
    *,
    norm: Norm = "l2",
    mask: Tensor | None = None,
    bounds: Bounds | None = None,
    targeted: bool = False,
    steps: int = 20,
    method: Method = "pgd",
    rel_step: float | None = None,
    loss: Loss = "margin",
    random_start: bool = False,
    seed: int = 0,
    early_stop: bool = True,
) -> AttackResult:
    r"""Projected gradient descent / iterative FGSM with a fixed budget ε, focused by a per-pixel mask.

    Each step moves the perturbation δ along the steepest-ascent direction of the objective for the norm — the
    gradient sign for L∞ (iterative FGSM, Kurakin et al. 2017; PGD, Madry et al. 2018), the normalised gradient
    for L2 — multiplied per pixel by the mask, then projects δ back onto the ε-ball, onto the valid input box and
    onto the mask:

    .. math:: \delta \leftarrow \Pi\big(\delta + \alpha\, m \odot d(\nabla_\delta J)\big), \qquad \alpha =
              \text{rel\_step}\cdot\varepsilon.

    ``method="pgd"`` uses ``rel_step = 2.5 / steps`` (Madry et al.) and optionally a random start;
    ``method="ifgsm"`` uses ``rel_step = 1 / steps`` (so the steps alone can just reach ε) and never a random start.

    Guarantees:

    * ``‖adversarial − images‖ ≤ ε`` in the chosen norm, per image, for the values actually returned (the ball is
      shrunk by a float-rounding slack of 4u·(‖images‖ + ε), u the machine epsilon; about 1e-4 in L2 for a
      224 px image in float32, so budgets below that cannot move anything);
    * the adversarial image lies inside ``bounds`` — the images must already lie inside them, otherwise a
      :class:`ValueError` is raised (clipping an out-of-range pixel would change a masked pixel);
    * where the mask is 0 the adversarial equals the image bit for bit.

    A soft mask (values in (0, 1)) weights the step: low-weight pixels move slowly; the norm bound still holds.

    Args:
        model: classifier returning logits (B, classes). Run in eval mode (BatchNorm statistics untouched); its
            training flags and ``requires_grad`` are restored afterwards, also on an error. Its parameters get no
            gradients.
        images: (B, 3, H, W) floating, in the model's input space.
        targets: (B,) int, the true class (untargeted) or the wanted class (``targeted=True``).
        eps: budget, a float or a (B,) tensor (one per image), in input-space units.
        norm: ``"l2"`` or ``"linf"``.
        mask: ``None`` (whole image) or (B, H, W) / (B, 1, H, W) in [0, 1]; 0 = never changed.
        bounds: ``None`` or ``(lo, hi)``, the valid input range, each a float or C per-channel values (e.g. the
            images of 0 and 255 under a per-channel normalisation); the adversarial is clipped to it.
        targeted: maximise the wanted class instead of leaving the true one.
        steps: gradient steps.
        method: ``"pgd"`` or ``"ifgsm"``.
        rel_step: step size as a fraction of ε; ``None`` for the method's default.
        loss: ``"margin"`` (best other logit minus true logit, as in Carlini & Wagner 2017; never saturates) or
            ``"ce"`` (cross-entropy).
        random_start: start from a random point of the ball (PGD only); every image draws from ``seed`` through
            its own generator on the device, so a batch gives the same result as single calls.
        seed: seed of the random start.
        early_stop: stop stepping an image as soon as it is fooled and keep that first fooling iterate.

    Returns:
        :class:`AttackResult`, on the images' device and dtype.

    Raises:
        TypeError, ValueError: malformed model, images, targets, mask, bounds, eps or options.

    Example:
        >>> import torch, torch.nn as nn
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(12, 2)).eval()
        >>> x = torch.zeros(1, 3, 2, 2)
        >>> res = pgd_attack(net, x, torch.tensor([1]), eps=1e-6, norm="linf", targeted=True)
        >>> float(res.linf) <= 1e-6
        True
    """
    model = _check_model(model)
    images = _check_images(images)
    _check_images_for(images, model)
    n = _check_norm(norm)
    meth = _check_choice(method, "method", _METHODS)
    lss = _check_choice(loss, "loss", _LOSSES)
    steps = _check_positive_int(steps, "steps", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}.")
    if rel_step is None:
        rel_step = (2.5 if meth == "pgd" else 1.0) / max(steps, 1)
    if not isinstance(rel_step, int | float) or not math.isfinite(rel_step) or rel_step <= 0:
        raise ValueError(f"rel_step must be a positive float, got {rel_step!r}.")
    device, dtype = _model_device_dtype(model)
    x = images.detach().to(device=device, dtype=dtype)
    labels = _check_targets(targets, x.shape[0], device)
    b = _check_bounds(bounds, images)
    weight = _check_mask(mask, x)
    e = _check_eps(eps, x.shape[0], device, dtype)
    check_classes(labels, clean_logits(model, x[:1]))
    adv, fooled, iters, preds = run_pgd(
        model,
        x,
        labels,
        e,
        weight,
        norm=n,
        steps=steps,
        rel_step=float(rel_step),
        bounds=b,
        targeted=bool(targeted),
        loss=lss,
        random_start=bool(random_start) and meth == "pgd",
        seed=seed,
        early_stop=bool(early_stop),
    )
    return AttackResult(**result_fields(adv, x, images, b, fooled=fooled, eps=e, iterations=iters, predictions=preds))
