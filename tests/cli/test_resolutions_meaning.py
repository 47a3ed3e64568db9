"""One meaning for ``resolutions``: the same spelling runs the same scales (and maps) in Python and on the CLI.

A non-square photo goes through ``cameras explain --resolutions`` and through ``cameras.CAMERAS(...,
resolutions=...)`` on the model input the CLI builds; the sizes run (the JSON sidecar / ``Result.resolutions``)
must be the hand-computed shorter-side sizes with the aspect kept, and the maps must be equal. ``--square`` and
``square=True`` must agree as well, and differ from the aspect-keeping run (so the comparison can fail).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cameras
from cameras.cli.main import main
from cameras.engine import schedule

from .fakes import fake_registry, tiny_model

# a 40×64 photo; the tiny model's input keeps the aspect with a 32 px shorter side: 32×51 (64·32/40 = 51.2)
PHOTO_HW = (40, 64)
INPUT_HW = (32, 51)
# shorter sides 32 and 48 of the 32×51 input, the longer side round(51·48/32 = 76.5) = 76 (Python rounds to even)
ASPECT_KEPT = [[32, 51], [48, 76]]
SQUARES = [[32, 32], [48, 48]]


def _photo(tmp_path: Path) -> Path:
    path = tmp_path / "wide.png"
    rgb = np.random.default_rng(3).integers(0, 256, (*PHOTO_HW, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def _cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *extra: str) -> tuple[dict[str, object], np.ndarray]:
    fake_registry(monkeypatch, {"tiny": tiny_model})
    out = tmp_path / ("out" + "".join(extra).replace("-", "_"))
    code = main(
        ["explain", str(_photo(tmp_path)), "--resolutions", "32,48", "--out", str(out), "--no-progress", *extra]
    )
    assert code == 0
    return json.loads((out / "wide.json").read_text()), np.load(out / "wide.npy")


def _python(tmp_path: Path, square: bool) -> tuple[cameras.Result, np.ndarray]:
    loaded = tiny_model()
    rgb = np.asarray(Image.open(_photo(tmp_path)).convert("RGB"))
    prepared = loaded.preprocess(rgb, square=square or None)
    explainer = cameras.CAMERAS(loaded.model, layer=loaded.layer, resolutions=[32, 48], square=square)
    result = explainer(prepared.tensor)
    return result, prepared.to_original(result.saliency[0:1])[0].numpy()


def test_same_resolutions_same_sizes_and_maps_in_python_and_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sidecar, cli_map = _cli(tmp_path, monkeypatch)
    result, py_map = _python(tmp_path, square=False)
    assert sidecar["input_size"] == list(INPUT_HW)
    assert sidecar["resolutions"] == ASPECT_KEPT
    assert [list(s) for s in result.resolutions] == ASPECT_KEPT
    assert cli_map.shape == py_map.shape == PHOTO_HW
    np.testing.assert_allclose(cli_map, py_map, atol=1e-6)


def test_square_means_squares_in_python_and_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sidecar, cli_map = _cli(tmp_path, monkeypatch, "--square")
    result, py_map = _python(tmp_path, square=True)
    assert sidecar["input_size"] == [32, 32]
    assert sidecar["resolutions"] == SQUARES
    assert [list(s) for s in result.resolutions] == SQUARES
    np.testing.assert_allclose(cli_map, py_map, atol=1e-6)
    # the comparison can fail: squashing the photo changes the map
    _, kept_map = _python(tmp_path, square=False)
    assert np.abs(kept_map - py_map).max() > 1e-3


def test_square_on_a_non_square_input_runs_squares_of_the_shorter_side() -> None:
    net = tiny_model().model
    x = torch.randn(1, 3, *INPUT_HW)
    squashed = cameras.CAMERAS(net, layer="features", resolutions=[32, 48], square=True)(x)
    assert squashed.resolutions == [(32, 32), (48, 48)]
    assert squashed.saliency.shape == (1, *INPUT_HW)  # the map is on the input's own grid
    kept = cameras.CAMERAS(net, layer="features", resolutions=[32, 48])(x)
    assert kept.resolutions == [(32, 51), (48, 76)]
    # factors and the paper's schedule follow the same rule
    assert schedule([1.0, 1.5], INPUT_HW, square=True) == [(32, 32), (48, 48)]
    assert schedule(None, (224, 224), square=True) == schedule(None, (224, 224))
    with pytest.raises(ValueError, match="pairs"):
        cameras.CAMERAS(net, layer="features", resolutions=[(32, 40)], square=True)
