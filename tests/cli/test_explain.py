"""`cameras explain` end to end on real photos with the bundled model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cameras import data
from cameras.cli.main import main

pytestmark = pytest.mark.slow


def _boxes() -> dict[str, list[dict[str, object]]]:
    path = Path(data.__file__).with_name("skimage_boxes.json")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_explain_coffee_writes_files_at_photo_size_with_peak_on_the_cup(tmp_path: Path) -> None:
    photo = data.sample_path("coffee", tmp_path)
    out = tmp_path / "out"
    assert main(["explain", str(photo), "--out", str(out), "--no-progress"]) == 0  # paper schedule
    h0, w0 = data.sample_image("coffee").shape[:2]
    sal = np.load(out / "coffee.npy")
    assert sal.dtype == np.float32 and sal.shape == (h0, w0)
    assert 0.0 <= sal.min() and sal.max() == pytest.approx(1.0, abs=1e-3)
    sidecar = json.loads((out / "coffee.json").read_text())
    assert sidecar["class_index"] == 967 and sidecar["class_name"] == "espresso"
    assert sidecar["model"] == "efficientnet_lite0" and sidecar["layer"] == "head"
    assert 0.0 < sidecar["probability"] <= 1.0 and sidecar["seconds"] > 0
    assert len(sidecar["resolutions"]) == 8 and 1 <= len(sidecar["kept_scales"]) <= 8
    assert sidecar["resolutions"][0] == [224, 336]
    overlay = Image.open(out / "coffee.png")
    assert overlay.size == (w0, h0)
    y, x = np.unravel_index(int(sal.argmax()), sal.shape)
    x0, y0, x1, y1 = _boxes()["coffee.png"][0]["box"]  # type: ignore[misc]
    assert x0 <= x < x1 and y0 <= y < y1, (x, y)
    # most of the map's mass is on the cup
    inside = sal[y0:y1, x0:x1].sum() / sal.sum()
    assert inside > 0.5


def test_explain_class_by_name_top_k_and_bad_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = data.sample_path("chelsea", tmp_path)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    out = tmp_path / "out"
    fast = ["--resolutions", "1,1.5", "--no-progress", "--out", str(out)]
    code = main(["explain", str(bad), str(photo), "--class", "tiger cat", *fast])
    assert code == 1  # the broken file fails, the photo is still explained
    err = capsys.readouterr().err
    assert "broken.jpg" in err and err.count("error") == 1
    side = json.loads((out / "chelsea_1_tiger_cat.json").read_text())
    assert side["class_index"] == 282 and len(side["kept_scales"]) == 2  # a given class keeps every scale
    assert main(["explain", str(photo), "--top-k", "3", *fast]) == 0
    sidecars = [json.loads(p.read_text()) for p in out.glob("chelsea_*_*.json")]
    assert sorted(s["rank"] for s in sidecars) == [1, 1, 2, 3]  # the --class run, then ranks 1..3 of --top-k
    top = sorted((s for s in sidecars if s["class_name"] != "tiger cat" or s["rank"] != 1), key=lambda s: s["rank"])
    assert [s["probability"] for s in top] == sorted((s["probability"] for s in top), reverse=True)
    assert main(["explain", str(photo), "--class", "not a class at all", *fast]) == 2
    assert "not a class at all" in capsys.readouterr().err
    assert main(["explain", str(photo), "--precision", "bf16", *fast]) == 0
    bf16 = json.loads((out / "chelsea.json").read_text())
    assert bf16["class_index"] == 285 and bf16["precision"] == "bf16"
    assert main(["explain", str(photo), "--layer", "haed", *fast]) == 2
    assert "head" in capsys.readouterr().err
