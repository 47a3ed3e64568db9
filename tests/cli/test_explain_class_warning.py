"""#22 §4: ``--class`` on several photos warns, one line per photo, where the class is improbable (p < 0.01 and not in
the model's top 5) — coffee explained as "tiger cat" at p = 0.000 — and says nothing where it is probable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cameras.cli.main import main
from cameras.models import LoadedModel, Preprocess

from ..engine.nets import TinyCNN
from .fakes import fake_registry

LABELS = [f"class{i}" for i in range(8)]


def _biased() -> LoadedModel:
    """8 classes; the head's bias makes class 0 certain and class 7 impossible on any photo."""
    net = TinyCNN(classes=len(LABELS))
    with torch.no_grad():
        net.head.weight.mul_(0.01)
        net.head.bias.copy_(torch.tensor([30.0, 5, 4, 3, 2, 1, 0, -30]))
    return LoadedModel("biased", net, "features", Preprocess(size=32), list(LABELS))


def _photos(tmp: Path) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 256, (36, 48, 3), dtype=np.uint8)).save(tmp / name)
        paths.append(str(tmp / name))
    return paths


def test_improbable_class_warns_once_per_photo(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_registry(monkeypatch, {"biased": _biased}, cache=True)
    photos = _photos(tmp_path)
    argv = ["explain", *photos, "--method", "gradcam", "--no-progress", "--no-report"]
    assert main([*argv, "--class", "7", "--out", str(tmp_path / "bad")]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "improbable" in line]
    assert len(lines) == 2 and all(line.startswith("cameras explain: warning: ") for line in lines), err
    assert "a.png" in lines[0] and "b.png" in lines[1]
    assert "'class7'" in lines[0] and "p = 0.000" in lines[0] and "top-1: 'class0'" in lines[0]
    sidecar = json.loads((tmp_path / "bad" / "a_1_class7.json").read_text())
    assert any("improbable" in w for w in sidecar["warnings"])
    assert main([*argv, "--class", "0", "--out", str(tmp_path / "good")]) == 0
    assert "improbable" not in capsys.readouterr().err
    # one photo: the user picked the class for it, no warning
    assert main([*argv[:2], *argv[3:], "--class", "7", "--out", str(tmp_path / "one")]) == 0
    assert "improbable" not in capsys.readouterr().err


def test_run_json_keeps_every_run_that_shared_the_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """#22 §4: explain twice into one folder — run.json describes both runs (``earlier``), and the page lists every
    file present, not only the last run's."""
    fake_registry(monkeypatch, {"biased": _biased}, cache=True)
    a, b = _photos(tmp_path)
    out = tmp_path / "out"
    assert main(["explain", a, "--method", "gradcam", "--no-progress", "--out", str(out)]) == 0
    assert main(["explain", b, "--method", "gradcam", "--no-progress", "--out", str(out)]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["argv"][1] == b and "b.png" in record["outputs"]
    assert [r["argv"][1] for r in record["earlier"]] == [a] and "a.png" in record["earlier"][0]["outputs"]
    page = (out / "report.html").read_text()
    assert "a.png" in page and "b.png" in page
    assert main(["explain", a, "--method", "gradcam", "--no-progress", "--out", str(out)]) == 0
    assert [r["argv"][1] for r in json.loads((out / "run.json").read_text())["earlier"]] == [a, b]
