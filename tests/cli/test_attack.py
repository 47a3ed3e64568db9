"""``cameras attack`` on a tiny stand-in model: outputs, consistency of the JSON, bad inputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cameras import models
from cameras.cli.attack import parse_focus
from cameras.cli.main import main

from ..attacks.nets import SmallCNN


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    def load(name: str = "tiny", weights: object = None, device: object = "cpu") -> models.LoadedModel:
        net = SmallCNN(classes=5)
        net.cameras_default_layer = "features"  # type: ignore[assignment]
        prep = models.Preprocess(size=24, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
        return models.LoadedModel("tiny", net, "features", prep, [f"class{i}" for i in range(5)])

    monkeypatch.setattr(models, "load", load)


def _photo(path: Path) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(path)
    return path


def _args(out: Path, *extra: str) -> list[str]:
    return ["attack", "--steps", "3", "--search-steps", "2", "--out", str(out), *extra]  # extra may override


def test_parse_focus() -> None:
    assert parse_focus(" CAMERAS, gradcam ,random") == ["cameras", "gradcam", "random"]
    with pytest.raises(ValueError, match="empty"):
        parse_focus(" , ")
    with pytest.raises(ValueError, match="twice"):
        parse_focus("full,full")


def test_attack_writes_table_json_and_figures(tiny: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = _photo(tmp_path / "noise.png")
    out = tmp_path / "out"
    code = main(_args(out, "chelsea", str(photo), "--focus", "cameras,random,full", "--area", "0.2"))
    assert code == 0
    report = json.loads((out / "attack.json").read_text())
    records = report["records"]
    assert [(r["image"], r["source"]) for r in records] == [
        (n, s) for n in ("chelsea", "noise") for s in ("cameras", "random", "full")
    ]
    # 24 px short side: chelsea (300×451) → 24×36, the 30×40 photo → 24×32
    assert {r["image"]: r["free_pixels"] for r in records if r["source"] == "full"} == {
        "chelsea": 24 * 36,
        "noise": 24 * 32,
    }
    assert all(r["free_pixels"] == round(0.2 * (24 * 36 if r["image"] == "chelsea" else 24 * 32))
               for r in records if r["source"] != "full")  # fmt: skip
    for r in records:
        assert r["l0"] <= r["free_pixels"]
        if r["fooled"]:
            assert r["l2"] <= r["eps"] and r["adversarial_class"] != r["label"]
            assert r["adversarial_name"] == f"class{r['adversarial_class']}"
    summary = {row["source"]: row for row in report["summary"]}
    for source, row in summary.items():
        fooled = [r for r in records if r["source"] == source and r["fooled"]]
        assert row["fooled"] == len(fooled) and row["images"] == 2
    assert report["settings"]["model"] == "tiny" and report["settings"]["area"] == 0.2
    assert report["settings"]["bounds"] == [[-2.0] * 3, [2.0] * 3]
    assert sorted(report["figures"]) == ["chelsea_attack.png", "noise_attack.png"]
    assert (out / "chelsea_attack.png").stat().st_size > 1000
    assert "| source | fooling rate |" in (out / "attack.md").read_text()
    assert "| chelsea | cameras |" in capsys.readouterr().out
    record = json.loads((out / "run.json").read_text())  # the figures are listed too
    assert sorted(record["outputs"]) == sorted(
        p.name for p in out.iterdir() if p.name not in ("run.json", "report.html", "report_files")
    )


def test_bad_inputs_are_reported_and_others_processed(
    tiny: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = _args(out, "coffee", str(tmp_path / "missing.jpg"), "--focus", "nosuchmethod,full", "--no-figures")
    code = main([*argv, "--no-progress"])  # every stderr line must be an error line: no bars
    assert code == 1
    err = capsys.readouterr().err
    assert "missing.jpg" in err and "nosuchmethod" in err
    assert all(line.startswith("cameras attack: error:") for line in err.strip().splitlines())
    records = json.loads((out / "attack.json").read_text())["records"]
    assert [(r["image"], r["source"]) for r in records] == [("coffee", "full")]
    assert not list(out.glob("*.png"))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--focus", ","], "empty"),
        (["--area", "0"], "--area"),
        (["--area", "1.5"], "--area"),
        (["--steps", "0"], "--steps"),
        (["--focus", "nosuchmethod"], "no usable focus"),
    ],
)
def test_fatal_errors_exit_2(
    tiny: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(_args(tmp_path / "out", "chelsea", *extra)) == 2
    assert message in capsys.readouterr().err


def test_unreadable_everything_exits_2(tiny: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_args(tmp_path / "out", str(tmp_path / "nope.png"))) == 2
    err = capsys.readouterr().err
    assert "nope.png: no such file" in err and err.count("\n") == 1


def _penalty(out: Path, *extra: str) -> list[str]:
    return ["attack", "--objective", "penalty", "--steps", "3", "--betas", "0.5,5", "--beta", "5", "--out", str(out),
            *extra]  # fmt: skip


def test_penalty_writes_table_csv_json_and_figures(
    tiny: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = _photo(tmp_path / "noise.png")
    out = tmp_path / "out"
    code = main(_penalty(out, "chelsea", str(photo), "--eps", "16", "--step-size", "4", "--confidence", "0.3"))
    assert code == 0
    report = json.loads((out / "penalty.json").read_text())
    sources = ["cameras", "gradcam", "shuffled", "constant", "none"]
    assert [row["source"] for row in report["summary"]] == sources
    assert all(
        list(row) == ["source", "fooled_rate", "mean_target_probability", "mean_l2", "mean_linf",
                      "l2_reduction_percent", "matched_l2_reduction_percent", "matched_n"]
        for row in report["summary"]
    )  # fmt: skip
    records = report["records"]
    assert [(r["image"], r["source"]) for r in records] == [(n, s) for n in ("chelsea", "noise") for s in sources]
    # pixel units: the L∞ budget of 16/255 holds per channel in pixels
    assert all(r["linf"] <= 16 + 1e-3 for r in records)
    assert all(r["beta"] == (0.0 if r["source"] == "none" else 5.0) for r in records)
    assert all(r["target_name"] == f"class{r['target']}" for r in records)
    assert report["settings"]["betas"] == [0.5, 5.0] and report["settings"]["eps_pixels"] == 16
    assert len(report["runs"]) == 2 * (4 * 2 + 1)
    assert sorted(report["figures"]) == ["chelsea_penalty.png", "noise_penalty.png", "penalty_beta.png"]
    for name in report["figures"]:
        assert (out / name).stat().st_size > 1000
    with open(out / "penalty.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10 and rows[0]["source"] == "cameras"
    with open(out / "penalty_summary.csv") as f:
        assert [r["source"] for r in csv.DictReader(f)] == sources
    printed = capsys.readouterr().out
    assert "| chelsea | constant |" in printed and "matched L2 reduction" in printed
    record = json.loads((out / "run.json").read_text())
    assert sorted(record["outputs"]) == sorted(
        p.name for p in out.iterdir() if p.name not in ("run.json", "report.html", "report_files")
    )
