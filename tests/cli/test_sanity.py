"""`cameras sanity` on a tiny random CNN (fast) and on the real bundled model (slow, few blocks)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

import cameras.models
from cameras import data
from cameras.cli.main import main
from cameras.models import LoadedModel, Preprocess

LABELS = [f"class{i}" for i in range(5)]


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.features = nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU())
        self.fc = nn.Linear(8, len(LABELS))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(self.stem(x)).mean(dim=(2, 3)))


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_load(name: str = "tiny", weights: object = "DEFAULT", device: object = "cpu") -> LoadedModel:
        model = Tiny().eval()
        return LoadedModel(name="tiny", model=model, layer="features", preprocess=Preprocess(size=32), labels=LABELS)

    monkeypatch.setattr(cameras.models, "load", fake_load)


def _photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (36, 48, 3), dtype=np.uint8)).save(path)
    return path


def test_sanity_writes_plot_strip_and_json(tiny: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["sanity", str(_photo(tmp_path)), "--out", str(out), "--resolutions", "32,40", "--no-progress"])
    assert code == 0
    report = json.loads((out / "sanity.json").read_text())
    assert report["steps"] == ["original", "fc", "features", "stem"]
    assert report["variant"] == "cascading" and report["bn_stats"] == "recalibrate"
    assert report["class_name"] == LABELS[report["class_index"]]
    curve = report["methods"]["cameras"]["ssim"]["mean"]
    assert len(curve) == 4 and curve[0] == pytest.approx(1.0)
    for name in ("sanity_curves.png", "sanity_strip.png"):
        assert (out / name).stat().st_size > 0
    stdout = capsys.readouterr().out
    assert "cameras:ssim" in stdout and "original" in stdout


def test_sanity_options_and_bad_inputs(tiny: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = str(_photo(tmp_path))
    out = ["--out", str(tmp_path / "out"), "--resolutions", "32", "--no-progress"]
    code = main(["sanity", photo, *out, "--variant", "independent", "--blocks", "features,stem", "--class", "2"])
    assert code == 0
    report = json.loads((tmp_path / "out" / "sanity.json").read_text())
    assert report["steps"] == ["original", "features", "stem"] and report["targets"] == [2]
    assert main(["sanity", photo, *out, "--max-steps", "1"]) == 0
    assert json.loads((tmp_path / "out" / "sanity.json").read_text())["steps"] == ["original", "fc"]
    capsys.readouterr()
    assert main(["sanity", str(tmp_path / "none.png"), *out]) == 2
    assert "none.png" in capsys.readouterr().err
    assert main(["sanity", photo, *out, "--blocks", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["sanity", photo, *out, "--methods", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.slow
def test_sanity_real_model_cameras(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = data.sample_path("chelsea", tmp_path)
    out = tmp_path / "out"
    args = ["--max-steps", "3", "--resolutions", "224,324", "--out", str(out), "--no-progress"]
    assert main(["sanity", str(photo), *args]) == 0
    print(capsys.readouterr().out)
    report = json.loads((out / "sanity.json").read_text())
    assert report["steps"] == ["original", "classifier", "head", "blocks.15"]
    cam = report["methods"]["cameras"]
    # CAMERAS depends on the learned weights: once the classifier and head are random the map has changed.
    assert cam["spearman_abs"]["mean"][-1] < 0.9
    assert cam["ssim"]["mean"][-1] < 0.9


def test_adversarial_test_writes_plot_and_json(tiny: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["sanity", str(_photo(tmp_path)), "--test", "adversarial", "--methods", "gradcam,gradient",
                 "--patch", "4", "--eps", "8", "--attack-steps", "3", "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 0
    report = json.loads((out / "adversarial.json").read_text())
    assert report["test"] == "adversarial" and "reconstruction" in report["definition"]
    assert set(report["results"]) == {"trained", "randomized"}
    for variant in ("trained", "randomized"):
        assert set(report["results"][variant]) == {"gradcam", "gradient"}
        for r in report["results"][variant].values():
            assert r["patch"] == 4 and r["grid"] == [8, 11]  # the 36×48 photo → 32×43 input
            assert len(r["spearman"]) == 1 and (r["spearman"][0] is None or -1 <= r["spearman"][0] <= 1)
            assert (r["top_overlap"][0] is None) == (r["spearman"][0] is None)
            assert r["top_overlap"][0] is None or 0 <= r["top_overlap"][0] <= 1
    assert report["class_name"] == LABELS[report["class_index"]]
    assert (out / "adversarial.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "trained:spearman" in printed and "randomized:top10" in printed
