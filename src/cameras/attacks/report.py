"""Norm report: the minimal perturbation needed to fool the model, per focus source.

The paper (Jalwana et al., CVPR 2021, Sec. 5) reports that an attack restricted to the pixels CAMERAS marks as
important fools the model with a much smaller perturbation norm. :func:`compare_focus` measures it: for every image
and focus source (a saliency method, a random mask of the same area, the full image) it runs
:func:`~cameras.attacks.minimal.minimal_norm_attack` and records whether the model was fooled and the L2 / L∞ /
L0 norms of the smallest fooling perturbation. Lower norms at an equal fooling rate = a more effective focus.

>>> import torch, torch.nn as nn
>>> from cameras.attacks import compare_focus
>>> net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
...                     nn.Linear(4, 3)).eval()
>>> x = torch.rand(2, 3, 8, 8)
>>> cmp = compare_focus(net, x, net(x).argmax(1), sources=["random", "full"], area=0.25, bounds=(0.0, 1.0),
...                     steps=5, search_steps=3)
>>> [row["source"] for row in cmp.summary()]
['random', 'full']
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..engine.state import eval_mode
from ..io.atomic import write_figure
from .focus import FocusMode, focus_masks
from .minimal import MinimalNormResult, minimal_norm_attack
from .pgd import Bounds, Loss, Method, Norm

__all__ = ["FocusComparison", "FocusRecord", "compare_focus", "format_table", "plot_focus_figure"]


@dataclass(frozen=True)
class FocusRecord:
    """One image attacked under one focus source.

    Attributes:
        image: the image's name.
        source: focus source (``"cameras"``, ``"gradcam"``, ``"random"``, ``"full"``, …).
        label: class the attack moves away from (untargeted) or towards (targeted).
        label_name: its name, or ``""``.
        fooled: whether the model was fooled within the largest budget.
        eps: smallest fooling budget (``inf`` when not fooled).
        l2, linf, l0: norms of the returned perturbation (``l0`` = pixels changed).
        free_pixels: pixels the focus allows to change (mask > 0).
        iterations: gradient steps spent on the search.
        adversarial_class: top-1 class on the adversarial image.
        adversarial_name: its name, or ``""``.
    """

    image: str
    source: str
    label: int
    label_name: str
    fooled: bool
    eps: float
    l2: float
    linf: float
    l0: float
    free_pixels: int
    iterations: int
    adversarial_class: int
    adversarial_name: str


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def _mean(values: Sequence[float]) -> float:
    return float(statistics.fmean(values)) if values else math.nan


@dataclass
class FocusComparison:
    """Everything :func:`compare_focus` measured.

    Attributes:
        records: one :class:`FocusRecord` per (image, source), image-major.
        masks: per source, the (B, H, W) masks used.
        maps: per saliency source, the (B, H, W) maps.
        results: per source, the :class:`~cameras.attacks.minimal.MinimalNormResult`.
        seconds: per source, wall-clock seconds (saliency + search).
        settings: the arguments of the run.
    """

    records: list[FocusRecord]
    masks: dict[str, Tensor]
    maps: dict[str, Tensor]
    results: dict[str, MinimalNormResult]
    seconds: dict[str, float]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def sources(self) -> list[str]:
        """Focus sources in the order they were run."""
        if self.records:
            return list(dict.fromkeys(r.source for r in self.records))
        return list(self.results)

    @classmethod
    def merge(cls, parts: Sequence[FocusComparison]) -> FocusComparison:
        """One comparison from several runs with the same sources (e.g. groups of images of different sizes).

        Records are concatenated and seconds summed; the per-run tensors (masks, maps, results) are not kept, so the
        merged object serves :meth:`summary`, :meth:`to_dict` and :func:`format_table`, not figures.
        """
        if not parts:
            raise ValueError("merge needs at least one FocusComparison.")
        seconds: dict[str, float] = {}
        for part in parts:
            for k, v in part.seconds.items():
                seconds[k] = seconds.get(k, 0.0) + v
        records = [r for part in parts for r in part.records]
        return cls(records, {}, {}, {}, seconds, dict(parts[0].settings))

    def summary(self) -> list[dict[str, Any]]:
        """Per source: fooling rate, and median / mean norms over the images it fooled.

        ``paired_median_l2`` is the median L2 over the images that *every* source fooled, so that sources are
        compared on the same images (``nan`` when there are none).
        """
        by_source: dict[str, list[FocusRecord]] = {s: [] for s in self.sources}
        for r in self.records:
            by_source[r.source].append(r)
        names = {r.image for r in self.records}
        paired = {n for n in names if all(r.fooled for r in self.records if r.image == n)}
        rows = []
        for source, recs in by_source.items():
            ok = [r for r in recs if r.fooled]
            rows.append(
                {
                    "source": source,
                    "images": len(recs),
                    "fooled": len(ok),
                    "fooling_rate": len(ok) / len(recs) if recs else math.nan,
                    "median_l2": _median([r.l2 for r in ok]),
                    "mean_l2": _mean([r.l2 for r in ok]),
                    "median_linf": _median([r.linf for r in ok]),
                    "median_l0": _median([r.l0 for r in ok]),
                    "median_eps": _median([r.eps for r in ok]),
                    "paired_median_l2": _median([r.l2 for r in ok if r.image in paired]),
                    "paired_images": len(paired),
                    "seconds": self.seconds.get(source, math.nan),
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary: settings, summary, per-image records (``inf``/``nan`` become ``null``)."""

        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(u) for k, u in v.items()}
            if isinstance(v, list):
                return [clean(u) for u in v]
            return v

        out: dict[str, Any] = clean(
            {
                "settings": self.settings,
                "summary": self.summary(),
                "records": [asdict(r) for r in self.records],
            }
        )
        return out


def _bounds_json(bounds: Bounds | None) -> list[Any] | None:
    if bounds is None:
        return None
    out: list[Any] = []
    for v in bounds:
        if isinstance(v, Tensor):
            out.append(v.detach().cpu().reshape(-1).tolist())
        elif isinstance(v, int | float):
            out.append(float(v))
        else:
            out.append([float(a) for a in v])
    return out


@eval_mode
def compare_focus(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    *,
    sources: Sequence[str] = ("cameras", "gradcam", "random", "full"),
    area: float = 0.1,
    norm: Norm = "l2",
    mode: FocusMode = "hard",
    bounds: Bounds | None = None,
    layer: str | nn.Module | None = None,
    targeted: bool = False,
    seed: int = 0,
    steps: int = 10,
    search_steps: int = 8,
    method: Method = "pgd",
    loss: Loss = "margin",
    names: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    explain_labels: Tensor | None = None,
    progress: bool = False,
) -> FocusComparison:
    """Minimal-norm attack of every image under every focus source.

    Args:
        model: classifier returning logits; run in eval mode, its state restored afterwards (also on an error).
        images: (B, 3, H, W) in the model's input space, inside ``bounds``.
        labels: (B,) true classes (untargeted; use the model's prediction when there is no ground truth) or wanted
            classes (``targeted=True``).
        sources: focus sources (see :func:`~cameras.attacks.focus.focus_masks`).
        area: fraction of pixels of hard masks.
        norm: ``"l2"`` or ``"linf"``.
        mode: ``"hard"`` (top-``area`` mask) or ``"soft"`` (map as step weight) for saliency sources.
        bounds: valid input range ``(lo, hi)``.
        layer: layer for the saliency methods.
        targeted, seed, steps, search_steps, method, loss: passed to
            :func:`~cameras.attacks.minimal.minimal_norm_attack` (``seed`` also seeds the random masks).
        names: B image names for the records (default ``"0"``, ``"1"``, …).
        class_names: names of the classes, for the records.
        explain_labels: classes whose maps define the focus (default: ``labels``, or the model's prediction when
            ``targeted``).
        progress: a progress bar over the sources (stderr).

    Returns:
        :class:`FocusComparison`.
    """
    batch = images.shape[0]
    if names is None:
        names = [str(i) for i in range(batch)]
    if len(names) != batch:
        raise ValueError(f"names has {len(names)} entries for {batch} images.")
    if explain_labels is None:
        if targeted:
            with torch.no_grad():
                explain_labels = model(images).argmax(dim=1)
        else:
            explain_labels = labels
    settings: dict[str, Any] = {
        "sources": list(sources),
        "area": area,
        "norm": norm,
        "mode": mode,
        "bounds": _bounds_json(bounds),
        "targeted": targeted,
        "seed": seed,
        "steps": steps,
        "search_steps": search_steps,
        "method": method,
        "loss": loss,
    }
    masks: dict[str, Tensor] = {}
    maps: dict[str, Tensor] = {}
    results: dict[str, MinimalNormResult] = {}
    seconds: dict[str, float] = {}
    for source in tqdm(sources, desc="focus sources", unit="source", disable=not progress, leave=False):
        start = time.perf_counter()
        m, s = focus_masks(model, images, explain_labels, [source], area=area, mode=mode, layer=layer, seed=seed)
        masks.update(m)
        maps.update(s)
        results[source] = minimal_norm_attack(
            model,
            images,
            labels,
            mask=m[source],
            norm=norm,
            bounds=bounds,
            targeted=targeted,
            seed=seed,
            steps=steps,
            search_steps=search_steps,
            method=method,
            loss=loss,
        )
        seconds[source] = time.perf_counter() - start

    def cname(c: int) -> str:
        return class_names[c] if class_names is not None and 0 <= c < len(class_names) else ""

    records = []
    for i in range(batch):
        for source in sources:
            res = results[source]
            label = int(labels[i])
            adv_class = int(res.predictions[i])
            records.append(
                FocusRecord(
                    image=names[i],
                    source=source,
                    label=label,
                    label_name=cname(label),
                    fooled=bool(res.fooled[i]),
                    eps=float(res.eps[i]),
                    l2=float(res.l2[i]),
                    linf=float(res.linf[i]),
                    l0=float(res.l0[i]),
                    free_pixels=int((masks[source][i] > 0).sum()),
                    iterations=int(res.iterations[i]),
                    adversarial_class=adv_class,
                    adversarial_name=cname(adv_class),
                )
            )
    return FocusComparison(records, masks, maps, results, seconds, settings)


def _fmt(v: float, digits: int = 3) -> str:
    return "—" if not math.isfinite(v) else f"{v:.{digits}g}"


def format_table(comparison: FocusComparison) -> str:
    """Markdown tables: per image and source (fooled?, ε, L2, L∞, L0, new class), then the per-source summary.

    Example:
        >>> print(format_table(FocusComparison([], {}, {}, {}, {})).splitlines()[0])
        | image | source | fooled | eps | L2 | Linf | L0 (px) | free px | steps | new class |
    """
    lines = [
        "| image | source | fooled | eps | L2 | Linf | L0 (px) | free px | steps | new class |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in comparison.records:
        new = f"{r.adversarial_class} {r.adversarial_name}".strip()
        lines.append(
            f"| {r.image} | {r.source} | {'yes' if r.fooled else 'no'} | {_fmt(r.eps)} | {_fmt(r.l2)} | "
            f"{_fmt(r.linf)} | {r.l0:.0f} | {r.free_pixels} | {r.iterations} | {new} |"
        )
    lines += [
        "",
        "| source | fooling rate | median L2 | mean L2 | median Linf | median L0 (px) | paired median L2 | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in comparison.summary():
        lines.append(
            f"| {row['source']} | {row['fooled']}/{row['images']} | {_fmt(row['median_l2'])} | "
            f"{_fmt(row['mean_l2'])} | {_fmt(row['median_linf'])} | {_fmt(row['median_l0'], 6)} | "
            f"{_fmt(row['paired_median_l2'])} ({row['paired_images']} img) | {row['seconds']:.1f} |"
        )
    return "\n".join(lines)


def plot_focus_figure(
    comparison: FocusComparison,
    index: int,
    images: Tensor,
    to_display: Callable[[Tensor], np.ndarray],
    path: str | Path,
    magnify: float | None = None,
) -> Path:
    """Figure for one image: one row per source with the photo, the focus mask, the perturbation (magnified) and
    the adversarial image with its new class.

    Args:
        comparison: the result of :func:`compare_focus`.
        index: which image of the batch.
        images: the (B, 3, H, W) clean images given to :func:`compare_focus`.
        to_display: maps a (3, H, W) input-space tensor to an (H, W, 3) array in [0, 1] (e.g. undoing the
            model's normalisation).
        path: output file (PNG, PDF, …).
        magnify: factor applied to the perturbation around mid-grey; ``None`` scales its largest value to 0.5.

    Returns:
        the path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = comparison.sources
    # records are image-major: image ``index`` owns records[index * S : (index + 1) * S]
    recs = {r.source: r for r in comparison.records[index * len(sources) : (index + 1) * len(sources)]}
    h, w = images.shape[-2:]
    fig, axes = plt.subplots(len(sources), 4, figsize=(12, (3 * h / w + 0.45) * len(sources)), squeeze=False)
    clean = images[index].detach().cpu()
    photo = np.clip(to_display(clean), 0, 1)
    for row, source in enumerate(sources):
        res, rec = comparison.results[source], recs[source]
        adv = res.adversarial[index].detach().cpu()
        delta = (adv - clean).permute(1, 2, 0).numpy()
        peak = float(np.abs(delta).max())
        factor = magnify if magnify is not None else (0.5 / peak if peak > 0 else 1.0)
        shown = np.clip(0.5 + delta * factor, 0, 1)
        mask = comparison.masks[source][index].detach().cpu().numpy()
        ax = axes[row]
        ax[0].imshow(photo)
        ax[0].set_title(f"{rec.image}: {rec.label} {rec.label_name}".strip(), fontsize=9)
        ax[1].imshow(photo)
        ax[1].imshow(mask, cmap="viridis", alpha=0.6, vmin=0, vmax=1)
        ax[1].set_title(f"focus: {source} ({rec.free_pixels} px)", fontsize=9)
        ax[2].imshow(shown)
        ax[2].set_title(f"δ ×{factor:.3g}  L2 {_fmt(rec.l2)}  L∞ {_fmt(rec.linf)}", fontsize=9)
        ax[3].imshow(np.clip(to_display(adv), 0, 1))
        verdict = "fooled" if rec.fooled else "not fooled"
        ax[3].set_title(f"{verdict}: {rec.adversarial_class} {rec.adversarial_name}".strip(), fontsize=9)
        for a in ax:
            a.axis("off")
    fig.tight_layout()
    try:
        out = write_figure(path, fig, dpi=90)
    finally:
        plt.close(fig)
    return out
