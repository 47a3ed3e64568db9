"""Real processes: `cameras evaluate` killed with SIGKILL mid-run and rerun equals an uninterrupted run, and a
2-process torchrun (Gloo, CPU) run equals the 1-process run, also when resumed with another number of ranks.

The model is a small timm CNN (``timm:test_convnext``) with a random 20-class head saved as a checkpoint, loaded by
the CLI through ``--weights`` like a user's VOC classifier.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import cameras
from cameras.cli.main import main

from ..datasets.fixtures import make_voc

pytest.importorskip("timm")

OUTPUTS = ["per_image.csv", "summary.csv", "pointing_table.csv", "skipped.csv", "evaluate.json"]
NAMES = ["dog", "person", "cat", "car", "bus", "bird", "chair", "sofa"]


def _images(n: int) -> list:  # type: ignore[type-arg]
    out = []
    for k in range(n):
        objects = [(NAMES[k % len(NAMES)], (2 + k, 3, 30 + k, 40), k % 5 == 4)]
        if k % 3 == 0:
            objects.append((NAMES[(k + 3) % len(NAMES)], (35, 5 + k, 60, 45), False))
        out.append((f"{k:06d}", (48, 64) if k % 2 else (64, 48), objects))
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    from cameras import models

    base = tmp_path_factory.mktemp("runs")
    root = make_voc(base / "VOC2007", _images(12))
    ckpt = base / "voc20.pt"
    torch.manual_seed(0)
    torch.save(models.load("timm:test_convnext", None, num_classes=20).model.state_dict(), ckpt)
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([str(Path(cameras.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
    )
    args = [
        "evaluate", "--dataset", "voc", "--root", str(root), "--model", "timm:test_convnext", "--weights", str(ckpt),
        "--methods", "cameras", "gradcam", "--metrics", "pointing", "energy", "--resolutions", "160,200",
        "--shard-size", "1", "--workers", "1", "--no-progress",
    ]  # fmt: skip
    reference = base / "reference"
    done = subprocess.run(
        [sys.executable, "-m", "cameras", *args, "--out", str(reference)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return {"base": base, "args": args, "env": env, "reference": reference}


def _same_outputs(a: Path, b: Path) -> None:
    for name in OUTPUTS:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    rows = (a / "per_image.csv").read_text().splitlines()[1:]
    assert len(rows) == len(set(rows)) > 12  # no duplicates; every (photo, class, method) once


def _chunks(out: Path) -> list[str]:
    folder = out / "shards"
    return sorted(p.name for p in folder.glob("chunk-*.json")) if folder.is_dir() else []


def test_sigkill_mid_run_then_rerun_equals_an_uninterrupted_run(setup: dict) -> None:  # type: ignore[type-arg]
    out = Path(setup["base"]) / "killed"
    cmd = [sys.executable, "-m", "cameras", *setup["args"], "--out", str(out)]
    proc = subprocess.Popen(cmd, env=setup["env"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while len(_chunks(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    committed = _chunks(out)
    assert 2 <= len(committed) < 12, committed  # killed mid-run
    assert not (out / "per_image.csv").exists()
    for name in committed:  # only whole records: every shard parses
        json.loads((out / "shards" / name).read_text())
    again = subprocess.run(cmd, env=setup["env"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"resuming {out}: {len(committed)} of 12 photos done, {12 - len(committed)} to go" in again.stdout
    _same_outputs(out, Path(setup["reference"]))


def test_sigkill_then_a_changed_checkpoint_is_refused_and_the_same_content_elsewhere_resumes(
    setup: dict,  # type: ignore[type-arg]
) -> None:
    """Issue 21 §3: the run is keyed by the checkpoint's content. Overwriting ``--weights`` between a killed run and
    its resume is a configuration change that names the weights (never two models' rows merged); the same bytes
    under another name resume."""
    base = Path(setup["base"])
    mine, moved = base / "mine.pt", base / "moved" / "voc20.pt"
    original = (base / "voc20.pt").read_bytes()
    mine.write_bytes(original)
    args = [str(mine) if a == str(base / "voc20.pt") else a for a in setup["args"]]
    out = base / "swapped"
    cmd = [sys.executable, "-m", "cameras", *args, "--out", str(out)]
    proc = subprocess.Popen(cmd, env=setup["env"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while len(_chunks(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    committed = _chunks(out)
    assert 2 <= len(committed) < 12, committed

    from cameras import models

    torch.manual_seed(1)  # another model with the same architecture and head, saved over the same path
    torch.save(models.load("timm:test_convnext", None, num_classes=20).model.state_dict(), mine)
    assert mine.read_bytes() != original
    again = subprocess.run(cmd, env=setup["env"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 2, again.stderr
    assert again.stderr.count("\n") == 1 and "Traceback" not in again.stderr, again.stderr
    assert again.stderr.startswith(f"cameras evaluate: error: --out {out}: the output folder holds a run with another")
    assert "weights differs ('sha256:" in again.stderr and "--overwrite" in again.stderr
    assert _chunks(out) == committed and not (out / "per_image.csv").exists()  # nothing merged, nothing lost

    moved.parent.mkdir()
    moved.write_bytes(original)  # the first checkpoint's bytes, under another name: the same run
    cmd = [a if a != str(mine) else str(moved) for a in cmd]
    resumed = subprocess.run(cmd, env=setup["env"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {out}: {len(committed)} of 12 photos done" in resumed.stdout
    _same_outputs(out, Path(setup["reference"]))


def test_torchrun_two_gloo_ranks_equal_one_process_and_resume_with_one(setup: dict) -> None:  # type: ignore[type-arg]
    out = Path(setup["base"]) / "ranks"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "cameras"]
    done = subprocess.run(
        [*cmd, *setup["args"], "--out", str(out)], env=setup["env"], capture_output=True, text=True, timeout=400
    )
    assert done.returncode == 0, done.stderr[-3000:]
    _same_outputs(out, Path(setup["reference"]))
    run = json.loads((out / "run.json").read_text())
    assert run["world_size"] == 2 and run["status"] == "done" and run["dataset"]["items"] == 12
    # resumed with another number of ranks: drop some shards, finish in one process
    for name in _chunks(out)[5:9]:
        (out / "shards" / name).unlink()
    (out / "per_image.csv").unlink()
    assert main([*setup["args"], "--out", str(out)]) == 0  # type: ignore[list-item]
    _same_outputs(out, Path(setup["reference"]))
    assert json.loads((out / "run.json").read_text())["world_size"] == 1
