"""``cameras evaluate``: localisation and faithfulness metrics of saliency methods on annotated photos.

For every annotated photo found in ``--images`` and every annotated class of it, each method explains that class
(``--target label``, default) or the model's top-1 class (``--target predicted``, then all boxes of the photo
count). Metrics per (photo, class, method):

* ``pointing`` — pointing game hit (Zhang et al. 2016), tolerance ``--tolerance`` px (TorchRay: 15), higher better;
* ``energy`` — share of the map's mass in the boxes (Score-CAM's energy-based pointing game), higher better;
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

With ``--target label`` and ``pointing``, the data-set protocol of the paper's Table 1 is reported too: the mean
over classes of the per-class hit rate on all (photo, class) pairs (``pointing_all``) and on the "difficult" ones
(``pointing_difficult``: the class's boxes cover < 1/4 of the photo and another class is annotated;
:func:`cameras.metrics.is_difficult`, :func:`cameras.metrics.pointing_accuracy`).

The localisation metrics are computed in the photo's pixels (the map resized back to the photo, as TorchRay does;
``--frame input`` uses the model-input frame with the boxes scaled instead); the faithfulness metrics in the model's
input frame. Outputs in ``--out``: ``per_image.csv``, ``summary.csv``, ``evaluate.json`` and ``evaluate.png``; the
summary table (mean ± std over rows) is printed.

A score that is undefined — a degenerate (constant) map, or a box with no pixel on the photo — is ``nan`` in the
CSV (``null`` in the JSON), left out of the means, and counted in the summary's ``undefined`` column; a box entirely
outside its photo is reported as an error and skipped.
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
    prepare,
    print_error,
    print_warning,
    read_photos,
)
from .options import (
    add_output_option,
    finite_float,
    float_range,
    int_range,
    nonempty,
    resolutions_option,
    schedule_factors,
    size_limits,
)

__all__ = ["METRICS", "add_parser", "run", "summarize"]

METRICS: dict[str, tuple[str, bool]] = {
    "pointing": ("pointing game", True),
    "energy": ("energy in box", True),
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


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "evaluate",
        help="pointing game, energy, insertion/deletion and confidence metrics of methods on annotated photos",
        description=(
            "Evaluate saliency methods on photos with bounding boxes (JSON {'file.jpg': [{'class': 951, 'box': "
            "[x0, y0, x1, y1]}]} in photo pixels, or Pascal VOC XML). Prints a method × metric table (mean ± std) "
            "and writes per_image.csv, summary.csv, evaluate.json and evaluate.png to --out."
        ),
    )
    p.add_argument("--images", required=True, type=nonempty, help="folder holding the annotated photos")
    p.add_argument(
        "--boxes", required=True, type=nonempty, help="box file: .json, a VOC .xml, or a folder of VOC .xml files"
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
        help=f"metrics to compute (default: all of {', '.join(METRICS)})",
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
        help="images per forward pass in insertion/deletion, 1..4096 (default 64)",
    )
    p.add_argument(
        "--gamma",
        type=finite_float,
        default=1.0,
        help="weight γ of the other annotated classes in the contrastive maps of discrimination (default 1)",
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
    """Per method, the Table 1 protocol over the rows that carry a difficult flag: ``pointing_all`` and
    ``pointing_difficult`` (means over classes of per-class hit rates; a row whose hit is undefined is left out),
    the pair counts and the per-class rates."""
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


def _protocol_table(protocol: dict[str, dict[str, Any]]) -> str:
    lines = ["pointing game, Table 1 protocol (mean over classes of per-class hit rates):"]
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

    fig = Figure(figsize=(3.0 * len(metrics), 3.4), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
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


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from .. import methods as methods_mod
    from ..engine.state import ModelState
    from ..engine.tap import extract_logits
    from ..metrics import (
        black_baseline,
        boxes_tensor,
        boxes_to_input,
        confidence_change,
        discrimination,
        energy_in_box,
        insertion_deletion,
        is_difficult,
        load_boxes,
        map_density,
        pointing_game,
    )

    method_names = list(args.methods or ["cameras"])
    metric_names = _with_contrastive(list(args.metrics or METRICS))
    bad = [k for k in metric_names if k not in METRICS]
    if bad:
        _error(f"unknown metric(s) {', '.join(bad)}; choose from {', '.join(METRICS)}")
        return 2
    images_dir = Path(args.images)
    if not images_dir.is_dir():
        _error(f"--images {images_dir} is not a folder")
        return 2
    try:
        classes = [methods_mod.get(name) for name in method_names]
        annotations = load_boxes(args.boxes)
    except (ValueError, FileNotFoundError, OSError) as err:
        _error(str(err))
        return 2
    if not annotations:
        _error(f"--boxes {args.boxes}: no annotated photo")
        return 2
    spec = model_spec(args.model, "evaluate", args.device)
    if spec is None:
        return 2
    limits = size_limits(args)
    scales = method_scales(classes, spec.factors(args.resolutions), only=["cameras"])

    names = list(annotations)
    photos, failures = read_photos(
        "evaluate",
        [images_dir / n for n in names],
        native_sizes=[spec.input_size],
        square=args.square,
        limits=limits,
        scales=scales,
        labels=names,
    )
    jobs_per_photo = []
    for item in photos:
        anns, errors = _check_boxes(item.label, annotations[item.label], item.photo.size)
        for e in errors:
            _error(e)
        failures += len(errors)
        if not anns:
            if not errors:
                _error(f"{item.label}: no boxes, skipped")
                failures += 1
            continue
        jobs_per_photo.append((item, anns))
    if not jobs_per_photo:
        if not failures:
            _error("nothing to evaluate")
        return 2

    loaded = load_model(args, "evaluate")
    if loaded is None:
        return 2
    layer = args.layer or loaded.layer
    resolutions = schedule_factors(args.resolutions, loaded.preprocess.size)
    scales = method_scales(classes, resolutions, only=["cameras"])
    explainers: dict[str, Callable[..., Any]] = {}
    for cls, name in zip(classes, method_names):
        try:
            kwargs: dict[str, Any] = {"resolutions": resolutions} if cls.name == "cameras" else {}
            explainers[cls.name or name] = cls(loaded.model, layer=layer, **kwargs)
        except (ValueError, TypeError, ImportError) as err:
            _error(f"method {name!r}: {err}")
            return 2
    labels = list(loaded.labels)
    black = black_baseline(loaded.preprocess.mean, loaded.preprocess.std).to(loaded.device)

    rows: list[Row] = []
    for item, anns in tqdm(jobs_per_photo, desc="images", unit="img", disable=args.no_progress):
        fname = item.label
        try:
            prepared = prepare(loaded, item, square=args.square, limits=limits, scales=scales)
        except ValueError as err:
            _error(str(err))
            failures += 1
            continue
        x = prepared.tensor
        device = x.device
        annotated: list[int] = []
        if args.target == "predicted" or any(a.label is None for a in anns):
            with torch.no_grad(), ModelState(loaded.model):
                top1 = int(extract_logits(loaded.model(x)).argmax(dim=1)[0])
            jobs = [(top1, boxes_tensor(anns))]
            table1 = False
        else:
            annotated = [c for c in dict.fromkeys(a.label for a in anns) if c is not None]
            jobs = [(c, boxes_tensor(anns, label=c)) for c in annotated]
            table1 = "pointing" in metric_names
        for cls_id, boxes in jobs:
            others = [c for c in annotated if c != cls_id]  # the rival classes of discrimination
            other_boxes = boxes_tensor([a for a in anns if a.label in others])
            if args.frame == "input":
                loc_boxes = boxes_to_input(boxes, prepared)
                other_boxes = boxes_to_input(other_boxes, prepared)
            else:
                loc_boxes = boxes
            frame_size = prepared.input_size if args.frame == "input" else prepared.original_size
            difficult = is_difficult(loc_boxes, frame_size, len(jobs)) if table1 else None
            for mname, explainer in explainers.items():
                try:
                    result = explainer(x, torch.tensor([cls_id], device=device))
                    sal = result.saliency.detach().float()
                    loc_map = prepared.to_original(sal) if args.frame == "original" else sal
                    values: dict[str, float] = {}
                    if "pointing" in metric_names:
                        values["pointing"] = float(pointing_game(loc_map, [loc_boxes], tolerance=args.tolerance)[0])
                    if "energy" in metric_names:
                        values["energy"] = float(energy_in_box(loc_map, [loc_boxes])[0])
                    if "insertion" in metric_names or "deletion" in metric_names:
                        ins_del = insertion_deletion(
                            loaded.model, x, sal, [cls_id], steps=args.steps, batch_size=args.batch_size
                        )
                        values["insertion"] = float(ins_del.insertion[0])
                        values["deletion"] = float(ins_del.deletion[0])
                    if "avg_drop" in metric_names or "increase" in metric_names:
                        cc = confidence_change(loaded.model, x, sal.clamp(0, 1), [cls_id])
                        values["avg_drop"] = 100.0 * float(cc.drop[0])
                        values["increase"] = 100.0 * float(cc.increase[0])
                    if "rho_pos" in metric_names or "rho_neg" in metric_names:
                        values["rho_pos"] = values["rho_neg"] = float("nan")
                        if not bool(result.degenerate.reshape(-1)[0]):  # a constant map explains nothing
                            density = map_density(loaded.model, x, sal.clamp(0, 1), [cls_id], baseline=black)
                            values["rho_pos"] = float(density.positive[0])
                            values["rho_neg"] = float(density.negative[0])
                    if "discrimination" in metric_names or "discrimination_contrastive" in metric_names:
                        values["discrimination"] = values["discrimination_contrastive"] = float("nan")
                        if others:
                            values["discrimination"] = float(discrimination(loc_map, [loc_boxes], [other_boxes])[0])
                        if others and "discrimination_contrastive" in metric_names:
                            rivals = torch.tensor([others], device=device)
                            try:
                                contrastive = explainer(
                                    x, torch.tensor([cls_id], device=device), contrast=rivals, gamma=args.gamma
                                )
                            except (ValueError, RuntimeError, TypeError) as err:
                                _error(f"{fname}: {mname}: contrastive map: {err}")
                                failures += 1
                            else:
                                c_sal = contrastive.saliency.detach().float()
                                c_map = prepared.to_original(c_sal) if args.frame == "original" else c_sal
                                values["discrimination_contrastive"] = float(
                                    discrimination(c_map, [loc_boxes], [other_boxes])[0]
                                )
                except (ValueError, RuntimeError, TypeError) as err:
                    _error(f"{fname}: {mname}: {err}")
                    failures += 1
                    continue
                values = {k: v for k, v in values.items() if k in metric_names}
                name = labels[cls_id] if cls_id < len(labels) else str(cls_id)
                degenerate = bool(result.degenerate.reshape(-1)[0])
                warnings = []
                if degenerate:
                    warnings.append("degenerate (constant) map: every metric undefined")
                    print_warning("evaluate", f"{fname}: {mname}: {name}: degenerate (constant) map, metrics undefined")
                rows.append(Row(fname, cls_id, name, mname, values, degenerate, warnings, difficult))

    if not rows:
        _error("nothing was evaluated")
        return 1
    summary = summarize(rows, list(explainers), metric_names)
    protocol = pointing_protocol(rows, list(explainers))
    flagged = any(r.difficult is not None for r in rows)
    out = args.out
    report = {
        "model": loaded.name,
        "layer": layer,
        "target": args.target,
        "frame": args.frame,
        "tolerance": args.tolerance,
        "steps": args.steps,
        "gamma": args.gamma,
        "metrics": {k: {"name": METRICS[k][0], "higher_is_better": METRICS[k][1]} for k in metric_names},
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
                **({} if r.difficult is None else {"difficult": r.difficult}),
            }
            for r in rows
        ],
    }
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
                    *([] if not flagged else ["" if r.difficult is None else int(r.difficult)]),
                ]
                for r in rows
            ),
            ["image", "class", "class_name", "method", *metric_names, *(["difficult"] if flagged else [])],
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
        out.write_json("evaluate.json", report)
        out.write_figure("evaluate.png", _bar_plot(summary, metric_names), dpi=120)
    except OSError as err:
        _error(f"cannot write to {out.path}: {err}")
        return 1
    print(_table(summary, metric_names))
    if protocol:
        print(_protocol_table(protocol))
    print(f"{len(rows)} row(s); wrote per_image.csv, summary.csv, evaluate.json, evaluate.png to {out.path}/")
    return 1 if failures else 0
