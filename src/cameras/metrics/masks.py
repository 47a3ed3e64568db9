"""Instance masks of annotated objects: COCO's ``segmentation`` kept as read, decoded to a mask only when asked.

A COCO object's ``segmentation`` comes in three forms (Lin et al., "Microsoft COCO: Common Objects in Context",
ECCV 2014, and the COCO data format page): polygons ``[[x0, y0, x1, y1, ...], ...]`` in the photo's pixels,
uncompressed run-length encoding ``{"size": [H, W], "counts": [int, ...]}`` (the usual form of ``iscrowd`` regions)
and compressed RLE ``{"size": [H, W], "counts": "string"}``. A :class:`Segmentation` holds the form as compact JSON
text (hashable, cheap to keep for 50K photos) with the photo's size from the annotation file's ``height`` /
``width``; :func:`decode_segmentation` rasterises it with pycocotools (``frPyObjects`` / ``merge`` / ``decode``, the
reference implementation of the COCO API) into an (H, W) bool array. pycocotools is the optional extra
``cameras[coco]``: only decoding needs it, reading a data set does not.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["Segmentation", "decode_segmentation", "instance_mask", "require_pycocotools", "resize_mask"]

_INSTALL = 'decoding instance masks needs pycocotools: pip install "cameras[coco]" (or pip install pycocotools)'


@dataclass(frozen=True)
class Segmentation:
    """An object's instance mask as written in the annotation file, not yet decoded.

    Attributes:
        data: the ``segmentation`` value as compact JSON text (a list of polygons, or an RLE object).
        size: ``(H, W)`` of the photo the mask covers (the annotation file's ``height`` and ``width``).
        crowd: the object is a crowd region (COCO ``iscrowd`` 1).
    """

    data: str
    size: tuple[int, int]
    crowd: bool = False

    @classmethod
    def from_coco(cls, value: Any, size: tuple[int, int], crowd: bool = False) -> Segmentation:
        """Check the shape of a COCO ``segmentation`` value (without decoding it) and keep it.

        Raises:
            ValueError: not a list of polygons (each of at least 3 points, an even count of numbers) nor an RLE
                object ``{"size": [H, W], "counts": list or string}`` of the photo's size.
        """
        h, w = size
        if isinstance(value, list):
            for poly in value:
                if (
                    not isinstance(poly, list)
                    or len(poly) < 6
                    or len(poly) % 2
                    or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in poly)
                ):
                    raise ValueError("a polygon must be a list of at least 6 numbers x0, y0, x1, y1, ...")
        elif isinstance(value, dict):
            counts, rle_size = value.get("counts"), value.get("size")
            if not isinstance(counts, list | str) or not isinstance(rle_size, list) or len(rle_size) != 2:
                raise ValueError("an RLE segmentation needs 'size': [H, W] and 'counts' (a list or a string)")
            if [int(rle_size[0]), int(rle_size[1])] != [h, w]:
                raise ValueError(f"the RLE's size {rle_size} is not the photo's {[h, w]} (height, width)")
        else:
            raise ValueError(f"segmentation must be a list of polygons or an RLE object, got {type(value).__name__}")
        return cls(json.dumps(value, separators=(",", ":")), (int(h), int(w)), bool(crowd))


def require_pycocotools() -> Any:
    """The ``pycocotools.mask`` module, or an ImportError that says how to install it."""
    try:
        from pycocotools import mask
    except ImportError as err:
        raise ImportError(_INSTALL) from err
    return mask


def decode_segmentation(segmentation: Segmentation) -> np.ndarray:
    """The (H, W) bool mask of one object (H, W: :attr:`Segmentation.size`, the photo's).

    Polygons and uncompressed RLE go through pycocotools' ``frPyObjects`` (polygons of one object are merged),
    compressed RLE is decoded as it is.

    Raises:
        ImportError: pycocotools is not installed (the message names ``pip install "cameras[coco]"``).

    Example:
        >>> seg = Segmentation('{"size":[2,3],"counts":[1,2,3]}', (2, 3))  # column-major runs: 1 off, 2 on, 3 off
        >>> decode_segmentation(seg).astype(int).tolist()
        [[0, 1, 0], [1, 0, 0]]
    """
    mask_api = require_pycocotools()
    value = json.loads(segmentation.data)
    h, w = segmentation.size
    if isinstance(value, list):
        rle = mask_api.merge(mask_api.frPyObjects(value, h, w)) if value else None
    elif isinstance(value["counts"], list):
        rle = mask_api.frPyObjects(value, h, w)
    else:
        rle = {"size": [h, w], "counts": value["counts"].encode("ascii")}
    if rle is None:
        return np.zeros((h, w), dtype=bool)
    with warnings.catch_warnings():  # pycocotools 2.0.x's own NumPy 2 "copy keyword" deprecation, not the caller's
        warnings.simplefilter("ignore", DeprecationWarning)
        out: np.ndarray = mask_api.decode(rle).astype(bool)
    return out.reshape(h, w)


def instance_mask(segmentations: Iterable[Segmentation | None], size: tuple[int, int]) -> Tensor | None:
    """The union of objects' masks as an (H, W) bool tensor at ``size`` (nearest-neighbour resize when a mask was
    made for another size), or ``None`` when one of them has no mask (the score it feeds is then undefined).

    Example:
        >>> seg = Segmentation('{"size":[2,2],"counts":[1,3]}', (2, 2))
        >>> instance_mask([seg], (4, 4)).int().tolist()
        [[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]
        >>> instance_mask([seg, None], (2, 2)) is None
        True
    """
    h, w = int(size[0]), int(size[1])
    union = torch.zeros(h, w, dtype=torch.bool)
    segs: Sequence[Segmentation | None] = list(segmentations)
    if not segs or any(s is None for s in segs):
        return None
    for s in segs:
        assert s is not None
        union |= resize_mask(torch.from_numpy(decode_segmentation(s)), (h, w))
    return union


def resize_mask(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """An (H, W) bool mask at ``size`` (nearest neighbour; the mask itself when it has that size already)."""
    if tuple(mask.shape) == (int(size[0]), int(size[1])):
        return mask
    scaled = torch.nn.functional.interpolate(
        mask[None, None].float(), size=(int(size[0]), int(size[1])), mode="nearest"
    )
    return scaled[0, 0] > 0
