"""The data-set loop's machinery: ranks, the DataLoader of photos, the atomic shard store and the saved maps.

:func:`cameras.evaluate` (:mod:`cameras.evaluation`, behind ``cameras evaluate --dataset …``) runs on these:

* :mod:`cameras.runs.distributed` — one process or torchrun's ranks (:func:`setup`, :class:`Ranks`);
* :mod:`cameras.runs.loader` — :class:`PhotoSet`: decode + preprocess in DataLoader workers, bad photos as skipped
  items with their reason;
* :mod:`cameras.runs.store` — :class:`ShardStore`: fixed chunks of items, each committed as one atomic shard file;
  resume, configuration check, deterministic split over ranks (:func:`chunks`, :func:`share`);
* :mod:`cameras.runs.maps` — :class:`MapStore` and :func:`read_map`: the ``--save-maps`` files.
"""

from __future__ import annotations

from .distributed import Ranks, current_rank, setup
from .maps import MapStore, read_map, read_map_index
from .store import RunConfigError, ShardStore, chunks, share

__all__ = [
    "MapStore",
    "Ranks",
    "RunConfigError",
    "ShardStore",
    "chunks",
    "current_rank",
    "read_map",
    "read_map_index",
    "setup",
    "share",
]
