"""The data of a data-set run (``cameras evaluate``): its tables, its saved maps, and the page's thumbnails.

An ``evaluate`` run folder holds (the contract this module reads):

======================= ==========================================================================================
``per_image.csv``       ``image, class, class_name, method``, then one column per metric (more columns may follow)
``summary.csv``         ``method, metric, mean, std, n, undefined, higher_is_better``
``pointing_table.csv``  optional: Table-1 style pointing game per method (shown as it is)
``skipped.csv``         optional: ``image, reason``
``run.json``            the run record; ``image_root`` (absolute; ``Path(image_root) / row.image`` is the photo;
                        otherwise the ``--images`` option), ``dataset`` and ``world_size`` when the run has them
``maps/index.csv``      optional (``--save-maps``): ``image, class, method, file, key, height, width``; the map is
                        ``np.load(RUN / "maps" / file)[key]``, float16 in [0, 1] at the model-input resolution
======================= ==========================================================================================

The boxes drawn on the thumbnails are read again from the data set the run names (``run.json``'s ``dataset`` and
the ``--boxes`` / ``--synsets`` options, :func:`cameras.datasets.open_dataset`); when it cannot be read the page
says so and shows the thumbnails without boxes.

:func:`make_thumbnails` writes one small JPEG of each photo and one colour-mapped JPEG of each saved map, at the
photo thumbnail's size, into ``RUN/report_files/`` (through :class:`cameras.io.OutputDir`, so atomically); a
thumbnail newer than its source is kept, so a second report of the same run costs little (the photos' sizes and the
maps' peaks are kept beside them in ``report_files/thumbs.json``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .run import REPORT_DIR, RunFolder, read_json

__all__ = [
    "THUMB_SIDE",
    "DatasetTables",
    "Item",
    "Metric",
    "image_root",
    "make_thumbnails",
    "parse_cell",
    "read_boxes",
    "read_csv",
    "read_tables",
]

THUMB_SIDE = 256
"""Longer side of the thumbnails, in pixels."""

BASE_COLUMNS = ("image", "class", "class_name", "method")


@dataclass(frozen=True)
class Metric:
    """A metric column of ``per_image.csv``: key, display name, and whether higher is better (``None``: unknown)."""

    key: str
    name: str
    higher: bool | None


@dataclass
class Item:
    """One (photo, class) of the run: its rows in ``per_image.csv``, its thumbnails (paths relative to the run
    folder, ``None`` when missing) and what the page draws on them.

    Attributes:
        size: the photo's (width, height) in pixels, ``None`` when it could not be read.
        original: the photo itself as a path relative to the run folder (may start with ``..``), for the page's
            full-size view; ``None`` when unknown.
        boxes: the annotated boxes of the item's class (all the photo's boxes when none is of that class), as
            fractions of the photo's width and height: ``[x0, y0, x1, y1]`` each.
        peaks: per method, the map's maximum as fractions ``[x, y]`` of the photo (the map covers the whole photo).
    """

    image: str
    cls: str
    class_name: str
    rows: list[int] = field(default_factory=list)
    photo: str | None = None
    maps: dict[str, str] = field(default_factory=dict)
    size: tuple[int, int] | None = None
    original: str | None = None
    boxes: list[list[float]] = field(default_factory=list)
    peaks: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class DatasetTables:
    """The tables of a data-set run, read by :func:`read_tables`.

    Attributes:
        columns: the header of ``per_image.csv``.
        rows: its rows, cells parsed by :func:`parse_cell`.
        metrics: the metric columns.
        methods: the methods, in order of first appearance.
        items: the (photo, class) pairs, in order of first appearance.
        summary: ``summary.csv`` rows as dicts (``[]`` when absent).
        extra_tables: other CSV tables to show as they are: (file name, header, rows).
        skipped: ``skipped.csv`` rows (header, rows), or ``None``.
        maps: ``maps/index.csv`` as ``{(image, class, method): (file, key)}`` (empty when no maps were saved).
        undefined: metric columns with no value in any row (not among :attr:`metrics`; the page says so).
    """

    columns: list[str]
    rows: list[list[Any]]
    metrics: list[Metric]
    methods: list[str]
    items: list[Item]
    summary: list[dict[str, str]] = field(default_factory=list)
    extra_tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)
    skipped: tuple[list[str], list[list[str]]] | None = None
    maps: dict[tuple[str, str, str], tuple[str, str]] = field(default_factory=dict)
    undefined: list[Metric] = field(default_factory=list)


def parse_cell(text: str) -> Any:
    """A CSV cell as the page holds it: an int or float when it reads as one (``nan``, ``inf`` and empty become
    ``None``), ``true``/``false`` as booleans, otherwise the text.

    Example:
        >>> [parse_cell(t) for t in ("1", "0.5", "nan", "", "True", "tabby")]
        [1, 0.5, None, None, True, 'tabby']
    """
    t = text.strip()
    if not t:
        return None
    try:
        value = float(t)
    except ValueError:
        low = t.lower()
        return True if low == "true" else False if low == "false" else text
    if not math.isfinite(value):
        return None
    return int(t) if value.is_integer() and _INTEGER.fullmatch(t) else value


_INTEGER = re.compile(r"[+-]?\d+")


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """A CSV file's header and rows (text), each cell as the run wrote it (the writer's formula guard removed:
    :func:`cameras.io.csv_text`, so a photo named ``=1+1.jpg`` is ``=1+1.jpg`` here, on the page and on disk).

    Raises:
        OSError: it cannot be read.
        ValueError: it is empty, or not UTF-8 text (the message names the file and the first bad byte).
    """
    from ..io import csv_text

    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise ValueError(f"{path.name} is empty")
            return [csv_text(c) for c in header], [[csv_text(c) for c in row] for row in reader if row]
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text (byte 0x{err.object[err.start]:02x} cannot be decoded)") from None


def _class_key(value: Any) -> str:
    """The class as a key (``"3"`` for 3, 3.0 or ``"3"``), so ``per_image.csv`` and ``maps/index.csv`` agree."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value if value is not None else "")


def _metric_names(run: RunFolder) -> dict[str, str]:
    """Display names of the metrics, from ``evaluate.json`` when it has them."""
    obj = read_json(run.path / "evaluate.json") if run.has("evaluate.json") else None
    metrics = obj.get("metrics") if isinstance(obj, dict) else None
    if not isinstance(metrics, dict):
        return {}
    return {str(k): str(v.get("name", k)) for k, v in metrics.items() if isinstance(v, dict)}


def read_tables(run: RunFolder) -> DatasetTables:
    """Read ``per_image.csv`` and the other tables of a data-set run (see the module docstring).

    Raises:
        ValueError: ``per_image.csv`` lacks one of the columns ``image, class, class_name, method``.
        OSError: it cannot be read.
    """
    columns, text_rows = read_csv(run.path / "per_image.csv")
    missing = [c for c in BASE_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"per_image.csv has no column {', '.join(missing)}")
    rows = [[parse_cell(c) for c in r] + [None] * (len(columns) - len(r)) for r in text_rows]
    summary: list[dict[str, str]] = []
    if run.has("summary.csv"):
        s_header, s_rows = read_csv(run.path / "summary.csv")
        summary = [dict(zip(s_header, r)) for r in s_rows]
    higher: dict[str, bool | None] = {}
    for s in summary:
        flag = str(s.get("higher_is_better", "")).strip().lower()
        higher[s.get("metric", "")] = True if flag == "true" else False if flag == "false" else None
    names = _metric_names(run)
    metrics: list[Metric] = []
    undefined: list[Metric] = []
    for i, col in enumerate(columns):
        if col in BASE_COLUMNS:
            continue
        numeric = all(r[i] is None or (isinstance(r[i], int | float) and not isinstance(r[i], bool)) for r in rows)
        if col in higher or (not summary and numeric):
            metric = Metric(col, names.get(col, col.replace("_", " ")), higher.get(col))
            (metrics if any(r[i] is not None for r in rows) else undefined).append(metric)
    idx = {c: columns.index(c) for c in BASE_COLUMNS}
    methods: list[str] = []
    items: dict[tuple[str, str], Item] = {}
    for n, r in enumerate(rows):
        method = str(r[idx["method"]])
        if method not in methods:
            methods.append(method)
        key = (str(r[idx["image"]]), _class_key(r[idx["class"]]))
        if key not in items:
            items[key] = Item(key[0], key[1], str(r[idx["class_name"]] or ""))
        items[key].rows.append(n)
    tables = DatasetTables(columns, rows, metrics, methods, list(items.values()), summary, undefined=undefined)
    if run.has("pointing_table.csv"):
        tables.extra_tables.append(("pointing_table.csv", *read_csv(run.path / "pointing_table.csv")))
    if run.has("skipped.csv"):
        tables.skipped = read_csv(run.path / "skipped.csv")
    index = run.path / "maps" / "index.csv"
    if index.is_file():
        m_header, m_rows = read_csv(index)
        where = {c: m_header.index(c) for c in ("image", "class", "method", "file", "key") if c in m_header}
        if len(where) == 5:
            for r in m_rows:
                cls = _class_key(parse_cell(r[where["class"]]))
                tables.maps[(r[where["image"]], cls, r[where["method"]])] = (r[where["file"]], r[where["key"]])
    return tables


def image_root(run: RunFolder) -> Path | None:
    """Where the photos of a data-set run are: ``run.json``'s ``image_root``, else its ``--images`` option
    (absolute, or relative to the current folder, the run folder or the folder above it); ``None`` if neither is
    a folder."""
    given = run.record.get("image_root") or run.config.get("images")
    if not isinstance(given, str) or not given:
        return None
    path = Path(given).expanduser()
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, run.path / path, run.path.parent / path]
    return next((c for c in candidates if c.is_dir()), None)


def _fresh(dest: Path, source: Path) -> bool:
    """Whether ``dest`` exists and is at least as new as ``source``."""
    try:
        return dest.stat().st_mtime >= source.stat().st_mtime
    except OSError:
        return False


class _Chunks:
    """Open map chunk files, the last few kept (a data-set run stores many maps per file)."""

    def __init__(self, folder: Path, keep: int = 4) -> None:
        self.folder, self.keep = folder, keep
        self.open: dict[str, Any] = {}

    def map(self, file: str, key: str) -> np.ndarray:
        """The map ``np.load(folder / file)[key]`` (a ``.npy`` file: the array itself) as float32."""
        if file not in self.open:
            if len(self.open) >= self.keep:
                oldest = next(iter(self.open))
                closer = getattr(self.open.pop(oldest), "close", None)
                if closer is not None:
                    closer()
            self.open[file] = np.load(self.folder / file, allow_pickle=False)
        held = self.open[file]
        arr = held[key] if isinstance(held, np.lib.npyio.NpzFile) else held
        return np.asarray(arr, dtype=np.float32)

    def close(self) -> None:
        for held in self.open.values():
            closer = getattr(held, "close", None)
            if closer is not None:
                closer()
        self.open.clear()


def _thumb_size(h: int, w: int, side: int) -> tuple[int, int]:
    """(width, height) of a thumbnail whose longer side is ``side`` (never larger than the original)."""
    scale = min(1.0, side / max(h, w))
    return max(1, round(w * scale)), max(1, round(h * scale))


def read_boxes(run: RunFolder) -> tuple[dict[str, list[tuple[str, list[float]]]], str | None]:
    """The annotated boxes of the run's photos, read again from the data set the run names: ``{image: [(class,
    [x0, y0, x1, y1]), ...]}`` in photo pixels (class as in ``per_image.csv``'s ``class`` column), and a problem
    in words (``None`` when the boxes were read)."""
    from ..datasets import open_dataset

    described = run.record.get("dataset")
    cfg = run.config
    if not isinstance(described, dict) or not isinstance(described.get("kind"), str):
        return {}, "the boxes are not drawn: run.json does not name the data set"
    kind = str(described["kind"])
    root = described.get("root") or cfg.get("root") or cfg.get("images")
    split = described.get("split") if kind != "folder" else None
    if not isinstance(root, str) or (kind == "folder" and not isinstance(cfg.get("boxes"), str)):
        return {}, "the boxes are not drawn: run.json does not name the data set's folder or box file"
    try:
        ds = open_dataset(
            kind,
            root,
            split=split if isinstance(split, str) else None,
            boxes=cfg.get("boxes"),
            synsets=cfg.get("synsets") if isinstance(cfg.get("synsets"), str) else None,
        )
    except (ValueError, OSError) as err:
        return {}, f"the boxes are not drawn: {err}"
    boxes: dict[str, list[tuple[str, list[float]]]] = {}
    for record in ds.records:
        boxes[record.image] = [
            (_class_key(a.label), [float(v) for v in a.box]) for a in record.objects if len(a.box) == 4
        ]
    return boxes, None


def _relative(target: Path, start: Path) -> str | None:
    """``target`` as a ``/``-separated path relative to the folder ``start`` (``None`` when there is none)."""
    try:
        return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()
    except (ValueError, OSError):
        return None


def _read_cache(path: Path) -> dict[str, Any]:
    """``report_files/thumbs.json`` of an earlier report (``{}`` when absent or unreadable)."""
    obj = read_json(path) if path.is_file() else None
    return obj if isinstance(obj, dict) else {}


def _peak(sal: np.ndarray) -> list[float]:
    """Where a (H, W) map is largest, as fractions [x, y] of its width and height (pixel centres)."""
    y, x = np.unravel_index(int(np.argmax(sal)), sal.shape)
    return [round((float(x) + 0.5) / sal.shape[1], 5), round((float(y) + 0.5) / sal.shape[0], 5)]


def _item_boxes(found: list[tuple[str, list[float]]], cls: str, size: tuple[int, int]) -> list[list[float]]:
    """The item's boxes as fractions of the photo (its class's boxes; all of the photo's when none is)."""
    mine = [b for c, b in found if c == cls] or [b for _, b in found]
    w, h = size
    out = []
    for x0, y0, x1, y1 in mine:
        box = [min(max(x0 / w, 0.0), 1.0), min(max(y0 / h, 0.0), 1.0), min(max(x1 / w, 0.0), 1.0)]
        box.append(min(max(y1 / h, 0.0), 1.0))
        if box[2] > box[0] and box[3] > box[1]:
            out.append([round(v, 5) for v in box])
    return out


def make_thumbnails(
    run: RunFolder, tables: DatasetTables, *, side: int = THUMB_SIDE, progress: bool = True
) -> list[str]:
    """Write the thumbnails of every item into ``RUN/report_files/`` and record on the items their paths, the
    photo's size and full-size path, the boxes (:func:`read_boxes`) and each map's peak.

    Photos are read with :func:`cameras.io.load_image`; maps from ``maps/index.csv``, resized to the photo
    thumbnail's size (the map covers the model input, i.e. the whole photo) and colour-mapped with
    :func:`cameras.viz.colorize`.

    Returns:
        problems, in words (photos not found or unreadable, maps that cannot be read, boxes that cannot be read),
        at most one per photo / map.
    """
    from PIL import Image
    from tqdm.auto import tqdm

    from ..io import ImageError, OutputDir, load_image
    from ..viz import colorize

    out = OutputDir(run.path / REPORT_DIR)
    root = image_root(run)
    problems: list[str] = []
    if root is None:
        problems.append("the photos' folder is unknown or not reachable from here (run.json has no usable image_root)")
    boxes, boxes_problem = read_boxes(run) if root is not None else ({}, None)
    if boxes_problem:
        problems.append(boxes_problem)
    cache = _read_cache(out.path / CACHE_FILE)
    fresh_cache: dict[str, Any] = {}
    chunks = _Chunks(run.path / "maps")
    photo_names: dict[str, str] = {}
    sizes: dict[str, tuple[int, int]] = {}  # thumbnail (width, height)
    originals: dict[str, tuple[int, int]] = {}  # photo (width, height)
    try:
        for item in _progress(tables.items, progress, tqdm):
            if item.image not in photo_names and root is not None:
                name = _thumb_name("p", item.image)
                photo_names[item.image] = name
                source = root / item.image
                dest = out.path / name
                known = cache.get(name)
                try:
                    if _fresh(dest, source) and isinstance(known, list) and len(known) == 2:
                        with Image.open(dest) as im:
                            sizes[item.image] = im.size
                        originals[item.image] = (int(known[0]), int(known[1]))
                    else:
                        rgb = load_image(source, samples=False).rgb
                        wh = _thumb_size(rgb.shape[0], rgb.shape[1], side)
                        thumb = Image.fromarray(rgb).resize(wh, Image.Resampling.LANCZOS)
                        out.write_image(name, thumb, format="JPEG", quality=85)
                        sizes[item.image] = wh
                        originals[item.image] = (rgb.shape[1], rgb.shape[0])
                    fresh_cache[name] = list(originals[item.image])
                except (ImageError, OSError) as err:
                    problems.append(f"{item.image}: {err}")
                    del photo_names[item.image]
            if item.image in photo_names and root is not None:
                item.photo = f"{REPORT_DIR}/{photo_names[item.image]}"
                item.size = originals[item.image]
                item.original = _relative(root / item.image, run.path)
                item.boxes = _item_boxes(boxes.get(item.image, []), item.cls, item.size)
            for method in tables.methods:
                where = tables.maps.get((item.image, item.cls, method))
                if where is None:
                    continue
                name = _thumb_name("m", item.image, item.cls, method)
                dest = out.path / name
                known = cache.get(name)
                try:
                    if _fresh(dest, run.path / "maps" / where[0]) and isinstance(known, list) and len(known) == 2:
                        peak = [float(known[0]), float(known[1])]
                    else:
                        sal = chunks.map(*where)
                        if sal.ndim != 2:
                            raise ValueError(f"map is not 2-D ({sal.shape})")
                        wh = sizes.get(item.image) or _thumb_size(sal.shape[0], sal.shape[1], side)
                        small = np.asarray(Image.fromarray(sal).resize(wh, Image.Resampling.BILINEAR))
                        out.write_image(name, colorize(small), format="JPEG", quality=85)
                        peak = _peak(sal)
                except (OSError, KeyError, ValueError) as err:
                    problems.append(f"map of {item.image} / {item.cls} / {method}: {err}")
                    continue
                fresh_cache[name] = peak
                item.maps[method] = f"{REPORT_DIR}/{name}"
                item.peaks[method] = peak
    finally:
        chunks.close()
    if fresh_cache != cache:
        out.write_text(CACHE_FILE, json.dumps(fresh_cache, separators=(",", ":")))
    return problems


CACHE_FILE = "thumbs.json"
"""In ``report_files/``: the photos' sizes and the maps' peaks by thumbnail name, so fresh thumbnails are reused."""


def _thumb_name(kind: str, *parts: str) -> str:
    """A thumbnail's file name, from what it shows (so a rerun with more rows never reuses a name for another
    picture): ``KIND`` + 20 hex digits of the SHA-1 of the parts + ``.jpg``.

    Example:
        >>> len(_thumb_name("p", "a.png")), _thumb_name("p", "a.png") == _thumb_name("p", "b.png")
        (26, False)
    """
    import hashlib

    digest = hashlib.sha1("\0".join(parts).encode("utf-8"), usedforsecurity=False).hexdigest()[:20]
    return f"{kind}_{digest}.jpg"


def _progress(items: list[Item], enabled: bool, tqdm: Any) -> Iterator[Item]:
    """The items, with a progress bar on standard error when ``enabled``."""
    yield from tqdm(items, desc="report thumbnails", unit="item", disable=not enabled, leave=False)
