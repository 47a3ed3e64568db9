"""`--model timm:NAME` in explain, compare and evaluate, with a local checkpoint of a seeded random timm ViT."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image

import cameras
from cameras import data, models
from cameras.cli.main import main


@pytest.fixture(scope="module")
def vit_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    net = timm.create_model("test_vit").eval()  # 6 blocks, width 64, 160 px, 1000 classes
    path = tmp_path_factory.mktemp("timm") / "test_vit.pth"
    torch.save(net.state_dict(), path)
    return path


def test_explain_with_a_timm_vit_checkpoint(tmp_path: Path, vit_checkpoint: Path) -> None:
    photo = data.sample_path("chelsea", tmp_path)
    out = tmp_path / "out"
    args = ["explain", str(photo), "--model", "timm:test_vit", "--weights", str(vit_checkpoint)]
    assert main([*args, "--resolutions", "1,1.5", "--no-progress", "--out", str(out)]) == 0
    side = json.loads((out / "chelsea.json").read_text())
    assert side["model"] == "timm:test_vit" and side["layer"] == "blocks.5.norm1"
    assert side["resolutions"] == [[160, 241], [240, 362]]  # timm's 160 px data config, aspect kept
    saved = np.load(out / "chelsea.npy")
    m = models.load("timm:test_vit", weights=vit_checkpoint)
    x = m.prepare(photo)
    result = cameras.CAMERAS(m.model, resolutions=[1.0, 1.5])(x.tensor)
    assert side["class_index"] == int(result.targets)
    assert np.abs(saved - x.to_original(result.saliency)[0].numpy()).max() <= 1e-5
    assert saved.shape == data.sample_image("chelsea").shape[:2]


def test_compare_and_evaluate_take_a_timm_model(
    tmp_path: Path, vit_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = ["--weights", str(vit_checkpoint), "--resolutions", "1,1.5"]
    out = tmp_path / "compare"
    code = main(["compare", "--models", "timm:test_vit", "--methods", "cameras,gradcam,scorecam", *model,
                 "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    view = json.loads(next(out.glob("*.json")).read_text())
    assert "timm:test_vit" in json.dumps(view)
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(photos / name)
    boxes = {"a.png": [{"class": 1, "box": [5, 5, 40, 50]}], "b.png": [{"class": 3, "box": [0, 0, 80, 60]}]}
    (photos / "boxes.json").write_text(json.dumps(boxes))
    out = tmp_path / "evaluate"
    code = main(["evaluate", "--images", str(photos), "--boxes", str(photos / "boxes.json"), "--model",
                 "timm:test_vit", "--methods", "cameras", "gradcam", "--metrics", "pointing,energy", *model,
                 "--no-progress", "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    with open(out / "per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["image"], r["method"]) for r in rows) == [
        ("a.png", "cameras"), ("a.png", "gradcam"), ("b.png", "cameras"), ("b.png", "gradcam")
    ]  # fmt: skip
    assert all(float(r["energy"]) == pytest.approx(1.0) for r in rows if r["image"] == "b.png")  # the whole photo
    assert json.loads((out / "evaluate.json").read_text())["model"] == "timm:test_vit"


def test_a_bad_timm_model_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = data.sample_path("chelsea", tmp_path)
    assert main(["explain", str(photo), "--model", "timm:no_such_net", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cameras explain: error: Unknown timm model 'no_such_net'") and err.count("\n") == 1
