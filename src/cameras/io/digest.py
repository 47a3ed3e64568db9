"""Content digests of input files, so that a run is keyed by what a file holds, not by its name.

A resumed run compares its configuration with the one stored in its output folder (:mod:`cameras.runs.store`).
A path says nothing about the content behind it: a checkpoint overwritten between a killed run and its resume
would merge the rows of two models. :func:`file_digest` gives the SHA-256 of the content instead, read in blocks
(a checkpoint of gigabytes never sits in memory) and computed once per process for a given file state: the result
is cached under (resolved path, size, modification time in ns), so a file that changes gets a new digest.

Example:
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "w.pt"
    >>> _ = f.write_bytes(b"abc")
    >>> file_digest(f)
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

__all__ = ["file_digest"]

_BLOCK = 1 << 20
_cache: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def file_digest(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of the file's content (64 hex digits), streamed; cached by (resolved path, size, mtime_ns).

    Args:
        path: a regular file (symbolic links are followed).

    Raises:
        OSError: the file cannot be read (``FileNotFoundError``, ``IsADirectoryError``, ``PermissionError`` …).
    """
    resolved = Path(path).expanduser().resolve()
    st = resolved.stat()
    if not os.path.isfile(resolved):
        raise IsADirectoryError(f"{resolved}: not a regular file, no content to digest.")
    key = (str(resolved), st.st_size, st.st_mtime_ns)
    with _lock:
        known = _cache.get(key)
    if known is not None:
        return known
    h = hashlib.sha256()
    with open(resolved, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    digest = h.hexdigest()
    after = resolved.stat()
    if (after.st_size, after.st_mtime_ns) == key[1:]:  # not rewritten while it was read
        with _lock:
            _cache[key] = digest
    return digest
