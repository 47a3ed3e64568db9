"""Output folders: checked up front, created at the first write, written atomically.

A command's life with an output folder::

    out = OutputDir(args.out)          # 1. before any work: raises OutputDirError if it can never be written
    ...                                # 2. validate every other option and input, compute
    out.write_json("r.json", report)   # 3. each write creates the folder if needed, then writes atomically

So a run that fails on its inputs leaves no empty folder behind, a run whose ``--out`` is a file (or lies under one,
or is not writable) fails at once instead of after the work, and an interrupted run never leaves half a file
(see :mod:`cameras.io.atomic`).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import atomic

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure
    from PIL import Image

__all__ = ["OutputDir", "OutputDirError", "check_output_dir", "slug"]


class OutputDirError(ValueError):
    """An output folder that cannot be used (a file, under a file, not writable, or an invalid file name in it)."""


def slug(text: str, fallback: str = "item") -> str:
    """A file-name-safe lower-case form of ``text`` (``fallback`` when nothing is left).

    Example:
        >>> slug("Egyptian cat, #285")
        'egyptian_cat_285'
    """
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower() or fallback


def _can_create_in(folder: Path) -> bool:
    """Whether a file can be created in an existing folder: a real probe (honours read-only mounts, ACLs and
    root's privileges, which :func:`os.access` does not), removed at once."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    probe = folder / f".cameras-probe-{secrets.token_hex(6)}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return False
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return True


def check_output_dir(path: atomic.PathLike, *, option: str = "--out") -> Path:
    """Check that ``path`` is, or can be created as, a writable folder; nothing is created.

    Args:
        path: the folder (``~`` is expanded).
        option: how the folder is named in messages (the CLI option).

    Returns:
        the folder as a :class:`~pathlib.Path`.

    Raises:
        OutputDirError: ``path`` is empty, an existing file, lies under a file, or neither it nor the closest
            existing folder above it is writable.

    Example:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
        >>> _ = f.write_text("x")
        >>> try:
        ...     check_output_dir(f / "out")
        ... except OutputDirError as err:
        ...     print("lies under the file" in str(err))
        True
    """
    text = os.fspath(path)
    if not isinstance(text, str) or not text.strip():
        raise OutputDirError(f"{option} is empty: give a folder.")
    folder = Path(text).expanduser()
    if folder.exists():
        if not folder.is_dir():
            raise OutputDirError(f"{option} {str(folder)!r} is an existing file, not a folder.")
        if not _can_create_in(folder):
            raise OutputDirError(f"{option} {str(folder)!r} is not writable.")
        return folder
    above = folder.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise OutputDirError(f"{option} {str(folder)!r} lies under the file {str(above)!r}, which is not a folder.")
    if not _can_create_in(above):
        raise OutputDirError(f"{option} {str(folder)!r} cannot be created: {str(above)!r} is not writable.")
    return folder


class OutputDir:
    """A checked output folder (see the module docstring): created on the first write, every file atomic.

    Args:
        path: the folder; checked at once with :func:`check_output_dir`.
        option: how the folder is named in messages.

    Attributes:
        path: the folder.
        written: the files written so far, in order.

    Raises:
        OutputDirError: the folder can never be written.

    Example:
        >>> import tempfile, pathlib
        >>> out = OutputDir(pathlib.Path(tempfile.mkdtemp()) / "run")
        >>> out.path.exists()
        False
        >>> out.write_text("a.txt", "hello").name, out.path.exists()
        ('a.txt', True)
    """

    def __init__(self, path: atomic.PathLike, *, option: str = "--out") -> None:
        self.option = option
        self.path = check_output_dir(path, option=option)
        self.written: list[Path] = []

    def __repr__(self) -> str:
        return f"OutputDir({str(self.path)!r}, written={len(self.written)})"

    def file(self, name: str) -> Path:
        """The path of file ``name`` in the folder (nothing is created).

        Raises:
            OutputDirError: ``name`` is empty, ``.``/``..``, or holds a path separator.
        """
        if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
            raise OutputDirError(f"Invalid output file name {name!r}: give a plain file name.")
        return self.path / name

    def create(self) -> Path:
        """Create the folder (and its parents) if missing; returns it.

        Raises:
            OutputDirError: it cannot be created (it was checked when this object was made, so only a change in
                the meantime gets here).
        """
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputDirError(f"Cannot create {self.option} {str(self.path)!r}: {err.strerror or err}.") from err
        return self.path

    def adopt(self, *paths: atomic.PathLike) -> list[Path]:
        """Register files that another writer put into the folder (a figure a library function saved, a store's
        index), so that they are listed in :attr:`written` (and in ``run.json``) with the files written here.

        Args:
            paths: existing files in the folder or below it, in the order they were written.

        Returns:
            the files as :class:`~pathlib.Path`.

        Raises:
            OutputDirError: a path is not a file in the folder (written elsewhere, or not at all).

        Example:
            >>> import tempfile, pathlib
            >>> out = OutputDir(pathlib.Path(tempfile.mkdtemp()) / "run")
            >>> _ = (out.create() / "fig.png").write_bytes(b"png")
            >>> [p.name for p in out.adopt(out.path / "fig.png")], [p.name for p in out.written]
            (['fig.png'], ['fig.png'])
        """
        found = [Path(os.fspath(p)) for p in paths]
        root = self.path.resolve()
        for path in found:
            if not path.is_file() or not path.resolve().is_relative_to(root):
                raise OutputDirError(f"Cannot list {str(path)!r} as an output: it is not a file in {str(self.path)!r}.")
        self.written.extend(found)
        return found

    def _write(self, name: str, write: Any, *args: Any, **kwargs: Any) -> Path:
        dest = self.file(name)
        existed = self.path.exists()
        self.create()
        try:
            out: Path = write(dest, *args, mkdir=False, **kwargs)
        except BaseException:
            if not existed:  # leave no empty folder behind
                with contextlib.suppress(OSError):
                    self.path.rmdir()
            raise
        self.written.append(out)
        return out

    def write_bytes(self, name: str, data: bytes) -> Path:
        """:func:`cameras.io.atomic.write_bytes` into the folder."""
        return self._write(name, atomic.write_bytes, data)

    def write_text(self, name: str, text: str) -> Path:
        """:func:`cameras.io.atomic.write_text` into the folder."""
        return self._write(name, atomic.write_text, text)

    def write_json(self, name: str, obj: Any, *, indent: int | None = 2) -> Path:
        """:func:`cameras.io.atomic.write_json` (strict JSON, NaN → null) into the folder."""
        return self._write(name, atomic.write_json, obj, indent=indent)

    def write_csv(self, name: str, rows: Iterable[Sequence[Any]], header: Sequence[str] | None = None) -> Path:
        """:func:`cameras.io.atomic.write_csv` into the folder."""
        return self._write(name, atomic.write_csv, rows, header)

    def write_npy(self, name: str, array: np.ndarray) -> Path:
        """:func:`cameras.io.atomic.write_npy` into the folder."""
        return self._write(name, atomic.write_npy, array)

    def write_image(self, name: str, image: Image.Image | np.ndarray, **params: Any) -> Path:
        """:func:`cameras.io.atomic.write_image` (PNG unless the name says otherwise) into the folder."""
        return self._write(name, atomic.write_image, image, **params)

    def write_figure(self, name: str, figure: Figure, **savefig: Any) -> Path:
        """:func:`cameras.io.atomic.write_figure` (``savefig`` options pass through) into the folder."""
        return self._write(name, atomic.write_figure, figure, **savefig)
