"""Issue 21 §7: two runs on the same ``--out``, in two real processes. The first holds the folder's lock while it
works; the second stops at once (exit 2) with one line naming the first's command, PID and host, and computes
nothing; the first finishes and leaves no lock behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

import cameras
from cameras.io import LOCK_FILE

ROOT = Path(__file__).parents[2]


def _holder(lock: Path) -> dict[str, object]:
    try:
        data = json.loads(lock.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def test_a_second_run_on_the_same_out_is_refused_naming_the_first(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    (tmp_path / "photos").mkdir()
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(tmp_path / "photos" / "a.png")
    (tmp_path / "boxes.json").write_text(json.dumps({"a.png": [{"class": 1, "box": [2, 3, 30, 35]}]}))
    out = tmp_path / "out"
    argv = ["evaluate", "--images", str(tmp_path / "photos"), "--boxes", str(tmp_path / "boxes.json")]
    argv += ["--methods", "gradcam", "--metrics", "pointing", "--workers", "0", "--resolutions", "1.0"]
    argv += ["--no-progress", "--out", str(out)]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(Path(cameras.__file__).parents[1])]),
    }
    gate, open_gate = tmp_path / "gate", tmp_path / "open"
    open_gate.touch()
    child = [sys.executable, "-m", "tests.cli.gated"]
    first = subprocess.Popen(
        [*child, str(gate), *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while _holder(out / LOCK_FILE).get("pid") != first.pid and first.poll() is None:
            assert time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.01)
        # the second run's model would not wait: were it let in, it would compute and write everything
        second = subprocess.run(
            [*child, str(open_gate), *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert second.returncode == 2, second.stderr
        assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr, second.stderr
        assert second.stderr.startswith(
            f"cameras evaluate: error: --out '{out}' is in use by another run: cameras evaluate "
            f"(PID {first.pid} on {socket.gethostname()}, since "
        ), second.stderr
        assert not (out / "per_image.csv").exists() and not (out / "shards").exists()
        assert first.poll() is None  # the holder was not disturbed
    finally:
        gate.touch()
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert (out / "per_image.csv").is_file() and not (out / LOCK_FILE).exists()
