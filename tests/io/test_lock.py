"""``cameras.io.lock_folder``: one run at a time in an output folder; stale locks replaced; released cleanly."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cameras.io import LOCK_FILE, FolderLockedError, OutputDir, lock_folder


def _dead_pid() -> int:
    """The PID of a process of this host that has ended (and been reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def _try_lock(folder: Path, command: str, errors: list[BaseException]) -> None:
    try:
        lock_folder(folder, command=command)
    except BaseException as err:  # the caller checks it
        errors.append(err)


def test_lock_is_exclusive_names_its_holder_and_leaves_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b" / "run"
    with lock_folder(folder, command="cameras evaluate") as lock:
        holder = json.loads((folder / LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        assert holder["command"] == "cameras evaluate" and lock.path == folder / LOCK_FILE
        refused: list[BaseException] = []  # another thread (this one may take it again: a nested lock)
        thread = threading.Thread(target=_try_lock, args=(folder, "cameras explain", refused))
        thread.start()
        thread.join()
        assert len(refused) == 1 and isinstance(refused[0], FolderLockedError), refused
        message = str(refused[0])
        assert f"--out '{folder}' is in use by another run: cameras evaluate (PID {os.getpid()} on" in message
        assert socket.gethostname() in message and LOCK_FILE in message
    assert not (tmp_path / "a").exists()  # the folders made for the lock are gone: nothing was written
    with OutputDir(folder).lock() as lock:
        (folder / "result.txt").write_text("x")
    assert sorted(p.name for p in folder.iterdir()) == ["result.txt"]  # a folder with results stays
    lock.release()  # twice: a no-op


def test_a_stale_lock_of_this_host_is_replaced(tmp_path: Path) -> None:
    tmp_path.joinpath(LOCK_FILE).write_text(
        json.dumps({"pid": _dead_pid(), "host": socket.gethostname(), "command": "cameras evaluate", "token": "old"})
    )
    with lock_folder(tmp_path) as lock:
        assert json.loads((tmp_path / LOCK_FILE).read_text())["token"] == lock.holder["token"] != "old"
    assert not (tmp_path / LOCK_FILE).exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (json.dumps({"pid": 1, "host": "elsewhere.example", "command": "cameras sanity"}), "PID 1 on elsewhere"),
        ("{ half a lock", "whose lock file cannot be read"),
    ],
    ids=["other host", "unreadable"],
)
def test_a_lock_that_cannot_be_checked_is_respected(tmp_path: Path, content: str, words: str) -> None:
    (tmp_path / LOCK_FILE).write_text(content)
    with pytest.raises(FolderLockedError, match=words):
        lock_folder(tmp_path)
    assert (tmp_path / LOCK_FILE).read_text() == content


def test_release_leaves_a_lock_that_is_not_its_own(tmp_path: Path) -> None:
    lock = lock_folder(tmp_path)
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "x", "token": "someone else"}))
    lock.release()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["token"] == "someone else"


def test_the_holding_thread_may_take_the_lock_again_and_only_the_outer_release_frees_it(tmp_path: Path) -> None:
    """``cameras evaluate`` holds ``--out``, then ``cameras.evaluate`` takes it again in the same thread."""
    folder = tmp_path / "run"
    outer = lock_folder(folder, command="cameras evaluate")
    token = outer.holder["token"]
    with lock_folder(folder, command="cameras.evaluate") as inner:
        assert inner.nested and not outer.nested and inner.holder["token"] == token
        with lock_folder(folder) as deeper:  # any depth
            assert deeper.nested
        assert json.loads((folder / LOCK_FILE).read_text())["token"] == token  # the inner release kept it
    assert json.loads((folder / LOCK_FILE).read_text())["token"] == token
    errors: list[BaseException] = []
    thread = threading.Thread(target=_try_lock, args=(folder, "a thread", errors))
    thread.start()
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], FolderLockedError), errors  # re-entrant per thread only
    assert errors[0].holder["pid"] == os.getpid() and errors[0].lock == folder / LOCK_FILE
    outer.release()
    assert not folder.exists()  # released for good: nothing was written
    with lock_folder(folder) as again:  # a fresh lock, not a re-entry into the released one
        assert not again.nested and again.holder["token"] != token


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_inherit_the_lock(tmp_path: Path) -> None:
    with lock_folder(tmp_path, command="parent"):
        pid = os.fork()
        if pid == 0:  # the child: its copy of the in-process table must not let it in
            try:
                lock_folder(tmp_path)
            except FolderLockedError as err:
                os._exit(0 if err.holder.get("pid") == os.getppid() else 3)
            except BaseException:
                os._exit(4)
            os._exit(5)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    assert not (tmp_path / LOCK_FILE).exists()
