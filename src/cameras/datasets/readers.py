"""Readers of the four layouts: an image folder with a box file, Pascal VOC, COCO and ImageNet val.

Every reader returns a :class:`~cameras.datasets.records.DataSet` and raises
:class:`~cameras.datasets.records.DatasetError` (naming the file) for a missing folder, an unknown split or a
malformed annotation. Boxes become half-open ``(x0, y0, x1, y1)`` in the photo's pixels:

* **VOC** (``VOCdevkit/VOC2007``): ``ImageSets/Main/{split}.txt`` lists the ids, ``Annotations/{id}.xml`` holds the
  objects (1-based inclusive corners → ``[xmin − 1, xmax)``, read by :func:`cameras.metrics.load_voc_xml`, the
  ``difficult`` flag kept), ``JPEGImages/{id}.jpg`` the photos; classes :data:`VOC_CLASSES` (0–19, alphabetical).
* **COCO**: ``annotations/instances_{split}.json`` and the photos in ``{split}/`` (or ``images/{split}/``); the
  categories, in id order, become 0…K−1 (0–79 for the 80 COCO categories); ``bbox`` ``[x, y, w, h]`` →
  ``(x, y, x + w, y + h)``; crowd regions count as boxes of their class. Photos without annotations are left out.
  Each object's ``segmentation`` (polygons, uncompressed RLE — crowd regions — or compressed RLE) is kept as
  read, with the photo's ``height`` / ``width``, in :attr:`Annotation.segmentation`: decoded only when a mask is
  asked for (:func:`cameras.metrics.decode_segmentation`, pycocotools, the extra ``cameras[coco]``).
* **ImageNet** (ILSVRC-2012 val): the photos in ``ILSVRC/Data/CLS-LOC/{split}/``, ``{split}/`` or the root itself;
  the boxes from ``LOC_{split}_solution.csv`` (Kaggle's form: ``ImageId,PredictionString`` with ``wnid x0 y0 x1 y1``
  groups, the XMLs' numbers) or from the per-photo XMLs (``ILSVRC/Annotations/CLS-LOC/{split}/``,
  ``Annotations/{split}/``, or beside the photos); synset ids map to the 1000 indices in sorted-synset order
  (:func:`imagenet_synsets`, shipped as data; or a file of one wnid per line, in index order).
* **folder**: a folder of photos and a box file: the JSON form, one VOC XML or a folder of them
  (:func:`cameras.metrics.load_boxes`).
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from ..metrics.boxes import Annotation, load_boxes, load_voc_xml
from ..metrics.masks import Segmentation
from .records import (
    COCO_SPLIT,
    IMAGENET_SPLIT,
    KINDS,
    VOC_CLASSES,
    VOC_SPLIT,
    DataSet,
    DatasetError,
    OutsideError,
    Record,
    check_box,
    contain,
)

__all__ = ["imagenet_synsets", "open_dataset", "read_coco", "read_folder", "read_imagenet", "read_voc"]

PathLike = str | os.PathLike[str]


def _folder(path: PathLike, what: str) -> Path:
    p = Path(path).expanduser().absolute()
    if not p.is_dir():
        raise DatasetError(f"{what} {p} is not a folder{'' if p.exists() else ' (no such folder)'}.")
    return p


def read_voc(root: PathLike, split: str | None = None) -> DataSet:
    """Read a Pascal VOC year folder (``VOCdevkit/VOC2007``) for ``split`` (default ``"test"``).

    Example:
        >>> import tempfile, pathlib
        >>> r = pathlib.Path(tempfile.mkdtemp())
        >>> for d in ("ImageSets/Main", "Annotations", "JPEGImages"):
        ...     (r / d).mkdir(parents=True)
        >>> _ = (r / "ImageSets/Main/test.txt").write_text("000001\\n")
        >>> _ = (r / "Annotations/000001.xml").write_text("<annotation><object><name>dog</name>"
        ...     "<difficult>1</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>8</xmax><ymax>9</ymax>"
        ...     "</bndbox></object></annotation>")
        >>> ds = read_voc(r)
        >>> ds.records[0].image, ds.records[0].objects[0].label, ds.records[0].objects[0].difficult
        ('000001.jpg', 11, True)
    """
    base = _folder(root, "--root")
    split = split or VOC_SPLIT
    if not (base / "ImageSets").is_dir() and (base / "VOC2007").is_dir():
        raise DatasetError(f"--root {base} holds VOC2007/: give the year folder {base / 'VOC2007'}.")
    sets = base / "ImageSets" / "Main"
    listing = sets / f"{split}.txt"
    if not listing.is_file():
        known = sorted(p.stem for p in sets.glob("*.txt") if "_" not in p.stem) if sets.is_dir() else []
        raise DatasetError(
            f"{listing}: no such file: unknown split {split!r} (splits here: {', '.join(known) or 'none'})."
        )
    listing = contain(base, f"ImageSets/Main/{split}.txt", "split list")
    try:
        lines = listing.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"{listing}: cannot read the split list ({err}).") from err
    ids: dict[str, int] = {}
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        i = line.split()[0]
        if i in ids:
            raise DatasetError(f"{listing}: line {n}: image id {i!r} is listed twice (first on line {ids[i]}).")
        ids[i] = n
    index = {name: i for i, name in enumerate(VOC_CLASSES)}
    images = base / "JPEGImages"
    records = []
    sources = [listing]
    for i in ids:
        try:
            xml = contain(base / "Annotations", f"{i}.xml", "annotation")
            contain(images, f"{i}.jpg")
        except OutsideError as err:
            records.append(Record(f"{i}.jpg", (), refused=err.reason))
            continue
        if not xml.is_file():
            raise DatasetError(f"{xml}: no such file (image {i} is listed in {listing}).")
        dropped: list[str] = []
        try:
            _, anns = load_voc_xml(xml, index, dropped)
        except (ValueError, OSError) as err:
            raise DatasetError(str(err)) from err
        unknown = [a.name for a in anns if a.label is None]
        if unknown:
            raise DatasetError(f"{xml}: unknown VOC class {unknown[0]!r} (expected one of {', '.join(VOC_CLASSES)}).")
        kept = _checked(anns, None, dropped, lambda j: f"object {j}")
        records.append(Record(f"{i}.jpg", tuple(kept), dropped=tuple(dropped)))
        sources.append(xml)
    return DataSet("voc", base, split, images, VOC_CLASSES, tuple(records), tuple(sources))


def _checked(anns: list[Annotation], size: tuple[int, int] | None, dropped: list[str], where: Any) -> list[Annotation]:
    """The objects whose box passes :func:`check_box`; the reason of each other one appended to ``dropped``."""
    kept = []
    for j, a in enumerate(anns):
        reason = check_box(a.box, size)
        if reason is None:
            kept.append(a)
        else:
            dropped.append(f"{where(j)}: {reason}")
    return kept


def _refused(folder: Path, name: str) -> str | None:
    """``None`` when the photo ``name`` resolves inside ``folder`` (:func:`contain`), else the reason."""
    try:
        contain(folder, name)
    except OutsideError as err:
        return err.reason
    return None


def _record(
    folder: Path,
    name: str,
    objects: Sequence[Annotation],
    dropped: Sequence[str] = (),
    size: tuple[int, int] | None = None,
    refused: str | None = None,
) -> Record:
    """The record of photo ``name``: refused (no objects) when the name leaves ``folder`` or ``refused`` says why."""
    refused = refused or _refused(folder, name)
    if refused is not None:
        return Record(name, (), size, refused)
    return Record(name, tuple(objects), size, None, tuple(dropped))


def _json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetError(f"{path}: not a readable JSON file ({err}).") from err


def read_coco(root: PathLike, split: str | None = None) -> DataSet:
    """Read a COCO folder (``annotations/instances_{split}.json`` + photos) for ``split`` (default ``"val2014"``)."""
    base = _folder(root, "--root")
    split = split or COCO_SPLIT
    ann_file = base / "annotations" / f"instances_{split}.json"
    if not ann_file.is_file():
        known = sorted(p.stem[len("instances_") :] for p in (base / "annotations").glob("instances_*.json"))
        raise DatasetError(
            f"{ann_file}: no such file: unknown split {split!r} (splits here: {', '.join(known) or 'none'})."
        )
    candidates = [base / split, base / "images" / split]
    images = next((c for c in candidates if c.is_dir()), None)
    if images is None:
        raise DatasetError(f"no image folder for split {split!r}: looked for {' and '.join(map(str, candidates))}.")
    ann_file = contain(base, f"annotations/instances_{split}.json", "annotation file")
    data = _json_file(ann_file)
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "categories")):
        raise DatasetError(f"{ann_file}: not a COCO instances file (needs 'images' and 'categories' lists).")
    try:
        cats = sorted(data["categories"], key=lambda c: int(c["id"]))
        names = tuple(str(c["name"]) for c in cats)
        ids = [int(c["id"]) for c in cats]
        files: dict[int, str] = {}
        sizes: dict[int, tuple[Any, Any]] = {}
        for im in data["images"]:
            image_id, name = int(im["id"]), str(im["file_name"])
            if image_id in files:
                raise DatasetError(
                    f"{ann_file}: image id {image_id} is listed twice ({files[image_id]!r} and {name!r})."
                )
            files[image_id] = name
            sizes[image_id] = (im.get("height"), im.get("width"))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        if isinstance(err, DatasetError):
            raise
        kind = type(err).__name__
        raise DatasetError(f"{ann_file}: malformed 'images' or 'categories' entry ({kind}: {err}).") from err
    for k in range(1, len(ids)):
        if ids[k] == ids[k - 1]:
            raise DatasetError(f"{ann_file}: category id {ids[k]} is listed twice ({names[k - 1]!r} and {names[k]!r}).")
    by_name: dict[str, int] = {}
    for image_id in sorted(files):
        first = by_name.setdefault(files[image_id], image_id)
        if first != image_id:
            raise DatasetError(
                f"{ann_file}: file_name {files[image_id]!r} is listed twice (image ids {first} and {image_id})."
            )
    cat_index = {c: i for i, c in enumerate(ids)}
    objects: dict[int, list[Annotation]] = {}
    dropped: dict[int, list[str]] = {}
    for j, a in enumerate(data.get("annotations") or []):
        try:
            image_id, cat = int(a["image_id"]), int(a["category_id"])
            bbox = a["bbox"]
        except (KeyError, TypeError, ValueError) as err:
            raise DatasetError(f"{ann_file}: annotation {j} is malformed ({type(err).__name__}: {err}).") from err
        if cat not in cat_index:
            raise DatasetError(f"{ann_file}: annotation {j} has category_id {cat}, which 'categories' does not list.")
        if image_id not in files:
            raise DatasetError(f"{ann_file}: annotation {j} has image_id {image_id}, which 'images' does not list.")
        objects.setdefault(image_id, [])
        size = _declared(sizes[image_id])
        reason = _coco_box(bbox, size)
        if reason is not None:
            dropped.setdefault(image_id, []).append(f"annotation {j} (id {a.get('id')!r}): {reason}")
            continue
        x, y, w, h = (float(v) for v in bbox)
        label = cat_index[cat]
        seg = _coco_segmentation(a, sizes[image_id], f"{ann_file}: annotation {j}")
        box = (x, y, x + w, y + h)
        objects[image_id].append(Annotation(box, label, names[label], segmentation=seg))
    records = tuple(
        _record(images, files[i], objects[i], dropped.get(i, ()), _declared(sizes[i]))
        for i in sorted(files)
        if i in objects
    )
    return DataSet("coco", base, split, images, names, records, (ann_file,))


def _declared(size: tuple[Any, Any]) -> tuple[int, int] | None:
    """A COCO image's declared (height, width) when both are positive ints, else ``None``."""
    h, w = size
    if isinstance(h, bool) or isinstance(w, bool) or not isinstance(h, int) or not isinstance(w, int) or h < 1 or w < 1:
        return None
    return (h, w)


def _coco_box(bbox: Any, size: tuple[int, int] | None) -> str | None:
    """Why a COCO ``bbox`` ``[x, y, w, h]`` cannot be scored (:func:`check_box` on its corners), or ``None``."""
    shown = json.dumps(bbox) if isinstance(bbox, list | int | float | str) or bbox is None else repr(bbox)
    if (
        not isinstance(bbox, list)
        or len(bbox) != 4
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in bbox)
    ):
        return f"bbox {shown} is not four numbers [x, y, width, height]"
    x, y, w, h = (float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return f"bbox {shown} is not finite"
    if not (w > 0 and h > 0):
        return f"bbox {shown} has no area (width and height must be positive)"
    return check_box((x, y, x + w, y + h), size)


def _coco_segmentation(ann: Mapping[str, Any], size: tuple[Any, Any], where: str) -> Segmentation | None:
    """An annotation's ``segmentation`` kept undecoded (``None`` when absent or empty)."""
    value = ann.get("segmentation")
    if value is None or value == []:
        return None
    h, w = size
    if isinstance(h, bool) or isinstance(w, bool) or not isinstance(h, int) or not isinstance(w, int) or h < 1 or w < 1:
        raise DatasetError(f"{where}: has a segmentation but its image has no positive integer 'height' and 'width'.")
    try:
        return Segmentation.from_coco(value, (h, w), crowd=bool(ann.get("iscrowd", 0)))
    except (ValueError, TypeError) as err:
        raise DatasetError(f"{where}: malformed segmentation ({err}).") from err


@functools.lru_cache(maxsize=1)
def _synsets() -> tuple[str, ...]:
    text = resources.files(__package__).joinpath("imagenet_synsets.txt").read_text("utf-8")
    return tuple(text.split())


def imagenet_synsets(path: PathLike | None = None) -> list[str]:
    """The ImageNet-1k synset ids (wnids) in class-index order: the 1000 sorted wnids shipped with the package
    (index 0 ``n01440764`` "tench" … 999 ``n15075141`` "toilet tissue"), or those of a file with one wnid per
    line (``n`` and eight digits, e.g. ``n01440764``; anything after the wnid on its line is ignored).

    Raises:
        DatasetError: the file cannot be read, a line does not start with a wnid, a wnid is listed twice, or the
            file lists none (the message names the file and the line).

    Example:
        >>> s = imagenet_synsets()
        >>> len(s), s[0], s[281]
        (1000, 'n01440764', 'n02123045')
    """
    if path is None:
        return list(_synsets())
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"--synsets {p}: cannot read the synset list ({err}).") from err
    items: dict[str, int] = {}
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        wnid = line.split()[0]
        if not _WNID.fullmatch(wnid):
            raise DatasetError(
                f"--synsets {p}: line {n}: {wnid[:40]!r} is not a synset id (expected one wnid such as n01440764 "
                "per line)."
            )
        if wnid in items:
            raise DatasetError(f"--synsets {p}: line {n}: synset {wnid} is listed twice (first on line {items[wnid]}).")
        items[wnid] = n
    if not items:
        raise DatasetError(f"--synsets {p}: no synset id in the file.")
    return list(items)


_WNID = re.compile(r"n[0-9]{8}")

_Entry = tuple[list[Annotation], list[str], str | None]
"""A photo's objects, the reasons of the objects left out, and why the photo is refused (or ``None``)."""


def _read_loc_csv(path: Path, index: Mapping[str, int], images: Path) -> dict[str, _Entry]:
    out: dict[str, _Entry] = {}
    lines: dict[str, int] = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DatasetError(f"{path}: cannot read ({err}).") from err
    for n, row in enumerate(rows, start=2):
        image, pred = row.get("ImageId"), row.get("PredictionString")
        if not image or pred is None:
            raise DatasetError(f"{path}: line {n}: expected the columns ImageId,PredictionString.")
        name = _image_file(image, images)
        if name in lines:
            raise DatasetError(f"{path}: line {n}: ImageId {image!r} is listed twice (first on line {lines[name]}).")
        lines[name] = n
        parts = pred.split()
        if len(parts) % 5:
            raise DatasetError(f"{path}: line {n}: PredictionString needs groups of 'wnid x0 y0 x1 y1'.")
        anns, dropped = [], []
        for k in range(0, len(parts), 5):
            wnid = parts[k]
            if wnid not in index:
                raise DatasetError(f"{path}: line {n}: unknown synset {wnid!r}.")
            try:
                x0, y0, x1, y1 = (float(v) for v in parts[k + 1 : k + 5])
            except ValueError:
                dropped.append(f"object {k // 5}: box {parts[k + 1 : k + 5]} is not four numbers")
                continue
            box = (x0 - 1, y0 - 1, x1, y1)
            reason = check_box(box)
            if reason is not None:
                dropped.append(f"object {k // 5}: {reason}")
                continue
            anns.append(Annotation(box, index[wnid], wnid))
        out[name] = (anns, dropped, None)
    return out


def _image_file(stem: str, folder: Path) -> str:
    """``ILSVRC2012_val_00000001`` → its file name (``.JPEG`` unless the stem has an extension; ``folder`` unused
    today, kept for layouts that store other extensions)."""
    return stem if Path(stem).suffix else f"{stem}.JPEG"


def _read_xmls(folder: Path, index: Mapping[str, int], images: Path) -> tuple[dict[str, _Entry], list[Path]]:
    """The per-photo XMLs of ``folder``: ``{photo: entry}`` and the XML files read."""
    out: dict[str, _Entry] = {}
    where: dict[str, Path] = {}
    read: list[Path] = []
    for xml in sorted(folder.glob("*.xml")):
        try:
            path = contain(folder, xml.name, "annotation")
        except OutsideError as err:
            out.setdefault(_image_file(xml.stem, images), ([], [], err.reason))
            continue
        dropped: list[str] = []
        try:
            fname, anns = load_voc_xml(path, index, dropped)
        except (ValueError, OSError) as err:
            raise DatasetError(str(err)) from err
        unknown = [a.name for a in anns if a.label is None]
        if unknown:
            raise DatasetError(f"{xml}: unknown synset {unknown[0]!r}.")
        name = _image_file(Path(fname).stem if not Path(fname).suffix else fname, images)
        if name in where:
            raise DatasetError(f"{xml}: photo {name!r} is annotated twice (also by {where[name]}).")
        where[name] = xml
        out[name] = (_checked(anns, None, dropped, lambda j: f"object {j}"), dropped, None)
        read.append(path)
    return out, read


def read_imagenet(root: PathLike, split: str | None = None, synsets: PathLike | None = None) -> DataSet:
    """Read ImageNet val photos with their localisation boxes (layouts in the module docstring)."""
    from ..models.labels import imagenet_labels

    base = _folder(root, "--root")
    split = split or IMAGENET_SPLIT
    wnids = imagenet_synsets(synsets)
    index = {w: i for i, w in enumerate(wnids)}
    image_candidates = [base / "ILSVRC" / "Data" / "CLS-LOC" / split, base / split, base]
    images = next(c for c in image_candidates if c.is_dir())
    solution = base / f"LOC_{split}_solution.csv"
    sources: list[Path] = [] if synsets is None else [Path(synsets).absolute()]
    if solution.is_file():
        solution = contain(base, solution.name, "annotation file")
        boxes = _read_loc_csv(solution, index, images)
        sources.append(solution)
    else:
        xml_candidates = [base / "ILSVRC" / "Annotations" / "CLS-LOC" / split, base / "Annotations" / split, images]
        folder = next((c for c in xml_candidates if c.is_dir() and any(c.glob("*.xml"))), None)
        if folder is None:
            raise DatasetError(
                f"no ImageNet boxes for split {split!r} under {base}: expected {solution.name} or the per-photo XMLs "
                f"in one of {', '.join(str(c) for c in xml_candidates)}."
            )
        boxes, read = _read_xmls(folder, index, images)
        sources.extend(read)
    if not boxes:
        raise DatasetError(f"no annotated ImageNet photo found under {base} for split {split!r}.")
    labels = imagenet_labels() if wnids == list(_synsets()) else wnids
    records = tuple(
        _record(images, name, anns, dropped, refused=refused)
        for name, (anns, dropped, refused) in sorted(boxes.items())
    )
    return DataSet("imagenet", base, split, images, tuple(labels), records, tuple(sources))


def read_folder(images: PathLike, boxes: PathLike, class_index: Mapping[str, int] | None = None) -> DataSet:
    """A folder of photos with a box file (JSON, one VOC XML or a folder of them; :func:`cameras.metrics.load_boxes`),
    in the box file's order; class names come from the model (``classes`` is ``None``). A photo name that leaves the
    folder is a refused record (:func:`~cameras.datasets.records.contain`)."""
    folder = _folder(images, "--images")
    given = Path(boxes).absolute()
    xmls = sorted(given.glob("*.xml")) if given.is_dir() else []
    for xml in xmls:  # a folder of XMLs: each one must be a file of that folder, not a symlink out of it
        contain(given, xml.name, "annotation")
    try:
        anns = load_boxes(boxes, class_index)
    except (ValueError, OSError) as err:
        raise DatasetError(str(err)) from err
    if not anns:
        raise DatasetError(f"--boxes {boxes}: no annotated photo.")
    records = tuple(_record(folder, name, a) for name, a in anns.items())
    sources = tuple(xmls) if given.is_dir() else (given,)
    return DataSet("folder", folder, None, folder, None, records, sources)


def open_dataset(
    kind: str,
    root: PathLike,
    *,
    split: str | None = None,
    boxes: PathLike | None = None,
    limit: int | None = None,
    synsets: PathLike | None = None,
    class_index: Mapping[str, int] | None = None,
) -> DataSet:
    """Read a data set of layout ``kind`` (:data:`~cameras.datasets.records.KINDS`) from ``root``.

    Args:
        kind: ``"folder"``, ``"voc"``, ``"coco"`` or ``"imagenet"``.
        root: the folder of the photos (folder), the year folder (VOC), the COCO or ImageNet root.
        split: the split (VOC ``test``, COCO ``val2014``, ImageNet ``val`` by default; not for folders).
        boxes: the box file of a folder data set.
        limit: keep the first ``limit`` records.
        synsets: ImageNet only: a file of wnids in index order instead of the shipped sorted list.
        class_index: folder only: VOC XML class names → indices.

    Raises:
        DatasetError: the data set cannot be read (the message names the file).
    """
    if kind not in KINDS:
        raise DatasetError(f"unknown data set kind {kind!r}; choose from {', '.join(KINDS)}.")
    if kind == "folder":
        if boxes is None:
            raise DatasetError("a folder data set needs --boxes (a JSON file, a VOC XML or a folder of them).")
        if split is not None:
            raise DatasetError("--split does not apply to a folder data set.")
        ds = read_folder(root, boxes, class_index)
    elif kind == "voc":
        ds = read_voc(root, split)
    elif kind == "coco":
        ds = read_coco(root, split)
    else:
        ds = read_imagenet(root, split, synsets)
    return ds.head(limit)
