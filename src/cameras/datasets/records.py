"""What a data-set reader returns: a :class:`DataSet` of :class:`Record` s, each a photo and its annotated objects.

A record names its photo relative to the data set's ``image_root`` (``Path(image_root) / record.image`` is the file)
and lists its objects as :class:`cameras.metrics.Annotation` (box in the photo's pixels, half-open
``(x0, y0, x1, y1)``; class index; class name; VOC's ``difficult`` flag; COCO's instance mask, undecoded, in
``segmentation``). The readers never open a photo: a photo
that is listed but absent or unreadable is found when the run decodes it, and recorded as skipped.

What an annotation file can make ``cameras`` do is bounded here:

* **containment** — every name an annotation gives (a photo, a per-photo XML) goes through :func:`contain`: it must
  resolve, symlinks included, strictly inside its folder. Anything else (``../x``, an absolute path, a symlink
  pointing out) becomes a record :attr:`Record.refused` "outside the data set": never opened, never scored;
* **boxes** — :func:`check_box` (finite, ordered, non-empty, with a pixel on the declared photo): a bad object is
  left out of :attr:`Record.objects` and its reason kept in :attr:`Record.dropped`;
* **declared size** — :attr:`Record.size` (COCO's ``height`` / ``width``) must be the decoded photo's size, so that
  a mask is never decoded at a size the photo does not have;
* **content** — :meth:`DataSet.fingerprint` hashes the annotation files read (:attr:`DataSet.sources`): a run's
  resume key changes when one of them does.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..metrics.boxes import Annotation

__all__ = [
    "COCO_SPLIT",
    "IMAGENET_SPLIT",
    "KINDS",
    "OUTSIDE",
    "VOC_CLASSES",
    "VOC_SPLIT",
    "DataSet",
    "DatasetError",
    "OutsideError",
    "Record",
    "check_box",
    "contain",
]

KINDS: tuple[str, ...] = ("folder", "voc", "coco", "imagenet")
"""The layouts :func:`cameras.datasets.open_dataset` reads."""

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
"""The 20 Pascal VOC classes in their standard (alphabetical) order: the outputs 0–19 of a VOC classifier."""

VOC_SPLIT = "test"
COCO_SPLIT = "val2014"
IMAGENET_SPLIT = "val"


class DatasetError(ValueError):
    """A data set that cannot be read: a missing folder or file, an unknown split, a malformed annotation. The message
    names the file."""


OUTSIDE = "outside the data set"
"""The reason of a record whose name resolves outside its folder (:func:`contain`)."""


class OutsideError(DatasetError):
    """A name from an annotation file that resolves outside the data set's folder (:func:`contain`).

    Attributes:
        name: the name as the annotation gives it.
        reason: why it is refused (starts with :data:`OUTSIDE`).
    """

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def contain(folder: str | Path, name: str, what: str = "photo") -> Path:
    """The file ``name`` (as an annotation file gives it) of ``folder``, if it resolves inside ``folder``.

    The one containment check of every reader: ``folder / name`` is resolved (symlinks followed, ``..`` folded,
    an absolute ``name`` taken as it is) and must lie strictly inside ``folder`` resolved (a symlinked folder is
    fine; a symlinked file pointing out of it is not). The file need not exist.

    Args:
        folder: the data set's folder the name is relative to (its photos, its XMLs).
        name: the name from the annotation.
        what: what the name is, for the message.

    Returns:
        the resolved path (the file to open).

    Raises:
        OutsideError: the name leaves ``folder`` (or cannot be resolved: a NUL byte, a symlink loop); the message
            starts with the name and says "outside the data set".

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> contain(d, "a/b.jpg") == d.resolve() / "a" / "b.jpg"
        True
        >>> try:
        ...     contain(d, "../secret.jpg")
        ... except OutsideError as err:
        ...     print(str(err).split(" (")[0])
        ../secret.jpg: outside the data set
    """
    base = Path(folder).resolve()
    try:
        target = (base / name).resolve()
    except (OSError, RuntimeError, ValueError) as err:
        raise OutsideError(name, f"{OUTSIDE} (the {what} name cannot be resolved: {err})") from err
    if target == base or not target.is_relative_to(base):
        raise OutsideError(name, f"{OUTSIDE} (the {what} resolves to {target}, not inside {base})")
    return target


def check_box(box: Any, size: tuple[int, int] | None = None) -> str | None:
    """Why a half-open box ``(x0, y0, x1, y1)`` cannot be scored, or ``None`` when it can.

    A box must be four finite numbers with ``x0 < x1`` and ``y0 < y1`` and, when the photo's declared ``(H, W)`` is
    known, keep at least one pixel once clipped to ``[0, W) × [0, H)``.

    Example:
        >>> check_box((0, 0, 5, 5), (10, 10)) is None
        True
        >>> check_box((3, 0, 3, 5))
        'box [3, 0, 3, 5] is empty or reversed (x1 <= x0 or y1 <= y0)'
        >>> check_box((20, 0, 30, 5), (10, 10))
        'box [20, 0, 30, 5] has no pixel on the declared 10×10 photo'
        >>> check_box(["nan", "nan", 10, 10])
        "box ['nan', 'nan', 10, 10] is not four numbers"
    """
    values = list(box) if isinstance(box, list | tuple) else [box]
    shown = "[" + ", ".join(repr(v) if not isinstance(v, int | float) else f"{v:g}" for v in values) + "]"
    if len(values) != 4 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return f"box {shown} is not four numbers"
    x0, y0, x1, y1 = (float(v) for v in values)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        return f"box {shown} is not finite"
    if not (x0 < x1 and y0 < y1):
        return f"box {shown} is empty or reversed (x1 <= x0 or y1 <= y0)"
    if size is not None:
        h, w = size
        if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
            return f"box {shown} has no pixel on the declared {h}×{w} photo"
    return None


@dataclass(frozen=True)
class Record:
    """One photo of a data set.

    Attributes:
        image: the photo's path relative to :attr:`DataSet.image_root`, with ``/`` separators (``"000001.jpg"``).
        objects: its annotated objects (class index in ``label``; ``None`` only in folder data sets whose boxes
            carry no class).
        size: the photo's ``(H, W)`` as the annotation file declares it (COCO), or ``None``: the run skips the photo
            when the decoded one has another size.
        refused: why the photo is not used at all (it starts with :data:`OUTSIDE` for a name outside the data
            set), or ``None``; a refused photo is never opened.
        dropped: the reasons of the objects the reader left out (a bad box), in file order.
    """

    image: str
    objects: tuple[Annotation, ...]
    size: tuple[int, int] | None = None
    refused: str | None = None
    dropped: tuple[str, ...] = ()

    @property
    def classes(self) -> list[int]:
        """The annotated class indices, in order of first appearance."""
        return [c for c in dict.fromkeys(a.label for a in self.objects) if c is not None]

    @property
    def has_masks(self) -> bool:
        """Whether some object carries an instance mask (:attr:`Annotation.segmentation`)."""
        return any(a.segmentation is not None for a in self.objects)


@dataclass(frozen=True)
class DataSet:
    """A data set read from its standard layout.

    Attributes:
        kind: ``"folder"``, ``"voc"``, ``"coco"`` or ``"imagenet"``.
        root: the folder given (absolute).
        split: the split read (``None`` for a folder).
        image_root: absolute folder the records' ``image`` paths are relative to.
        classes: the class names in index order (the model's outputs), or ``None`` when the model names them
            (folder data sets).
        records: the photos, in the data set's order (VOC: the split list; COCO: image id; ImageNet: file name;
            folder: the box file's order), refused ones included (:attr:`Record.refused`).
        sources: the annotation files read (what :meth:`fingerprint` hashes).
    """

    kind: str
    root: Path
    split: str | None
    image_root: Path
    classes: tuple[str, ...] | None
    records: tuple[Record, ...]
    sources: tuple[Path, ...] = field(default=(), repr=False)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def has_masks(self) -> bool:
        """Whether some object of some record carries an instance mask (COCO)."""
        return any(r.has_masks for r in self.records)

    def path(self, record: Record) -> Path:
        """The photo file of ``record`` (resolved, checked by :func:`contain`).

        Raises:
            OutsideError: the record is refused, or its name resolves outside :attr:`image_root`.
        """
        if record.refused is not None:
            raise OutsideError(record.image, record.refused)
        return contain(self.image_root, record.image)

    def fingerprint(self) -> str:
        """A SHA-256 of the annotation files' contents (:attr:`sources`, :func:`cameras.io.file_digest`) and of the
        class names: part of a run's resume key, so that a changed annotation file is a configuration change.

        Raises:
            DatasetError: an annotation file can no longer be read.
        """
        from ..io import file_digest

        h = hashlib.sha256(json.dumps([self.kind, self.split, self.classes]).encode())
        for p in self.sources:
            try:
                h.update(json.dumps([str(p), file_digest(p)]).encode())
            except OSError as err:
                raise DatasetError(f"{p}: cannot read the annotation file ({err}).") from err
        return h.hexdigest()

    def head(self, limit: int | None) -> DataSet:
        """The first ``limit`` records (all when ``None``)."""
        return self if limit is None else replace(self, records=self.records[:limit])

    def describe(self) -> dict[str, Any]:
        """``{"kind", "root", "split", "items"}`` (what ``run.json`` records as ``dataset``)."""
        return {"kind": self.kind, "root": str(self.root), "split": self.split, "items": len(self.records)}


def box_area(boxes: Sequence[tuple[float, float, float, float]], size: tuple[int, int]) -> int:
    """Pixels of a (H, W) photo covered by the union of half-open boxes (pixel (x, y) inside when
    ``x0 <= x < x1`` and ``y0 <= y < y1``): the rasterisation of :func:`cameras.metrics.boxes_to_mask`.

    Example:
        >>> box_area([(0, 0, 4, 4), (2, 2, 6, 6)], (10, 10))
        28
    """
    from ..metrics import boxes_to_mask

    return int(boxes_to_mask([_rows(boxes)], size).sum())


def _rows(boxes: Sequence[tuple[float, float, float, float]]) -> Any:
    """The boxes as a (K, 4) float64 tensor (float64: a COCO coordinate keeps its value)."""
    import torch

    return torch.tensor([list(b) for b in boxes], dtype=torch.float64).reshape(-1, 4)


def ebp_difficult(record: Record, cls: int, size: tuple[int, int]) -> bool:
    """Whether (photo, class) belongs to the pointing game's "difficult" subset of Zhang et al. (Excitation
    Backprop, ECCV 2016): :func:`cameras.metrics.is_difficult` (the one definition: the class's objects cover less
    than a quarter of the photo, the union of its boxes, *and* the photo shows at least one other annotated class)
    on a record's boxes, every object of the record counting for the classes of the photo.

    TorchRay ships these flags precomputed for VOC07 test and COCO14 val; here they follow from the definition on
    the record's own boxes and the decoded photo's size.

    Example:
        >>> from cameras.metrics import Annotation
        >>> r = Record("a.jpg", (Annotation((0, 0, 10, 10), 0), Annotation((50, 50, 100, 100), 1)))
        >>> ebp_difficult(r, 0, (100, 100)), ebp_difficult(r, 1, (100, 100))
        (True, False)
    """
    from ..metrics import is_difficult

    classes = {a.label for a in record.objects if a.label is not None} | {cls}
    return is_difficult(_rows([a.box for a in record.objects if a.label == cls]), size, len(classes))
