"""Content digests of files: what a run's configuration key holds instead of a path, so that a file changed between
a run and its resume is a configuration change.

:func:`file_digest` is the SHA-256 of a file's bytes, read in 1 MiB blocks (memory bounded whatever the file's size)
and cached in the process by ``(path, size, mtime_ns)``: hashing the same unchanged file twice reads it once.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = p.write_bytes(b"abc")
    >>> file_digest(p)[:16]
    'ba7816bf8f01cfea'
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["file_digest"]

_BLOCK = 1 << 20
_CACHE: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | os.PathLike[str]) -> str:
    """The SHA-256 (hex) of the file at ``path``, streamed; cached by (absolute path, size, mtime_ns).

    Raises:
        OSError: the file cannot be read (``FileNotFoundError``, ``IsADirectoryError``, ...).
    """
    p = Path(path).absolute()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    digest = h.hexdigest()
    _CACHE[key] = digest
    return digest
