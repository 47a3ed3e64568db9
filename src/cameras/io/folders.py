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
import errno
import json
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import atomic

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure
    from PIL import Image

__all__ = [
    "FULL_DISK",
    "LOCK_FILE",
    "FolderLock",
    "FolderLockedError",
    "OutputDir",
    "OutputDirError",
    "check_output_dir",
    "lock_folder",
    "slug",
    "write_failure",
]


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


def _check_links(folder: Path, option: str) -> None:
    """Refuse a folder that is, or lies under, a symbolic link to nothing (dangling, or a loop): it does not
    exist, yet it cannot be created either."""
    p = folder
    while not p.exists() and p != p.parent:
        if p.is_symlink():
            where = "is" if p == folder else f"lies under {str(p)!r},"
            raise OutputDirError(
                f"{option} {str(folder)!r} {where} a symbolic link to {os.readlink(p)!r}, which does not exist."
            )
        p = p.parent


def check_output_dir(path: atomic.PathLike, *, option: str = "--out") -> Path:
    """Check that ``path`` is, or can be created as, a writable folder; nothing is created.

    Args:
        path: the folder (``~`` is expanded).
        option: how the folder is named in messages (the CLI option).

    Returns:
        the folder as a :class:`~pathlib.Path`.

    Raises:
        OutputDirError: ``path`` is empty, an existing file, lies under a file, is (or lies under) a symbolic
            link to nothing, or neither it nor the closest existing folder above it is writable.

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
    _check_links(folder, option)
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


LOCK_FILE = ".cameras.lock"
"""The lock file a run holds in its output folder (:func:`lock_folder`)."""


class FolderLockedError(OutputDirError):
    """The output folder is in use by another run (its lock file names the holder).

    Attributes:
        holder: what the lock file says (``pid``, ``host``, ``command``, ``started``, …; ``{}`` when unreadable).
        lock: the lock file.
    """

    def __init__(self, message: str, *, holder: dict[str, Any] | None = None, lock: Path | None = None) -> None:
        super().__init__(message)
        self.holder = dict(holder or {})
        self.lock = lock


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started, in clock ticks since boot (Linux ``/proc``; ``None`` elsewhere): with the PID,
    it tells a live holder from a new process that got a dead holder's PID."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state, ppid, …; starttime is the 20th
    if len(fields) < 20 or fields[0] in ("Z", "X"):  # a zombie has ended
        return "ended"
    return fields[19]


def _holder_alive(holder: dict[str, Any]) -> bool:
    """Whether the lock's holder may still run: ``False`` only when it was on this host and its process is gone
    (no such PID, a zombie, or another process that got the PID since)."""
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return True  # another host (or a lock we cannot read): we cannot tell
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    except OSError:
        return True
    start = _process_start(pid)
    if start == "ended":
        return False
    return not (start is not None and holder.get("start") is not None and start != holder.get("start"))


def _read_holder(lock: Path) -> dict[str, Any] | None:
    """The lock file's content; ``{}`` when unreadable (a holder still writing it is given a moment); ``None`` when
    it has gone meanwhile."""
    for _ in range(20):
        try:
            text = lock.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError):
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            time.sleep(0.05)
            continue
        return data if isinstance(data, dict) else {}
    return {}


def _remove_stale(lock: Path, holder: dict[str, Any]) -> None:
    """Remove a stale lock, unless another run replaced it meanwhile (it is moved aside first, then checked)."""
    aside = lock.with_name(f"{LOCK_FILE}.stale-{secrets.token_hex(6)}")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return
    moved = _read_holder(aside)
    if moved is not None and moved.get("token") != holder.get("token"):  # a fresh lock: put it back
        with contextlib.suppress(OSError):
            os.link(aside, lock)
    with contextlib.suppress(OSError):
        os.unlink(aside)


_HELD: dict[str, tuple[int, int, FolderLock]] = {}
"""The locks this process holds: real path of the lock file → (PID, thread id, the outermost :class:`FolderLock`).
The PID tells a forked child (which inherits this table, not the lock) from its parent."""
_HELD_GUARD = threading.Lock()


def _key(lock: Path) -> str:
    return os.path.realpath(lock)


class FolderLock:
    """A held lock on an output folder (see :func:`lock_folder`); :meth:`release` (or the ``with`` block's end)
    removes it, and the folders created to hold it when they are still empty.

    A lock taken again by the thread that holds it (``cameras evaluate`` holds ``--out``, then calls
    :func:`cameras.evaluate` with it) is *nested*: its release leaves the lock to the outer one.

    Attributes:
        path: the lock file.
        holder: what it says: ``pid``, ``host``, ``command``, ``started`` (UTC), ``token``, ``start``.
        nested: whether this is a re-entry into a lock the same thread already holds.
    """

    def __init__(self, path: Path, holder: dict[str, Any], created: list[Path], *, nested: bool = False) -> None:
        self.path = path
        self.holder = holder
        self._created = created
        self.nested = nested
        self.held = True

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Remove the lock file if it is still this lock's, then the folders created for it if they are empty."""
        if not self.held:
            return
        self.held = False
        if self.nested:  # the outer lock keeps the folder
            return
        with _HELD_GUARD:
            if _HELD.get(_key(self.path), (0, 0, None))[2] is self:
                del _HELD[_key(self.path)]
        current = _read_holder(self.path)
        if current is not None and current.get("token") == self.holder["token"]:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        for folder in reversed(self._created):  # innermost first; a folder with files in it stays
            with contextlib.suppress(OSError):
                folder.rmdir()


def lock_folder(folder: atomic.PathLike, *, command: str = "cameras", option: str = "--out") -> FolderLock:
    """Take the lock of an output folder, so that two runs never write the same folder at once.

    The lock is the file ``FOLDER/.cameras.lock``, created atomically (``O_CREAT | O_EXCL``) with the holder's PID,
    host name, command, start time and a random token. A lock whose holder ran on this host and has ended (no such
    process, a zombie, or a new process that got its PID) is stale: it is replaced. The folder (and its missing
    parents) is created to hold the lock; :meth:`FolderLock.release` removes them again if the run wrote nothing.

    The lock is re-entrant within one thread of one process: taken again while held (same PID, same thread, and the
    lock file still holds the token this process wrote), it returns a nested :class:`FolderLock` whose release
    leaves the lock to the outer holder. Another thread, another process (a forked child included) is refused.

    Args:
        folder: the output folder.
        command: what holds it (shown to a second run).
        option: how the folder is named in messages.

    Returns:
        the held :class:`FolderLock` (a context manager).

    Raises:
        FolderLockedError: another run holds it (the message names its command, PID, host and start time, and
            the file to delete if that run is known to be gone).
        OSError: the folder or the lock file cannot be created.
    """
    folder = Path(folder).expanduser()
    created: list[Path] = []
    p = folder
    while not p.exists() and p != p.parent:
        created.insert(0, p)
        p = p.parent
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_FILE
    pid = os.getpid()
    nested = _reenter(lock, pid)
    if nested is not None:
        return nested
    holder = {
        "pid": pid,
        "host": socket.gethostname(),
        "command": command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "token": secrets.token_hex(8),
        "start": _process_start(pid),
    }
    for _ in range(5):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            current = _read_holder(lock)
            if current is None:  # released meanwhile
                continue
            if current and not _holder_alive(current):
                _remove_stale(lock, current)
                continue
            for q in reversed(created):
                with contextlib.suppress(OSError):
                    q.rmdir()
            raise FolderLockedError(_locked_message(folder, lock, current, option), holder=current, lock=lock) from None
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(holder) + "\n")
            f.flush()
            os.fsync(f.fileno())
        taken = FolderLock(lock, holder, created)
        with _HELD_GUARD:
            _HELD[_key(lock)] = (pid, threading.get_ident(), taken)
        return taken
    raise FolderLockedError(
        f"{option} {str(folder)!r}: cannot take its lock {str(lock)!r}: other runs keep taking it.", lock=lock
    )


def _reenter(lock: Path, pid: int) -> FolderLock | None:
    """A nested lock when this thread of this process holds ``lock`` (and its file still says so), else ``None``."""
    with _HELD_GUARD:
        entry = _HELD.get(_key(lock))
    if entry is None:
        return None
    owner_pid, thread, outer = entry
    if owner_pid != pid or thread != threading.get_ident() or not outer.held:
        return None  # a forked child, another thread (refused below: the file names this process), or released
    current = _read_holder(lock)
    if current is None or current.get("token") != outer.holder["token"]:  # removed or replaced meanwhile
        with _HELD_GUARD:
            if _HELD.get(_key(lock), (0, 0, None))[2] is outer:
                del _HELD[_key(lock)]
        return None
    return FolderLock(lock, outer.holder, [], nested=True)


def _locked_message(folder: Path, lock: Path, holder: dict[str, Any], option: str) -> str:
    if holder:
        who = (
            f"{holder.get('command') or 'a cameras run'} (PID {holder.get('pid')} on {holder.get('host')}, "
            f"since {holder.get('started')})"
        )
    else:
        who = "a run whose lock file cannot be read"
    return (
        f"{option} {str(folder)!r} is in use by another run: {who}; wait for it to end or use another {option} "
        f"(if that run is gone, delete {str(lock)!r})."
    )


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

    def lock(self, command: str = "cameras") -> FolderLock:
        """:func:`lock_folder` on this folder (created to hold the lock, removed on release if nothing was
        written)."""
        return lock_folder(self.path, command=command, option=self.option or "--out")

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


FULL_DISK = (errno.ENOSPC, errno.EDQUOT)
"""The ``errno`` values of a write that failed because the disk (or the user's quota) is full."""


def write_failure(folder: Any, err: OSError, *, resumable: bool = False) -> str:
    """The error line of a write into the output folder ``folder`` that failed with ``err``: it names the folder,
    says plainly when the disk is full, and, for a run that resumes (``cameras evaluate``), that rerunning the same
    command goes on from what was committed."""
    if err.errno in FULL_DISK:
        text = f"cannot write to {folder}: the disk is full ({err.strerror or 'no space left'}); free some space"
    else:
        text = f"cannot write to {folder}: {err}"
    if resumable:
        return f"{text}, then rerun the same command to resume: the photos already done are kept"
    return f"{text}, then rerun" if err.errno in FULL_DISK else text
