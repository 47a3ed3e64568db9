"""``cameras.io.file_digest``: the SHA-256 of a file's content, streamed, cached by (path, size, mtime_ns)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from cameras.io import digest as digest_mod
from cameras.io import file_digest


def test_digest_is_the_content_sha256_streamed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digest_mod, "_BLOCK", 7)  # several blocks
    data = os.urandom(1000)
    f = tmp_path / "w.pt"
    f.write_bytes(data)
    assert file_digest(f) == hashlib.sha256(data).hexdigest()
    (tmp_path / "link.pt").symlink_to(f)
    assert file_digest(tmp_path / "link.pt") == file_digest(str(f))


def test_cached_by_size_and_mtime(tmp_path: Path) -> None:
    f = tmp_path / "w.pt"
    f.write_bytes(b"first content")
    first = file_digest(f)
    st = f.stat()
    f.write_bytes(b"other content")  # same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same mtime: the cached digest (read once)
    assert file_digest(f) == first
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1000))
    assert file_digest(f) == hashlib.sha256(b"other content").hexdigest() != first


def test_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        file_digest(tmp_path / "missing.pt")
    with pytest.raises(IsADirectoryError):
        file_digest(tmp_path)
