"""``run.json``: every command that writes files records what it ran and what it wrote (cameras.io.runinfo)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from PIL import Image

from cameras import __version__
from cameras.cli.main import main
from cameras.io import RUN_FILE, OutputDir, RunRecordError, read_run_record, run_config, write_run_record

from ..cli.fakes import Registry, fake_registry, tiny_model


@pytest.fixture
def reg(monkeypatch: pytest.MonkeyPatch) -> Registry:
    return fake_registry(monkeypatch, {"tiny": tiny_model})


def _photo(tmp: Path, name: str = "a.png") -> Path:
    path = tmp / name
    Image.new("RGB", (40, 32), (120, 30, 200)).save(path)
    return path


def test_explain_writes_a_run_record_listing_its_outputs(tmp_path: Path, reg: Registry) -> None:
    out = tmp_path / "out"
    argv = ["explain", str(_photo(tmp_path)), "--model", "tiny", "--resolutions", "1,1.5", "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    record = json.loads((out / RUN_FILE).read_text())
    assert record["schema"] == 1 and record["command"] == "explain" and record["status"] == "done"
    assert record["exit_code"] == 0 and record["argv"][0] == "explain"
    assert record["config"]["model"] == "tiny" and "out" not in record["config"]
    assert record["versions"]["cameras"] == __version__
    assert RUN_FILE not in record["outputs"]
    report = ("report.html", "report_files")  # the page is written after run.json, from it
    assert sorted(record["outputs"]) == sorted(p.name for p in out.iterdir() if p.name not in (RUN_FILE, *report))
    assert record["seconds"] >= 0 and record["finished"] >= record["started"]


def test_no_record_and_no_folder_when_nothing_was_written(tmp_path: Path, reg: Registry) -> None:
    out = tmp_path / "out"
    assert main(["explain", str(tmp_path / "missing.png"), "--model", "tiny", "--out", str(out)]) != 0
    assert not out.exists()


def test_compare_records_its_figure(tmp_path: Path, reg: Registry) -> None:
    out = tmp_path / "cmp"
    argv = ["compare", str(_photo(tmp_path)), "--model", "tiny", "--methods", "gradcam,cameras"]
    assert main([*argv, "--resolutions", "1,1.5", "--out", str(out)]) == 0
    record = read_run_record(out)
    assert record is not None and record["command"] == "compare"
    assert len(record["outputs"]) == 2 and all((out / name).is_file() for name in record["outputs"])


def test_round_trip_extra_fields_and_errors(tmp_path: Path) -> None:
    out = OutputDir(tmp_path / "r")
    args = argparse.Namespace(
        command="evaluate", out=out, func=print, limit=3, root=tmp_path, scales=(1.0, float("inf"))
    )
    assert run_config(args) == {"limit": 3, "root": str(tmp_path), "scales": [1.0, None]}
    write_run_record(out, args, status="running", extra={"resume_key": "abc"})
    record = read_run_record(out.path)
    assert record is not None and record["status"] == "running" and record["finished"] is None
    assert record["resume_key"] == "abc" and out.written == []
    with pytest.raises(ValueError, match="standard field"):
        write_run_record(out, args, status="done", extra={"config": {}})
    assert read_run_record(tmp_path) is None
    (tmp_path / RUN_FILE).write_text("{not json")
    with pytest.raises(RunRecordError, match=r"run\.json"):
        read_run_record(tmp_path)
    (tmp_path / RUN_FILE).write_text("[1, 2]")
    with pytest.raises(RunRecordError, match="command"):
        read_run_record(tmp_path)
