"""Minimal-norm search: the smallest budget ε at which a (focused) iterative attack fools the model.

>>> import torch, torch.nn as nn
>>> from cameras.attacks import minimal_norm_attack
>>> net = nn.Sequential(nn.Flatten(), nn.Linear(12, 2)).eval()
>>> x = torch.zeros(1, 3, 2, 2)
>>> res = minimal_norm_attack(net, x, net(x).argmax(1), norm="l2", bounds=(-1.0, 1.0))
>>> bool(res.fooled), bool(res.l2 <= res.eps)
(True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..engine.state import eval_mode
from .pgd import (
    _LOSSES,
    _METHODS,
    AttackResult,
    Bounds,
    Box,
    Loss,
    Method,
    Norm,
    _check_bounds,
    _check_choice,
    _check_images,
    _check_images_for,
    _check_mask,
    _check_model,
    _check_norm,
    _check_positive_int,
    _check_targets,
    _is_fooled,
    _model_device_dtype,
    check_classes,
    clean_logits,
    result_fields,
    run_pgd,
)

__all__ = ["MinimalNormResult", "minimal_norm_attack"]


@dataclass(frozen=True)
class MinimalNormResult(AttackResult):
    """:class:`~cameras.attacks.pgd.AttackResult` of the smallest fooling budget, plus the search bracket.

    Attributes:
        eps: (B,) the smallest ε found that fools (0 for an image the model already gets wrong; ``inf`` when even
            the largest budget failed).
        eps_lower: (B,) the largest ε tried that did *not* fool (0 when none failed); the true minimal budget of
            this attack lies in ``(eps_lower, eps]``.
        runs: (B,) int64, number of attack runs (budgets tried) per image.
        iterations: (B,) int64, gradient steps spent on the image over the whole search.
    """

    eps_lower: Tensor
    runs: Tensor


def _default_scale(x: Tensor, bounds: Box | None) -> Tensor:
    """Per-image range of valid values: mean over channels of hi − lo, or the image's own range without bounds."""
    if bounds is not None:
        width = float((bounds[1] - bounds[0]).mean())
        return torch.full((x.shape[0],), width, device=x.device, dtype=torch.float64)
    flat = x.flatten(1).to(torch.float64)
    span = flat.amax(dim=1) - flat.amin(dim=1)
    return torch.where(span > 0, span, torch.ones_like(span))


def _check_budget(value: object, name: str, batch: int, device: torch.device) -> Tensor | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{name} must be None, a positive float or a (B,) tensor, not a bool.")
    if isinstance(value, int | float):
        t = torch.full((batch,), float(value), device=device, dtype=torch.float64)
    elif isinstance(value, Tensor) and value.shape in ((), (batch,)):
        t = value.to(device=device, dtype=torch.float64).reshape(-1).expand(batch).clone()
    else:
        raise TypeError(f"{name} must be None, a positive float or a ({batch},) tensor, got {value!r}.")
    if not bool(torch.isfinite(t).all()) or bool((t <= 0).any()):
        raise ValueError(f"{name} must be finite and positive.")
    return t


@eval_mode
def minimal_norm_attack(
    model: nn.Module,
    images: Tensor,
    targets: Tensor,
    mask: Tensor | None = None,
    norm: Norm = "l2",
    bounds: Bounds | None = None,
    targeted: bool = False,
    seed: int = 0,
    *,
    steps: int = 20,
    search_steps: int = 10,
    method: Method = "pgd",
    loss: Loss = "margin",
    random_start: bool = False,
    eps_init: float | Tensor | None = None,
    eps_max: float | Tensor | None = None,
    max_halvings: int = 20,
) -> MinimalNormResult:
    r"""Smallest budget ε at which a focused PGD / iterative-FGSM attack fools the model, per image.

    For each image an ε bracket is searched independently while all images advance together in one batch:
    starting at ``eps_init``, ε is doubled until the attack fools (up to ``eps_max``) or halved while it still
    fools (at most ``max_halvings`` times); then ``search_steps`` bisections shrink the bracket ``(eps_lower,
    eps]``. Each budget runs a fresh :func:`~cameras.attacks.pgd.pgd_attack` of ``steps`` steps with the step size
    tied to ε, and stops an image as soon as it is fooled. The reported adversarial is the one found at the
    smallest fooling ε, with its actual norms (at most ε, often less because of the early stop).

    This is the binary-search protocol of minimal-perturbation evaluations (e.g. Carlini & Wagner 2017) applied to
    a masked attack; the paper's claim is that a mask on the pixels CAMERAS marks as important (Jalwana et al.
    2021, Sec. 5) needs a much smaller norm than a random mask of the same area. Smaller ε / norms = a more
    efficient focus.

    Special cases: an image the model already misclassifies (untargeted) or already assigns the wanted class
    (targeted) is reported fooled with ε = 0 and a zero perturbation; an image whose mask is all zero can never
    change, so it is reported not fooled with zero norms. An image that is never fooled gets ``eps = inf`` and the
    adversarial of the largest budget tried (its norms are those of that failed attempt).

    Args:
        model: classifier returning logits (B, classes). Run in eval mode (BatchNorm statistics untouched); its
            training flags and ``requires_grad`` are restored afterwards, also on an error.
        images: (B, 3, H, W) in the model's input space (inside ``bounds`` when given).
        targets: (B,) int, the true class, or the wanted class when ``targeted``.
        mask: ``None`` or (B, H, W) / (B, 1, H, W) in [0, 1]: 0 = pixel never changed, 1 = free; values between
            weight the step.
        norm: ``"l2"`` or ``"linf"``: the ball of the attack and the budget searched.
        bounds: ``None`` or ``(lo, hi)``, valid input values, each a float or C per-channel values; the
            adversarial is clipped to them.
        targeted: reach ``targets`` instead of leaving it.
        seed: seed of the optional random start.
        steps: attack steps per budget.
        search_steps: bisection steps after bracketing (relative precision about 2^-search_steps).
        method: ``"pgd"`` or ``"ifgsm"``.
        loss: ``"margin"`` or ``"ce"``.
        random_start: PGD random start in the ball (seeded, same draw for every image).
        eps_init: first budget; ``None`` = r/256 for L∞ and r·√d/256 for L2, with r the width of ``bounds`` (the
            image's value range without bounds) and d the number of free values (3 × pixels with mask > 0).
        eps_max: largest budget; ``None`` = r for L∞ and r·√d for L2 (every free value can reach any valid value).
        max_halvings: how often ε may be halved while it still fools.

    Returns:
        :class:`MinimalNormResult` on the images' device: ``adversarial`` (B, 3, H, W), ``fooled`` (B,) bool,
        ``l2``, ``linf``, ``l0`` (B,) float of the final perturbation (``l0`` = pixels where any channel changed),
        ``eps``, ``eps_lower`` (B,), ``iterations``, ``runs`` (B,) int64, ``predictions`` (B,) int64.

    Raises:
        TypeError, ValueError: malformed inputs (see :func:`~cameras.attacks.pgd.pgd_attack`).

    Example:
        >>> import torch, torch.nn as nn
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).eval()
        >>> x = torch.rand(2, 3, 2, 2)
        >>> m = torch.zeros(2, 2, 2); m[:, 0] = 1
        >>> res = minimal_norm_attack(net, x, net(x).argmax(1), mask=m, norm="linf", bounds=(0.0, 1.0))
        >>> bool(((res.adversarial - x)[:, :, 1] == 0).all())
        True
    """
    model = _check_model(model)
    images = _check_images(images)
    _check_images_for(images, model)
    n = _check_norm(norm)
    meth = _check_choice(method, "method", _METHODS)
    lss = _check_choice(loss, "loss", _LOSSES)
    steps = _check_positive_int(steps, "steps")
    search_steps = _check_positive_int(search_steps, "search_steps", 0)
    max_halvings = _check_positive_int(max_halvings, "max_halvings", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}.")
    device, dtype = _model_device_dtype(model)
    x = images.detach().to(device=device, dtype=dtype)
    batch = x.shape[0]
    labels = _check_targets(targets, batch, device)
    b = _check_bounds(bounds, images)
    weight = _check_mask(mask, x)
    free = weight > 0
    e_init = _check_budget(eps_init, "eps_init", batch, device)
    e_max = _check_budget(eps_max, "eps_max", batch, device)

    scale = _default_scale(x, b)
    dims = (x.shape[1] * free.flatten(1).sum(dim=1)).to(torch.float64)
    reach = scale if n == "linf" else scale * dims.sqrt()
    if e_max is None:
        e_max = reach
    if e_init is None:
        e_init = torch.minimum(reach / 256, e_max)
    e_init = torch.minimum(e_init, e_max)

    rel_step = (2.5 if meth == "pgd" else 1.0) / steps
    clean = clean_logits(model, x)
    check_classes(labels, clean)
    clean_fooled = _is_fooled(clean, labels, bool(targeted))
    nothing_free = ~free.flatten(1).any(dim=1)

    lo = torch.zeros(batch, device=device, dtype=torch.float64)
    hi = torch.full((batch,), math.inf, device=device, dtype=torch.float64)
    eps = e_init.clone()
    halvings = torch.zeros(batch, dtype=torch.long, device=device)
    bisections = torch.zeros(batch, dtype=torch.long, device=device)
    iterations = torch.zeros(batch, dtype=torch.long, device=device)
    runs = torch.zeros(batch, dtype=torch.long, device=device)
    best = x.clone()
    done = clean_fooled | nothing_free
    hi = torch.where(clean_fooled, torch.zeros_like(hi), hi)

    while bool((~done).any()):
        idx = (~done).nonzero().squeeze(1)
        adv, fooled, iters, _ = run_pgd(
            model,
            x[idx],
            labels[idx],
            eps[idx].to(dtype),
            weight[idx],
            norm=n,
            steps=steps,
            rel_step=rel_step,
            bounds=b,
            targeted=bool(targeted),
            loss=lss,
            random_start=bool(random_start) and meth == "pgd",
            seed=seed,
            early_stop=True,
        )
        iterations[idx] += iters
        runs[idx] += 1
        e = eps[idx]
        # a fooling budget lowers the upper end and keeps its adversarial; a failure raises the lower end
        hit_idx, miss_idx = idx[fooled], idx[~fooled]
        hi[hit_idx] = e[fooled]
        best[hit_idx] = adv[fooled]
        lo[miss_idx] = e[~fooled]
        never = hi[idx] == math.inf
        best[miss_idx] = torch.where(never[~fooled].view(-1, 1, 1, 1), adv[~fooled], best[miss_idx])
        # next budget per image: grow until it fools, shrink while it fools, then bisect
        grow = never & (e < e_max[idx])
        give_up = never & ~grow
        shrink = ~never & (lo[idx] == 0) & (halvings[idx] < max_halvings)
        bisect = ~never & ~shrink
        finished = give_up | (bisect & (bisections[idx] >= search_steps))
        new_eps = torch.where(grow, torch.minimum(2 * e, e_max[idx]), e)
        new_eps = torch.where(shrink, hi[idx] / 2, new_eps)
        new_eps = torch.where(bisect, (lo[idx] + hi[idx]) / 2, new_eps)
        halvings[idx] += shrink.long()
        bisections[idx] += (bisect & ~finished).long()
        eps[idx] = new_eps
        done[idx] = finished

    adversarial = torch.where(free, best, x)
    with torch.no_grad():
        logits = model(adversarial)
    predictions = logits.argmax(dim=1)
    # the search's verdict, confirmed on the returned images in one batch
    fooled_final = (hi < math.inf) & _is_fooled(logits, labels, bool(targeted))
    out = images.device
    return MinimalNormResult(
        **result_fields(
            adversarial, x, images, b, fooled=fooled_final, eps=hi, iterations=iterations, predictions=predictions
        ),
        eps_lower=lo.to(out, torch.float32),
        runs=runs.to(out),
    )
