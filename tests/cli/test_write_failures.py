"""Issue 21 §7: writes that fail. A run none of whose results could be written exits 2 (README: "2 when nothing
could be done"), and a full disk is one line that names the output folder and — for ``cameras evaluate`` — says
that rerunning the same command resumes, instead of ``unexpected OSError: [Errno 28]``."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cameras.io.atomic as atomic
from cameras.cli.main import main

from .fakes import fake_registry, tiny_model


@pytest.fixture
def photos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    fake_registry(monkeypatch, {"tiny": tiny_model})
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    boxes = {}
    for k in range(4):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / f"p{k}.png")
        boxes[f"p{k}.png"] = [{"class": k % 5, "box": [2, 3, 30, 35]}]
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    return folder


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if ": error:" in line]


def _refuse_every_write(monkeypatch: pytest.MonkeyPatch, code: int = errno.EACCES) -> None:
    def refuse(dest: Path) -> tuple[Path, int]:
        raise OSError(code, os.strerror(code), str(dest))

    monkeypatch.setattr(atomic, "_create_temporary", refuse)


@pytest.mark.parametrize(
    "argv",
    [
        ["explain", "{0}/p0.png", "{0}/p1.png", "{0}/p2.png", "--method", "gradcam", "--no-progress"],
        ["compare", "{0}/p0.png", "--methods", "gradcam,layercam"],
        ["sanity", "{0}/p0.png", "--methods", "gradcam", "--max-steps", "2", "--resolutions", "1.0", "--no-progress"],
    ],
    ids=lambda a: a[0],
)
def test_a_run_whose_writes_all_fail_exits_2(
    argv: list[str],
    photos: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _refuse_every_write(monkeypatch)
    out = tmp_path / "out"
    code = main([*(a.format(photos) for a in argv), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    errors = _errors(err)
    assert len(errors) == (3 if argv[0] == "explain" else 1), err  # one line per photo that could not be written
    assert all(f"cannot write to {out}" in e and "Permission denied" in e for e in errors), errors
    assert "unexpected" not in err and "Traceback" not in err
    assert not out.exists()


def test_a_full_disk_names_the_folder_and_the_resume(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = atomic.atomic_open
    calls: list[str] = []

    def filling_up(path: atomic.PathLike, *args: object, **kwargs: object) -> object:
        calls.append(Path(path).name)
        if len(calls) > 3:  # shards/config.json, run.json (running), the first chunk; then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, *args, **kwargs)  # type: ignore[call-overload]

    out = tmp_path / "out"
    argv = ["evaluate", "--images", str(photos), "--boxes", str(tmp_path / "boxes.json"), "--out", str(out)]
    argv += ["--methods", "gradcam", "--metrics", "pointing", "energy", "--shard-size", "1", "--workers", "0"]
    argv += ["--resolutions", "1.0", "--no-progress"]
    with monkeypatch.context() as mp:
        mp.setattr(atomic, "atomic_open", filling_up)
        code = main(argv)
    err = capsys.readouterr().err
    assert calls[:3] == ["config.json", "run.json", "chunk-000000.json"]
    assert code == 2, err
    errors = _errors(err)
    assert len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].startswith(f"cameras evaluate: error: cannot write to {out}: the disk is full"), errors[0]
    assert "rerun the same command to resume" in errors[0]
    assert "unexpected" not in err and "Errno 28" not in err
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["chunk-000000.json", "config.json"]

    assert main(argv) == 0  # space freed: the same command resumes from the committed chunk
    assert "resuming" in capsys.readouterr().out
    assert len((out / "per_image.csv").read_text().splitlines()) == 1 + 4
