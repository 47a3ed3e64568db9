"""Attack a set of photos of any sizes: the one loop behind both objectives of ``cameras attack``.

Photos of one input size are attacked as one batch — :func:`~cameras.attacks.compare_focus` (``objective="mask"``,
the minimal-norm attack of the model's top-1 class) or :func:`~cameras.attacks.compare_penalty`
(``objective="penalty"``, the paper's saliency-penalised PGD over a β schedule) — and the batches' comparisons are
merged, batch after batch in the order of each size's first photo. A batch that fails costs its photos (one error
line), never the others' results. With an output folder, one figure per photo is saved into it (and listed with
:meth:`~cameras.io.OutputDir.adopt`). Progress goes to stderr: a bar over the photos, and under it one over the
focus sources (mask) or over the PGD steps of each chunk of (photo, source, β) runs (penalty); ``progress=False``
silences both (the bars are on standard error, as in every command: ``cameras attack --no-progress``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..engine.normalize import constant_maps
from ..engine.state import ModelState
from ..io.folders import slug
from .penalty_report import PenaltyComparison, compare_penalty, plot_penalty_figure
from .report import FocusComparison, compare_focus, plot_focus_figure

if TYPE_CHECKING:
    from ..io import OutputDir

__all__ = ["Objective", "PhotoAttack", "attack_photos"]

Objective = Literal["mask", "penalty"]


@dataclass
class PhotoAttack:
    """What :func:`attack_photos` did.

    Attributes:
        objective: ``"mask"`` or ``"penalty"``.
        comparison: the merged :class:`~cameras.attacks.FocusComparison` (mask) or
            :class:`~cameras.attacks.PenaltyComparison` (penalty) of every photo attacked, batch after batch; ``None``
            when no batch could be attacked.
        figures: the file names of the figures saved, in order.
        messages: ``("error" | "warning", one line)`` in the order they arose: a batch that failed (its photos
            named), a figure that could not be written, a photo whose map is degenerate (constant).
        failures: photos that could not be attacked plus figures that could not be written.
        seconds: wall time of the attacks and figures.
    """

    objective: Objective
    comparison: FocusComparison | PenaltyComparison | None = None
    figures: list[str] = field(default_factory=list)
    messages: list[tuple[str, str]] = field(default_factory=list)
    failures: int = 0
    seconds: float = 0.0


_FIGURE: dict[str, tuple[Callable[..., Path], str]] = {
    "mask": (plot_focus_figure, "attack"),
    "penalty": (plot_penalty_figure, "penalty"),
}
_DEGENERATE = {"mask": "its focus is arbitrary", "penalty": "its penalty is uniform"}


def _groups(photos: Sequence[tuple[str, Tensor]]) -> list[list[tuple[str, Tensor]]]:
    """Photos of one input size together, in order of first appearance (each group is attacked as one batch)."""
    groups: dict[tuple[int, ...], list[tuple[str, Tensor]]] = {}
    for name, x in photos:
        groups.setdefault(tuple(x.shape[-2:]), []).append((name, x))
    return list(groups.values())


def attack_photos(
    model: nn.Module,
    photos: Sequence[tuple[str, Tensor]],
    *,
    objective: Objective = "mask",
    options: Mapping[str, Any],
    out: OutputDir | None = None,
    to_display: Callable[[Tensor], Any] | None = None,
    progress: bool = True,
) -> PhotoAttack:
    """Attack every photo with every source (see the module docstring).

    Args:
        model: classifier returning logits.
        photos: ``(name, (1, 3, h, w) tensor)`` per photo, in the model's input space and inside the attack's
            ``bounds``; names are unique (they name the records and the figures ``<name>_attack.png`` /
            ``<name>_penalty.png``).
        objective: ``"mask"`` (:func:`~cameras.attacks.compare_focus`, against the model's top-1 class on each clean
            photo) or ``"penalty"`` (:func:`~cameras.attacks.compare_penalty`).
        options: the keyword arguments of that function (all but the model, images, labels and ``names``; for
            penalty also not ``progress``).
        out: where to save one figure per photo; ``None``: no figures.
        to_display: (B, 3, h, w) model inputs → displayable [0, 1] images, for the figures (required with ``out``).
        progress: progress bars on stderr (per photo, and per source or PGD step inside it); ``False`` silences them.

    Returns:
        :class:`PhotoAttack`.

    Raises:
        ValueError: an unknown objective, or ``out`` without ``to_display``.
    """
    if objective not in _FIGURE:
        raise ValueError(f"objective must be 'mask' or 'penalty', got {objective!r}.")
    if out is not None and to_display is None:
        raise ValueError("Saving figures (out=...) needs to_display, the model inputs' conversion to [0, 1] images.")
    result = PhotoAttack(objective)
    parts: list[Any] = []
    start = time.perf_counter()
    bar = tqdm(total=len(photos), desc=f"attack ({objective})", unit="photo", disable=not progress)
    try:
        for items in _groups(photos):
            batch = torch.cat([x for _, x in items])
            names = [n for n, _ in items]
            bar.set_postfix_str(", ".join(names)[:40], refresh=False)
            try:
                cmp = _compare(model, batch, names, objective, options, progress)
            except (ValueError, RuntimeError, TypeError) as err:
                result.messages.append(("error", f"{', '.join(names)}: {err}"))
                result.failures += len(items)
                bar.update(len(items))
                continue
            maps = {k: v for k, v in cmp.maps.items() if objective == "mask" or k != "none"}
            _warn_degenerate(result, maps, names, _DEGENERATE[objective])
            parts.append(cmp)
            if out is not None and to_display is not None:
                _figures(result, cmp, batch, names, out, to_display)
            bar.update(len(items))
    finally:
        bar.close()
    result.seconds = time.perf_counter() - start
    if parts:
        result.comparison = (FocusComparison if objective == "mask" else PenaltyComparison).merge(parts)
    return result


def _compare(
    model: nn.Module, batch: Tensor, names: list[str], objective: Objective, options: Mapping[str, Any], progress: bool
) -> FocusComparison | PenaltyComparison:
    if objective == "penalty":
        return compare_penalty(model, batch, names=names, progress=progress, **options)
    with torch.no_grad(), ModelState(model):
        labels = model(batch).argmax(dim=1)
    return compare_focus(model, batch, labels, names=names, progress=progress, **options)


def _warn_degenerate(result: PhotoAttack, maps: Mapping[str, Tensor], names: list[str], consequence: str) -> None:
    """A warning for each photo whose (B, H, W) map of a source is degenerate (constant)."""
    for source, sal in maps.items():
        for i, name in enumerate(names):
            if sal.dim() == 3 and bool(constant_maps(sal[i : i + 1]).all()):
                result.messages.append(("warning", f"{name}: {source}: degenerate (constant) map, {consequence}"))


def _figures(
    result: PhotoAttack,
    cmp: FocusComparison | PenaltyComparison,
    batch: Tensor,
    names: list[str],
    out: OutputDir,
    to_display: Callable[[Tensor], Any],
) -> None:
    """One figure per photo, ``<slug>_<suffix>.png`` in ``out``; a figure that cannot be written is an error line."""
    plot, suffix = _FIGURE[result.objective]
    for i, stem in enumerate(names):
        try:
            path = plot(cmp, i, batch, to_display, out.create() / f"{slug(stem, 'image')}_{suffix}.png")
        except OSError as err:
            result.messages.append(("error", f"{stem}: cannot write its figure: {err}"))
            result.failures += 1
            continue
        out.adopt(path)
        result.figures.append(path.name)
