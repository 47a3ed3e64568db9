"""`cameras explain --against`: contrastive maps from the command line, on a tiny random 1000-class CNN (fast)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cameras.methods as M
from cameras import models
from cameras.cli.main import main
from cameras.models import LoadedModel, Preprocess

from ..engine.nets import TinyCNN


def _tiny() -> LoadedModel:
    return LoadedModel("tiny", TinyCNN(classes=1000, seed=0), "features", Preprocess(size=32), models.imagenet_labels())


@pytest.fixture
def photo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(models, "load", lambda name, weights="DEFAULT", device="cpu": _tiny())
    rng = np.random.default_rng(0)
    path = tmp_path / "noise.png"
    Image.fromarray(rng.integers(0, 256, size=(40, 60, 3), dtype=np.uint8)).save(path)
    return path


def _api(path: Path, target: int | None, **contrast: object) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    loaded = _tiny()
    prepared = loaded.preprocess(path)
    out = M.GradCAM(loaded.model, layer="features")(prepared.tensor, target, **contrast)  # type: ignore[arg-type]
    return prepared.to_original(out.saliency).numpy(), out.targets, out.contrast


def test_against_writes_the_contrastive_map(photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    argv = ["explain", str(photo), "--method", "gradcam", "--out", str(out), "--no-progress"]
    assert main([*argv, "--class", "tiger cat", "--against", "Egyptian cat", "--gamma", "0.5"]) == 0
    stem = "noise_1_tiger_cat_vs_egyptian_cat"
    sidecar = json.loads((out / f"{stem}.json").read_text())
    assert sidecar["class_index"] == 282 and sidecar["gamma"] == 0.5
    assert sidecar["against"] == [{"class_index": 285, "class_name": "Egyptian cat"}]
    ref, _, _ = _api(photo, 282, contrast=285, gamma=0.5)
    assert np.allclose(np.load(out / f"{stem}.npy"), ref[0], atol=1e-6)
    plain, _, _ = _api(photo, 282)
    assert not np.allclose(ref, plain, atol=1e-3)  # the contrast changes the map
    # two rivals: their mean logit
    assert main([*argv, "--class", "281", "--against", "282", "--against", "285"]) == 0
    ref, _, _ = _api(photo, 281, contrast=torch.tensor([[282, 285]]))
    assert np.allclose(np.load(out / "noise_1_tabby_vs_tiger_cat_egyptian_cat.npy"), ref[0], atol=1e-6)
    # auto with the top-2: each explained against its most probable other class
    assert main([*argv, "--top-k", "2", "--against", "auto"]) == 0
    ref, targets, rivals = _api(photo, None, top_k=2, contrast="auto")
    names = models.imagenet_labels()
    first = f"noise_1_{names[int(targets[0, 0])]}_vs_{names[int(rivals[0, 0, 0])]}".replace(" ", "_").lower()
    assert json.loads((out / f"{first}.json").read_text())["against"][0]["class_index"] == int(targets[0, 1])
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--class", "tiger cat", "--against", "tiger cat"], "--against class 282 is also a --class"),
        (["--class", "tiger cat", "--against", "no such animal"], "--against:"),
        (["--class", "3", "--against", "3000"], "out of range"),
        (["--against", "3", "--gamma", "nan"], "argument --gamma: must be a finite number"),
        (["--gamma", "0.5"], "give --against as well"),
        (["--against", "3", "--contrast-k", "2"], "--contrast-k applies to --against auto"),
        (["--against", "auto", "--against", "3"], "--against auto stands alone"),
        (["--against", "auto", "--contrast-k", "0"], "argument --contrast-k: must be an integer between 1 and"),
    ],
)
def test_bad_contrast_options_are_one_error_line(
    photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    code = main(["explain", str(photo), "--method", "gradcam", "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert code in (1, 2)
    assert err.startswith("cameras explain: error:") and message in err and err.count("\n") == 1, err
