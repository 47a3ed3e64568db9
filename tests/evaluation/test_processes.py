"""Real processes calling `cameras.evaluate` (tests/evaluation/procs.py): a script killed with SIGKILL between shards
and resumed through the API equals an uninterrupted run; the same call under torchrun with 2 Gloo ranks equals one
process, on disk (`out=`) and in memory (rank 0 gets every row, rank 1 its own)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cameras
from cameras.evaluation import EvaluationError, EvaluationLockedError
from cameras.io import LOCK_FILE, FolderLockedError

from ..datasets.fixtures import make_voc
from . import procs

REPO = Path(__file__).resolve().parents[2]
OUTPUTS = ["per_image.csv", "summary.csv", "pointing_table.csv", "skipped.csv", "evaluate.json"]


def _env() -> dict[str, str]:
    src = str(Path(cameras.__file__).resolve().parents[1])
    path = os.pathsep.join([str(REPO), src, os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path)


def _chunks(out: Path) -> list[str]:
    folder = out / "shards"
    return sorted(p.name for p in folder.glob("chunk-*.json")) if folder.is_dir() else []


def _same_files(a: Path, b: Path) -> None:
    for name in OUTPUTS:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.slow
def test_sigkill_then_resume_through_the_api_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    root = make_voc(tmp_path / "VOC2007")
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "tests.evaluation.procs", str(root), str(out), "--pause", "0.4"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while len(_chunks(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    committed = _chunks(out)
    assert 2 <= len(committed) < 6, committed  # killed mid-run
    assert not (out / "per_image.csv").exists()
    said: list[tuple[str, str]] = []
    loaded = procs.tiny()  # the same seeded weights as the killed process's
    resumed = cameras.evaluate(
        loaded,
        ("voc", root),
        ["gradcam", procs.SlowGradCAM(loaded.model, 0.0)],
        ["pointing", "energy"],
        resolutions=[32, 40],
        out=out,
        shard_size=1,
        workers=0,
        progress=False,
        log=lambda *a: said.append(a),
    )
    resuming = ("info", f"cameras evaluate: resuming {out}: {len(committed)} of 6 photos done, "
                        f"{6 - len(committed)} to go")  # fmt: skip
    assert resuming in said and not [s for s in said if s[0] == "error"], said  # after the line naming the metrics
    reference = procs.run(root, tmp_path / "reference")
    assert procs.records(resumed) == procs.records(reference) and len(reference.rows) == 14
    _same_files(out, tmp_path / "reference")


@pytest.mark.slow
def test_torchrun_two_gloo_ranks_through_the_api_equal_one_process(tmp_path: Path) -> None:
    root = make_voc(tmp_path / "VOC2007")
    out = tmp_path / "ranks"
    memory = tmp_path / "memory.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += ["-m", "tests.evaluation.procs", str(root), str(out), "--memory", str(memory)]
    done = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    reference = procs.run(root, tmp_path / "reference")
    _same_files(out, tmp_path / "reference")
    run = json.loads((out / "run.json").read_text())
    assert run["world_size"] == 2 and run["status"] == "done"
    rank0 = json.loads((tmp_path / "memory-rank0.json").read_text())
    rank1 = json.loads((tmp_path / "memory-rank1.json").read_text())
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["rows"] == procs.records(reference)  # rank 0: every rank's rows, in the data set's order
    assert rank0["on_disk"] == len(reference.rows)
    assert 0 < len(rank1["rows"]) < len(rank0["rows"])  # rank 1: its own chunks only
    assert all(r in rank0["rows"] for r in rank1["rows"])


@pytest.mark.slow
def test_a_second_process_on_a_held_out_is_refused_naming_the_holder(tmp_path: Path) -> None:
    """Issue 21 §7 from Python: two notebooks on one folder. The first call holds ``out``'s lock while it runs (its
    explainer waits at a gate); this process's call on the same folder raises at once, naming the first, and
    computes nothing; the first then finishes and leaves no lock behind."""
    root = make_voc(tmp_path / "VOC2007")
    out, gate = tmp_path / "run", tmp_path / "gate"
    cmd = [sys.executable, "-m", "tests.evaluation.procs", str(root), str(out), "--gate", str(gate)]
    first = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while first.poll() is None and time.monotonic() < deadline:
            try:
                if json.loads((out / LOCK_FILE).read_text()).get("pid") == first.pid:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.01)
        assert first.poll() is None, first.communicate()[1].decode()[-2000:]
        with pytest.raises(EvaluationLockedError) as err:
            procs.run(root, out)  # were it let in, it would compute and write everything (its gate is open)
        assert isinstance(err.value, EvaluationError) and isinstance(err.value, FolderLockedError)
        assert err.value.holder["pid"] == first.pid and err.value.lock == out / LOCK_FILE
        assert str(err.value).startswith(
            f"--out '{out}' is in use by another run: cameras.evaluate (PID {first.pid} on {socket.gethostname()}, "
        ), str(err.value)
        assert "\n" not in str(err.value)
        assert not (out / "per_image.csv").exists() and not _chunks(out)  # nothing computed meanwhile
        assert first.poll() is None  # the holder was not disturbed
    finally:
        gate.touch()
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr.decode()[-2000:]
    assert (out / "per_image.csv").is_file() and not (out / LOCK_FILE).exists()
