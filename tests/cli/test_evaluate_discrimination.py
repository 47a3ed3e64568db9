"""`cameras evaluate`'s discrimination metric (plain and contrastive maps) on a tiny random CNN, and the measured
figure on the bundled motorcycle photo with the real model (slow)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

import cameras.methods as M
import cameras.models
from cameras import data
from cameras.cli.main import main
from cameras.metrics import boxes_tensor, discrimination, load_boxes

from .test_evaluate import FAST, _photos, tiny  # noqa: F401  (tiny: the fixture)


@pytest.mark.usefixtures("tiny")
def test_discrimination_columns_match_the_api(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = _photos(tmp_path / "photos")  # a.png: classes 1 and 2; b.png: class 3 alone
    out = tmp_path / "out"
    argv = ["evaluate", "--images", str(photos), "--boxes", str(photos / "boxes.json"), "--out", str(out), *FAST]
    assert main([*argv, "--methods", "gradcam", "cameras", "--metrics", "discrimination", "--gamma", "0.5"]) == 0
    table = capsys.readouterr().out
    assert "discrimination (plain)" in table and "discrimination (contrastive)" in table and "(n=2)" in table
    with open(out / "per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert set(rows[0]) == {"image", "class", "class_name", "method", "discrimination", "discrimination_contrastive"}
    loaded = cameras.models.load("tiny")
    anns = load_boxes(photos / "boxes.json")
    prepared = loaded.preprocess(photos / "a.png")
    for r in rows:
        if r["image"] == "b.png":  # one annotated class: nothing to tell apart
            assert math.isnan(float(r["discrimination"])) and math.isnan(float(r["discrimination_contrastive"]))
            continue
        c = int(r["class"])
        other = 3 - c  # classes 1 and 2
        # the CLI's 32,40 are shorter sides of the 32 px input, aspect kept: factors 1 and 40/32
        kwargs = {"resolutions": [1.0, 1.25]} if r["method"] == "cameras" else {}
        explainer = M.get(r["method"])(loaded.model, layer="features", **kwargs)
        own_boxes = [boxes_tensor(anns["a.png"], label=c)]
        other_boxes = [boxes_tensor(anns["a.png"], label=other)]
        for column, extra in (
            ("discrimination", {}),
            ("discrimination_contrastive", {"contrast": other, "gamma": 0.5}),
        ):
            sal = prepared.to_original(explainer(prepared.tensor, c, **extra).saliency)
            assert float(r[column]) == float(discrimination(sal, own_boxes, other_boxes)[0]), (r, column)
    report = json.loads((out / "evaluate.json").read_text())
    assert report["gamma"] == 0.5
    assert report["summary"]["gradcam"]["discrimination"]["n"] == 2  # b.png's row is undefined, not a miss
    assert main([*argv, "--gamma", "nan"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cameras evaluate: error:") and "--gamma" in err and err.count("\n") == 1


def test_the_multiclass_box_set_has_two_or_more_classes_per_photo() -> None:
    """(Boxes and names are checked against the photos with the single-class set in test_evaluate.)"""
    boxes = load_boxes(Path(data.__file__).with_name("skimage_boxes_multiclass.json"))
    assert boxes and all(len({a.label for a in anns}) >= 2 for anns in boxes.values())


@pytest.mark.slow
def test_discrimination_on_the_bundled_motorcycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data.sample_path("motorcycle", tmp_path / "photos")
    boxes = Path(data.__file__).with_name("skimage_boxes_multiclass.json")
    out = tmp_path / "out"
    argv = ["evaluate", "--images", str(tmp_path / "photos"), "--boxes", str(boxes), "--out", str(out)]
    args = ["--methods", "cameras", "--metrics", "discrimination", "--resolutions", "224,324,424", "--no-progress"]
    assert main([*argv, *args]) == 0
    print(capsys.readouterr().out)
    rows = {r["class_name"]: r for r in json.loads((out / "evaluate.json").read_text())["rows"]}
    assert set(rows) == {"moped", "park bench", "carton", "mountain bike"}
    # The moped, the photo's main object, is told apart in both forms; every value is a hit or a miss.
    assert rows["moped"]["discrimination"] == 1.0 and rows["moped"]["discrimination_contrastive"] == 1.0
    assert all(r[k] in (0.0, 1.0) for r in rows.values() for k in ("discrimination", "discrimination_contrastive"))
