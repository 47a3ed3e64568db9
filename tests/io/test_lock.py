"""``cameras.io.lock_folder``: one run at a time in an output folder; stale locks replaced; released cleanly."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cameras.io import LOCK_FILE, FolderLockedError, OutputDir, lock_folder


def _dead_pid() -> int:
    """The PID of a process of this host that has ended (and been reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_lock_is_exclusive_names_its_holder_and_leaves_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b" / "run"
    with lock_folder(folder, command="cameras evaluate") as lock:
        holder = json.loads((folder / LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        assert holder["command"] == "cameras evaluate" and lock.path == folder / LOCK_FILE
        with pytest.raises(FolderLockedError) as err:
            lock_folder(folder, command="cameras explain")
        message = str(err.value)
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
