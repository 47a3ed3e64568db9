"""Bounding-box annotations: reading, writing, and turning them into the metrics' box tensors.

Two formats are read:

* a simple JSON file ``{"file.jpg": [{"class": 951, "box": [x0, y0, x1, y1]}, ...], ...}`` with boxes in the
  original image's pixels, half-open (pixel (x, y) is inside when ``x0 <= x < x1`` and ``y0 <= y < y1``); an
  optional ``"name"`` string per box is kept;
* Pascal VOC XML (also the ImageNet/ILSVRC localisation files). VOC corners are 1-based *inclusive* pixel
  indices, so ``xmin..xmax`` becomes the half-open ``[xmin - 1, xmax)``.

Mapping boxes between the original image and the model input follows the preprocessing; see
:func:`boxes_to_input`, which defers to the preprocessing object of :func:`cameras.models.load`.
"""

from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..io.atomic import write_json
from .masks import Segmentation

__all__ = [
    "Annotation",
    "boxes_tensor",
    "boxes_to_input",
    "load_boxes",
    "load_boxes_json",
    "load_voc_xml",
    "save_boxes_json",
]

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Annotation:
    """One annotated object.

    Attributes:
        box: ``(x0, y0, x1, y1)`` in the original image's pixels, half-open.
        label: class index (e.g. ImageNet's 0..999) or ``None`` when only a name is known.
        name: class name as written in the file (VOC ``<name>``, JSON ``"name"``), or ``None``.
        difficult: the object is marked difficult (VOC ``<difficult>1</difficult>``): the pointing game of
            TorchRay skips a (photo, class) pair whose objects are all difficult.
        segmentation: the object's instance mask, not yet decoded (COCO; :func:`cameras.metrics.decode_segmentation`
            gives the (H, W) bool mask), or ``None`` (boxes only: VOC, ImageNet, folders).
    """

    box: Box
    label: int | None = None
    name: str | None = None
    difficult: bool = False
    segmentation: Segmentation | None = field(default=None, repr=False)


def _box(value: Any, where: str) -> Box:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 4:
        raise ValueError(f"{where}: a box must be a list [x0, y0, x1, y1], got {value!r}.")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{where}: box coordinates must be numbers, got {value!r}.")
    x0, y0, x1, y1 = (float(v) for v in value)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise ValueError(f"{where}: box coordinates must be finite, got {value!r}.")
    if x1 < x0 or y1 < y0:
        raise ValueError(f"{where}: box {value!r} has x1 < x0 or y1 < y0; expected [x0, y0, x1, y1].")
    return (x0, y0, x1, y1)


class _DuplicateKey(Exception):
    """A JSON object holding the same key twice (``json`` would keep the last one silently)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def load_boxes_json(path: str | os.PathLike[str]) -> dict[str, list[Annotation]]:
    """Read the simple JSON box format (see the module docstring).

    Args:
        path: the JSON file.

    Returns:
        ``{file name: [Annotation, ...]}`` in file order.

    Raises:
        FileNotFoundError: no such file.
        ValueError: invalid JSON, a photo listed twice, or a malformed entry (the message names the entry).

    Example:
        >>> import json, tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "b.json")
        >>> _ = open(p, "w").write(json.dumps({"a.jpg": [{"class": 1, "box": [0, 0, 5, 5]}]}))
        >>> load_boxes_json(p)["a.jpg"][0].box
        (0.0, 0.0, 5.0, 5.0)
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(), object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not valid JSON ({e}).") from None
    except _DuplicateKey as e:
        raise ValueError(
            f"{p}: {e.args[0]!r} is listed twice; each photo (and each field of an object) once."
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"{p}: expected an object {{'file.jpg': [{{'class': int, 'box': [x0, y0, x1, y1]}}]}}.")
    out: dict[str, list[Annotation]] = {}
    for fname, items in data.items():
        if not isinstance(items, list):
            raise ValueError(f"{p}: entry {fname!r} must be a list of {{'class': int, 'box': [...]}} objects.")
        anns = []
        for j, item in enumerate(items):
            where = f"{p}: {fname!r}[{j}]"
            if not isinstance(item, dict) or "box" not in item:
                raise ValueError(f"{where}: expected an object with a 'box' (and usually a 'class').")
            label = item.get("class")
            if label is not None and (isinstance(label, bool) or not isinstance(label, int) or label < 0):
                raise ValueError(f"{where}: 'class' must be a non-negative int, got {label!r}.")
            name = item.get("name")
            if name is not None and not isinstance(name, str):
                raise ValueError(f"{where}: 'name' must be a string, got {name!r}.")
            anns.append(Annotation(_box(item["box"], where), label, name))
        out[str(fname)] = anns
    return out


def save_boxes_json(annotations: Mapping[str, Iterable[Annotation]], path: str | os.PathLike[str]) -> None:
    """Write annotations in the simple JSON format (``class`` omitted when ``None``, ``name`` when set)."""
    data: dict[str, list[dict[str, Any]]] = {}
    for fname, anns in annotations.items():
        rows: list[dict[str, Any]] = []
        for a in anns:
            row: dict[str, Any] = {}
            if a.label is not None:
                row["class"] = a.label
            if a.name is not None:
                row["name"] = a.name
            row["box"] = [int(v) if float(v).is_integer() else v for v in a.box]
            rows.append(row)
        data[fname] = rows
    write_json(path, data)


def load_voc_xml(
    path: str | os.PathLike[str], class_index: Mapping[str, int] | None = None, dropped: list[str] | None = None
) -> tuple[str, list[Annotation]]:
    """Read one Pascal VOC / ILSVRC annotation file.

    Args:
        path: the XML file.
        class_index: optional map from ``<name>`` (e.g. ``"n02123045"`` or ``"cat"``) to a class index; a name
            made only of digits is taken as the index itself.
        dropped: when given, an object whose ``<bndbox>`` is not numbers, not finite or reversed is left out and
            its reason appended here (the data-set readers skip a bad object) instead of raising.

    Returns:
        ``(file name, annotations)``; the file name is ``<filename>`` (or the XML's stem + ".jpg" if absent).
        Boxes are converted from VOC's 1-based inclusive corners to half-open 0-based ones.

    Raises:
        ValueError: not parseable XML, or an ``<object>`` without a complete ``<bndbox>``.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "a.xml")
        >>> _ = open(p, "w").write("<annotation><filename>a.jpg</filename><object><name>cat</name><bndbox>"
        ...     "<xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>20</ymax></bndbox></object></annotation>")
        >>> load_voc_xml(p, {"cat": 281})
        ('a.jpg', [Annotation(box=(0.0, 0.0, 10.0, 20.0), label=281, name='cat', difficult=False)])
    """
    p = Path(path)
    try:
        root = ET.parse(p).getroot()
    except ET.ParseError as e:
        raise ValueError(f"{p}: not valid XML ({e}).") from None
    fname = (root.findtext("filename") or "").strip() or p.stem + ".jpg"
    anns: list[Annotation] = []
    for j, obj in enumerate(root.iter("object")):
        name = (obj.findtext("name") or "").strip() or None
        bb = obj.find("bndbox")
        where = f"{p}: object {j}"
        if bb is None:
            raise ValueError(f"{where} has no <bndbox>.")
        try:
            xmin, ymin, xmax, ymax = (float((bb.findtext(k) or "").strip()) for k in ("xmin", "ymin", "xmax", "ymax"))
            box = _box([xmin - 1, ymin - 1, xmax, ymax], where)
        except ValueError as err:
            numeric = f"{where}: <bndbox> needs numeric <xmin>, <ymin>, <xmax>, <ymax>."
            text = str(err) if str(err).startswith(where) else numeric
            if dropped is None:
                raise ValueError(text) from None
            dropped.append(f"object {j}{text[len(where) :]}")
            continue
        label: int | None = None
        if name is not None:
            if class_index is not None and name in class_index:
                label = int(class_index[name])
            elif name.isdigit():
                label = int(name)
        difficult = (obj.findtext("difficult") or "0").strip() not in ("", "0")
        anns.append(Annotation(box, label, name, difficult))
    return fname, anns


def load_boxes(
    path: str | os.PathLike[str], class_index: Mapping[str, int] | None = None
) -> dict[str, list[Annotation]]:
    """Read boxes from a JSON file, one VOC XML file, or a folder of VOC XML files.

    Args:
        path: ``*.json``, ``*.xml``, or a directory (every ``*.xml`` in it, sorted).
        class_index: for VOC names, see :func:`load_voc_xml`.

    Returns:
        ``{file name: [Annotation, ...]}``.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: an unknown extension or a malformed file.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"No box file or folder at {p}.")
    if p.is_dir():
        out: dict[str, list[Annotation]] = {}
        for xml in sorted(p.glob("*.xml")):
            fname, anns = load_voc_xml(xml, class_index)
            out.setdefault(fname, []).extend(anns)
        if not out:
            raise ValueError(f"{p}: no *.xml annotation files in this folder.")
        return out
    suffix = p.suffix.lower()
    if suffix == ".json":
        return load_boxes_json(p)
    if suffix == ".xml":
        fname, anns = load_voc_xml(p, class_index)
        return {fname: anns}
    raise ValueError(f"{p}: unknown box format {suffix!r}; expected a .json file, a .xml file or a folder of .xml.")


def boxes_tensor(annotations: Iterable[Annotation], label: int | None = None) -> Tensor:
    """Stack annotation boxes into a (K, 4) float32 tensor, keeping only class ``label`` when given.

    Example:
        >>> boxes_tensor([Annotation((0, 0, 2, 2), 1), Annotation((1, 1, 3, 3), 2)], label=2)
        tensor([[1., 1., 3., 3.]])
    """
    rows = [a.box for a in annotations if label is None or a.label == label]
    if not rows:
        return torch.zeros(0, 4)
    return torch.tensor(rows, dtype=torch.float32)


def boxes_to_input(boxes: Tensor, preprocess: Any, **kwargs: Any) -> Tensor:
    """Map (K, 4) boxes from original-image pixels to the model-input frame of a preprocessing.

    Uses ``preprocess.box_to_input(box, **kwargs)`` row by row (the preprocessing of :func:`cameras.models.load`
    knows its resize and crop); rows are half-open ``(x0, y0, x1, y1)`` in both frames. Boxes that end up empty
    (wholly cropped away) are dropped.

    Args:
        boxes: (K, 4) tensor in original pixels.
        preprocess: an object with a ``box_to_input`` method mapping one box.
        kwargs: passed to ``box_to_input`` (e.g. the original image size, when the preprocessing needs it).

    Returns:
        (K', 4) float32 tensor in input pixels, K' <= K.
    """
    fn: Callable[..., Any] | None = getattr(preprocess, "box_to_input", None)
    if fn is None:
        raise TypeError(f"{type(preprocess).__name__} has no box_to_input(); pass the preprocessing of a loaded model.")
    rows = []
    for row in boxes.tolist():
        mapped = [float(v) for v in fn(tuple(row), **kwargs)]
        if mapped[2] > mapped[0] and mapped[3] > mapped[1]:
            rows.append(mapped)
    return torch.tensor(rows, dtype=torch.float32) if rows else torch.zeros(0, 4)
