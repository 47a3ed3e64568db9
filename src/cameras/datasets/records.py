"""What a data-set reader returns: a :class:`DataSet` of :class:`Record` s, each a photo and its annotated objects.

A record names its photo relative to the data set's ``image_root`` (``Path(image_root) / record.image`` is the file)
and lists its objects as :class:`cameras.metrics.Annotation` (box in the photo's pixels, half-open
``(x0, y0, x1, y1)``; class index; class name; VOC's ``difficult`` flag; COCO's instance mask, undecoded, in
``segmentation``). The readers never open a photo: a photo
that is listed but absent or unreadable is found when the run decodes it, and recorded as skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..metrics.boxes import Annotation

__all__ = ["COCO_SPLIT", "IMAGENET_SPLIT", "KINDS", "VOC_CLASSES", "VOC_SPLIT", "DataSet", "DatasetError", "Record"]

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


@dataclass(frozen=True)
class Record:
    """One photo of a data set.

    Attributes:
        image: the photo's path relative to :attr:`DataSet.image_root`, with ``/`` separators (``"000001.jpg"``).
        objects: its annotated objects (class index in ``label``; ``None`` only in folder data sets whose boxes
            carry no class).
    """

    image: str
    objects: tuple[Annotation, ...]

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
            folder: the box file's order).
    """

    kind: str
    root: Path
    split: str | None
    image_root: Path
    classes: tuple[str, ...] | None
    records: tuple[Record, ...]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def has_masks(self) -> bool:
        """Whether some object of some record carries an instance mask (COCO)."""
        return any(r.has_masks for r in self.records)

    def path(self, record: Record) -> Path:
        """The photo file of ``record``."""
        return self.image_root / record.image

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
