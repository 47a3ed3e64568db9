"""The bodies of the report pages: one for data-set runs (``per_image.csv``), one for every other run folder.

A data-set page carries its rows as embedded JSON and renders one page of them at a time in JavaScript (only the
current page's thumbnails get a ``src``), so a 50K-image run opens as fast as a small one. The other pages are
static HTML: what was run, the figures, and the numbers of the command's JSON and CSV files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .dataset import DatasetTables, parse_cell, read_csv
from .html import embed_json, esc, fmt, href, kv_table, table
from .run import RunFolder, read_json

__all__ = ["DATA_ID", "PAGE_SIZE", "dataset_body", "dataset_payload", "generic_body"]

DATA_ID = "report-data"
"""``id`` of the ``<script type="application/json">`` element holding a data-set page's rows."""

PAGE_SIZE = 20
"""Items per page of the gallery / rows per page of the table (the page lets the reader change it)."""

MAX_TABLE_ROWS = 500
"""Rows of a CSV file shown on a static page (the file itself is linked)."""


def _pointing_key(tables: DatasetTables) -> str | None:
    """The pointing-game metric the "misses only" filter uses (``pointing``, else the first ``pointing…``)."""
    keys = [m.key for m in tables.metrics]
    if "pointing" in keys:
        return "pointing"
    return next((k for k in keys if k.startswith("pointing")), None)


def dataset_payload(tables: DatasetTables, *, page_size: int = PAGE_SIZE) -> dict[str, Any]:
    """What a data-set page embeds: ``columns`` and ``rows`` (``per_image.csv``, cells parsed), ``metrics``
    (``key``, ``name``, ``higher``, ``col`` = column index), ``methods``, ``items`` (one per (photo, class):
    ``i`` image, ``c`` class, ``n`` class name, ``p`` photo thumbnail, ``m`` {method: map thumbnail}, ``r`` row
    indices, ``s`` the photo's [width, height], ``o`` the photo itself (a URL relative to the page, for the full-size
    view), ``b`` boxes and ``pk`` {method: map peak} as fractions of the photo), ``pointing`` (the key of the misses
    filter or ``null``), ``hasMaps`` and ``pageSize``."""
    return {
        "columns": tables.columns,
        "rows": tables.rows,
        "metrics": [
            {"key": m.key, "name": m.name, "higher": m.higher, "col": tables.columns.index(m.key)}
            for m in tables.metrics
        ],
        "methods": tables.methods,
        "items": [
            {
                "i": it.image,
                "c": it.cls,
                "n": it.class_name,
                "p": it.photo,
                "m": it.maps,
                "r": it.rows,
                "s": list(it.size) if it.size else None,
                "o": href(it.original, up=True) if it.original else None,
                "b": it.boxes,
                "pk": it.peaks,
            }
            for it in tables.items
        ],
        "pointing": _pointing_key(tables),
        "hasMaps": bool(tables.maps),
        "pageSize": page_size,
    }


def _header(run: RunFolder, title: str, sections: Sequence[tuple[str, str]]) -> str:
    links = "".join(f'<li><a href="#{sid}">{esc(name)}</a></li>' for sid, name in sections)
    return (
        f'<header><h1>{esc(title)}</h1><p class="where">{esc(run.path)}</p>'
        f'<nav aria-label="sections"><ul>{links}</ul></nav></header>'
    )


def _figures(run: RunFolder, names: Sequence[str], captions: dict[str, str] | None = None, wide: bool = False) -> str:
    """The figures, each linked to its file; ``wide``: one per line at up to the page's width (a run's plots)."""
    if not names:
        return "<p>No figures in this folder.</p>"
    cards = []
    for name in names:
        cap = (captions or {}).get(name, name)
        lazy = "" if wide else ' loading="lazy"'
        cards.append(
            f'<figure class="plot"><a href="{href(name)}"><img src="{href(name)}" alt="{esc(cap)}"{lazy}>'
            f"</a><figcaption>{esc(cap)}</figcaption></figure>"
        )
    return f'<div class="figures{" wide" if wide else ""}">{"".join(cards)}</div>'


def _files(run: RunFolder) -> str:
    items = []
    for name in run.files:
        try:
            size = (run.path / name).stat().st_size
        except OSError:
            continue
        items.append(f'<li><a href="{href(name)}">{esc(name)}</a> <span class="muted">{_bytes(size)}</span></li>')
    return f'<ul class="files">{"".join(items)}</ul>' if items else "<p>No files.</p>"


def _bytes(n: int) -> str:
    """A file size in words (``1.2 MB``)."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover


def _section(sid: str, title: str, content: str) -> str:
    return f'<section id="{sid}" aria-labelledby="{sid}-h"><h2 id="{sid}-h">{esc(title)}</h2>{content}</section>'


def _folded(sid: str, title: str, content: str) -> str:
    """A section folded away: its heading is the ``<summary>`` of a closed ``<details>``."""
    return (
        f'<section id="{sid}" aria-labelledby="{sid}-h"><details><summary><h2 id="{sid}-h">{esc(title)}</h2>'
        f"</summary>{content}</details></section>"
    )


def _summary_table(tables: DatasetTables) -> str:
    """Methods × metrics: mean ± std, with n when some rows are undefined; the arrow says which way is better."""
    if not tables.summary:
        return "<p>No summary.csv in this folder.</p>"
    stats: dict[tuple[str, str], dict[str, str]] = {(s["method"], s["metric"]): s for s in tables.summary}
    methods = list(dict.fromkeys(s["method"] for s in tables.summary))
    hidden = {m.key for m in tables.undefined}
    metric_keys = [k for k in dict.fromkeys(s["metric"] for s in tables.summary) if k not in hidden]
    names = {m.key: m for m in tables.metrics}

    def head(key: str) -> str:
        m = names.get(key)
        arrow = "" if m is None or m.higher is None else (" ↑" if m.higher else " ↓")
        return (m.name if m else key) + arrow

    def cell(method: str, key: str) -> str:
        s = stats.get((method, key))
        if s is None:
            return "—"
        mean, std = parse_cell(s.get("mean", "")), parse_cell(s.get("std", ""))
        n, undefined = parse_cell(s.get("n", "")), parse_cell(s.get("undefined", ""))
        if mean is None:
            return "undefined"
        text = (
            f"{mean:.3f} ± {std:.3f}" if isinstance(mean, int | float) and isinstance(std, int | float) else fmt(mean)
        )
        return text + (f" (n={n})" if undefined else "")

    rows = [[m, *(cell(m, k) for k in metric_keys)] for m in methods]
    return table(
        ["method", *map(head, metric_keys)],
        rows,
        caption="Mean ± std over the rows of per_image.csv, by method",
        numeric=[False] + [True] * len(metric_keys),
    )


def _undefined_note(tables: DatasetTables) -> str:
    """Says which metric columns are hidden because no row has a value, and why that happens."""
    if not tables.undefined:
        return ""
    names = ", ".join(f"{m.name} ({m.key})" for m in tables.undefined)
    return (
        f'<p class="note" id="undefined-metrics">Not shown: {esc(names)} — undefined for every row of this run '
        "(every map degenerate, or the metric needs what this data set lacks, e.g. other annotated classes for "
        "discrimination or difficult pairs for pointing_difficult); the column is in per_image.csv as nan.</p>"
    )


def _csv_table(header: list[str], rows: list[list[str]], caption: str) -> str:
    shown = rows[:MAX_TABLE_ROWS]
    more = f" (first {MAX_TABLE_ROWS} of {len(rows)} rows)" if len(rows) > MAX_TABLE_ROWS else ""
    parsed = [[parse_cell(c) for c in r] for r in shown]
    numeric = [
        all(isinstance(r[i], int | float) for r in parsed if i < len(r) and r[i] is not None)
        for i in range(len(header))
    ]
    return table(header, parsed, caption=caption + more, numeric=numeric)


def _controls(tables: DatasetTables) -> str:
    """The gallery's controls: real inputs and buttons, each with a label (the JS fills in their behaviour)."""
    metric_opts = "".join(f'<option value="{esc(m.key)}">{esc(m.name)}</option>' for m in tables.metrics)
    method_opts = "".join(f'<option value="{esc(m)}">{esc(m)}</option>' for m in tables.methods)
    toggles = "".join(
        f'<label class="toggle"><input type="checkbox" name="method" value="{esc(m)}" checked> {esc(m)}</label>'
        for m in tables.methods
    )
    misses = (
        '<label class="toggle"><input type="checkbox" id="misses"> pointing-game misses only</label>'
        if _pointing_key(tables)
        else ""
    )
    return f"""
<div class="controls" role="group" aria-label="gallery controls">
  <div class="row">
    <span class="seg" role="group" aria-label="view">
      <button type="button" id="view-gallery" aria-pressed="true">Gallery</button>
      <button type="button" id="view-table" aria-pressed="false">Table</button>
    </span>
    <label>Search <input type="search" id="search" placeholder="file or class" autocomplete="off"></label>
    {misses}
  </div>
  <div class="row">
    <label>Sort by <select id="sort-key"><option value="">file order</option>
      <option value="image">file name</option><option value="class_name">class</option>{metric_opts}</select></label>
    <label>of <select id="sort-method">{method_opts}</select></label>
    <button type="button" id="sort-dir" aria-label="sort direction">descending</button>
    <label>Per page <select id="page-size"><option>10</option><option selected>20</option><option>50</option>
      <option>100</option></select></label>
  </div>
  <div class="row">
    <span class="seg" role="group" aria-label="methods shown">Methods: {toggles}</span>
    <label>Map opacity <input type="range" id="opacity" min="0" max="1" step="0.05" value="0.5"></label>
  </div>
</div>"""


def _pager(where: str) -> str:
    return (
        f'<nav class="pager" aria-label="pages ({where})"><button type="button" data-go="first">« First</button>'
        f'<button type="button" data-go="prev">‹ Previous</button><span class="page-of"></span>'
        f'<button type="button" data-go="next">Next ›</button>'
        f'<button type="button" data-go="last">Last »</button></nav>'
    )


def _viewer(tables: DatasetTables) -> str:
    """The full-size view (a modal ``<dialog>``, filled by the JS): the photo, one button per overlay, the boxes and
    the map's peak drawn over it."""
    tabs = "".join(
        f'<button type="button" data-view="{esc(m)}" aria-pressed="false">{esc(m)}</button>' for m in tables.methods
    )
    return (
        '<dialog id="viewer" aria-labelledby="viewer-title"><div class="viewer-in"><div class="viewer-bar">'
        '<h3 id="viewer-title"></h3><span class="seg" role="group" aria-label="overlay">'
        f'<button type="button" data-view="" aria-pressed="true">photo</button>{tabs}</span>'
        '<label class="toggle"><input type="checkbox" id="viewer-marks" checked> boxes and peak</label>'
        '<a id="viewer-open" target="_blank" rel="noopener">open the photo</a>'
        '<button type="button" id="viewer-close" aria-label="close the full-size view">Close ✕</button></div>'
        '<p id="viewer-note" class="muted"></p><div id="viewer-box" class="full"></div>'
        '<p id="viewer-metrics" class="muted"></p></div></dialog>'
    )


def dataset_body(run: RunFolder, tables: DatasetTables, problems: Sequence[str]) -> str:
    """The body of a data-set run's page (see the module docstring): the summary first, what was run folded away
    below it, the gallery, the plots at the page's width and the files."""
    sections = [
        ("summary", "Summary"),
        ("run", "What was run"),
        ("images", "Images"),
        ("plots", "Plots"),
        ("files", "Files"),
    ]
    n_photos = len({it.image for it in tables.items})
    notes = []
    if not tables.maps:
        notes.append(
            "No maps were saved with this run (evaluate --save-maps keeps them): the gallery shows the photos and "
            "the numbers, without overlays."
        )
    if problems:
        shown = "".join(f"<li>{esc(p)}</li>" for p in problems[:50])
        more = f"<li>… and {len(problems) - 50} more</li>" if len(problems) > 50 else ""
        notes.append(
            f"<details><summary>{len(problems)} thumbnail problem(s)</summary><ul>{shown}{more}</ul></details>"
        )
    note_html = "".join(f'<div class="note">{n}</div>' for n in notes)
    summary = _summary_table(tables) + _undefined_note(tables)
    for name, header, rows in tables.extra_tables:
        summary += f"<details><summary>{esc(name)} ({len(rows)} row(s))</summary>"
        summary += _csv_table(header, rows, name) + "</details>"
    if tables.skipped is not None:
        header, rows = tables.skipped
        summary += f"<details><summary>{len(rows)} skipped image(s) (skipped.csv)</summary>"
        summary += _csv_table(header, rows, "skipped.csv") + "</details>"
    counts = (
        f"<p>{n_photos} photo(s), {len(tables.items)} (photo, class) item(s), {len(tables.methods)} method(s), "
        f"{len(tables.rows)} row(s) in per_image.csv.</p>"
    )
    gallery = (
        f"{note_html}{_controls(tables)}"
        f'<p id="status" role="status" aria-live="polite"></p>{_pager("top")}'
        f'<div id="gallery"></div>{_pager("bottom")}'
        f"<noscript><p>The gallery needs JavaScript; the numbers are in per_image.csv.</p></noscript>"
        f"{_viewer(tables)}"
    )
    plots = [f for f in run.figures()]
    body = [
        _header(run, f"cameras {run.command or 'evaluate'} — {run.path.name}", sections),
        '<main id="main">',
        _section("summary", "Summary", counts + summary),
        _folded("run", "What was run", kv_table(run.summary())),
        _section("images", "Images", gallery),
        _section("plots", "Plots", _figures(run, plots, wide=True)),
        _section("files", "Files", _files(run)),
        "</main>",
        embed_json(DATA_ID, dataset_payload(tables)),
    ]
    return "\n".join(body)


# ----------------------------------------------------------------------------------------------- other commands


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


def _flat(v: Any) -> bool:
    """A scalar or a short list of scalars (a size, a box)."""
    return _scalar(v) or (isinstance(v, list) and len(v) <= 8 and all(_scalar(x) for x in v))


def _records_table(records: list[dict[str, Any]], caption: str) -> str:
    """A list of flat dicts as a table (columns: every flat key, in order of first appearance)."""
    keys: list[str] = []
    for r in records:
        keys.extend(k for k, v in r.items() if _flat(v) and k not in keys)
    shown = records[:MAX_TABLE_ROWS]
    rows = [[_cell_text(r.get(k)) for k in keys] for r in shown]
    numeric = [all(isinstance(r.get(k), int | float) for r in shown if r.get(k) is not None) for k in keys]
    more = f" (first {MAX_TABLE_ROWS} of {len(records)})" if len(records) > MAX_TABLE_ROWS else ""
    return table(keys, rows, caption=caption + more, numeric=numeric)


def _cell_text(v: Any) -> Any:
    """A title with line breaks (compare's panels) reads as one line."""
    return " · ".join(v.split("\n")) if isinstance(v, str) else v


def json_numbers(name: str, obj: Any) -> str:
    """The numbers of a command's JSON file: its flat fields as a name/value table, every list of records (dicts)
    as a table, recursively one level into dicts (``settings`` of ``attack``); sanity's per-method curves as a
    steps × measures table per method."""
    if not isinstance(obj, dict):
        return ""
    parts: list[str] = []
    flat = [(k, _cell_text(v)) for k, v in obj.items() if _flat(v)]
    if flat:
        parts.append(kv_table(flat, caption=name))
    for key, value in obj.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            parts.append(_records_table(value, f"{name}: {key}"))
        elif isinstance(value, dict) and key == "methods" and isinstance(obj.get("steps"), list):
            parts.extend(_sanity_tables(name, obj["steps"], value))
        elif isinstance(value, dict) and value and all(_flat(v) for v in value.values()):
            parts.append(kv_table([(k, _cell_text(v)) for k, v in value.items()], caption=f"{name}: {key}"))
    return "".join(parts)


def _sanity_tables(name: str, steps: list[Any], methods: dict[str, Any]) -> list[str]:
    """``sanity.json``: for each method, the mean of each similarity measure after each randomisation step."""
    out = []
    for method, measures in methods.items():
        if not isinstance(measures, dict):
            continue
        keys = [k for k, v in measures.items() if isinstance(v, dict) and isinstance(v.get("mean"), list)]
        rows = []
        for i, step in enumerate(steps):
            rows.append([step, *(_at(measures[k]["mean"], i) for k in keys)])
        out.append(
            table(
                ["randomised up to", *keys],
                rows,
                caption=f"{name}: {method} (mean similarity to the original map)",
                numeric=[False] + [True] * len(keys),
            )
        )
    return out


def _at(values: list[Any], i: int) -> Any:
    return values[i] if i < len(values) else None


def _explain_items(run: RunFolder) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The sidecars of ``explain`` (JSON files naming an ``overlay``), by file name, and a caption per overlay."""
    sidecars: dict[str, dict[str, Any]] = {}
    captions: dict[str, str] = {}
    for name in run.json_files():
        obj = read_json(run.path / name)
        if isinstance(obj, dict) and isinstance(obj.get("overlay"), str):
            sidecars[name] = obj
            p = obj.get("probability")
            prob = f" (p={p:.2f})" if isinstance(p, float) else ""
            captions[obj["overlay"]] = (
                f"{obj.get('image', '')}: {obj.get('class_name', '')}{prob} · {obj.get('method', '')}"
            )
    return sidecars, captions


def generic_body(run: RunFolder) -> str:
    """The body of the page of an ``explain``, ``compare``, ``sanity`` or ``attack`` folder (or any other): what was
    run, the figures, the numbers of its JSON and CSV files, and the list of files."""
    sections = [("run", "What was run"), ("figures", "Figures"), ("numbers", "Numbers"), ("files", "Files")]
    sidecars, captions = _explain_items(run)
    numbers: list[str] = []
    if sidecars:
        keys = [
            "image",
            "class_name",
            "class_index",
            "probability",
            "rank",
            "method",
            "model",
            "layer",
            "input_size",
            "original_size",
            "seconds",
            "degenerate",
            "map",
        ]
        rows = [[_cell_text(s.get(k)) for k in keys] for s in sidecars.values()]
        numbers.append(table(keys, rows, caption="maps (one JSON sidecar each)"))
    for name in run.json_files():
        if name in sidecars:
            continue
        obj = read_json(run.path / name)
        numbers.append(json_numbers(name, obj))
    for name in run.files:
        if name.lower().endswith(".csv"):
            try:
                header, rows = read_csv(run.path / name)
            except (OSError, ValueError, UnicodeDecodeError):
                continue
            numbers.append(_csv_table(header, rows, name))
    content = "".join(n for n in numbers if n) or "<p>No numbers in this folder.</p>"
    title = f"cameras {run.command} — {run.path.name}" if run.command else f"cameras run — {run.path.name}"
    body = [
        _header(run, title, sections),
        '<main id="main">',
        _section("run", "What was run", kv_table(run.summary())),
        _section("figures", "Figures", _figures(run, run.figures(), captions)),
        _section("numbers", "Numbers", content),
        _section("files", "Files", _files(run)),
        "</main>",
    ]
    return "\n".join(body)
