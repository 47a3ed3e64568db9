"""The files of an evaluation: ``per_image.csv``, ``summary.csv``, ``pointing_table.csv``, ``evaluate.json``,
``evaluate.png``, ``skipped.csv`` and ``maps/index.csv``, each written atomically through an
:class:`cameras.io.OutputDir` (:func:`write_outputs`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .options import EvaluationError
from .rows import METRICS
from .summary import pointing_protocol, pointing_table, summarize

if TYPE_CHECKING:
    from ..io import OutputDir
    from .result import Evaluation

__all__ = ["bar_plot", "write_outputs"]


def write_outputs(evaluation: Evaluation, out: OutputDir) -> list[str]:
    """Write the files of ``evaluation`` into ``out``; the names written, in order (``maps/`` for the map index).

    With no row (every photo skipped) only ``skipped.csv`` is written.

    Raises:
        EvaluationError: a file cannot be written (``code`` 1).
    """
    from ..io.folders import write_failure
    from ..runs import MapStore

    rows, methods, metric_names, labels = evaluation.rows, evaluation.methods, evaluation.metrics, evaluation.labels
    skipped = [[s.image, s.reason] for s in evaluation.skipped]
    table, info, args, layer = evaluation.table, evaluation.metric_info, evaluation.options, evaluation.layer
    dataset, save_maps, map_rows = evaluation.dataset, evaluation.options.save_maps, evaluation.maps
    if not rows:  # nothing could be done: each skipped photo has said why already
        try:
            out.write_csv("skipped.csv", skipped, ["image", "reason"])
        except OSError:
            pass
        return []
    summary = summarize(rows, methods, metric_names)
    protocol = pointing_protocol(rows, methods) if table else {}
    report = {
        "model": evaluation.model,
        "layer": layer,
        "target": args.target,
        "frame": args.frame,
        "tolerance": args.tolerance,
        "steps": args.steps,
        "gamma": args.gamma,
        "dataset": dataset.describe(),
        "metrics": {k: {"name": info[k][0], "higher_is_better": info[k][1]} for k in metric_names},
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
                [m, k, f"{s['mean']:.6g}", f"{s['std']:.6g}", s["n"], s["undefined"], info[k][1]]
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
        out.write_figure("evaluate.png", bar_plot(summary, metric_names, info), dpi=120)
        out.write_csv("skipped.csv", skipped, ["image", "reason"])
        if save_maps:
            out.adopt(MapStore(out.path).write_index(map_rows))
            written.append("maps/")
    except OSError as err:
        # nothing of the run's results was written: nothing could be done (exit 2); the committed shards stay
        raise EvaluationError(write_failure(out.path, err, resumable=True), code=2) from err
    return written


def bar_plot(
    summary: dict[str, dict[str, Any]], metrics: Sequence[str], info: Mapping[str, tuple[str, bool]] = METRICS
) -> Any:
    """``evaluate.png``: one panel per metric, a bar (mean ± std) per method."""
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
        ax.set_title(f"{info[k][0]} ({'higher' if info[k][1] else 'lower'} is better)", fontsize=9)
    return fig


def _fmt(v: Any) -> Any:
    return f"{v:.6g}" if isinstance(v, float) else v
