"""``cameras evaluate``: localisation and faithfulness metrics of saliency methods on annotated photos and data sets.

The photos come from a folder with a box file (``--images DIR --boxes FILE``, or ``--dataset folder --root DIR
--boxes FILE``) or from a data set in its standard layout: ``--dataset voc|coco|imagenet --root DIR [--split NAME]``
(:mod:`cameras.datasets`). For every photo and every annotated class of it, each method explains that class
(``--target label``, default) or the model's top-1 class (``--target predicted``, then all boxes of the photo
count). Metrics per (photo, class, method):

* ``pointing`` — pointing game hit (Zhang et al. 2016), tolerance ``--tolerance`` px (TorchRay: 15), higher better;
* ``energy`` — share of the map's mass in the boxes (Score-CAM's energy-based pointing game), higher better;
* ``energy_mask`` — the same share inside the union of the class's instance masks (:func:`cameras.metrics.
  energy_in_mask`), higher better; data sets with masks only (COCO; pycocotools, ``pip install "cameras[coco]"``),
  not in the default list; NaN (counted as undefined) for a (photo, class) with an object without a mask;
* ``insertion`` / ``deletion`` — RISE AUCs (Petsiuk et al. 2018) over ``--steps`` steps, higher / lower better;
* ``avg_drop`` / ``increase`` — Grad-CAM++'s Average Drop % (lower better) and Increase in Confidence % (higher
  better);
* ``discrimination`` — for photos annotated with two or more classes: whether the map's peak falls in the class's own
  boxes and in none of the other annotated classes' (:func:`cameras.metrics.discrimination`), higher better. It
  comes in two columns: ``discrimination`` for the plain map and ``discrimination_contrastive`` for the contrastive
  map of the class against the photo's other annotated classes (``contrast=`` them, weight ``--gamma``); NaN (and
  left out of the means) for photos with one class or with ``--target predicted``;
* ``rho_pos`` / ``rho_neg`` — the CAMERAS paper's positive / negative map density (Sec. 4.2, higher / lower
  better), with the paper's ``I ⊙ Ψ`` (removed pixels black, :func:`cameras.metrics.black_baseline`); a map with no
  density (mean 0 or 1) is NaN in the rows and counted as ``undefined`` in the summary.

With ``--target label`` and ``pointing`` on VOC, COCO or photos annotated with several classes, the data-set
protocol of the paper's Table 1 is reported too: the mean over classes of the per-class hit rate on all (photo,
class) pairs (``pointing_all``) and on the "difficult" ones (``pointing_difficult``: the class's boxes cover < 1/4
of the photo and another class is annotated; :func:`cameras.metrics.is_difficult`,
:func:`cameras.metrics.pointing_accuracy`), in ``evaluate.json``, ``pointing_table.csv`` and the printed table.

As in TorchRay's pointing game, a (photo, class) pair whose objects are all marked ``difficult`` (VOC) is not
scored. The localisation metrics are computed in the photo's pixels (the map resized back to the photo, as TorchRay
does; ``--frame input`` uses the model-input frame with the boxes scaled instead); the faithfulness metrics in the
model's input frame.

**The run.** One code path for one photo and for 50,000: the items are cut into chunks of ``--shard-size`` photos;
a DataLoader with ``--workers`` processes decodes (:func:`cameras.io.load_image`) and preprocesses them while the
model runs; the (photo, class) jobs of a chunk go to the explainers in batches of ``--explain-batch`` inputs of one
size (all of them with ``--square``); each finished chunk is committed atomically as ``--out/shards/chunk-N.json``
(:mod:`cameras.runs.store`). Rerunning the same command resumes (it says how many items are done); a different
configuration in the same ``--out`` is refused unless ``--overwrite``. Under ``torchrun`` the chunks are dealt to
the ranks (Gloo on the CPU, NCCL on CUDA, ``cuda:LOCAL_RANK`` each) and rank 0 merges the shards into the same
outputs a single process writes.

**Outputs** in ``--out`` (rank 0): ``per_image.csv`` (image, class, class_name, method, one column per metric, then
``difficult`` — the (photo, class) pair is in the pointing game's "difficult" subset — where the pointing table
applies), ``summary.csv``, ``evaluate.json``, ``evaluate.png``, ``skipped.csv`` (image, reason: photos or boxes
left out), ``pointing_table.csv`` (the paper's Table 1 form: per method the mean over classes of the per-class
pointing accuracy on All and on the Diff subset, then one row per class; written with ``pointing`` and
``--target label`` for VOC, COCO, and data sets with several classes per photo), ``maps/`` with ``--save-maps``
(:mod:`cameras.runs.maps`) and ``run.json`` (with ``image_root``, ``dataset`` and ``world_size``). The summary table
(mean ± std over rows) is printed.

A score that is undefined — a degenerate (constant) map, or a box with no pixel on the photo — is ``nan`` in the
CSV (``null`` in the JSON), left out of the means, and counted in the summary's ``undefined`` column; a box entirely
outside its photo is reported as an error and skipped; a photo that cannot be read is skipped with its reason and
the run goes on.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import (
    ListOption,
    add_model_options,
    add_run_options,
    load_model,
    method_scales,
    model_spec,
    print_error,
    print_warning,
    write_failure,
)
from .options import (
    add_output_option,
    finite_float,
    float_range,
    int_range,
    nonempty,
    positive_int,
    resolutions_option,
    size_limits,
)

__all__ = ["DEFAULT_METRICS", "METRICS", "add_parser", "run", "summarize"]

METRICS: dict[str, tuple[str, bool]] = {
    "pointing": ("pointing game", True),
    "energy": ("energy in box", True),
    "energy_mask": ("energy in mask", True),
    "insertion": ("insertion AUC", True),
    "deletion": ("deletion AUC", False),
    "avg_drop": ("average drop %", False),
    "increase": ("increase in conf. %", True),
    "discrimination": ("discrimination (plain)", True),
    "discrimination_contrastive": ("discrimination (contrastive)", True),
    "rho_pos": ("positive density ρ⁺", True),
    "rho_neg": ("negative density ρ⁻", False),
}
"""metric key → (display name, higher is better)."""

DEFAULT_METRICS: tuple[str, ...] = tuple(k for k in METRICS if k != "energy_mask")
"""The metrics of a run without ``--metrics``: all but ``energy_mask`` (which needs a data set with masks)."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "evaluate",
        help="pointing game, energy, insertion/deletion and confidence metrics of methods on annotated photos",
        description=(
            "Evaluate saliency methods on photos with bounding boxes (JSON {'file.jpg': [{'class': 951, 'box': "
            "[x0, y0, x1, y1]}]} in photo pixels, or Pascal VOC XML) or on a data set (VOC, COCO, ImageNet val). "
            "Resumable (rerun the same command), shardable with torchrun. Prints a method × metric table "
            "(mean ± std) and writes per_image.csv, summary.csv, evaluate.json, evaluate.png, skipped.csv "
            "(and pointing_table.csv, maps/) to --out."
        ),
    )
    p.add_argument("--images", type=nonempty, default=None, help="folder holding the annotated photos (folder form)")
    p.add_argument(
        "--boxes", type=nonempty, default=None, help="box file: .json, a VOC .xml, or a folder of VOC .xml files"
    )
    p.add_argument(
        "--dataset",
        choices=("folder", "voc", "coco", "imagenet"),
        default=None,
        help="data set layout (default: folder, i.e. --images + --boxes)",
    )
    p.add_argument(
        "--root",
        type=nonempty,
        default=None,
        help="data set folder: VOCdevkit/VOC2007, the COCO root, the ImageNet root, or the photos (folder)",
    )
    p.add_argument("--split", type=nonempty, default=None, help="split: VOC test (default), COCO val2014, ImageNet val")
    p.add_argument("--limit", type=positive_int, default=None, help="evaluate only the first N photos")
    p.add_argument(
        "--synsets",
        type=nonempty,
        default=None,
        help="ImageNet: a file of wnids in class-index order (default: the 1000 sorted synsets)",
    )
    p.add_argument(
        "--num-classes",
        type=positive_int,
        default=None,
        help="outputs of the --weights checkpoint's head (default: read from the checkpoint)",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        action=ListOption,
        default=None,
        help="methods (space or comma separated; default: cameras)",
    )
    add_model_options(p)
    p.add_argument(
        "--resolutions",
        type=resolutions_option,
        default=None,
        help="CAMERAS scales: '224,324' (shorter side, px), '1,1.5' (factors) or 'paper' (default)",
    )
    add_run_options(p)
    p.add_argument(
        "--metrics",
        nargs="+",
        action=ListOption,
        default=None,
        help=f"metrics to compute (default: {', '.join(DEFAULT_METRICS)}; also energy_mask on COCO's masks)",
    )
    p.add_argument(
        "--target",
        choices=("label", "predicted"),
        default="label",
        help="explain the annotated class (default) or the model's top-1",
    )
    p.add_argument(
        "--tolerance",
        type=float_range(0.0, 1e6),
        default=15.0,
        help="pointing-game tolerance in pixels, ≥ 0 (default 15)",
    )
    p.add_argument(
        "--steps", type=int_range(1, 10000), default=100, help="insertion/deletion steps, 1..10000 (default 100)"
    )
    p.add_argument(
        "--frame",
        choices=("original", "input"),
        default="original",
        help="pixel frame of the localisation metrics: the photo's (default) or the model input's",
    )
    p.add_argument(
        "--batch-size",
        type=int_range(1, 4096),
        default=64,
        help="images per forward pass of insertion/deletion, confidence and densities, 1..4096 (default 64)",
    )
    p.add_argument(
        "--gamma",
        type=finite_float,
        default=1.0,
        help="weight γ of the other annotated classes in the contrastive maps of discrimination (default 1)",
    )
    p.add_argument(
        "--explain-batch",
        type=int_range(1, 4096),
        default=8,
        help="(photo, class) inputs of one size explained together, 1..4096 (default 8)",
    )
    p.add_argument(
        "--workers", type=int_range(0, 256), default=2, help="DataLoader processes decoding photos (default 2)"
    )
    p.add_argument(
        "--shard-size",
        type=int_range(1, 100000),
        default=32,
        help="photos per committed shard: the unit of resume and of the split over ranks (default 32)",
    )
    p.add_argument("--save-maps", action="store_true", help="also save every map (float16) under --out/maps/")
    p.add_argument(
        "--overwrite", action="store_true", help="start over when --out holds a run with another configuration"
    )
    add_output_option(p, "cameras_eval")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _error(message: str) -> None:
    print_error("evaluate", message)


@dataclass
class Row:
    """Metrics of one method on one (photo, class)."""

    image: str
    cls: int
    name: str
    method: str
    values: dict[str, float]
    degenerate: bool = False
    warnings: list[str] = field(default_factory=list)
    difficult: bool | None = None
    """In the pointing game's "difficult" subset (:func:`cameras.metrics.is_difficult`, through
    :func:`cameras.datasets.ebp_difficult`); ``None``: not computed (no Table 1 for the run, or the photo explained
    for its top-1 class)."""


def summarize(rows: Sequence[Row], methods: Sequence[str], metrics: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{method: {metric: {"mean", "std", "n", "undefined"}}}`` over rows: population std over the ``n`` defined
    values; ``undefined`` counts the rows whose value is NaN (a degenerate map, no box on the photo)."""
    out: dict[str, dict[str, Any]] = {}
    for m in methods:
        out[m] = {}
        for k in metrics:
            given = [r.values[k] for r in rows if r.method == m and k in r.values]
            vals = [v for v in given if math.isfinite(v)]
            n = len(vals)
            mean = sum(vals) / n if n else float("nan")
            std = math.sqrt(sum((v - mean) ** 2 for v in vals) / n) if n else float("nan")
            out[m][k] = {"mean": mean, "std": std, "n": n, "undefined": len(given) - n}
    return out


def pointing_protocol(rows: Sequence[Row], methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The pointing game as the CAMERAS paper's Table 1 (after TorchRay / Zhang et al. 2016) reports it: per method,
    :func:`cameras.metrics.pointing_accuracy` over the rows that carry a difficult flag (``--target label`` on
    photos with several annotated classes) and a defined hit.

    Per class, the accuracy is hits / trials over the (photo, class) rows of that class, on all rows ("All") and on
    the rows of the "difficult" subset ("Diff", :func:`cameras.metrics.is_difficult`); the method's figure is the
    mean of the per-class accuracies over the classes that have rows (Diff: over the classes that have difficult
    rows; NaN without any). A row whose hit is undefined (a constant map) counts as neither hit nor miss; a
    (photo, class) pair annotated only with VOC-difficult objects has no row (TorchRay skips it); a row without a
    flag (a photo explained for its top-1 class because a box has no label) is left out. ``pointing_table.csv``
    (:func:`pointing_table`) and the ``pointing_all`` / ``pointing_difficult`` of ``evaluate.json`` both come from
    this one result.

    Returns:
        ``{method: {"pointing_all", "pointing_difficult", "pairs", "difficult_pairs", "per_class": {"class":
        {"all", "difficult", "n_all", "n_difficult"}}}}``; a method without such rows is left out.
    """
    from ..metrics import pointing_accuracy

    out: dict[str, dict[str, Any]] = {}
    for m in methods:
        mine = [
            r
            for r in rows
            if r.method == m and r.difficult is not None and math.isfinite(r.values.get("pointing", math.nan))
        ]
        if not mine:
            continue
        acc = pointing_accuracy(
            [bool(r.values["pointing"]) for r in mine], [r.cls for r in mine], [bool(r.difficult) for r in mine]
        )
        out[m] = {
            "pointing_all": acc["all"],
            "pointing_difficult": acc["difficult"],
            "pairs": acc["pairs"],
            "difficult_pairs": acc["difficult_pairs"],
            "per_class": {str(c): v for c, v in acc["per_class"].items()},
        }
    return out


def pointing_table(
    protocol: dict[str, dict[str, Any]], methods: Sequence[str], labels: Sequence[str]
) -> list[list[Any]]:
    """:func:`pointing_protocol` as the rows of ``pointing_table.csv``.

    Returns:
        rows ``[method, class, class_name, all, all_n, diff, diff_n]``: for each method first its ``mean`` row
        (``all_n`` / ``diff_n``: the number of classes averaged; NaN and 0 for a method without a defined hit), then
        one row per class in index order (``all_n`` / ``diff_n``: its rows).
    """
    out: list[list[Any]] = []
    for m in methods:
        p = protocol.get(m, {"pointing_all": math.nan, "pointing_difficult": math.nan, "per_class": {}})
        per = sorted((int(c), v) for c, v in p["per_class"].items())
        hard = sum(1 for _, v in per if v["n_difficult"])
        out.append([m, "mean", "mean over classes", p["pointing_all"], len(per), p["pointing_difficult"], hard])
        for c, v in per:
            name = labels[c] if c < len(labels) else str(c)
            out.append([m, c, name, v["all"], v["n_all"], v["difficult"], v["n_difficult"]])
    return out


def _protocol_table(protocol: dict[str, dict[str, Any]]) -> str:
    lines = ["pointing game (mean over classes), Table 1 protocol (the mean of the per-class hit rates):"]
    for m, p in protocol.items():
        diff = p["pointing_difficult"]
        diff_text = "—" if math.isnan(diff) else f"{diff:.3f}"
        lines.append(
            f"  {m}: All {p['pointing_all']:.3f} ({p['pairs']} pairs), Diff {diff_text} ({p['difficult_pairs']} pairs)"
        )
    return "\n".join(lines)


def _with_contrastive(metrics: list[str]) -> list[str]:
    """``discrimination`` stands for both of its columns: the plain and the contrastive maps'.

    Example:
        >>> _with_contrastive(["pointing", "discrimination"])
        ['pointing', 'discrimination', 'discrimination_contrastive']
    """
    out: list[str] = []
    for k in metrics:
        out.append(k)
        if k == "discrimination" and "discrimination_contrastive" not in metrics:
            out.append("discrimination_contrastive")
    return out


def _cell(stats: dict[str, Any]) -> str:
    """``mean ± std``; ``(n=…)`` when some rows are undefined; ``undefined`` when all are."""
    if stats["n"] == 0:
        return "undefined"
    return f"{stats['mean']:.3f} ± {stats['std']:.3f}" + (f" (n={stats['n']})" if stats["undefined"] else "")


def _table(summary: dict[str, dict[str, Any]], metrics: Sequence[str]) -> str:
    header = ["method"] + [f"{METRICS[k][0]} {'↑' if METRICS[k][1] else '↓'}" for k in metrics]
    body = [[m] + [_cell(summary[m][k]) for k in metrics] for m in summary]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _bar_plot(summary: dict[str, dict[str, Any]], metrics: Sequence[str]) -> Any:
    import numpy as np
    from matplotlib.figure import Figure

    # at most 4 panels a line, so the figure keeps a page's aspect (10 metrics in one line were 3600 × 408 px)
    cols = min(len(metrics), 4)
    lines = -(-len(metrics) // cols)
    fig = Figure(figsize=(3.2 * cols, 3.0 * lines), layout="constrained")
    grid = fig.subplots(lines, cols, squeeze=False).ravel()
    for unused in grid[len(metrics) :]:
        unused.set_axis_off()
    axes = grid[: len(metrics)]
    methods = list(summary)
    xs = np.arange(len(methods))
    for ax, k in zip(axes, metrics):
        means = [summary[m][k]["mean"] for m in methods]
        stds = [summary[m][k]["std"] for m in methods]
        ax.bar(xs, means, yerr=stds, capsize=3, color=[f"C{i}" for i in range(len(methods))])
        ax.set_xticks(xs, methods, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{METRICS[k][0]} ({'higher' if METRICS[k][1] else 'lower'} is better)", fontsize=9)
    return fig


def _check_boxes(fname: str, anns: Sequence[Any], size: tuple[int, int]) -> tuple[list[Any], list[str]]:
    """The annotations with at least one pixel on the (H, W) photo, and an error message for each other one."""
    h, w = size
    kept, errors = [], []
    for a in anns:
        x0, y0, x1, y1 = a.box
        if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h or x1 <= x0 or y1 <= y0:
            errors.append(
                f"{fname}: box {list(a.box)} ({a.name or a.label}) has no pixel on the {h}×{w} photo, skipped"
            )
        else:
            kept.append(a)
    return kept, errors


def _fmt(v: Any) -> Any:
    return f"{v:.6g}" if isinstance(v, float) else v


def _read_dataset(args: argparse.Namespace) -> Any:
    """The data set the options name (:func:`cameras.datasets.open_dataset`), or ``None`` after one error line."""
    from ..datasets import DatasetError, open_dataset

    kind = args.dataset or "folder"
    if kind == "folder":
        if args.images is not None and args.root is not None:
            _error("give the photos once: --images or --root")
            return None
        folder = args.images or args.root
        if folder is None or args.boxes is None:
            _error("give --images DIR and --boxes FILE, or --dataset voc|coco|imagenet --root DIR")
            return None
        if args.split is not None or args.synsets is not None:
            _error(f"{'--split' if args.split is not None else '--synsets'} does not apply to a folder of photos")
            return None
    else:
        if args.root is None:
            _error(f"--dataset {kind} needs --root DIR")
            return None
        if args.images is not None or args.boxes is not None:
            _error(f"--dataset {kind} reads its own photos and boxes: drop --images / --boxes")
            return None
        if args.synsets is not None and kind != "imagenet":
            _error("--synsets applies to --dataset imagenet only")
            return None
        folder = args.root
    try:
        return open_dataset(kind, folder, split=args.split, boxes=args.boxes, limit=args.limit, synsets=args.synsets)
    except DatasetError as err:
        _error(str(err))
        return None


def _outputs(model: Any, size: int, device: Any) -> int:
    """The number of logits the model returns (one forward pass on a blank input)."""
    import torch

    from ..engine.state import ModelState
    from ..engine.tap import extract_logits

    with torch.no_grad(), ModelState(model):
        return int(extract_logits(model(torch.zeros(1, 3, size, size, device=device))).shape[1])


def _records_digest(dataset: Any) -> str:
    """A digest of the data set's records (photos, classes, boxes, flags, instance masks): part of the resume key."""
    import hashlib
    import json

    h = hashlib.sha256()
    for r in dataset.records:
        objects = [
            [a.label, list(a.box), a.difficult, *([] if a.segmentation is None else [a.segmentation.data])]
            for a in r.objects
        ]
        h.update(json.dumps([r.image, objects]).encode())
    return h.hexdigest()


@dataclass
class _Job:
    """One (photo, class) to explain."""

    position: int
    record: Any
    item: Any
    cls: int
    boxes: Any
    others: list[int]
    other_boxes: Any
    difficult: bool | None
    mask: Any = None
    """(H, W) bool union of the objects' instance masks at the photo's size (``energy_mask``), ``None`` without."""


class _Evaluator:
    """Computes the rows of one chunk of photos (everything a shard holds)."""

    def __init__(
        self,
        args: argparse.Namespace,
        dataset: Any,
        loaded: Any,
        explainers: dict[str, Callable[..., Any]],
        metric_names: list[str],
        labels: list[str],
        table: bool,
    ) -> None:
        from ..metrics import black_baseline

        self.args = args
        self.dataset = dataset
        self.loaded = loaded
        self.explainers = explainers
        self.metrics = metric_names
        self.labels = labels
        self.table = table
        self.black = black_baseline(loaded.preprocess.mean, loaded.preprocess.std).to(loaded.device)

    def _jobs(self, items: Sequence[Any], skipped: list[list[str]]) -> list[_Job]:
        import torch

        from ..datasets import ebp_difficult
        from ..engine.state import ModelState
        from ..engine.tap import extract_logits
        from ..metrics import boxes_tensor

        jobs: list[_Job] = []
        for it in items:
            record = self.dataset.records[it.index]
            if it.error is not None:
                _error(it.error)
                skipped.append([record.image, it.error])
                continue
            anns, errors = _check_boxes(record.image, record.objects, it.size)
            errors = [f"{record.image}: {reason}, skipped" for reason in record.dropped] + errors  # the reader's
            for e in errors:
                _error(e)
                skipped.append([record.image, e])
            if not anns:
                if not errors:
                    _error(f"{record.image}: no boxes, skipped")
                    skipped.append([record.image, "no boxes"])
                continue
            if self.args.target == "predicted" or any(a.label is None for a in anns):
                x = it.tensor[None].to(self.loaded.device)
                with torch.no_grad(), ModelState(self.loaded.model):
                    top1 = int(extract_logits(self.loaded.model(x)).argmax(dim=1)[0])
                job = _Job(len(jobs), record, it, top1, boxes_tensor(anns), [], boxes_tensor([]), None)
                jobs.append(self._with_mask(job, anns))
                continue
            annotated = [c for c in dict.fromkeys(a.label for a in anns) if c is not None]
            for c in annotated:
                own = [a for a in anns if a.label == c]
                if all(a.difficult for a in own):  # TorchRay: a class annotated only as difficult is not scored
                    continue
                others = [o for o in annotated if o != c]
                rivals = boxes_tensor([a for a in anns if a.label in others])
                hard = ebp_difficult(record, c, it.size) if self.table else None
                job = _Job(len(jobs), record, it, c, boxes_tensor(anns, label=c), others, rivals, hard)
                jobs.append(self._with_mask(job, own))
        return jobs

    def _with_mask(self, job: _Job, objects: Sequence[Any]) -> _Job:
        """``job`` with the union of ``objects``' instance masks at the photo's size, when ``energy_mask`` is asked."""
        if "energy_mask" in self.metrics:
            from ..metrics import instance_mask

            job.mask = instance_mask([a.segmentation for a in objects], job.item.size)
        return job

    def chunk(self, chunk: int, items: Sequence[Any]) -> dict[str, Any]:
        """The shard payload of one chunk: rows, skipped photos, and the index of its saved maps."""
        skipped: list[list[str]] = []
        jobs = self._jobs(items, skipped)
        buckets: dict[tuple[int, int], list[_Job]] = {}
        for j in jobs:
            buckets.setdefault(j.item.input_size, []).append(j)
        size = self.args.explain_batch
        results: list[tuple[tuple[int, int], dict[str, Any]]] = []
        maps: list[tuple[tuple[int, int], str, int, str, Any]] = []
        for bucket in buckets.values():
            for start in range(0, len(bucket), size):
                batch = bucket[start : start + size]
                results.extend(self._batch(batch, skipped, maps))
        results.sort(key=lambda kv: kv[0])
        payload: dict[str, Any] = {"rows": [r for _, r in results], "skipped": skipped, "maps": []}
        if maps:  # written before the shard is committed: a committed row always has its map
            from ..runs.maps import MapStore

            maps.sort(key=lambda m: m[0])
            payload["maps"] = MapStore(self.args.out.path).write(chunk, [m[1:] for m in maps])
        return payload

    def _frames(self, sal: Any, batch: list[_Job], ks: list[int]) -> list[tuple[list[int], Any]]:
        """The maps ``sal`` (one per job ``batch[k]``, ``k`` in ``ks``, in that order) in the frame the localisation
        metrics score them in, grouped by that frame's size: ``(jobs, (n, H, W) maps)`` per group.

        ``--frame original`` resizes each group to its photos' size in one call (:func:`~cameras.models.resize_map`
        treats each map apart, so this is the per-map resize, batched); ``--frame input`` keeps the maps as they are.
        """
        from ..models import resize_map

        original = self.args.frame == "original"
        groups: dict[tuple[int, int], list[int]] = {}
        for n, k in enumerate(ks):
            groups.setdefault(batch[k].item.size if original else batch[k].item.input_size, []).append(n)
        out: list[tuple[list[int], Any]] = []
        for size, rows in groups.items():
            maps = sal if len(rows) == sal.shape[0] else sal[rows]
            out.append(([ks[n] for n in rows], resize_map(maps, size) if original else maps))
        return out

    def _batch(
        self, batch: list[_Job], skipped: list[list[str]], maps: list[tuple[tuple[int, int], str, int, str, Any]]
    ) -> list[tuple[tuple[int, int], dict[str, Any]]]:
        import torch

        from ..metrics import (
            confidence_change,
            discrimination,
            energy_in_box,
            insertion_deletion,
            map_density,
            pointing_game,
        )
        from ..models import scale_box

        args, metric_names = self.args, self.metrics
        device = self.loaded.device
        x = torch.stack([j.item.tensor for j in batch]).to(device)
        targets = torch.tensor([j.cls for j in batch], device=device)
        out: list[tuple[tuple[int, int], dict[str, Any]]] = []

        def boxes(b: Any, j: _Job) -> Any:
            return b if args.frame == "original" else scale_box(b, j.item.size, j.item.input_size)

        for mi, (mname, explainer) in enumerate(self.explainers.items()):
            try:
                result = explainer(x, targets)
                sal = result.saliency.detach().float()
                values: list[dict[str, float]] = [{} for _ in batch]
                for ks, loc in self._frames(sal, batch, list(range(len(batch)))):
                    own = [boxes(batch[k].boxes, batch[k]) for k in ks]
                    if "pointing" in metric_names:
                        for k, v in zip(ks, pointing_game(loc, own, tolerance=args.tolerance).tolist()):
                            values[k]["pointing"] = v
                    if "energy" in metric_names:
                        for k, v in zip(ks, energy_in_box(loc, own).tolist()):
                            values[k]["energy"] = v
                    if "energy_mask" in metric_names:
                        self._energy_mask(loc, batch, ks, values)
                    if "discrimination" in metric_names or "discrimination_contrastive" in metric_names:
                        for k in ks:
                            values[k]["discrimination"] = values[k]["discrimination_contrastive"] = math.nan
                        pos = [n for n, k in enumerate(ks) if batch[k].others]
                        if pos:
                            rivals = [boxes(batch[ks[n]].other_boxes, batch[ks[n]]) for n in pos]
                            scores = discrimination(loc[pos], [own[n] for n in pos], rivals).tolist()
                            for n, v in zip(pos, scores):
                                values[ks[n]]["discrimination"] = v
                if "insertion" in metric_names or "deletion" in metric_names:
                    ins_del = insertion_deletion(
                        self.loaded.model, x, sal, targets, steps=args.steps, batch_size=args.batch_size
                    )
                    for k in range(len(batch)):
                        values[k]["insertion"] = float(ins_del.insertion[k])
                        values[k]["deletion"] = float(ins_del.deletion[k])
                if "avg_drop" in metric_names or "increase" in metric_names:
                    cc = confidence_change(self.loaded.model, x, sal.clamp(0, 1), targets, batch_size=args.batch_size)
                    for k in range(len(batch)):
                        values[k]["avg_drop"] = 100.0 * float(cc.drop[k])
                        values[k]["increase"] = 100.0 * float(cc.increase[k])
                if "rho_pos" in metric_names or "rho_neg" in metric_names:
                    shown = [k for k in range(len(batch)) if not bool(result.degenerate.reshape(-1)[k])]
                    for k in range(len(batch)):  # a constant map explains nothing: no density
                        values[k]["rho_pos"] = values[k]["rho_neg"] = math.nan
                    if shown:
                        density = map_density(
                            self.loaded.model,
                            x[shown],
                            sal[shown].clamp(0, 1),
                            targets[shown],
                            baseline=self.black,
                            batch_size=args.batch_size,
                        )
                        for n, k in enumerate(shown):
                            values[k]["rho_pos"] = float(density.positive[n])
                            values[k]["rho_neg"] = float(density.negative[n])
                if "discrimination_contrastive" in metric_names:
                    self._contrastive(explainer, mname, batch, x, targets, values, skipped, boxes)
            except (ValueError, RuntimeError, TypeError) as err:
                text = " ".join(str(err).split())
                for j in batch:
                    _error(f"{j.record.image}: {mname}: {text}")
                    skipped.append([j.record.image, f"{mname}: {text}"])
                continue
            for k, j in enumerate(batch):
                name = self.labels[j.cls] if j.cls < len(self.labels) else str(j.cls)
                degenerate = bool(result.degenerate.reshape(-1)[k])
                warnings = []
                if degenerate:
                    warnings.append("degenerate (constant) map: every metric undefined")
                    print_warning(
                        "evaluate", f"{j.record.image}: {mname}: {name}: degenerate (constant) map, metrics undefined"
                    )
                row = {
                    "image": j.record.image,
                    "class": j.cls,
                    "class_name": name,
                    "method": mname,
                    "values": {m: values[k][m] for m in metric_names if m in values[k]},
                    "degenerate": degenerate,
                    "warnings": warnings,
                    "difficult": j.difficult,
                }
                out.append(((j.position, mi), row))
                if args.save_maps:
                    maps.append(((j.position, mi), j.record.image, j.cls, mname, sal[k]))
        return out

    @staticmethod
    def _energy_mask(loc: Any, batch: list[_Job], ks: list[int], values: list[dict[str, float]]) -> None:
        """``energy_mask`` of the maps ``loc`` (one per job ``batch[k]``, ``k`` in ``ks``): the masks, made at the
        photo's size, are resized (nearest) to the maps' frame (a no-op in ``--frame original``); NaN without one."""
        import torch

        from ..metrics import energy_in_mask
        from ..metrics.masks import resize_mask

        for k in ks:
            values[k]["energy_mask"] = math.nan
        pos = [n for n, k in enumerate(ks) if batch[k].mask is not None]
        if not pos:
            return
        masks = torch.stack([resize_mask(batch[ks[n]].mask, loc.shape[-2:]) for n in pos])
        scores = energy_in_mask(loc[pos], masks.to(loc.device)).tolist()
        for n, v in zip(pos, scores):
            values[ks[n]]["energy_mask"] = v

    def _contrastive(
        self,
        explainer: Callable[..., Any],
        mname: str,
        batch: list[_Job],
        x: Any,
        targets: Any,
        values: list[dict[str, float]],
        skipped: list[list[str]],
        boxes: Callable[[Any, _Job], Any],
    ) -> None:
        """The contrastive maps of the jobs with rival classes, batched by their number of rivals."""
        import torch

        from ..metrics import discrimination

        groups: dict[int, list[int]] = {}
        for k, j in enumerate(batch):
            if j.others:
                groups.setdefault(len(j.others), []).append(k)
        for ks in groups.values():
            rivals = torch.tensor([batch[k].others for k in ks], device=x.device)
            try:
                result = explainer(x[ks], targets[ks], contrast=rivals, gamma=self.args.gamma)
            except (ValueError, RuntimeError, TypeError) as err:
                for k in ks:
                    message = f"{mname}: contrastive map: {' '.join(str(err).split())}"
                    _error(f"{batch[k].record.image}: {message}")
                    skipped.append([batch[k].record.image, message])
                continue
            c_sal = result.saliency.detach().float()
            for group, loc in self._frames(c_sal, batch, ks):
                own = [boxes(batch[k].boxes, batch[k]) for k in group]
                rival = [boxes(batch[k].other_boxes, batch[k]) for k in group]
                for k, v in zip(group, discrimination(loc, own, rival).tolist()):
                    values[k]["discrimination_contrastive"] = v


def _row(data: dict[str, Any]) -> Row:
    values = {k: (math.nan if v is None else float(v)) for k, v in data["values"].items()}
    return Row(
        data["image"],
        int(data["class"]),
        data["class_name"],
        data["method"],
        values,
        bool(data["degenerate"]),
        list(data["warnings"]),
        data.get("difficult"),
    )


def run(args: argparse.Namespace) -> int:
    from .. import methods as methods_mod
    from ..runs import distributed

    method_names = list(args.methods or ["cameras"])
    metric_names = _with_contrastive(list(args.metrics or DEFAULT_METRICS))
    bad = [k for k in metric_names if k not in METRICS]
    if bad:
        _error(f"unknown metric(s) {', '.join(bad)}; choose from {', '.join(METRICS)}")
        return 2
    try:
        classes = [methods_mod.get(name) for name in method_names]
    except (ValueError, KeyError) as err:
        _error(str(err))
        return 2
    dataset = _read_dataset(args)
    if dataset is None:
        return 2
    if not len(dataset):
        _error(f"{dataset.root}: the data set has no annotated photo")
        return 2
    if "energy_mask" in metric_names:
        if not dataset.has_masks:
            _error(
                f"--metrics energy_mask needs instance masks, and the {dataset.kind} data set at {dataset.root} has "
                "none (COCO's instances files have them); use energy for boxes"
            )
            return 2
        from ..metrics import require_pycocotools

        try:
            require_pycocotools()
        except ImportError as err:
            _error(f"--metrics energy_mask: {err}")
            return 2
    spec = model_spec(args.model, "evaluate", args.device)
    if spec is None:
        return 2
    ranks = distributed.setup(args.device)
    try:
        return _run(args, dataset, classes, method_names, metric_names, ranks)
    finally:
        ranks.close()


def _run(
    args: argparse.Namespace,
    dataset: Any,
    classes: list[Any],
    method_names: list[str],
    metric_names: list[str],
    ranks: Any,
) -> int:
    import shutil

    from tqdm.auto import tqdm

    from ..datasets import DatasetError
    from ..io import file_digest, write_run_record
    from ..runs import RunConfigError, ShardStore, chunks, share
    from ..runs.loader import PhotoSet, chunk_loader

    loaded = load_model(args, "evaluate", device=ranks.device)
    if loaded is None:
        return 2
    n_out = _outputs(loaded.model, loaded.preprocess.size, loaded.device)
    if dataset.classes is not None and n_out != len(dataset.classes):
        n = len(dataset.classes)
        _error(
            f"--weights {args.weights}: the model has {n_out} outputs but the {dataset.kind} data set has {n} "
            f"classes: pass a checkpoint with a {n}-class head (its size is read from the checkpoint, or give "
            f"--num-classes {n})"
        )
        return 2
    beyond = next((r for r in dataset.records for c in r.classes if c >= n_out), None)
    if beyond is not None:
        _error(
            f"{args.boxes}: {beyond.image} is annotated with class {max(beyond.classes)}, beyond the model's "
            f"{n_out} outputs (--weights {args.weights})"
        )
        return 2
    labels = list(dataset.classes) if dataset.classes is not None else list(loaded.labels)
    layer = args.layer or loaded.layer
    resolutions = args.resolutions
    scales = method_scales(classes, resolutions, square=args.square, only=["cameras"])
    explainers: dict[str, Callable[..., Any]] = {}
    for cls, name in zip(classes, method_names):
        try:
            own = {"resolutions": resolutions, "square": args.square}
            kwargs: dict[str, Any] = own if cls.name == "cameras" else {}
            explainers[cls.name or name] = cls(loaded.model, layer=layer, **kwargs)
        except (ValueError, TypeError, ImportError) as err:
            _error(f"method {name!r}: {err}")
            return 2
    has_pairs = dataset.kind in ("voc", "coco") or any(len(r.classes) > 1 for r in dataset.records)
    table = "pointing" in metric_names and args.target == "label" and has_pairs

    out = args.out
    limits = size_limits(args)
    weights = args.weights
    if weights is not None and Path(str(weights)).is_file():  # a checkpoint is keyed by its content, not its name
        weights = f"sha256:{file_digest(str(weights))}"
    try:
        annotations = dataset.fingerprint()  # the annotation files' contents: a changed file is another run
    except DatasetError as err:
        _error(str(err))
        return 2
    key = {
        "dataset": dataset.describe(),
        "records": _records_digest(dataset),
        "annotations": annotations,
        "model": loaded.name,
        "weights": weights,
        "outputs": n_out,
        "layer": layer,
        "methods": list(explainers),
        "metrics": metric_names,
        "resolutions": args.resolutions,
        "square": args.square,
        "target": args.target,
        "frame": args.frame,
        "tolerance": args.tolerance,
        "steps": args.steps,
        "gamma": args.gamma,
        "limits": [limits.max_photo_pixels, limits.max_side, limits.max_pixels],
        "shard_size": args.shard_size,
        "save_maps": args.save_maps,
    }
    store = ShardStore(out.path / "shards")
    all_chunks = chunks(len(dataset), args.shard_size)
    decision: tuple[str, Any]
    if ranks.is_main:
        try:
            if args.overwrite:
                shutil.rmtree(out.path / "maps", ignore_errors=True)
            store.open(key, overwrite=args.overwrite)
            decision = ("ok", sorted(store.done()))
        except (RunConfigError, OSError) as err:
            decision = ("error", str(err))
    else:
        decision = ("ok", [])
    decision = ranks.broadcast(decision)
    if decision[0] == "error":
        if ranks.is_main:
            _error(f"--out {out.path}: {decision[1]}")
        return 2
    done = set(decision[1])
    pending = [c for c in range(len(all_chunks)) if c not in done]
    mine = share(pending, ranks.rank, ranks.world_size)
    extra = {
        "image_root": str(dataset.image_root),
        "dataset": dataset.describe(),
        "world_size": ranks.world_size,
    }
    args.run_extra = extra
    if ranks.is_main:
        if done:
            items_done = sum(len(all_chunks[c]) for c in done)
            print(
                f"cameras evaluate: resuming {out.path}: {items_done} of {len(dataset)} photos done, "
                f"{len(dataset) - items_done} to go"
            )
        write_run_record(out, args, status="running", extra=extra)

    evaluator = _Evaluator(args, dataset, loaded, explainers, metric_names, labels, table)
    photos = PhotoSet(dataset, loaded.preprocess, square=args.square, limits=limits, scales=scales)
    loader = chunk_loader(photos, [all_chunks[c] for c in mine], args.workers)
    total = sum(len(all_chunks[c]) for c in mine)
    desc = "photos" if ranks.world_size == 1 else f"photos (rank 0 of {ranks.world_size})"
    with tqdm(total=total, desc=desc, unit="img", disable=args.no_progress or not ranks.is_main) as bar:
        for cid, items in zip(mine, loader):
            store.commit(cid, evaluator.chunk(cid, items))
            bar.update(len(items))
    ranks.barrier()
    if not ranks.is_main:
        return 0
    return _merge(args, dataset, store, len(all_chunks), list(explainers), metric_names, labels, table, loaded, layer)


def _merge(
    args: argparse.Namespace,
    dataset: Any,
    store: Any,
    n_chunks: int,
    methods: list[str],
    metric_names: list[str],
    labels: list[str],
    table: bool,
    loaded: Any,
    layer: str,
) -> int:
    """Rank 0: every shard, in chunk order, into the run's outputs."""
    from ..runs import MapStore, RunConfigError

    missing = sorted(set(range(n_chunks)) - store.done())
    if missing:
        _error(f"{store.folder}: {len(missing)} shard(s) missing after the run (first: chunk {missing[0]})")
        return 1
    rows: list[Row] = []
    skipped: list[list[str]] = []
    map_rows: list[list[Any]] = []
    try:
        for shard in store.read_all(range(n_chunks)):
            rows.extend(_row(r) for r in shard["rows"])
            skipped.extend(shard["skipped"])
            map_rows.extend(shard.get("maps") or [])
    except (RunConfigError, KeyError, TypeError, ValueError) as err:
        _error(str(err))
        return 1
    out = args.out
    if not rows:  # nothing could be done: each skipped photo has said why already
        if not skipped:
            _error("nothing was evaluated")
        try:
            out.write_csv("skipped.csv", skipped, ["image", "reason"])
        except OSError:
            pass
        return 2
    summary = summarize(rows, methods, metric_names)
    protocol = pointing_protocol(rows, methods) if table else {}
    report = {
        "model": loaded.name,
        "layer": layer,
        "target": args.target,
        "frame": args.frame,
        "tolerance": args.tolerance,
        "steps": args.steps,
        "gamma": args.gamma,
        "dataset": dataset.describe(),
        "metrics": {k: {"name": METRICS[k][0], "higher_is_better": METRICS[k][1]} for k in metric_names},
        "skipped": len(skipped),
        "density_baseline": "black: the photo multiplied by the map (the paper's I ⊙ Ψ)",
        "summary": {
            m: {
                **per,
                **(
                    {
                        "pointing_all": protocol[m]["pointing_all"],
                        "pointing_difficult": protocol[m]["pointing_difficult"],
                    }
                    if m in protocol
                    else {}
                ),
            }
            for m, per in summary.items()
        },
        "pointing_protocol": protocol,
        "rows": [
            {
                "image": r.image,
                "class": r.cls,
                "class_name": r.name,
                "method": r.method,
                **r.values,
                "degenerate": r.degenerate,
                "warnings": r.warnings,
                **({"difficult": r.difficult} if table else {}),
            }
            for r in rows
        ],
    }
    extra_cols = ["difficult"] if table else []
    written = ["per_image.csv", "summary.csv", "evaluate.json", "evaluate.png", "skipped.csv"]
    try:
        out.write_csv(
            "per_image.csv",
            (
                [
                    r.image,
                    r.cls,
                    r.name,
                    r.method,
                    *(f"{r.values[k]:.6g}" for k in metric_names),
                    *(["" if r.difficult is None else int(r.difficult)] if table else []),
                ]
                for r in rows
            ),
            ["image", "class", "class_name", "method", *metric_names, *extra_cols],
        )
        out.write_csv(
            "summary.csv",
            (
                [m, k, f"{s['mean']:.6g}", f"{s['std']:.6g}", s["n"], s["undefined"], METRICS[k][1]]
                for m, per in summary.items()
                for k, s in per.items()
            ),
            ["method", "metric", "mean", "std", "n", "undefined", "higher_is_better"],
        )
        if table:
            pt = pointing_table(protocol, methods, labels)
            report["pointing_table"] = [
                dict(zip(("method", "class", "class_name", "all", "all_n", "diff", "diff_n"), r)) for r in pt
            ]
            out.write_csv(
                "pointing_table.csv",
                ([_fmt(v) for v in r] for r in pt),
                ["method", "class", "class_name", "all", "all_n", "diff", "diff_n"],
            )
            written.insert(2, "pointing_table.csv")
        out.write_json("evaluate.json", report)
        out.write_figure("evaluate.png", _bar_plot(summary, metric_names), dpi=120)
        out.write_csv("skipped.csv", skipped, ["image", "reason"])
        if args.save_maps:
            out.written.append(MapStore(out.path).write_index(map_rows))
            written.append("maps/")
    except OSError as err:
        _error(write_failure(out.path, err, resumable=True))
        return 2  # nothing of the run's results was written: nothing could be done
    print(_table(summary, metric_names))
    if protocol:
        print(_protocol_table(protocol))
    print(f"{len(rows)} row(s), {len(skipped)} skipped; wrote {', '.join(written)} to {out.path}/")
    return 1 if skipped else 0
