"""Saliency maps saved by a run (``cameras evaluate --save-maps``), readable with NumPy alone.

Layout under the run folder::

    maps/chunk-000000.npz    one np.savez file per shard chunk; one float16 array per map, values in [0, 1],
    maps/chunk-000001.npz    at the model-input resolution (aspect kept: as the explainer returned it, before
    ...                      the resize to the photo's pixels)
    maps/index.csv           image,class,method,file,key,height,width — one row per map (written by rank 0)

so that ``np.load(run / "maps" / row["file"])[row["key"]]`` is the (height, width) map of that (image, class,
method) row of ``per_image.csv``. Each chunk file is written atomically before its shard is committed, so a
committed row always has its map.

Example:
    >>> import tempfile, pathlib, numpy as np
    >>> run = pathlib.Path(tempfile.mkdtemp())
    >>> store = MapStore(run)
    >>> rows = store.write(0, [("a.jpg", 3, "cameras", np.full((2, 3), 0.5, dtype=np.float32))])
    >>> _ = store.write_index(rows)
    >>> read_map(run, "a.jpg", 3, "cameras").dtype, read_map(run, "a.jpg", 3, "cameras").shape
    (dtype('float16'), (2, 3))
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io.atomic import atomic_open, csv_text, write_csv

__all__ = ["INDEX_COLUMNS", "MapStore", "read_map", "read_map_index"]

INDEX_COLUMNS = ("image", "class", "method", "file", "key", "height", "width")
"""The columns of ``maps/index.csv``."""

MapRow = tuple[str, int, str, str, str, int, int]


class MapStore:
    """Writer (and reader) of a run's ``maps/`` folder.

    Args:
        run_dir: the run's ``--out`` folder.
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.folder = Path(run_dir) / "maps"

    def write(self, chunk: int, maps: Sequence[tuple[str, int, str, Any]]) -> list[MapRow]:
        """Write one chunk's maps atomically as ``maps/chunk-NNNNNN.npz``.

        Args:
            chunk: the shard chunk id.
            maps: ``(image, class, method, map)`` with a (h, w) map in [0, 1] (array or tensor).

        Returns:
            the index rows of these maps (``INDEX_COLUMNS``).
        """
        name = f"chunk-{chunk:06d}.npz"
        arrays: dict[str, np.ndarray] = {}
        rows: list[MapRow] = []
        for k, (image, cls, method, m) in enumerate(maps):
            arr = np.asarray(m.detach().cpu().numpy() if hasattr(m, "detach") else m, dtype=np.float32)
            if arr.ndim != 2:
                raise ValueError(f"a saved map must be (h, w), got shape {arr.shape}.")
            key = f"m{k}"
            arrays[key] = np.clip(arr, 0.0, 1.0).astype(np.float16)
            rows.append((image, int(cls), method, name, key, int(arr.shape[0]), int(arr.shape[1])))
        with atomic_open(self.folder / name, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
        return rows

    def write_index(self, rows: Iterable[Sequence[Any]]) -> Path:
        """Write ``maps/index.csv`` (atomically)."""
        return write_csv(self.folder / "index.csv", rows, INDEX_COLUMNS)


def read_map_index(run_dir: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The rows of ``RUN/maps/index.csv`` as dicts (``INDEX_COLUMNS``).

    Raises:
        FileNotFoundError: the run saved no maps (it ran without ``--save-maps``, or has not finished).
    """
    path = Path(run_dir) / "maps" / "index.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file: the run saved no maps (run it with --save-maps).")
    with open(path, newline="", encoding="utf-8") as f:  # cells as written (the CSV formula guard removed)
        return [{k: csv_text(v) if isinstance(v, str) else v for k, v in row.items()} for row in csv.DictReader(f)]


def read_map(run_dir: str | os.PathLike[str], image: str, cls: int, method: str) -> np.ndarray:
    """The saved map of one ``per_image.csv`` row.

    Args:
        run_dir: the run folder (``--out``).
        image: the row's ``image`` (path relative to the run's ``image_root``).
        cls: the row's ``class``.
        method: the row's ``method``.

    Returns:
        (h, w) float16 array in [0, 1], at the model-input resolution.

    Raises:
        FileNotFoundError: no maps saved.
        KeyError: no map for that row.
    """
    for row in read_map_index(run_dir):
        if row["image"] == image and int(row["class"]) == int(cls) and row["method"] == method:
            with np.load(Path(run_dir) / "maps" / row["file"]) as data:
                out: np.ndarray = data[row["key"]]
            return out
    raise KeyError(f"no saved map for image {image!r}, class {cls}, method {method!r} in {run_dir}.")
