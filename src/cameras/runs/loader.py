"""Decoding and preprocessing in :class:`torch.utils.data.DataLoader` workers while the model runs.

:class:`PhotoSet` is a map-style dataset over a :class:`~cameras.datasets.DataSet`: item ``i`` decodes record ``i``
with the one loader (:func:`cameras.io.load_image`, bounded by the run's :class:`~cameras.io.SizeLimits`),
preprocesses it with the model's :class:`~cameras.models.Preprocess` (aspect kept or square) and checks the scales
the explainers will run. A photo that cannot be used is not an exception: the item carries the reason, and the run
records it as skipped. A record refused by its reader (a name outside the data set) is never opened, and a photo whose
decoded size is not the size its annotation file declares (COCO's ``height`` / ``width``) is skipped before any mask
is decoded at that declared size. :func:`chunk_loader` yields one list of items per shard chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..datasets import DataSet, DatasetError
from ..io import ImageError, SizeLimits, load_image
from ..models import Preprocess

__all__ = ["Item", "PhotoSet", "chunk_loader"]


@dataclass
class Item:
    """One decoded photo (or why it could not be used).

    Attributes:
        index: the record's index in the data set.
        tensor: (3, h, w) float32 model input on the CPU, ``None`` when skipped.
        size: (H0, W0) of the photo (``(0, 0)`` when skipped).
        error: why the photo is skipped (``None`` when usable).
    """

    index: int
    tensor: Tensor | None
    size: tuple[int, int]
    error: str | None = None

    @property
    def input_size(self) -> tuple[int, int]:
        assert self.tensor is not None
        return (int(self.tensor.shape[-2]), int(self.tensor.shape[-1]))


class PhotoSet(torch.utils.data.Dataset[Item]):
    """Records of a data set → :class:`Item` s (see the module docstring).

    Args:
        dataset: the data set.
        preprocess: the model's preprocessing.
        square: square inputs (``--square``) instead of the aspect-keeping resize.
        limits: the size bounds.
        scales: the (h, w) sizes the explainers run on an input of (h, w) (checked against ``limits``).
    """

    def __init__(
        self,
        dataset: DataSet,
        preprocess: Preprocess,
        *,
        square: bool,
        limits: SizeLimits,
        scales: Callable[[tuple[int, int]], list[tuple[int, int]]] | None = None,
    ) -> None:
        self.dataset = dataset
        self.preprocess = preprocess
        self.square = square
        self.limits = limits
        self.scales = scales

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Item:
        record = self.dataset.records[index]
        try:
            path = self.dataset.path(record)
        except DatasetError as err:  # outside the data set: never opened
            return Item(index, None, (0, 0), str(err))
        try:
            photo = load_image(path, limits=self.limits, samples=False)
            if record.size is not None and tuple(photo.size) != tuple(record.size):
                raise ImageError(
                    f"the annotation file declares a {record.size[0]}×{record.size[1]} photo but it is "
                    f"{photo.size[0]}×{photo.size[1]}: its boxes and masks are for another photo"
                )
            prepared = self.preprocess(photo.rgb, square=True if self.square else None, limits=self.limits)
            if self.scales is not None:
                try:
                    sizes = self.scales(prepared.input_size)
                except ValueError as err:
                    raise ImageError(f"{path}: {err}") from err
                self.limits.check_scales(sizes, str(path))
        except (ImageError, TypeError) as err:
            text = str(err)
            return Item(index, None, (0, 0), text if str(path) in text else f"{path}: {text}")
        return Item(index, prepared.tensor[0], photo.size)


def _as_list(batch: list[Item]) -> list[Item]:
    return batch


def chunk_loader(
    photos: PhotoSet, chunk_items: Sequence[Sequence[int]], workers: int
) -> torch.utils.data.DataLoader[list[Item]]:
    """A DataLoader yielding, for each chunk of ``chunk_items`` in order, the list of its :class:`Item` s, decoded by
    ``workers`` processes (0: in this process) ahead of the computation."""
    return torch.utils.data.DataLoader(
        photos,  # type: ignore[arg-type]  # items are collated into lists of items
        batch_sampler=[list(c) for c in chunk_items],
        num_workers=workers,
        collate_fn=_as_list,
        prefetch_factor=2 if workers > 0 else None,
        persistent_workers=False,
    )
