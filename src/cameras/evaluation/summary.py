"""Summaries of an evaluation's rows: mean ± std per method and metric (:func:`summarize`), the pointing game as
the CAMERAS paper's Table 1 reports it (:func:`pointing_protocol`, :func:`pointing_table`), and the text tables the
CLI prints (:func:`format_summary`, :func:`format_protocol`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .rows import METRICS, Row

__all__ = ["format_protocol", "format_summary", "pointing_protocol", "pointing_table", "summarize"]


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


def format_protocol(protocol: dict[str, dict[str, Any]]) -> str:
    """The printed form of :func:`pointing_protocol`."""
    lines = ["pointing game (mean over classes), Table 1 protocol (the mean of the per-class hit rates):"]
    for m, p in protocol.items():
        diff = p["pointing_difficult"]
        diff_text = "—" if math.isnan(diff) else f"{diff:.3f}"
        lines.append(
            f"  {m}: All {p['pointing_all']:.3f} ({p['pairs']} pairs), Diff {diff_text} ({p['difficult_pairs']} pairs)"
        )
    return "\n".join(lines)


def _cell(stats: dict[str, Any]) -> str:
    """``mean ± std``; ``(n=…)`` when some rows are undefined; ``undefined`` when all are."""
    if stats["n"] == 0:
        return "undefined"
    return f"{stats['mean']:.3f} ± {stats['std']:.3f}" + (f" (n={stats['n']})" if stats["undefined"] else "")


def format_summary(
    summary: dict[str, dict[str, Any]], metrics: Sequence[str], info: Mapping[str, tuple[str, bool]] = METRICS
) -> str:
    """The printed method × metric table of :func:`summarize` (``info``: metric key → (display name, higher is
    better))."""
    header = ["method"] + [f"{info[k][0]} {'↑' if info[k][1] else '↓'}" for k in metrics]
    body = [[m] + [_cell(summary[m][k]) for k in metrics] for m in summary]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
