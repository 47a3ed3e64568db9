"""Report of the saliency-penalised PGD (:func:`~cameras.attacks.saliency_pgd`) per map source, with controls.

For every image and *source* of the map Ψ in Eq. 4 of the CAMERAS paper the attack runs over a β schedule:

* a saliency method by name (``"cameras"``, ``"gradcam"``, any registered one): its map of the clean image's class;
* ``"shuffled"``: the CAMERAS map with its pixels randomly permuted (same values, no location; seeded);
* ``"constant"``: a map equal everywhere to the CAMERAS map's mean (same mean, no structure);
* ``"none"``: plain targeted PGD (β = 0), the reference of every reduction.

The two controls tell whether the *location* of the salient pixels matters or only the strength of the penalty.
Per image and source: fooled, target probability, L2, L∞ and the L2 reduction against ``none`` at the main β; and a
**matched-success** figure: per image and source the smallest L2 over the β schedule among the runs that still
reach the target with probability ≥ ``confidence`` (the paper's 99.99 %), so that no source wins by failing.

>>> import torch, torch.nn as nn
>>> from cameras.attacks import compare_penalty
>>> _ = torch.manual_seed(0)
>>> net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
...                     nn.Linear(4, 3)).eval()
>>> cmp = compare_penalty(net, torch.rand(2, 3, 8, 8), sources=["constant", "none"], maps={"cameras":
...                       torch.rand(2, 8, 8)}, eps=0.1, step_size=0.02, steps=3, betas=[1.0], beta=1.0)
>>> [row["source"] for row in cmp.summary()]
['constant', 'none']
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..engine.state import eval_mode
from ..io.atomic import write_figure
from .penalty import ChannelValue, PenaltyAttackResult, l2_reduction_percent, least_likely, saliency_pgd
from .pgd import Bounds

__all__ = [
    "CONTROLS",
    "PENALTY_SOURCES",
    "SUMMARY_KEYS",
    "PenaltyComparison",
    "PenaltyRecord",
    "PenaltyRun",
    "check_penalty_sources",
    "compare_penalty",
    "constant_map",
    "format_penalty_table",
    "penalty_maps",
    "plot_penalty_figure",
    "plot_penalty_schedule",
    "shuffled_map",
]

#: sources that are not saliency methods
CONTROLS = ("shuffled", "constant", "none")
#: the default sources of ``cameras attack --objective penalty``
PENALTY_SOURCES = ("cameras", "gradcam", "shuffled", "constant", "none")
#: the keys of every row of :meth:`PenaltyComparison.summary`, in order
SUMMARY_KEYS = (
    "source",
    "fooled_rate",
    "mean_target_probability",
    "mean_l2",
    "mean_linf",
    "l2_reduction_percent",
    "matched_l2_reduction_percent",
    "matched_n",
)


def _mean(values: Sequence[float]) -> float:
    ok = [v for v in values if math.isfinite(v)]
    return float(statistics.fmean(ok)) if ok else math.nan


def shuffled_map(saliency: Tensor, seed: int = 0) -> Tensor:
    """Each (H, W) map with its pixels randomly permuted: the same values, no location.

    Image i is permuted by a CPU generator seeded with ``seed + i``, so the result is the same on every device.

    Example:
        >>> import torch
        >>> m = torch.arange(6.0).view(1, 2, 3)
        >>> s = shuffled_map(m, seed=1)
        >>> sorted(s.flatten().tolist()) == sorted(m.flatten().tolist()), bool((s != m).any())
        (True, True)
    """
    if saliency.dim() != 3:
        raise ValueError(f"saliency must have shape (B, H, W), got {tuple(saliency.shape)}.")
    b, h, w = saliency.shape
    gen = torch.Generator()
    flat = saliency.reshape(b, -1)
    out = torch.empty_like(flat)
    for i in range(b):
        gen.manual_seed(seed + i)
        out[i] = flat[i, torch.randperm(h * w, generator=gen).to(saliency.device)]
    return out.view(b, h, w)


def constant_map(saliency: Tensor) -> Tensor:
    """Each map replaced by its mean everywhere (the same mean, no structure).

    Example:
        >>> import torch
        >>> constant_map(torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])).flatten().tolist()
        [0.5, 0.5, 0.5, 0.5]
    """
    if saliency.dim() != 3:
        raise ValueError(f"saliency must have shape (B, H, W), got {tuple(saliency.shape)}.")
    return saliency.mean(dim=(1, 2), keepdim=True).expand_as(saliency).clone()


def check_penalty_sources(sources: Sequence[str]) -> list[str]:
    """Validate penalty sources: a non-empty list without duplicates of registered method names and
    :data:`CONTROLS`, holding ``"none"`` (the reference).

    Raises:
        ValueError: the message names the bad source and lists the valid ones.
    """
    from .. import methods

    if isinstance(sources, str) or not sources:
        raise ValueError("sources must be a non-empty list of names, e.g. ['cameras', 'shuffled', 'none'].")
    items = [str(s).strip().lower() for s in sources]
    if len(set(items)) != len(items):
        raise ValueError(f"sources lists a source twice: {list(sources)}.")
    for s in items:
        if s in CONTROLS:
            continue
        try:
            methods.get(s)
        except ValueError:
            raise ValueError(
                f"unknown focus source {s!r}: use {', '.join(CONTROLS)} or a saliency method "
                f"({', '.join(methods.available())})."
            ) from None
    if "none" not in items:
        raise ValueError("sources must include 'none', the plain-PGD reference the reductions are measured against.")
    return items


def penalty_maps(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    sources: Sequence[str],
    *,
    layer: str | nn.Module | None = None,
    seed: int = 0,
    maps: Mapping[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """The map Ψ of every source, (B, H, W) in [0, 1] on the images' device.

    Method sources explain ``labels`` with the registered method (``maps`` may hold some already computed, by
    method name); ``"shuffled"`` and ``"constant"`` are derived from the CAMERAS map (computed when not given);
    ``"none"`` is all ones (nothing penalised: plain PGD at any β).
    """
    from .focus import saliency_maps

    items = check_penalty_sources(sources)
    given = {k.lower(): v for k, v in (maps or {}).items()}
    out: dict[str, Tensor] = {}

    def method_map(name: str) -> Tensor:
        if name not in given:
            given[name] = saliency_maps(name, model, images, labels, layer=layer)
        return given[name].to(device=images.device, dtype=torch.float32).clamp(0, 1)

    b, _, h, w = images.shape
    for s in items:
        if s == "none":
            out[s] = torch.ones(b, h, w, device=images.device)
        elif s == "shuffled":
            out[s] = shuffled_map(method_map("cameras"), seed)
        elif s == "constant":
            out[s] = constant_map(method_map("cameras"))
        else:
            out[s] = method_map(s)
    return out


@dataclass(frozen=True)
class PenaltyRun:
    """One image attacked with one source's map at one β.

    Attributes:
        image, source, beta: what ran.
        fooled: top-1 is the target. target_probability: its softmax probability on the adversarial image.
        l2, linf: norms of the perturbation in the report's units (see ``scale`` of :func:`compare_penalty`).
        adversarial_class: top-1 class on the adversarial image.
    """

    image: str
    source: str
    beta: float
    fooled: bool
    target_probability: float
    l2: float
    linf: float
    adversarial_class: int


@dataclass(frozen=True)
class PenaltyRecord:
    """One image and source at the main β, with its matched-success figure.

    Attributes:
        image, source, beta: what ran (``beta`` is 0 for ``"none"``).
        label, label_name: the clean image's class (the class whose map is used).
        target, target_name: the class the attack aims at.
        fooled, target_probability, l2, linf, adversarial_class, adversarial_name: as in :class:`PenaltyRun`.
        l2_reduction_percent: ``100 · (1 − L2 / L2 of "none")``.
        matched_beta, matched_l2: the β and L2 of the smallest-L2 run over the schedule that reached the target
            with probability ≥ the confidence (NaN when none did).
        matched_l2_reduction_percent: the same reduction with both L2s taken at matched success (NaN unless both
            this source and ``"none"`` reached the confidence).
    """

    image: str
    source: str
    beta: float
    label: int
    label_name: str
    target: int
    target_name: str
    fooled: bool
    target_probability: float
    l2: float
    linf: float
    adversarial_class: int
    adversarial_name: str
    l2_reduction_percent: float
    matched_beta: float
    matched_l2: float
    matched_l2_reduction_percent: float


@dataclass
class PenaltyComparison:
    """Everything :func:`compare_penalty` measured.

    Attributes:
        records: one :class:`PenaltyRecord` per (image, source) at the main β, image-major.
        runs: one :class:`PenaltyRun` per (image, source, β) of the schedule.
        maps: per source, the (B, H, W) maps (empty after :meth:`merge`).
        results: per source, the :class:`~cameras.attacks.penalty.PenaltyAttackResult` at the main β (empty after
            :meth:`merge`).
        settings: the arguments of the run.
    """

    records: list[PenaltyRecord]
    runs: list[PenaltyRun]
    maps: dict[str, Tensor] = field(default_factory=dict)
    results: dict[str, PenaltyAttackResult] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def sources(self) -> list[str]:
        """Sources in the order they were run."""
        return list(dict.fromkeys(r.source for r in self.records))

    @classmethod
    def merge(cls, parts: Sequence[PenaltyComparison]) -> PenaltyComparison:
        """One comparison from several (e.g. groups of images of different sizes): records and runs concatenated;
        maps and results are not kept."""
        if not parts:
            raise ValueError("merge needs at least one PenaltyComparison.")
        return cls(
            [r for p in parts for r in p.records],
            [r for p in parts for r in p.runs],
            settings=dict(parts[0].settings),
        )

    def summary(self) -> list[dict[str, Any]]:
        """Per source, exactly the keys of :data:`SUMMARY_KEYS`: the fooling rate, mean target probability, mean
        L2 and L∞ at the main β, the mean over images of the per-image L2 reduction against ``none``, and the mean
        matched-success reduction with the number of images ``matched_n`` it is taken over (for ``none``: the
        images where plain PGD reached the confidence)."""
        rows = []
        for source in self.sources:
            recs = [r for r in self.records if r.source == source]
            matched = [r.matched_l2_reduction_percent for r in recs if math.isfinite(r.matched_l2_reduction_percent)]
            rows.append(
                {
                    "source": source,
                    "fooled_rate": sum(r.fooled for r in recs) / len(recs),
                    "mean_target_probability": _mean([r.target_probability for r in recs]),
                    "mean_l2": _mean([r.l2 for r in recs]),
                    "mean_linf": _mean([r.linf for r in recs]),
                    "l2_reduction_percent": _mean([r.l2_reduction_percent for r in recs]),
                    "matched_l2_reduction_percent": _mean(matched),
                    "matched_n": len(matched),
                }
            )
        return rows

    def schedule(self) -> list[dict[str, Any]]:
        """Per source and β of the schedule: fooling rate, share reaching the confidence, mean target probability,
        mean L2 / L∞, and the mean per-image L2 reduction against ``none``."""
        confidence = float(self.settings.get("confidence", 0.9999))
        reference = {r.image: r.l2 for r in self.runs if r.source == "none"}
        keys = list(dict.fromkeys((r.source, r.beta) for r in self.runs))
        rows = []
        for source, beta in keys:
            runs = [r for r in self.runs if r.source == source and r.beta == beta]
            rows.append(
                {
                    "source": source,
                    "beta": beta,
                    "images": len(runs),
                    "fooled_rate": sum(r.fooled for r in runs) / len(runs),
                    "confident_rate": sum(r.target_probability >= confidence for r in runs) / len(runs),
                    "mean_target_probability": _mean([r.target_probability for r in runs]),
                    "mean_l2": _mean([r.l2 for r in runs]),
                    "mean_linf": _mean([r.linf for r in runs]),
                    "l2_reduction_percent": _mean(
                        [l2_reduction_percent(r.l2, reference.get(r.image, math.nan)) for r in runs]
                    ),
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: settings, ``summary`` (:meth:`summary`), ``schedule`` (:meth:`schedule`), per-image
        ``records`` and ``runs``; ``inf``/``nan`` become ``null``."""

        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(u) for k, u in v.items()}
            if isinstance(v, list | tuple):
                return [clean(u) for u in v]
            return v

        out: dict[str, Any] = clean(
            {
                "settings": self.settings,
                "summary": self.summary(),
                "schedule": self.schedule(),
                "records": [asdict(r) for r in self.records],
                "runs": [asdict(r) for r in self.runs],
            }
        )
        return out


def _scaled_norms(adversarial: Tensor, images: Tensor, scale: Tensor | None) -> tuple[Tensor, Tensor]:
    delta = adversarial.detach().double() - images.detach().double()
    if scale is not None:
        delta = delta * scale.to(delta.device, torch.float64).view(1, -1, 1, 1)
    return delta.flatten(1).norm(dim=1).cpu(), delta.flatten(1).abs().amax(dim=1).cpu()


@eval_mode
def compare_penalty(
    model: nn.Module,
    images: Tensor,
    labels: Tensor | None = None,
    *,
    sources: Sequence[str] = PENALTY_SOURCES,
    beta: float = 50.0,
    betas: Sequence[float] = (1.0, 3.0, 10.0, 50.0),
    eps: ChannelValue,
    step_size: ChannelValue,
    steps: int,
    bounds: Bounds | None = None,
    confidence: float = 0.9999,
    targets: Tensor | None = None,
    layer: str | nn.Module | None = None,
    seed: int = 0,
    maps: Mapping[str, Tensor] | None = None,
    scale: Sequence[float] | Tensor | None = None,
    names: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    batch_size: int | None = None,
    progress: bool = False,
) -> PenaltyComparison:
    """Saliency-penalised PGD of every image with every source's map over a β schedule (see the module docstring).

    All (source, β) runs of the images go through one batched :func:`~cameras.attacks.saliency_pgd` call
    (``batch_size`` images per pass); ``"none"`` runs once with β = 0. The schedule is ``betas`` plus the main
    ``beta``.

    Args:
        model: classifier returning logits.
        images: (B, 3, H, W) in the model's input space, inside ``bounds``.
        labels: (B,) the clean images' classes, whose maps are used (default: the model's top-1).
        sources: map sources (:func:`check_penalty_sources`); must include ``"none"``.
        beta: the main β, of the per-image table and the non-matched figures.
        betas: the β schedule of the matched-success figure (each ≥ 0).
        eps, step_size, steps, bounds: as in :func:`~cameras.attacks.saliency_pgd` (input units).
        confidence: target probability a run must reach to count for the matched figure (the paper's 0.9999).
        targets: (B,) wanted classes (default: the least-likely class of each clean image).
        layer: layer of the saliency methods.
        seed: seed of the shuffled map.
        maps: maps already computed, by method name (e.g. ``{"cameras": ...}``), to skip recomputing them.
        scale: C per-channel factors turning a perturbation in input units into the report's units (e.g.
            ``255 · std`` for 0–255 pixel units under a mean/std normalisation); ``None``: input units.
        names: B image names (default ``"0"``, ``"1"``, …); class_names: for the records.
        batch_size, progress: passed to :func:`~cameras.attacks.saliency_pgd`.

    Returns:
        :class:`PenaltyComparison`.

    Raises:
        ValueError, TypeError: unknown sources, a bad schedule or confidence, and everything
            :func:`~cameras.attacks.saliency_pgd` rejects.
    """
    items = check_penalty_sources(sources)
    schedule: list[float] = []
    for v in [*betas, beta]:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise ValueError(f"beta and betas must be finite numbers >= 0, got {v!r}.")
        if float(v) not in schedule:
            schedule.append(float(v))
    schedule.sort()
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 < confidence <= 1:
        raise ValueError(f"confidence must be a probability in (0, 1], got {confidence!r}.")
    batch = images.shape[0]
    if names is None:
        names = [str(i) for i in range(batch)]
    if len(names) != batch:
        raise ValueError(f"names has {len(names)} entries for {batch} images.")
    scale_t = None if scale is None else torch.as_tensor(scale, dtype=torch.float64).flatten()
    if labels is None:
        from ..engine.tap import extract_logits

        with torch.no_grad():
            labels = extract_logits(model(images)).argmax(dim=1)
    wanted = least_likely(model, images) if targets is None else targets
    psi = penalty_maps(model, images, labels, items, layer=layer, seed=seed, maps=maps)

    jobs = [(s, 0.0) if s == "none" else (s, b) for s in items for b in ([0.0] if s == "none" else schedule)]
    stacked = torch.cat([images for _ in jobs])
    stacked_maps = torch.cat([psi[s] for s, _ in jobs])
    stacked_beta = torch.tensor([b for _, b in jobs for _ in range(batch)], dtype=torch.float64)
    res = saliency_pgd(
        model,
        stacked,
        stacked_maps,
        wanted.repeat(len(jobs)),
        beta=stacked_beta,
        eps=eps,
        step_size=step_size,
        steps=steps,
        bounds=bounds,
        batch_size=batch_size,
        progress=progress,
    )
    l2, linf = _scaled_norms(res.adversarial, stacked, scale_t)

    def cname(c: int) -> str:
        return class_names[c] if class_names is not None and 0 <= c < len(class_names) else ""

    runs: list[PenaltyRun] = []
    index: dict[tuple[str, float], int] = {}
    for j, (s, b) in enumerate(jobs):
        index[(s, b)] = j
        for i in range(batch):
            k = j * batch + i
            runs.append(
                PenaltyRun(
                    names[i], s, b, bool(res.fooled[k]), float(res.target_probability[k]),
                    float(l2[k]), float(linf[k]), int(res.predictions[k]),
                )
            )  # fmt: skip

    def run_of(source: str, b: float, i: int) -> PenaltyRun:
        return runs[index[(source, b)] * batch + i]

    def matched(source: str, i: int) -> PenaltyRun | None:
        options = [
            run_of(source, b, i)
            for b in ([0.0] if source == "none" else schedule)
            if run_of(source, b, i).target_probability >= confidence
        ]
        return min(options, key=lambda r: r.l2) if options else None

    records: list[PenaltyRecord] = []
    for i in range(batch):
        ref = run_of("none", 0.0, i)
        ref_matched = matched("none", i)
        for s in items:
            main = run_of(s, 0.0 if s == "none" else float(beta), i)
            best = matched(s, i)
            records.append(
                PenaltyRecord(
                    image=names[i],
                    source=s,
                    beta=main.beta,
                    label=int(labels[i]),
                    label_name=cname(int(labels[i])),
                    target=int(wanted[i]),
                    target_name=cname(int(wanted[i])),
                    fooled=main.fooled,
                    target_probability=main.target_probability,
                    l2=main.l2,
                    linf=main.linf,
                    adversarial_class=main.adversarial_class,
                    adversarial_name=cname(main.adversarial_class),
                    l2_reduction_percent=l2_reduction_percent(main.l2, ref.l2),
                    matched_beta=best.beta if best is not None else math.nan,
                    matched_l2=best.l2 if best is not None else math.nan,
                    matched_l2_reduction_percent=(
                        l2_reduction_percent(best.l2, ref_matched.l2)
                        if best is not None and ref_matched is not None
                        else math.nan
                    ),
                )
            )
    results: dict[str, PenaltyAttackResult] = {}
    for s in items:
        j = index[(s, 0.0 if s == "none" else float(beta))]
        sl = slice(j * batch, (j + 1) * batch)
        results[s] = PenaltyAttackResult(**{k: v[sl] for k, v in vars(res).items()})
    settings: dict[str, Any] = {
        "sources": items,
        "beta": float(beta),
        "betas": schedule,
        "steps": steps,
        "confidence": float(confidence),
        "seed": seed,
        "targets": "given" if targets is not None else "least-likely",
        "units": "input" if scale is None else "scaled",
    }
    return PenaltyComparison(records, runs, psi, results, settings)


def _fmt(v: float, digits: int = 3) -> str:
    return "—" if not math.isfinite(v) else f"{v:.{digits}g}"


def format_penalty_table(comparison: PenaltyComparison) -> str:
    """Markdown tables: per image and source at the main β, then the per-source summary.

    Example:
        >>> print(format_penalty_table(PenaltyComparison([], [])).splitlines()[0])
        | image | source | β | fooled | p(target) | L2 | Linf | L2 red. % | matched β | matched L2 | matched red. % |
    """
    lines = [
        "| image | source | β | fooled | p(target) | L2 | Linf | L2 red. % | matched β | matched L2 | matched red. % |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in comparison.records:
        lines.append(
            f"| {r.image} | {r.source} | {r.beta:g} | {'yes' if r.fooled else 'no'} | {r.target_probability:.4f} | "
            f"{_fmt(r.l2)} | {_fmt(r.linf)} | {_fmt(r.l2_reduction_percent)} | {_fmt(r.matched_beta)} | "
            f"{_fmt(r.matched_l2)} | {_fmt(r.matched_l2_reduction_percent)} |"
        )
    lines += [
        "",
        "| source | fooled | mean p(target) | mean L2 | mean Linf | L2 reduction % | matched L2 reduction % (n) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in comparison.summary():
        lines.append(
            f"| {row['source']} | {row['fooled_rate']:.2f} | {row['mean_target_probability']:.4f} | "
            f"{_fmt(row['mean_l2'])} | {_fmt(row['mean_linf'])} | {_fmt(row['l2_reduction_percent'])} | "
            f"{_fmt(row['matched_l2_reduction_percent'])} ({row['matched_n']}) |"
        )
    return "\n".join(lines)


def plot_penalty_figure(
    comparison: PenaltyComparison,
    index: int,
    images: Tensor,
    to_display: Callable[[Tensor], np.ndarray],
    path: str | Path,
) -> Path:
    """Figure for one image: one row per source with the photo, the map Ψ, the perturbation (magnified by one
    factor shared by all rows, so that sizes compare) and the adversarial image with its class and the target's
    probability.

    Args:
        comparison: the result of :func:`compare_penalty` (not merged).
        index: which image of the batch.
        images: the (B, 3, H, W) clean images given to :func:`compare_penalty`.
        to_display: maps a (3, H, W) input-space tensor to an (H, W, 3) array in [0, 1].
        path: output file.

    Returns:
        the path written.
    """
    from matplotlib.figure import Figure

    sources = comparison.sources
    recs = {r.source: r for r in comparison.records[index * len(sources) : (index + 1) * len(sources)]}
    clean = images[index].detach().cpu()
    deltas = {s: (comparison.results[s].adversarial[index].detach().cpu() - clean) for s in sources}
    peak = max(float(d.abs().max()) for d in deltas.values())
    factor = 0.5 / peak if peak > 0 else 1.0
    h, w = images.shape[-2:]
    fig = Figure(figsize=(12, (3 * h / w + 0.5) * len(sources)), layout="constrained")
    axes = fig.subplots(len(sources), 4, squeeze=False)
    photo = np.clip(to_display(clean), 0, 1)
    for row, s in enumerate(sources):
        rec = recs[s]
        ax = axes[row]
        ax[0].imshow(photo)
        ax[0].set_title(f"{rec.image}: {rec.label} {rec.label_name}".strip(), fontsize=9)
        ax[1].imshow(comparison.maps[s][index].detach().cpu().numpy(), cmap="jet", vmin=0, vmax=1)
        ax[1].set_title(f"Ψ: {s}" + (" (β = 0)" if s == "none" else f" (β = {rec.beta:g})"), fontsize=9)
        ax[2].imshow(np.clip(0.5 + deltas[s].permute(1, 2, 0).numpy() * factor, 0, 1))
        ax[2].set_title(f"p ×{factor:.3g}  L2 {_fmt(rec.l2)}  L∞ {_fmt(rec.linf)}", fontsize=9)
        ax[3].imshow(np.clip(to_display(comparison.results[s].adversarial[index].detach().cpu()), 0, 1))
        ax[3].set_title(
            f"{rec.adversarial_class} {rec.adversarial_name}".strip() + f"  p(target) {rec.target_probability:.4f}",
            fontsize=9,
        )
        for a in ax:
            a.axis("off")
    return write_figure(path, fig, dpi=90)


def plot_penalty_schedule(comparison: PenaltyComparison, path: str | Path, units: str = "") -> Path:
    """Two panels over the β schedule, one line per source: the mean L2 (plain PGD as a dashed line) and the share
    of images whose target probability reaches the confidence.

    Returns:
        the path written.
    """
    from matplotlib.figure import Figure

    rows = comparison.schedule()
    betas = sorted({r["beta"] for r in rows if r["source"] != "none"})
    xs = np.arange(len(betas))
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax_l2, ax_ok = fig.subplots(1, 2)
    for k, source in enumerate(comparison.sources):
        mine = {r["beta"]: r for r in rows if r["source"] == source}
        if source == "none":
            ref = mine[0.0]
            ax_l2.axhline(ref["mean_l2"], color="0.3", linestyle="--", label="none (plain PGD)")
            ax_ok.axhline(ref["confident_rate"], color="0.3", linestyle="--", label="none (plain PGD)")
            continue
        ax_l2.plot(xs, [mine[b]["mean_l2"] for b in betas], marker="o", color=f"C{k}", label=source)
        ax_ok.plot(xs, [mine[b]["confident_rate"] for b in betas], marker="o", color=f"C{k}", label=source)
    confidence = comparison.settings.get("confidence", 0.9999)
    for ax in (ax_l2, ax_ok):
        ax.set_xticks(xs, [f"{b:g}" for b in betas])
        ax.set_xlabel("β")
    ax_l2.set_ylabel(f"mean L2 of the perturbation {units}".strip())
    ax_l2.set_title("perturbation size")
    ax_ok.set_ylabel(f"share with p(target) ≥ {confidence:g}")
    ax_ok.set_ylim(-0.05, 1.05)
    ax_ok.set_title("success at the confidence")
    ax_l2.legend(fontsize=8)
    return write_figure(path, fig, dpi=110)
