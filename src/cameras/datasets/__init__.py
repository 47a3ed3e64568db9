"""Data sets read from their standard layouts: Pascal VOC, COCO, ImageNet val and image folders with box files.

:func:`open_dataset` returns a :class:`DataSet`: the photos' folder (``image_root``), the class names in index order
and one :class:`Record` per photo (its path relative to ``image_root`` and its annotated objects as
:class:`cameras.metrics.Annotation`). ``cameras evaluate --dataset KIND --root DIR`` runs on it
(:mod:`cameras.runs`); :func:`read_map` reads back the maps a run saved with ``--save-maps``.

A data set is checked as hostile input (:mod:`cameras.datasets.records`): every name it gives passes :func:`contain`
(a name resolving outside its folder is a refused record, never opened), a bad box is left out with its reason
(:func:`check_box`), a duplicate (VOC id, COCO image or category id, ImageNet photo) is refused with
:class:`DatasetError`, and :meth:`DataSet.fingerprint` hashes the annotation files for the resume key.

Example:
    >>> import tempfile, pathlib, json
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "boxes.json").write_text(json.dumps({"a.png": [{"class": 3, "box": [0, 0, 5, 5]}]}))
    >>> ds = open_dataset("folder", root, boxes=root / "boxes.json")
    >>> ds.kind, len(ds), ds.records[0].classes
    ('folder', 1, [3])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .readers import imagenet_synsets, open_dataset, read_coco, read_folder, read_imagenet, read_voc
from .records import (
    KINDS,
    OUTSIDE,
    VOC_CLASSES,
    DataSet,
    DatasetError,
    OutsideError,
    Record,
    box_area,
    check_box,
    contain,
    ebp_difficult,
)

if TYPE_CHECKING:
    from ..runs.maps import MapStore, read_map

__all__ = [
    "KINDS",
    "OUTSIDE",
    "VOC_CLASSES",
    "DataSet",
    "DatasetError",
    "MapStore",
    "OutsideError",
    "Record",
    "box_area",
    "check_box",
    "contain",
    "ebp_difficult",
    "imagenet_synsets",
    "open_dataset",
    "read_coco",
    "read_folder",
    "read_imagenet",
    "read_map",
    "read_voc",
]


def __getattr__(name: str) -> Any:
    if name in ("read_map", "MapStore"):  # the maps a run saved: defined beside the run loop, re-exported here
        from ..runs import maps

        return getattr(maps, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
