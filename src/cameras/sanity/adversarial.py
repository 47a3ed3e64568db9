"""Adversarial sanity test: does the map rank the pixels as an adversarial perturbation's effect does?

The CAMERAS paper (Jalwana et al., CVPR 2021, Sec. 6.1) proposes a sanity check built on adversarial perturbations:
the effect of an adversarial perturbation on each pixel should match the importance the map gives it. Its protocol is
only described in the paper's supplementary material, which we do not have; **the definition implemented here is our
reconstruction**, not the authors' code:

1. δ = an untargeted L∞ PGD perturbation of the image against the explained class t
   (:func:`cameras.attacks.pgd_attack`, margin loss by default, no random start, all ``steps`` taken, budget
   ``eps``);
2. the image is cut into a grid of ``patch`` × ``patch`` cells (the last row / column of cells may be smaller);
   the **effect** of a cell is the drop of the class logit when δ is applied inside that cell only,
   ``z_t(x) − z_t(x + δ ⊙ 1_cell)``;
3. the map's **mean over each cell** is compared with the effects by the Spearman rank correlation over the cells
   (:func:`scipy.stats.spearmanr`, average ranks for ties), and by the share of the 10 % most affected cells that
   are among the 10 % most salient (``top_overlap``; k = max(1, round(0.1 · cells)), ties broken towards the lower
   row-major cell index). Both are NaN (undefined) for a degenerate map
   (:func:`cameras.engine.normalize.constant_maps`), or when the cell means or the effects are constant.

``patch=1`` is the paper's pixel-by-pixel form (one forward pass per pixel, batched). A sane method should score
well on the trained model and collapse on a randomised one (:func:`~cameras.sanity.randomized_copy`): the effects
are then the random model's, and a map that still follows the image (an edge detector) no longer matches them.

>>> import torch, torch.nn as nn
>>> from cameras.sanity import adversarial_sanity
>>> class TopLeft(nn.Module):          # the logit only sees the top-left quadrant
...     def forward(self, x):
...         return torch.stack([x[:, :, :4, :4].square().sum((1, 2, 3)), torch.zeros(len(x))], 1)
>>> quadrant = torch.zeros(1, 8, 8); quadrant[:, :4, :4] = 1
>>> x = torch.rand(1, 3, 8, 8)
>>> good = adversarial_sanity(TopLeft(), quadrant, x, [0], patch=2, eps=0.1, steps=3)
>>> bad = adversarial_sanity(TopLeft(), quadrant.flip(1, 2), x, [0], patch=2, eps=0.1, steps=3)
>>> bool(good.spearman[0] > 0.5), bool(bad.spearman[0] < 0)
(True, True)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from scipy import stats
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..engine.normalize import constant_maps
from ..engine.state import ModelState
from ..engine.tap import extract_logits
from ..io.atomic import write_figure
from ..methods.base import Explainer, model_device_dtype, validate_images
from .randomization import _build, _layer_name

__all__ = [
    "AdversarialEffect",
    "AdversarialSanity",
    "adversarial_effect",
    "adversarial_sanity",
    "cell_means",
    "plot_adversarial_sanity",
]

MapSpec = str | Explainer | Callable[[nn.Module], Callable[..., Any]] | Tensor
"""A method name (built on the model with ``layer``), an explainer (rebuilt on the model given), a factory
``model -> explainer``, or a (B, H, W) tensor of maps in [0, 1] already computed."""


@dataclass(frozen=True)
class AdversarialEffect:
    """The adversarial perturbation and the logit drop it causes cell by cell.

    Attributes:
        perturbation: (B, C, H, W) δ in the model's input units.
        effect: (B, gh, gw) float64 drop of the class logit with δ applied in that cell only.
        targets: (B,) int64 explained class.
        clean_logit: (B,) the class logit on the image; adversarial_logit: (B,) with the whole δ.
        fooled: (B,) bool, the whole δ changed the top-1 class.
        patch: cell side in pixels; grid: ``(gh, gw)``.
        cell_index: (H, W) int64 cell of every pixel (row-major over the grid).
    """

    perturbation: Tensor
    effect: Tensor
    targets: Tensor
    clean_logit: Tensor
    adversarial_logit: Tensor
    fooled: Tensor
    patch: int
    cell_index: Tensor

    @property
    def grid(self) -> tuple[int, int]:
        return int(self.effect.shape[1]), int(self.effect.shape[2])


@dataclass(frozen=True)
class AdversarialSanity:
    """Agreement of B maps with the adversarial effect.

    Attributes:
        spearman: (B,) float64 Spearman rank correlation over the cells between the map's cell means and the
            effects (NaN when the map is degenerate or either is constant). **Higher is better** (1: the same order).
        top_overlap: (B,) float64 share of the 10 % most affected cells among the 10 % most salient, in [0, 1]
            (NaN where ``spearman`` is). **Higher is better.**
        cell_saliency: (B, gh, gw) float64 mean of the map over each cell.
        saliency: (B, H, W) the maps.
        effect: the :class:`AdversarialEffect` they were compared with.
    """

    spearman: Tensor
    top_overlap: Tensor
    cell_saliency: Tensor
    saliency: Tensor
    effect: AdversarialEffect

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready per-image numbers (NaN as ``None``)."""

        def clean(values: Tensor) -> list[float | None]:
            return [None if not math.isfinite(v) else float(v) for v in values.tolist()]

        e = self.effect
        return {
            "patch": e.patch,
            "grid": list(e.grid),
            "targets": [int(t) for t in e.targets.tolist()],
            "spearman": clean(self.spearman),
            "top_overlap": clean(self.top_overlap),
            "fooled": [bool(f) for f in e.fooled.tolist()],
            "clean_logit": clean(e.clean_logit),
            "adversarial_logit": clean(e.adversarial_logit),
        }


def _check_patch(patch: object, size: tuple[int, int]) -> int:
    if isinstance(patch, bool) or not isinstance(patch, int) or patch < 1:
        raise ValueError(f"patch must be an int >= 1, got {patch!r}.")
    if patch > min(size):
        raise ValueError(f"patch {patch} is larger than the image ({size[0]}×{size[1]}); use at most {min(size)}.")
    return patch


def _cell_index(size: tuple[int, int], patch: int, device: torch.device) -> tuple[Tensor, int, int]:
    h, w = size
    gh, gw = -(-h // patch), -(-w // patch)
    rows = torch.arange(h, device=device) // patch
    cols = torch.arange(w, device=device) // patch
    return rows[:, None] * gw + cols[None, :], gh, gw


def cell_means(maps: Tensor, patch: int) -> Tensor:
    """(B, gh, gw) float64 mean of (B, H, W) maps over each ``patch`` × ``patch`` cell (partial cells at the
    right and bottom edges averaged over their own pixels).

    Example:
        >>> cell_means(torch.arange(6.0).view(1, 2, 3), 2).tolist()
        [[[2.0, 3.5]]]
    """
    b, h, w = maps.shape
    patch = _check_patch(patch, (h, w))
    index, gh, gw = _cell_index((h, w), patch, maps.device)
    flat = index.flatten()
    sums = torch.zeros(b, gh * gw, dtype=torch.float64, device=maps.device)
    sums.index_add_(1, flat, maps.reshape(b, -1).double())
    counts = torch.bincount(flat, minlength=gh * gw).double()
    return (sums / counts).view(b, gh, gw)


def _targets(targets: object, batch: int, logits: Tensor) -> Tensor:
    if targets is None:
        return logits.argmax(dim=1)
    if isinstance(targets, bool):
        raise TypeError("targets must be class indices, not a bool.")
    if isinstance(targets, int):
        t = torch.full((batch,), targets, dtype=torch.long)
    elif isinstance(targets, Tensor) and not targets.is_floating_point() and targets.dtype != torch.bool:
        t = targets.reshape(-1).long()
    elif isinstance(targets, Sequence) and all(isinstance(v, int) and not isinstance(v, bool) for v in targets):
        t = torch.tensor(list(targets), dtype=torch.long)
    else:
        raise TypeError(f"targets must be None, an int, B ints or a (B,) integer tensor, got {targets!r}.")
    if t.numel() == 1 and batch > 1:
        t = t.expand(batch)
    if t.shape != (batch,):
        raise ValueError(f"Got {t.numel()} targets for {batch} images.")
    if bool((t < 0).any()) or bool((t >= logits.shape[1]).any()):
        raise ValueError(f"targets must be classes in [0, {logits.shape[1]}), got {t.tolist()}.")
    return t.to(logits.device)


def adversarial_effect(
    model: nn.Module,
    images: Tensor,
    targets: int | Sequence[int] | Tensor | None = None,
    *,
    patch: int = 8,
    eps: float,
    steps: int = 10,
    bounds: tuple[Any, Any] | None = None,
    loss: str = "margin",
    batch_size: int = 64,
    progress: bool = False,
) -> AdversarialEffect:
    """Step 1 and 2 of the test (see the module docstring): δ and the per-cell logit drops.

    Args:
        model: classifier returning logits; run in eval mode with frozen parameters, both restored afterwards.
        images: (B, C, H, W) normalised for the model (inside ``bounds`` when given).
        targets: the explained class per image (int, B ints, (B,) tensor; ``None``: the top-1).
        patch: cell side in pixels (1 = pixel by pixel), at most min(H, W).
        eps: L∞ budget > 0 of the PGD, in input units.
        steps: PGD steps (≥ 1).
        bounds: valid input range ``(lo, hi)`` (floats or per-channel), as in :func:`cameras.attacks.pgd_attack`.
        loss: the PGD's loss, ``"margin"`` (best other logit minus the class logit) or ``"ce"`` (cross-entropy).
        batch_size: cell-masked images per forward pass.
        progress: a progress bar over the forward passes.

    Returns:
        :class:`AdversarialEffect` on the CPU.

    Raises:
        TypeError, ValueError: patch larger than the image, eps ≤ 0, steps < 1, targets out of range, bad images.
    """
    from ..attacks import pgd_attack

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    images = validate_images(images)
    b, _, h, w = images.shape
    patch = _check_patch(patch, (h, w))
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not math.isfinite(eps) or eps <= 0:
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}.")
    for name, v in (("steps", steps), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}.")
    device, dtype = model_device_dtype(model)
    x = images.detach().to(device=device, dtype=dtype)
    index, gh, gw = _cell_index((h, w), patch, device)
    cells = gh * gw
    with ModelState(model):
        with torch.no_grad():
            logits = extract_logits(model(x))
        t = _targets(targets, b, logits)
        adv = pgd_attack(
            model, x, t, float(eps), norm="linf", bounds=bounds, steps=steps, loss=loss,  # type: ignore[arg-type]
            early_stop=False, random_start=False,
        )  # fmt: skip
        delta = (adv.adversarial - x).detach()
        effect = torch.empty(b, cells, dtype=torch.float64)
        clean = logits.gather(1, t[:, None]).squeeze(1).double()
        chunks = [(i, s) for i in range(b) for s in range(0, cells, batch_size)]
        with torch.no_grad():
            full = extract_logits(model(adv.adversarial)).gather(1, t[:, None]).squeeze(1).double()
            for i, s in tqdm(chunks, desc="cells", disable=not progress, leave=False):
                ids = torch.arange(s, min(s + batch_size, cells), device=device)
                inside = (index[None] == ids[:, None, None]).to(dtype)[:, None]  # (n, 1, H, W)
                z = extract_logits(model(x[i : i + 1] + delta[i : i + 1] * inside))[:, t[i]].double()
                effect[i, s : s + ids.numel()] = (clean[i] - z).cpu()
    return AdversarialEffect(
        perturbation=delta.cpu(),
        effect=effect.view(b, gh, gw),
        targets=t.cpu(),
        clean_logit=clean.cpu(),
        adversarial_logit=full.cpu(),
        fooled=adv.fooled.cpu(),
        patch=patch,
        cell_index=index.cpu(),
    )


def _top(values: Tensor, k: int) -> set[int]:
    order = torch.sort(values, descending=True, stable=True).indices[:k]
    return set(order.tolist())


def _compare(cell_saliency: Tensor, effect: Tensor, top: float, undefined: Tensor) -> tuple[Tensor, Tensor]:
    """Spearman and top overlap per image; both NaN where ``undefined`` (a degenerate map) or where the cell means
    or the effects are constant (no order to compare)."""
    b = cell_saliency.shape[0]
    rho = torch.empty(b, dtype=torch.float64)
    overlap = torch.empty(b, dtype=torch.float64)
    flat = undefined | constant_maps(cell_saliency) | constant_maps(effect)
    for i in range(b):
        s, e = cell_saliency[i].flatten(), effect[i].flatten()
        if bool(flat[i]):
            rho[i] = overlap[i] = math.nan
            continue
        rho[i] = float(stats.spearmanr(s.numpy(), e.numpy()).statistic)
        k = max(1, round(top * s.numel()))
        overlap[i] = len(_top(s, k) & _top(e, k)) / k
    return rho, overlap


def _resolve_maps(
    method: MapSpec, model: nn.Module, images: Tensor, targets: Tensor, layer: str | nn.Module | None
) -> Tensor:
    b, _, h, w = images.shape
    if isinstance(method, Tensor):
        maps = method.detach()
        if maps.dim() == 4 and maps.shape[1] == 1:
            maps = maps[:, 0]
        if maps.shape != (b, h, w):
            raise ValueError(f"maps must have shape ({b}, {h}, {w}) to match the images, got {tuple(maps.shape)}.")
    else:
        explainer = _build(method, model, _layer_name(model, layer))
        out = getattr(explainer(images, targets.to(images.device)), "saliency", None)
        if not isinstance(out, Tensor) or out.shape != (b, h, w):
            raise TypeError("The method must return an object with `saliency` of shape (B, H, W).")
        maps = out.detach()
    if not maps.is_floating_point() or not bool(torch.isfinite(maps).all()):
        raise ValueError("maps must be finite floating values.")
    if bool((maps < 0).any()) or bool((maps > 1).any()):
        raise ValueError(
            f"maps must be in [0, 1] (got [{float(maps.min()):.3g}, {float(maps.max()):.3g}]); min-max normalise first."
        )
    return maps.float().cpu()


def adversarial_sanity(
    model: nn.Module,
    method: MapSpec,
    images: Tensor,
    targets: int | Sequence[int] | Tensor | None = None,
    *,
    patch: int = 8,
    eps: float,
    steps: int = 10,
    bounds: tuple[Any, Any] | None = None,
    layer: str | nn.Module | None = None,
    top: float = 0.1,
    effect: AdversarialEffect | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> AdversarialSanity:
    """The adversarial sanity test (our reconstruction of Sec. 6.1 of the CAMERAS paper; see the module docstring).

    Args:
        model: classifier returning logits; run in eval mode, its state restored afterwards.
        method: a method name (``"cameras"``, ``"gradcam"``, ``"guided_backprop"``, …; built on ``model`` with
            ``layer``), an explainer (rebuilt on ``model``), a factory ``model -> explainer``, or a (B, H, W)
            tensor of maps in [0, 1].
        images: (B, C, H, W) normalised for the model.
        targets: class per image (``None``: the top-1).
        patch, eps, steps, bounds, batch_size, progress: as in :func:`adversarial_effect`.
        layer: layer of layer-based methods (``None``: the model's default layer).
        top: share of cells of ``top_overlap`` (0.1 = the 10 % most affected / most salient), in (0, 1].
        effect: an :class:`AdversarialEffect` already computed for these images and model (e.g. shared by several
            methods); its patch and targets are used.

    Returns:
        :class:`AdversarialSanity` of (B,) ``spearman`` and ``top_overlap`` (CPU, float64).

    Raises:
        TypeError, ValueError: maps outside [0, 1] or of the wrong shape, patch larger than the image, eps ≤ 0,
            steps < 1, targets out of range, ``top`` outside (0, 1].

    Example:
        >>> import torch, torch.nn as nn
        >>> net = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
        >>> out = adversarial_sanity(net, torch.rand(1, 8, 8), torch.rand(1, 3, 8, 8), 0, patch=4, eps=0.05)
        >>> out.spearman.shape, out.cell_saliency.shape
        (torch.Size([1]), torch.Size([1, 2, 2]))
    """
    if isinstance(top, bool) or not isinstance(top, int | float) or not 0 < top <= 1:
        raise ValueError(f"top must be a fraction in (0, 1], got {top!r}.")
    images = validate_images(images)
    if effect is None:
        effect = adversarial_effect(
            model, images, targets, patch=patch, eps=eps, steps=steps, bounds=bounds, batch_size=batch_size,
            progress=progress,
        )  # fmt: skip
    elif effect.effect.shape[0] != images.shape[0] or effect.cell_index.shape != images.shape[-2:]:
        raise ValueError("effect was computed for other images (batch or size differ).")
    with ModelState(model, freeze=False):
        maps = _resolve_maps(method, model, images, effect.targets, layer)
    cells = cell_means(maps, effect.patch)
    rho, overlap = _compare(cells, effect.effect, float(top), constant_maps(maps))
    return AdversarialSanity(spearman=rho, top_overlap=overlap, cell_saliency=cells, saliency=maps, effect=effect)


def _display(values: Tensor) -> np.ndarray:
    v = values.double()
    lo, hi = float(v.min()), float(v.max())
    return ((v - lo) / (hi - lo) if hi > lo else torch.zeros_like(v)).numpy()


def plot_adversarial_sanity(
    results: Mapping[str, Mapping[str, AdversarialSanity]],
    image: np.ndarray | Tensor | None = None,
    index: int = 0,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Figure of the adversarial sanity test for one image, one column pair per model variant.

    The first row shows the photo and, per variant, the perturbation δ (magnified) and the per-cell effect; then
    one row per method with, per variant, the map's cell means and a scatter of the cell ranks (map vs effect)
    titled with the Spearman correlation and the top-10 % overlap.

    Args:
        results: ``{variant: {method: AdversarialSanity}}``, e.g. ``{"trained": {...}, "randomized": {...}}``;
            every variant must hold the same methods.
        image: optional (H, W, 3) photo in [0, 1].
        index: which image of the batch.
        path: if given, the figure is saved there.

    Returns:
        the matplotlib Figure.
    """
    variants = list(results)
    if not variants:
        raise ValueError("results is empty.")
    methods = list(results[variants[0]])
    if not methods or any(list(results[v]) != methods for v in variants):
        raise ValueError("every variant must hold the same, non-empty list of methods.")
    cols = 1 + 2 * len(variants)
    fig = Figure(figsize=(2.6 * cols, 2.5 * (1 + len(methods))), layout="constrained")
    axes = fig.subplots(1 + len(methods), cols, squeeze=False)
    if image is not None:
        img = image.detach().cpu().numpy() if isinstance(image, Tensor) else np.asarray(image)
        axes[0, 0].imshow(np.clip(img, 0.0, 1.0))
        axes[0, 0].set_title("input", fontsize=8)
    for v, variant in enumerate(variants):
        eff = results[variant][methods[0]].effect
        delta = eff.perturbation[index].permute(1, 2, 0).double()
        peak = float(delta.abs().max())
        axes[0, 1 + 2 * v].imshow(np.clip(0.5 + delta.numpy() * (0.5 / peak if peak > 0 else 1.0), 0, 1))
        axes[0, 1 + 2 * v].set_title(f"{variant}: δ (magnified)", fontsize=8)
        axes[0, 2 + 2 * v].imshow(_display(eff.effect[index]), cmap="inferno", vmin=0, vmax=1)
        axes[0, 2 + 2 * v].set_title(f"{variant}: logit drop per cell", fontsize=8)
        for r, method in enumerate(methods, start=1):
            res = results[variant][method]
            axes[r, 1 + 2 * v].imshow(_display(res.cell_saliency[index]), cmap="inferno", vmin=0, vmax=1)
            axes[r, 1 + 2 * v].set_title(f"{variant}: {method} (cell mean)", fontsize=8)
            ax = axes[r, 2 + 2 * v]
            s = stats.rankdata(res.cell_saliency[index].flatten().numpy())
            e = stats.rankdata(res.effect.effect[index].flatten().numpy())
            ax.scatter(s / len(s), e / len(e), s=2, alpha=0.4)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            rho, top = float(res.spearman[index]), float(res.top_overlap[index])
            ax.set_title(f"ρ {rho:+.2f}, top-10 % {top:.2f}", fontsize=8)
            ax.set_xlabel("map rank", fontsize=7)
            ax.set_ylabel("effect rank", fontsize=7)
    for r, method in enumerate(methods, start=1):
        axes[r, 0].text(0.5, 0.5, method, ha="center", va="center", fontsize=10)
    for ax in axes.ravel():
        if ax.images:
            ax.set_xticks([])
            ax.set_yticks([])
        elif not ax.collections:
            ax.set_axis_off()
    if path is not None:
        write_figure(path, fig, dpi=110)
    return fig
