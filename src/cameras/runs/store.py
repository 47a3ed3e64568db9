"""The resume store: a run's results committed in small atomic shard files under ``--out/shards/``.

The items (photos) of a run are cut into fixed chunks of ``shard_size`` consecutive items (:func:`chunks`); the
chunks are the unit of work, of distribution and of commitment. When a rank has computed a chunk it writes
``shards/chunk-NNNNNN.json`` with the one atomic writer (:func:`cameras.io.write_json`: temporary name, flush,
fsync, rename), so a ``kill -9`` at any moment leaves whole shards and at most a hidden temporary file, which is
ignored. A rerun reads which chunks exist and computes only the others. Because the chunks depend only on the data
set and ``shard_size`` — not on the number of ranks or on which rank computed what — a run resumed with another
number of ranks computes exactly the same batches, and the merged outputs equal those of one uninterrupted process.

``shards/config.json`` holds the run's key (everything that changes the results: data set and its item list,
model, weights, methods, metrics, resolutions, …). A run whose key differs is refused (:class:`RunConfigError`)
unless it is told to start over (``overwrite=True``, the CLI's ``--overwrite``), which removes the old shards.

Example:
    >>> import tempfile, pathlib
    >>> store = ShardStore(pathlib.Path(tempfile.mkdtemp()) / "shards")
    >>> store.open({"model": "m"}, overwrite=False)
    0
    >>> _ = store.commit(3, {"rows": [1, 2]})
    >>> store.done(), store.read(3)["rows"]
    ({3}, [1, 2])
    >>> try:
    ...     store.open({"model": "other"}, overwrite=False)
    ... except RunConfigError as err:
    ...     print(str(err).split(";")[0])
    the output folder holds a run with another configuration: model differs ('m' → 'other')
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..io.atomic import to_jsonable, write_json

__all__ = ["RunConfigError", "ShardStore", "chunks", "share"]

CONFIG = "config.json"
_CHUNK = re.compile(r"chunk-(\d{6,})\.json")


class RunConfigError(ValueError):
    """The output folder holds shards of a run with another configuration."""


def chunks(n_items: int, shard_size: int) -> list[list[int]]:
    """Items 0 … n_items − 1 cut into consecutive chunks of ``shard_size`` (the last one shorter).

    Example:
        >>> chunks(5, 2)
        [[0, 1], [2, 3], [4]]
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}.")
    return [list(range(i, min(i + shard_size, n_items))) for i in range(0, n_items, shard_size)]


def share(pending: Sequence[int], rank: int, world_size: int) -> list[int]:
    """This rank's part of the pending chunk ids: every ``world_size``-th one from position ``rank``, so the parts
    are disjoint and cover every chunk.

    Example:
        >>> share([0, 2, 3, 5, 8], 0, 2), share([0, 2, 3, 5, 8], 1, 2)
        ([0, 3, 8], [2, 5])
    """
    return list(pending[rank::world_size])


def _changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def _short(value: Any, width: int = 32) -> str:
    """A stored key's value, short enough for one line (a digest keeps its first 12 characters)."""
    if isinstance(value, str) and value.startswith("sha256:"):
        value = value[:19] + "…"
    text = repr(value) if value is not None else "none"
    return text if len(text) <= width else text[: width - 1] + "…"


def describe_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """What differs between two run keys, one clause per key: ``steps differs (100 → 8), …``.

    Example:
        >>> describe_change({"steps": 100, "model": "m"}, {"steps": 8, "model": "m"})
        'steps differs (100 → 8)'
    """
    return ", ".join(f"{k} differs ({_short(old.get(k))} → {_short(new.get(k))})" for k in _changed(old, new))


class ShardStore:
    """The shard folder of a run (see the module docstring).

    Args:
        folder: ``--out/shards``; created by :meth:`open`.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def chunk_file(self, chunk: int) -> Path:
        return self.folder / f"chunk-{chunk:06d}.json"

    def open(self, key: Mapping[str, Any], *, overwrite: bool) -> int:
        """Check the run's key against the stored one (and store it when there is none).

        Args:
            key: the configuration (JSON-able).
            overwrite: start over: remove the old shards whatever their key.

        Returns:
            the number of chunks already committed (0 for a new run).

        Raises:
            RunConfigError: a stored key differs and ``overwrite`` is false (the message names what differs).
        """
        wanted = to_jsonable(dict(key))
        config = self.folder / CONFIG
        if overwrite and self.folder.exists():
            shutil.rmtree(self.folder)
        if config.is_file():
            try:
                stored = json.loads(config.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
                raise RunConfigError(f"{config}: unreadable ({err}); pass --overwrite to start over.") from err
            changed = _changed(stored.get("key", {}), wanted)
            if changed:
                raise RunConfigError(
                    "the output folder holds a run with another configuration: "
                    f"{describe_change(stored.get('key', {}), wanted)}; give another --out, or pass --overwrite to "
                    "start over (the same options resume it)"
                )
            return len(self.done())
        if self.done():
            raise RunConfigError(f"{self.folder}: shards without {CONFIG}; pass --overwrite to start over")
        from .. import __version__

        write_json(config, {"key": wanted, "cameras": __version__})
        return 0

    def done(self) -> set[int]:
        """The ids of the committed chunks (temporary files of an interrupted write are ignored)."""
        if not self.folder.is_dir():
            return set()
        out = set()
        for p in self.folder.iterdir():
            m = _CHUNK.fullmatch(p.name)
            if m:
                out.add(int(m.group(1)))
        return out

    def commit(self, chunk: int, payload: Mapping[str, Any]) -> Path:
        """Write one chunk's results atomically (NaN stored as ``null``)."""
        return write_json(self.chunk_file(chunk), {"chunk": chunk, **payload}, indent=None)

    def read(self, chunk: int) -> dict[str, Any]:
        """One committed chunk.

        Raises:
            RunConfigError: the shard is missing or unreadable (names the file).
        """
        path = self.chunk_file(chunk)
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise RunConfigError(f"{path}: cannot read the shard ({err}); pass --overwrite to start over") from err
        return data

    def read_all(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        """The chunks ``ids``, in that order."""
        return [self.read(i) for i in ids]
