"""The one atomic writer: every file the library or the CLI writes appears whole or not at all.

:func:`atomic_open` writes to a temporary file in the destination's own folder (``.NAME.XXXXXXXX.tmp``, so the
final rename never crosses file systems), flushes and ``fsync``\\ s it, then renames it over the destination with
:func:`os.replace` (atomic on POSIX and Windows) and syncs the folder. If anything fails or the process is
interrupted before the rename — an exception in the caller's code, a full disk, Ctrl-C — the temporary file is
removed and the destination keeps its previous content (or stays absent). Readers never see half a PNG, CSV or
JSON.

The helpers cover every kind of output the package writes:

============================ =================================================================================
:func:`write_bytes`          raw bytes
:func:`write_text`           text (UTF-8 by default)
:func:`write_json`           JSON, strict: NaN / ±inf become ``null``, numpy and torch scalars / arrays and
                             paths are converted (:func:`to_jsonable`)
:func:`write_csv`            CSV rows (``csv`` module, header optional); text cells that a spreadsheet would
                             run as a formula are neutralised (:func:`csv_cell`, undone by :func:`csv_text`)
:func:`write_npy`            a NumPy array as ``.npy``
:func:`write_image`          a PIL image or a uint8 array (H, W) / (H, W, 3|4), PNG unless the name says otherwise
:func:`write_figure`         a matplotlib figure (format from the suffix; ``savefig`` keyword arguments pass through)
============================ =================================================================================

Each returns the destination :class:`~pathlib.Path`. Missing parent folders are created (``mkdir=True``, the
default) at the moment of the write, so a run that fails before writing leaves no empty folder; use
:class:`cameras.io.OutputDir` to check an output folder up front.

Permissions of a new file follow the process umask (as :func:`open` would); an existing file's mode is kept.

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_json(folder / "r.json", {"score": float("nan"), "n": 3}).read_text()
    '{\\n  "score": null,\\n  "n": 3\\n}\\n'
    >>> with atomic_open(folder / "r.json", "w") as f:   # an error inside: the old file is untouched
    ...     _ = f.write("half")
    ...     raise KeyboardInterrupt
    Traceback (most recent call last):
    KeyboardInterrupt
    >>> sorted(p.name for p in folder.iterdir()), (folder / "r.json").read_text()[:1]
    (['r.json'], '{')
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import secrets
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, overload

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from PIL import Image

__all__ = [
    "PathLike",
    "atomic_open",
    "csv_cell",
    "csv_text",
    "temporary_name",
    "to_jsonable",
    "write_bytes",
    "write_csv",
    "write_figure",
    "write_image",
    "write_json",
    "write_npy",
    "write_text",
]

PathLike = str | os.PathLike[str]

_TMP_SUFFIX = ".tmp"


def temporary_name(path: PathLike) -> Path:
    """A fresh temporary name beside ``path``: ``.NAME.<16 hex>.tmp`` in the same folder (hidden on POSIX)."""
    dest = Path(path)
    return dest.with_name(f".{dest.name}.{secrets.token_hex(8)}{_TMP_SUFFIX}")


def _create_temporary(dest: Path) -> tuple[Path, int]:
    for _ in range(100):
        tmp = temporary_name(dest)
        try:
            # 0o666 & ~umask, as open() would; O_EXCL: never reuse someone else's file
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:  # pragma: no cover - 64 random bits
            continue
        return tmp, fd
    raise FileExistsError(f"Could not create a temporary file beside {dest}.")  # pragma: no cover


def _sync_folder(folder: Path) -> None:
    """fsync a folder so that a rename in it survives a crash (POSIX; a no-op where folders cannot be opened)."""
    if os.name != "posix":  # pragma: no cover - Windows
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - unusual file systems
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


@overload
def atomic_open(
    path: PathLike,
    mode: Literal["w"],
    *,
    encoding: str = ...,
    newline: str | None = ...,
    mkdir: bool = ...,
) -> contextlib.AbstractContextManager[IO[str]]: ...
@overload
def atomic_open(
    path: PathLike,
    mode: Literal["wb"] = ...,
    *,
    encoding: str = ...,
    newline: str | None = ...,
    mkdir: bool = ...,
) -> contextlib.AbstractContextManager[IO[bytes]]: ...
@contextlib.contextmanager
def atomic_open(
    path: PathLike,
    mode: Literal["w", "wb"] = "wb",
    *,
    encoding: str = "utf-8",
    newline: str | None = None,
    mkdir: bool = True,
) -> Iterator[IO[Any]]:
    """Open a file for writing that replaces ``path`` atomically when the ``with`` block ends without an error.

    Args:
        path: the destination file.
        mode: ``"wb"`` (bytes, default) or ``"w"`` (text).
        encoding: text encoding (text mode only).
        newline: as for :func:`open` (text mode only; ``""`` for the :mod:`csv` module).
        mkdir: create missing parent folders first.

    Yields:
        the open temporary file. Write to it; do not close it.

    Raises:
        ValueError: a mode other than ``"w"`` / ``"wb"``.
        IsADirectoryError: ``path`` is a folder.
        OSError: the folder cannot be created or written, the disk is full, … (the destination is unchanged).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', got {mode!r}.")
    dest = Path(path)
    if dest.is_dir():
        raise IsADirectoryError(f"Cannot write {str(dest)!r}: it is a folder.")
    folder = dest.parent
    if mkdir:
        folder.mkdir(parents=True, exist_ok=True)
    tmp, fd = _create_temporary(dest)
    try:
        with os.fdopen(fd, "wb") as raw:
            if mode == "wb":
                yield raw
            else:
                text = io.TextIOWrapper(raw, encoding=encoding, newline=newline, write_through=True)
                try:
                    yield text
                    text.flush()
                finally:
                    text.detach()  # leave ``raw`` open for the fsync below
            raw.flush()
            os.fsync(raw.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(os.stat(dest).st_mode))  # keep an existing file's mode
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_folder(folder)


def write_bytes(path: PathLike, data: bytes, *, mkdir: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_open(path, "wb", mkdir=mkdir) as f:
        f.write(data)
    return Path(path)


def write_text(path: PathLike, text: str, *, encoding: str = "utf-8", mkdir: bool = True) -> Path:
    """Write ``text`` to ``path`` atomically (newlines as given); returns the path."""
    with atomic_open(path, "w", encoding=encoding, newline="", mkdir=mkdir) as f:
        f.write(text)
    return Path(path)


def to_jsonable(value: Any) -> Any:
    """A copy of ``value`` that :func:`json.dumps` accepts with ``allow_nan=False``.

    NaN and ±inf become ``None`` (JSON ``null``); numpy / torch scalars become Python numbers, their arrays
    (nested) lists; tuples and sets become lists; paths become strings; mapping keys become strings.

    Example:
        >>> import numpy as np
        >>> to_jsonable({"a": np.float32(0.5), "b": (1, float("inf")), 2: np.arange(2)})
        {'a': 0.5, 'b': [1, None], '2': [0, 1]}
    """
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    tolist = getattr(value, "tolist", None)  # torch tensors (without importing torch here)
    if callable(tolist) and type(value).__module__.startswith("torch"):
        return to_jsonable(tolist())
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    raise TypeError(f"Cannot write a {type(value).__name__} as JSON.")


def write_json(path: PathLike, obj: Any, *, indent: int | None = 2, mkdir: bool = True) -> Path:
    """Write ``obj`` as strict JSON (see :func:`to_jsonable`; a trailing newline) atomically; returns the path."""
    text = json.dumps(to_jsonable(obj), indent=indent, allow_nan=False, ensure_ascii=False)
    return write_text(path, text + "\n", mkdir=mkdir)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection")."""

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|nan|inf|infinity)", re.IGNORECASE)


def csv_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text, never runs: OWASP's defence against CSV (formula) injection.

    Numbers (``int``, ``float``, NumPy scalars, ``None``) pass unchanged, and so does text that is a plain number
    (``"-0.5"``, ``"1e-05"``, ``"nan"``, ``"-inf"``: what our own code formats). Any other text whose first
    character, after leading single quotes, is ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets one
    more single quote in front (``=1+1.jpg`` → ``'=1+1.jpg``), so the cell cannot start a formula; counting the
    quotes already there keeps the escape reversible (:func:`csv_text`).

    Example:
        >>> [csv_cell(v) for v in ("=1+1.jpg", "@SUM(1)", "-x.jpg", "-0.5", "nan", "'=x", "cat", 3, -2.5)]
        ["'=1+1.jpg", "'@SUM(1)", "'-x.jpg", '-0.5', 'nan', "''=x", 'cat', 3, -2.5]
    """
    if value is None or isinstance(value, bool | int | float | np.number | np.bool_):
        return value
    text = value if isinstance(value, str) else str(value)
    if text.lstrip("'").startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_text(cell: str) -> str:
    """The text :func:`csv_cell` neutralised, as it was: one leading single quote removed where :func:`csv_cell`
    added it. Every reader of the package's CSV files (``cameras report``, :func:`cameras.runs.read_map_index`)
    applies it, so ``=1+1.jpg`` is shown, and found on disk, as ``=1+1.jpg``.

    Example:
        >>> [csv_text(c) for c in ("'=1+1.jpg", "''=x", "'quoted", "-0.5", "cat")]
        ['=1+1.jpg', "'=x", "'quoted", '-0.5', 'cat']
    """
    if cell.startswith("'") and cell.lstrip("'").startswith(_FORMULA_START):
        return cell[1:]
    return cell


def write_csv(
    path: PathLike, rows: Iterable[Sequence[Any]], header: Sequence[str] | None = None, *, mkdir: bool = True
) -> Path:
    """Write CSV rows (optionally after a header row) atomically with the :mod:`csv` module; returns the path.

    Every cell goes through :func:`csv_cell`: a text cell starting with ``= + - @``, a tab or a carriage return
    (a file or class name such as ``=HYPERLINK(...)``) is written with a leading ``'`` so that a spreadsheet
    shows it as text instead of running it; numbers stay numbers. Read such a file back with :func:`csv_text` on
    each text cell.
    """
    with atomic_open(path, "w", newline="", mkdir=mkdir) as f:
        writer = csv.writer(f)
        if header is not None:
            writer.writerow([csv_cell(v) for v in header])
        writer.writerows([csv_cell(v) for v in row] for row in rows)
    return Path(path)


def write_npy(path: PathLike, array: Any, *, mkdir: bool = True) -> Path:
    """Write an array with :func:`numpy.save` (no pickled objects) atomically; returns the path."""
    arr = np.asarray(array)
    with atomic_open(path, "wb", mkdir=mkdir) as f:
        np.save(f, arr, allow_pickle=False)
    return Path(path)


def _image_format(dest: Path, fmt: str | None) -> str:
    if fmt is not None:
        return fmt
    from PIL import Image

    Image.init()
    return Image.EXTENSION.get(dest.suffix.lower(), "PNG")


def write_image(
    path: PathLike, image: Image.Image | np.ndarray, *, format: str | None = None, mkdir: bool = True, **params: Any
) -> Path:
    """Write a PIL image (or a uint8 array, (H, W) or (H, W, 3|4)) atomically; returns the path.

    Args:
        path: destination; the format follows its suffix (PNG when unknown or absent).
        image: the picture.
        format: a Pillow format name, to override the suffix.
        mkdir: create missing parent folders.
        **params: passed to :meth:`PIL.Image.Image.save` (e.g. ``quality=95``).
    """
    from PIL import Image

    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    dest = Path(path)
    with atomic_open(dest, "wb", mkdir=mkdir) as f:
        pil.save(f, format=_image_format(dest, format), **params)
    return dest


def write_figure(path: PathLike, figure: Figure, *, mkdir: bool = True, **savefig: Any) -> Path:
    """Save a matplotlib figure atomically (``figure.savefig`` into the temporary file); returns the path.

    The format follows the suffix (``format=`` in ``savefig`` overrides it); other keyword arguments (``dpi``,
    ``facecolor``, ``bbox_inches`` …) pass through.
    """
    dest = Path(path)
    savefig.setdefault("format", dest.suffix.lstrip(".").lower() or "png")
    with atomic_open(dest, "wb", mkdir=mkdir) as f:
        figure.savefig(f, **savefig)
    return dest
