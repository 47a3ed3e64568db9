"""Comparison views (Python API on tiny random models) and the ``cameras compare`` command; one slow end-to-end run
on the real EfficientNet-Lite models and the chelsea photo."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cameras.methods as M
from cameras import data, models
from cameras.cli.compare import split_list
from cameras.cli.main import main
from cameras.models import LoadedModel, Preprocess
from cameras.viz.compare import (
    Comparison,
    compare_class_grid,
    compare_classes,
    compare_methods,
    compare_models,
    spearman,
)

from ..engine.nets import TinyCNN
from .fakes import fake_registry

LABELS = ["ant", "bee", "cat", "dog", "eel"]


def _tiny(name: str = "tiny", seed: int = 0, size: int = 32) -> LoadedModel:
    return LoadedModel(name, TinyCNN(classes=5, seed=seed), "features", Preprocess(size=size), list(LABELS))


@pytest.fixture
def photo() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(40, 60, 3), dtype=np.uint8)


def _rank_corr(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's ρ as the Pearson correlation of ranks, tied values sharing their mean rank (ReLU'd maps have
    many zeros)."""

    def ranks(x: np.ndarray) -> np.ndarray:
        flat = x.ravel()
        order = np.argsort(flat, kind="stable")
        r = np.empty(flat.size, dtype=np.float64)
        r[order] = np.arange(flat.size, dtype=np.float64)
        for value in np.unique(flat):  # ties: the mean of their ranks
            tied = flat == value
            r[tied] = r[tied].mean()
        return r

    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def _direct(loaded: LoadedModel, photo: np.ndarray, method: str, target: int | None, **contrast: object) -> np.ndarray:
    prepared = loaded.preprocess(photo)
    out = M.get(method)(loaded.model, layer=loaded.layer)(prepared.tensor, target, **contrast)  # type: ignore[arg-type]
    return prepared.to_original(out.saliency[0]).numpy()


def _no_overlapping_text(view: Comparison) -> None:
    fig = view.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    texts = [ax.title for ax in fig.axes if ax.get_title()]
    texts += [t for t in (fig._suptitle, fig._supxlabel) if t is not None]  # type: ignore[attr-defined]
    boxes = [t.get_window_extent(renderer) for t in texts]
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), "labels overlap"
    width, height = fig.canvas.get_width_height()
    for box in boxes:
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, "a label leaves the figure"


def test_spearman_matches_rank_definition() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.random((8, 9)), rng.random((8, 9))
    assert spearman(a, b) == pytest.approx(_rank_corr(a, b))
    assert spearman(a, a**3) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(np.zeros((3, 3)), a[:3, :3]) is None
    with pytest.raises(ValueError, match="same number"):
        spearman(a, b[:4])


def test_methods_view(photo: np.ndarray, tmp_path: Path) -> None:
    loaded = _tiny()
    view = compare_methods(loaded, photo, ["gradcam", "layercam", "cam"], image_name="noise.png")
    assert view.view == "methods" and [p.method for p in view.panels] == ["gradcam", "layercam", "cam"]
    with torch.no_grad():
        top1 = int(loaded.model(loaded.preprocess(photo).tensor).argmax())
    for p in view.panels:
        assert p.saliency.shape == (40, 60) and p.class_index == top1 and p.class_name == LABELS[top1]
        assert np.allclose(p.saliency, _direct(loaded, photo, p.method, None), atol=1e-6)
        assert M.get(p.method).label in p.title and "tiny" in p.title and f"p={p.probability:.2f}" in p.title
    # CAM = Grad-CAM on this GAP + linear head
    assert np.allclose(view.panels[0].saliency, view.panels[2].saliency, atol=1e-5)
    assert [(s["a"], s["b"]) for s in view.spearman] == [
        ("gradcam", "layercam"),
        ("gradcam", "cam"),
        ("layercam", "cam"),
    ]
    for s in view.spearman:
        pa = next(p for p in view.panels if p.method == s["a"])
        pb = next(p for p in view.panels if p.method == s["b"])
        assert s["rho"] == pytest.approx(_rank_corr(pa.saliency, pb.saliency), abs=1e-6)
    # one shared colour bar: photo + 3 panels in one row + 1 colour-bar axis
    assert len(view.figure.axes) == 4 + 1
    _no_overlapping_text(view)
    png, sidecar = view.save(tmp_path)
    assert png.name == "compare_methods_noise.png" and Image.open(png).size[0] > 300
    meta = json.loads(sidecar.read_text())
    assert meta["view"] == "methods" and meta["image"] == "noise.png" and meta["models"] == ["tiny"]
    assert [p["method"] for p in meta["panels"]] == ["gradcam", "layercam", "cam"]
    assert meta["photo_size"] == [40, 60] and meta["input_size"] == [32, 48] and len(meta["spearman"]) == 3


def test_methods_view_given_class_and_method_kwargs(photo: np.ndarray) -> None:
    loaded = _tiny()
    view = compare_methods(
        loaded, photo, ["cameras", M.GradCAM], target="dog", method_kwargs={"*": {"resolutions": [1.0, 1.5]}}
    )
    assert [p.class_index for p in view.panels] == [3, 3]
    prepared = loaded.preprocess(photo)
    ref = M.CAMERAS(loaded.model, layer="features", resolutions=[1.0, 1.5])(prepared.tensor, 3).saliency
    assert np.allclose(view.panels[0].saliency, prepared.to_original(ref[0]).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="Unknown method"):
        compare_methods(loaded, photo, ["nope"])
    with pytest.raises(ValueError, match="at least one"):
        compare_methods(loaded, photo, [])


def test_classes_view_with_contrasts(photo: np.ndarray, tmp_path: Path) -> None:
    loaded = _tiny(seed=2)
    view = compare_classes(loaded, photo, ["bee", 4], method="gradcam", image_name="noise")
    maps = [p for p in view.panels if p.kind == "map"]
    contrasts = [p for p in view.panels if p.kind == "contrast"]
    assert [p.class_index for p in maps] == [1, 4] and [p.class_index for p in contrasts] == [1, 4]
    a, b = (_direct(loaded, photo, "gradcam", c) for c in (1, 4))
    assert np.allclose(maps[0].saliency, a, atol=1e-6) and np.allclose(maps[1].saliency, b, atol=1e-6)
    assert np.allclose(contrasts[0].saliency, np.maximum(a - b, 0), atol=1e-6)
    assert np.allclose(contrasts[1].saliency, np.maximum(b - a, 0), atol=1e-6)
    assert contrasts[0].against == [4] and "bee" in contrasts[0].title and "eel" in contrasts[0].title
    assert view.info["top5"][0]["probability"] >= view.info["top5"][1]["probability"]
    # photo + 2 maps, text + 2 contrasts, and two colour bars (maps, contrasts)
    assert len(view.figure.axes) == 6 + 2
    _no_overlapping_text(view)
    view.save(tmp_path, "classes")
    assert json.loads((tmp_path / "classes.json").read_text())["panels"][2]["kind"] == "contrast"
    three = compare_classes(loaded, photo, [0, 1, 2], method="gradcam")
    c0 = three.panels[3].saliency
    rest = np.maximum(three.panels[1].saliency, three.panels[2].saliency)
    assert np.allclose(c0, np.maximum(three.panels[0].saliency - rest, 0), atol=1e-6)
    with pytest.raises(ValueError, match="at least two"):
        compare_classes(loaded, photo, ["bee"])
    with pytest.raises(ValueError, match="must differ"):
        compare_classes(loaded, photo, ["bee", 1])
    with pytest.raises(ValueError, match="Unknown class"):
        compare_classes(loaded, photo, ["bee", "zebra"])


def test_classes_view_contrastive(photo: np.ndarray, tmp_path: Path) -> None:
    loaded = _tiny(seed=0)
    view = compare_classes(loaded, photo, ["bee", "dog"], method="gradcam", contrastive=True, gamma=0.7, image_name="n")
    maps = [p for p in view.panels if p.kind == "map"]
    second = [p for p in view.panels if p.kind == "contrastive"]
    assert [p.class_index for p in second] == [1, 3] and [p.against for p in second] == [[3], [1]]
    for panel, rival in zip(second, (3, 1)):
        ref = _direct(loaded, photo, "gradcam", panel.class_index, contrast=rival, gamma=0.7)
        assert np.allclose(panel.saliency, ref, atol=1e-6)
        assert "contrastive" in panel.title and "0.7·" in panel.title
    forms = {s["form"]: s["rho"] for s in view.spearman}
    assert forms["plain"] == pytest.approx(_rank_corr(maps[0].saliency, maps[1].saliency), abs=1e-6)
    assert forms["contrastive"] == pytest.approx(_rank_corr(second[0].saliency, second[1].saliency), abs=1e-6)
    assert view.info["gamma"] == 0.7
    # photo + 2 maps, text + 2 contrastive maps, and one colour bar: every map on [0, 1]
    assert len(view.figure.axes) == 6 + 1
    _no_overlapping_text(view)
    meta = json.loads(view.save(tmp_path, "c")[1].read_text())
    assert [p["kind"] for p in meta["panels"]] == ["map", "map", "contrastive", "contrastive"]
    assert [s["form"] for s in meta["spearman"]] == ["plain", "contrastive"]
    three = compare_classes(loaded, photo, [0, 1, 2], method="gradcam", contrastive=True)
    assert [p.against for p in three.panels[3:]] == [[1, 2], [0, 2], [0, 1]]
    ref = _direct(loaded, photo, "gradcam", 0, contrast=torch.tensor([[1, 2]]))
    assert np.allclose(three.panels[3].saliency, ref, atol=1e-6)
    with pytest.raises(ValueError, match="gamma applies to contrastive"):
        compare_classes(loaded, photo, [0, 1], gamma=0.5)
    with pytest.raises(ValueError, match="gamma must be finite"):
        compare_classes(loaded, photo, [0, 1], contrastive=True, gamma=float("inf"))


@pytest.mark.parametrize("contrastive", [False, True])
def test_class_grid_rows_by_method_and_by_model(photo: np.ndarray, tmp_path: Path, contrastive: bool) -> None:
    loaded = _tiny(seed=0)
    grid = compare_class_grid(
        [loaded], photo, ["bee", "dog"], ["gradcam", "layercam"], contrastive=contrastive, image_name="n"
    )
    assert grid.view == "class_grid" and grid.info["rows"] == ["Grad-CAM", "LayerCAM"]
    kind = "contrastive" if contrastive else "contrast"
    assert [(p.row, p.kind, p.class_index) for p in grid.panels] == [
        (row, k, c) for row in ("Grad-CAM", "LayerCAM") for k in ("map", kind) for c in (1, 3)
    ]
    for row, method in (("Grad-CAM", "gradcam"), ("LayerCAM", "layercam")):
        a, b, ca, cb = [p.saliency for p in grid.panels if p.row == row]
        assert np.allclose(a, _direct(loaded, photo, method, 1), atol=1e-6)
        assert np.allclose(b, _direct(loaded, photo, method, 3), atol=1e-6)
        if contrastive:
            assert np.allclose(ca, _direct(loaded, photo, method, 1, contrast=3), atol=1e-6)
            assert np.allclose(cb, _direct(loaded, photo, method, 3, contrast=1), atol=1e-6)
        else:
            assert np.allclose(ca, np.maximum(a - b, 0), atol=1e-6) and np.allclose(cb, np.maximum(b - a, 0))
        rhos = [s for s in grid.spearman if s["row"] == row]
        assert [s["form"] for s in rhos] == (["plain", "contrastive"] if contrastive else ["plain"])
        assert rhos[0]["rho"] == pytest.approx(_rank_corr(a, b), abs=1e-6)
    # 2 rows × (photo + 4 panels) and ONE colour bar for every panel, contrasts included
    assert len(grid.figure.axes) == 2 * 5 + 1
    assert "one scale" in grid.figure.axes[-1].get_ylabel()
    _no_overlapping_text(grid)
    by_model = compare_class_grid([_tiny("a", 0), _tiny("b", 1, 40)], photo, ["bee", "eel"], ["hirescam"])
    assert by_model.info["rows"] == ["a", "b"] and [p.model for p in by_model.panels[::4]] == ["a", "b"]
    other = _tiny("b", 1, 40)
    assert np.allclose(by_model.panels[4].saliency, _direct(other, photo, "hirescam", 1), atol=1e-6)
    assert json.loads(by_model.save(tmp_path)[1].read_text())["panels"][0]["row"] == "a"
    with pytest.raises(ValueError, match="rows must differ"):
        compare_class_grid([loaded], photo, ["bee", "eel"], ["gradcam", "gradcam"])
    with pytest.raises(ValueError, match="at least two classes"):
        compare_class_grid([loaded], photo, ["bee"], ["gradcam"])
    with pytest.raises(ValueError, match="layer applies to one model"):
        compare_class_grid([loaded, other], photo, ["bee", "eel"], ["gradcam"], layer="features")


def test_models_view_spearman(photo: np.ndarray, tmp_path: Path) -> None:
    a, b, c = _tiny("a", seed=0, size=32), _tiny("b", seed=1, size=48), _tiny("c", seed=2, size=40)
    view = compare_models([a, b, c], photo, "layercam", image_name="noise")
    with torch.no_grad():
        top1 = int(a.model(a.preprocess(photo).tensor).argmax())
    assert [p.model for p in view.panels] == ["a", "b", "c"] and {p.class_index for p in view.panels} == {top1}
    maps = {m.name: _direct(m, photo, "layercam", top1) for m in (a, b, c)}
    assert [(s["a"], s["b"]) for s in view.spearman] == [("a", "b"), ("a", "c"), ("b", "c")]
    for s in view.spearman:
        assert s["rho"] == pytest.approx(_rank_corr(maps[s["a"]], maps[s["b"]]), abs=1e-6)
    assert view.info["input_sizes"] == {"a": [32, 48], "b": [48, 72], "c": [40, 60]}
    assert "Spearman" in view.figure._supxlabel.get_text()  # type: ignore[attr-defined]
    _no_overlapping_text(view)
    with pytest.raises(ValueError, match="at least two"):
        compare_models([a], photo)
    with pytest.raises(TypeError, match="explainer instance"):
        compare_models([a, b], photo, M.GradCAM(a.model, layer="features"))
    with pytest.raises(ValueError, match="must differ"):
        compare_models([a, a], photo, "gradcam")


# -- the command ----------------------------------------------------------------------------------------------------


@pytest.fixture
def tiny_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_registry(monkeypatch, {f"tiny{i}": (lambda i=i: _tiny(f"tiny{i}", seed=i)) for i in range(3)})  # type: ignore[misc]


def test_split_list() -> None:
    assert split_list(["tiger cat,Egyptian cat"]) == ["tiger cat", "Egyptian cat"]
    assert split_list(["a", " b , c ", ","]) == ["a", "b", "c"]
    assert split_list(None) == []


@pytest.mark.usefixtures("tiny_registry")
def test_cli_views(photo: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = tmp_path / "noise.png"
    Image.fromarray(photo).save(img)
    out = tmp_path / "out"
    assert main(["compare", str(img), "--classes", "bee,eel", "--methods", "gradcam", "--out", str(out)]) == 0
    meta = json.loads((out / "compare_classes_noise.json").read_text())
    assert meta["view"] == "classes" and [p["class_name"] for p in meta["panels"]] == ["bee", "eel", "bee", "eel"]
    assert (out / "compare_classes_noise.png").exists()
    assert main(["compare", str(img), "--models", "tiny0,tiny1", "--methods", "hirescam", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Spearman rank correlation between models' maps" in printed and "tiny0 vs tiny1" in printed
    meta = json.loads((out / "compare_models_noise.json").read_text())
    assert meta["models"] == ["tiny0", "tiny1"] and len(meta["spearman"]) == 1
    assert main(["compare", str(img), "--methods", "gradcam", "--methods", "cameras", "--resolutions", "1,1.5",
                 "--classes", "3", "--out", str(out)]) == 0  # fmt: skip
    meta = json.loads((out / "compare_methods_noise.json").read_text())
    assert [p["method"] for p in meta["panels"]] == ["gradcam", "cameras"]
    assert {p["class_index"] for p in meta["panels"]} == {3}


@pytest.mark.usefixtures("tiny_registry")
def test_cli_contrastive_and_grids(photo: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = tmp_path / "noise.png"
    Image.fromarray(photo).save(img)
    out = tmp_path / "out"
    argv = ["compare", str(img), "--classes", "bee,dog", "--methods", "gradcam", "--contrastive", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "[plain] bee vs dog" in printed and "[contrastive] bee vs dog" in printed and "bee (1) vs 3" in printed
    meta = json.loads((out / "compare_classes_noise.json").read_text())
    assert [p["kind"] for p in meta["panels"]] == ["map", "map", "contrastive", "contrastive"]
    ref = _direct(_tiny("tiny0", 0), photo, "gradcam", 1, contrast=3)
    assert meta["panels"][2]["map_mean"] == pytest.approx(float(ref.mean()), abs=1e-6)
    assert main(["compare", str(img), "--classes", "bee,dog", "--methods", "gradcam,layercam", "--out", str(out)]) == 0
    meta = json.loads((out / "compare_class_grid_noise.json").read_text())
    assert meta["rows"] == ["Grad-CAM", "LayerCAM"] and len(meta["panels"]) == 8
    assert "[Grad-CAM] [plain] bee vs dog" in capsys.readouterr().out
    argv = ["compare", str(img), "--classes", "bee,dog", "--models", "tiny0,tiny1", "--contrastive", "--gamma", "0.5"]
    assert main([*argv, "--methods", "hirescam", "--out", str(out)]) == 0
    meta = json.loads((out / "compare_class_grid_noise_2.json").read_text())  # another grid: numbered, not replaced
    assert json.loads((out / "compare_class_grid_noise.json").read_text())["rows"] == ["Grad-CAM", "LayerCAM"]
    assert meta["rows"] == ["tiny0", "tiny1"] and meta["gamma"] == 0.5
    assert {p["kind"] for p in meta["panels"]} == {"map", "contrastive"}


@pytest.mark.usefixtures("tiny_registry")
def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (["--methods", "gradcam,cam", "--models", "tiny0,tiny1"], "one thing at a time"),
        (["--classes", "bee,eel", "--methods", "gradcam,cam", "--models", "tiny0,tiny1"], "one thing at a time"),
        (["--contrastive"], "--contrastive needs two or more --classes"),
        (["--classes", "bee,eel", "--gamma", "0.5"], "--gamma applies to --contrastive"),
        (["--classes", "bee,eel", "--contrastive", "--gamma", "inf"], "argument --gamma: must be a finite number"),
        (["--methods", "nope"], "Unknown method"),
        (["--models", "nope"], "Unknown model"),
        (["--classes", "bee,zebra", "--methods", "gradcam"], "Unknown class"),
        (["missing.png"], "no such file"),
        (["--resolutions", "a,b"], "resolutions"),
        (["--alpha", "2"], "alpha"),
    ]
    for argv, message in cases:
        code = main(["compare", *argv, "--out", str(tmp_path)])
        err = capsys.readouterr().err
        assert code == 2, argv
        assert err.startswith("cameras compare: error:") and message in err and err.count("\n") == 1, err


# -- end to end on the real models --------------------------------------------------------------------------------


@pytest.mark.slow
def test_end_to_end_efficientnet_lite_on_chelsea(tmp_path: Path) -> None:
    lite0 = models.load("efficientnet_lite0")
    lite1 = models.load("efficientnet_lite1")
    chelsea = data.sample_image("chelsea")
    classes = compare_classes(lite0, chelsea, ["tiger cat", "Egyptian cat"], "gradcam", image_name="chelsea")
    assert [p.class_index for p in classes.panels[:2]] == [282, 285]
    assert all(p.probability > 0.05 for p in classes.panels[:2])
    assert classes.info["top5"][0]["class_name"] in ("Egyptian cat", "tiger cat", "tabby")
    both = compare_models([lite0, lite1], chelsea, "gradcam", image_name="chelsea")
    assert both.panels[0].class_name in ("Egyptian cat", "tiger cat", "tabby")
    rho = both.spearman[0]["rho"]
    assert rho is not None and 0.0 < rho <= 1.0  # two cat classifiers agree on what matters, to a degree
    assert main(["compare", "--methods", "gradcam,layercam", "--out", str(tmp_path)]) == 0
    meta = json.loads((tmp_path / "compare_methods_chelsea.json").read_text())
    assert meta["models"] == ["efficientnet_lite0"] and meta["photo_size"] == [300, 451]
    assert meta["input_size"] == [224, 337]


@pytest.mark.slow
def test_contrastive_maps_tell_the_chelsea_cats_apart() -> None:
    """On chelsea the plain CAMERAS maps of 'tiger cat' and 'Egyptian cat' rank the pixels almost alike; the
    contrastive maps (each class against the other) do not: they show different evidence."""
    lite0 = models.load("efficientnet_lite0")
    view = compare_classes(
        lite0,
        data.sample_image("chelsea"),
        ["tiger cat", "Egyptian cat"],
        "cameras",
        method_kwargs={"*": {"resolutions": [224, 324, 424]}},
        contrastive=True,
    )
    forms = {s["form"]: s["rho"] for s in view.spearman}
    assert forms["plain"] > 0.9 and forms["contrastive"] < 0.0
    assert [p.against for p in view.panels[2:]] == [[285], [282]]


def test_another_comparison_never_replaces_a_figure(photo: np.ndarray, tmp_path: Path) -> None:
    """#22 §4: a second comparison of the same photo and view with other methods is numbered (``_2``) instead of
    silently replacing the first's figure; the same comparison again replaces its own files."""
    loaded = _tiny()
    out = tmp_path / "out"
    first = compare_methods(loaded, photo, ["gradcam", "layercam"], image_name="noise.png")
    png1, json1 = first.save(out)
    other = compare_methods(loaded, photo, ["gradcam", "cam"], image_name="noise.png")
    png2, json2 = other.save(out)
    assert png1.name == "compare_methods_noise.png" and png2.name == "compare_methods_noise_2.png"
    assert [p["method"] for p in json.loads(json1.read_text())["panels"]][:2] == ["gradcam", "layercam"]
    assert json.loads(json2.read_text())["panels"][1]["method"] == "cam"
    again = compare_methods(loaded, photo, ["gradcam", "cam"], image_name="noise.png")
    assert again.save(out)[0] == png2  # the same comparison: its own file, rewritten
    assert sorted(p.name for p in out.glob("*.png")) == ["compare_methods_noise.png", "compare_methods_noise_2.png"]
