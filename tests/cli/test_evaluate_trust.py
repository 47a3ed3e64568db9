"""`cameras evaluate --dataset …` on hostile annotation files, in-process on tiny random CNNs: a name leaving the data
set is skipped and never opened, a NaN box is skipped while every valid photo is scored, a changed annotation file is
a configuration change for resume, duplicates and a bad ``--synsets`` cost one error line."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

import cameras.runs.loader as loader_mod
from cameras.cli.main import main

from ..datasets.fixtures import make_coco, make_imagenet, make_voc, photo, voc_xml
from .test_evaluate_datasets import FAST, tiny  # noqa: F401  (the fixture)

GRADCAM = ["--methods", "gradcam", "--metrics", "pointing", "energy"]


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every path the run's photo loader opens."""
    seen: list[Path] = []
    real = loader_mod.load_image

    def spy(path: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(loader_mod, "load_image", spy)
    return seen


@pytest.mark.usefixtures("tiny")
def test_names_outside_the_data_set_are_skipped_and_never_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], opened: list[Path]
) -> None:
    outside = tmp_path / "outside"
    photo(outside / "secret.jpg", (40, 40), 7)  # a real photo: read, it would be scored
    (outside / "secret.xml").write_text(voc_xml([("dog", (1, 1, 30, 30), False)], "secret.jpg"))
    root = make_voc(tmp_path / "VOC2007")
    listing = root / "ImageSets" / "Main" / "test.txt"
    listing.write_text(listing.read_text() + "../../outside/secret\n")
    out = tmp_path / "out"
    argv = ["evaluate", "--dataset", "voc", "--root", str(root), "--model", "tiny20", "--out", str(out)]
    assert main([*argv, *GRADCAM, *FAST]) == 1
    err = capsys.readouterr().err
    assert "cameras evaluate: error: ../../outside/secret.jpg: outside the data set" in err
    skipped = _csv(out / "skipped.csv")
    assert [r["reason"].split(" (")[0] for r in skipped if r["image"] == "../../outside/secret.jpg"] == [
        "../../outside/secret.jpg: outside the data set"
    ]
    rows = _csv(out / "per_image.csv")
    assert rows and not any("secret" in r["image"] for r in rows)
    assert opened and all((root / "JPEGImages").resolve() in p.parents for p in opened)

    coco = make_coco(tmp_path / "coco")
    ann = coco.root / "annotations" / "instances_val2014.json"
    data = json.loads(ann.read_text())
    data["images"][0]["file_name"] = str(outside / "secret.jpg")  # absolute
    data["images"][1]["file_name"] = "../../outside/secret.jpg"
    ann.write_text(json.dumps(data))
    opened.clear()
    out = tmp_path / "coco_out"
    argv = ["evaluate", "--dataset", "coco", "--root", str(coco.root), "--model", "tiny80", "--out", str(out)]
    assert main([*argv, *GRADCAM, *FAST]) == 1
    reasons = {r["image"]: r["reason"] for r in _csv(out / "skipped.csv")}
    assert reasons[str(outside / "secret.jpg")].startswith(f"{outside / 'secret.jpg'}: outside the data set")
    assert reasons["../../outside/secret.jpg"].startswith("../../outside/secret.jpg: outside the data set")
    assert {r["image"] for r in _csv(out / "per_image.csv")} == {"COCO_val2014_000000000013.jpg"}
    assert [p.name for p in opened] == ["COCO_val2014_000000000013.jpg"]


@pytest.mark.usefixtures("tiny")
def test_a_nan_box_is_skipped_and_every_valid_photo_scored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    coco = make_coco(tmp_path / "coco")
    argv = ["evaluate", "--dataset", "coco", "--root", str(coco.root), "--model", "tiny80", *GRADCAM, *FAST]
    assert main([*argv, "--out", str(tmp_path / "clean")]) == 0
    ann = coco.root / "annotations" / "instances_val2014.json"
    data = json.loads(ann.read_text())
    for k, bbox in enumerate([["nan", "nan", 10, 10], [5, 5, -3, 4]]):
        data["annotations"].append(
            {"id": 50 + k, "image_id": 42, "category_id": coco.category_ids[0], "bbox": bbox, "iscrowd": 0}
        )
    ann.write_text(json.dumps(data))
    capsys.readouterr()
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)]) == 1  # 1: something was skipped
    err = capsys.readouterr().err
    assert "unexpected" not in err
    assert (out / "per_image.csv").read_text() == (tmp_path / "clean" / "per_image.csv").read_text()
    assert _csv(out / "skipped.csv") == [
        {
            "image": "COCO_val2014_000000000042.jpg",
            "reason": 'COCO_val2014_000000000042.jpg: annotation 5 (id 50): bbox ["nan", "nan", 10, 10] is not four '
            "numbers [x, y, width, height], skipped",
        },
        {
            "image": "COCO_val2014_000000000042.jpg",
            "reason": "COCO_val2014_000000000042.jpg: annotation 6 (id 51): bbox [5, 5, -3, 4] has no area (width and "
            "height must be positive), skipped",
        },
    ]


@pytest.mark.usefixtures("tiny")
def test_a_changed_annotation_file_is_a_configuration_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    coco = make_coco(tmp_path / "coco")
    out = tmp_path / "out"
    argv = ["evaluate", "--dataset", "coco", "--root", str(coco.root), "--model", "tiny80", "--out", str(out)]
    assert main([*argv, *GRADCAM, *FAST]) == 0
    first = (out / "per_image.csv").read_bytes()
    assert main([*argv, *GRADCAM, *FAST]) == 0  # unchanged: resumes, nothing to redo
    assert (out / "per_image.csv").read_bytes() == first
    ann = coco.root / "annotations" / "instances_val2014.json"
    ann.write_text(ann.read_text().replace(f'"{coco.names[5]}"', '"renamed"'))  # same boxes, another class name
    capsys.readouterr()
    assert main([*argv, *GRADCAM, *FAST]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"cameras evaluate: error: --out {out}")
    assert "annotations differs" in err and "--overwrite" in err
    assert (out / "per_image.csv").read_bytes() == first
    assert main([*argv, *GRADCAM, *FAST, "--overwrite"]) == 0
    assert "renamed" in {r["class_name"] for r in _csv(out / "per_image.csv")}


@pytest.mark.usefixtures("tiny")
def test_duplicates_and_bad_synsets_cost_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    coco = make_coco(tmp_path / "coco")
    ann = coco.root / "annotations" / "instances_val2014.json"
    data = json.loads(ann.read_text())
    data["categories"].append({"id": coco.category_ids[2], "name": "twin"})
    ann.write_text(json.dumps(data))
    argv = ["evaluate", "--dataset", "coco", "--root", str(coco.root), "--model", "tiny80", *FAST]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"category id {coco.category_ids[2]} is listed twice" in err and "instances_val2014.json" in err

    root = make_voc(tmp_path / "VOC2007")
    listing = root / "ImageSets" / "Main" / "test.txt"
    listing.write_text(listing.read_text() * 2)
    argv = ["evaluate", "--dataset", "voc", "--root", str(root), "--model", "tiny20", *FAST]
    assert main([*argv, "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "image id '000001' is listed twice (first on line 1)" in err

    imagenet = make_imagenet(tmp_path / "imagenet")
    synsets = tmp_path / "synsets.json"
    synsets.write_text(json.dumps({"n01440764": "tench"}))
    argv = ["evaluate", "--dataset", "imagenet", "--root", str(imagenet), "--model", "tiny1000", *FAST]
    assert main([*argv, "--synsets", str(synsets), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"cameras evaluate: error: --synsets {synsets}: line 1: ") and "not a synset id" in err
