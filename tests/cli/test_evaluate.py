"""`cameras evaluate` on a tiny random CNN (fast), and on the real bundled model with the skimage box set (slow)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

import cameras.models
from cameras import data
from cameras.cli.evaluate import DEFAULT_METRICS, METRICS
from cameras.cli.main import main
from cameras.models import LoadedModel, Preprocess

LABELS = [f"class{i}" for i in range(6)]


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU())
        self.fc = nn.Linear(8, len(LABELS))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_load(name: str = "tiny", weights: object = "DEFAULT", device: object = "cpu") -> LoadedModel:
        model = Tiny().eval()
        model.cameras_default_layer = "features"  # type: ignore[assignment]
        return LoadedModel(name="tiny", model=model, layer="features", preprocess=Preprocess(size=32), labels=LABELS)

    monkeypatch.setattr(cameras.models, "load", fake_load)


def _photos(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(folder / name)
    boxes = {
        "a.png": [{"class": 1, "box": [5, 5, 30, 35]}, {"class": 2, "box": [30, 0, 60, 20]}],
        "b.png": [{"class": 3, "box": [0, 0, 60, 40]}],  # the whole photo: pointing hit, energy 1
    }
    (folder / "boxes.json").write_text(json.dumps(boxes))
    return folder


FAST = ["--resolutions", "32,40", "--steps", "8", "--no-progress"]


def test_evaluate_writes_table_csv_json_and_plot(
    tiny: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = _photos(tmp_path / "photos")
    out = tmp_path / "out"
    argv = ["evaluate", "--images", str(photos), "--boxes", str(photos / "boxes.json"), "--out", str(out), *FAST]
    assert main([*argv, "--metrics", "all"]) == 0
    stdout = capsys.readouterr().out
    assert "cameras" in stdout and "pointing game" in stdout and "±" in stdout
    applicable = [k for k in METRICS if k != "energy_mask"]  # boxes only: no instance masks
    assert f"cameras evaluate: metrics {', '.join(applicable)}\n" in stdout
    with open(out / "per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["image"], r["class"]) for r in rows] == [("a.png", "1"), ("a.png", "2"), ("b.png", "3")]
    for r in rows:
        assert r["pointing"] in ("0", "1")
        assert 0.0 <= float(r["energy"]) <= 1.0 and 0.0 <= float(r["insertion"]) <= 1.0
        assert 0.0 <= float(r["avg_drop"]) <= 100.0 and r["increase"] in ("0", "100")
    whole = rows[2]
    assert whole["pointing"] == "1" and float(whole["energy"]) == pytest.approx(1.0)
    report = json.loads((out / "evaluate.json").read_text())
    for metric in ("pointing", "energy", "insertion", "deletion", "avg_drop", "increase", "rho_pos", "rho_neg"):
        vals = [float(r[metric]) for r in rows]
        assert report["summary"]["cameras"][metric]["mean"] == pytest.approx(np.mean(vals), rel=1e-5, abs=1e-6)
        assert report["summary"]["cameras"][metric]["std"] == pytest.approx(np.std(vals), rel=1e-4, abs=1e-6)
    assert report["metrics"]["deletion"]["higher_is_better"] is False
    with open(out / "summary.csv") as f:
        assert len(list(csv.DictReader(f))) == len(applicable)  # --metrics all: every metric that applies
    assert (out / "evaluate.png").stat().st_size > 0
    # the Table 1 protocol: a.png holds two classes, class 1's box covers 750 of 2400 px (not < 1/4), class 2's
    # 600 px (= 1/4, not less): no difficult pair; b.png holds one class
    assert [r["difficult"] for r in rows] == ["0", "0", "0"]
    protocol = report["pointing_protocol"]["cameras"]
    hits = {r["class"]: float(r["pointing"]) for r in rows}
    assert protocol["pointing_all"] == pytest.approx(np.mean(list(hits.values())))
    assert report["summary"]["cameras"]["pointing_all"] == protocol["pointing_all"]
    assert protocol["pairs"] == 3 and protocol["difficult_pairs"] == 0
    assert "Table 1 protocol" in stdout and "All" in stdout


def test_evaluate_densities_and_difficult_pairs(tiny: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = _photos(tmp_path / "photos")
    boxes = {
        "a.png": [{"class": 1, "box": [0, 0, 10, 10]}, {"class": 2, "box": [20, 0, 60, 40]}],  # class 1: small
        "b.png": [{"class": 1, "box": [0, 0, 60, 40]}],
    }
    (photos / "boxes3.json").write_text(json.dumps(boxes))
    out = tmp_path / "out"
    code = main(["evaluate", "--images", str(photos), "--boxes", str(photos / "boxes3.json"), "--out", str(out),
                 "--metrics", "pointing,rho_pos,rho_neg", "--methods", "gradcam", "--no-progress"])  # fmt: skip
    assert code == 0
    report = json.loads((out / "evaluate.json").read_text())
    rows = report["rows"]
    assert [(r["image"], r["class"], r["difficult"]) for r in rows] == [
        ("a.png", 1, True), ("a.png", 2, False), ("b.png", 1, False),
    ]  # fmt: skip
    p = report["pointing_protocol"]["gradcam"]
    # class 1: pairs (a, b), class 2: pair (a); Diff: class 1's pair on a.png only
    class1 = (rows[0]["pointing"] + rows[2]["pointing"]) / 2
    assert p["pointing_all"] == pytest.approx((class1 + rows[1]["pointing"]) / 2)
    assert p["pointing_difficult"] == pytest.approx(rows[0]["pointing"])
    assert p["per_class"]["1"]["n_all"] == 2 and p["difficult_pairs"] == 1
    # densities from the library on the same photo and map
    from cameras.methods import GradCAM
    from cameras.metrics import black_baseline, map_density

    model = cameras.models.load()
    x = model.preprocess(photos / "a.png").tensor
    sal = GradCAM(model.model, layer="features")(x, [1]).saliency
    d = map_density(model.model, x, sal, [1], baseline=black_baseline(model.preprocess.mean, model.preprocess.std))
    assert rows[0]["rho_pos"] == pytest.approx(float(d.positive[0]), rel=1e-5)
    assert rows[0]["rho_neg"] == pytest.approx(float(d.negative[0]), rel=1e-5)
    assert report["summary"]["gradcam"]["rho_pos"]["undefined"] == 0
    assert "positive density" in capsys.readouterr().out


def test_evaluate_options_and_bad_inputs(tiny: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = _photos(tmp_path / "photos")
    boxes = json.loads((photos / "boxes.json").read_text())
    boxes["missing.png"] = [{"class": 1, "box": [0, 0, 5, 5]}]
    (photos / "boxes2.json").write_text(json.dumps(boxes))
    out = tmp_path / "out"
    args = ["evaluate", "--images", str(photos), "--boxes", str(photos / "boxes2.json"), "--out", str(out), *FAST]
    code = main([*args, "--metrics", "pointing,energy", "--target", "predicted", "--frame", "input"])
    assert code == 1  # the missing photo fails, the others are still evaluated
    err = capsys.readouterr().err
    assert "missing.png" in err and err.count("error") == 1
    with open(out / "per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["image"] for r in rows] == ["a.png", "b.png"]  # predicted class: one row per photo
    assert set(rows[0]) == {"image", "class", "class_name", "method", "pointing", "energy"}
    assert float(rows[1]["energy"]) == pytest.approx(1.0)  # whole-photo box, in the input frame too

    base = ["evaluate", "--images", str(photos), "--boxes", str(photos / "boxes.json"), "--out", str(out), *FAST]
    assert main([*base, "--methods", "no-such-method"]) == 2
    assert "no-such-method" in capsys.readouterr().err
    assert main([*base, "--metrics", "accuracy"]) == 2
    assert "accuracy" in capsys.readouterr().err
    assert main([*base[:4], str(photos / "nope.json"), *base[5:]]) == 2
    assert "nope.json" in capsys.readouterr().err
    assert main(["evaluate", "--images", str(photos / "a.png"), "--boxes", str(photos / "boxes.json")]) == 2
    assert "not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["skimage_boxes.json", "skimage_boxes_multiclass.json"])
def test_skimage_box_set_matches_the_photos(name: str) -> None:
    from cameras.metrics import load_boxes

    boxes = load_boxes(Path(data.__file__).with_name(name))
    if name == "skimage_boxes.json":  # one box per photo, every photo
        assert sorted(boxes) == sorted(f"{s}.png" for s in data.SAMPLES)
    assert set(boxes) <= {f"{s}.png" for s in data.SAMPLES}
    labels = cameras.models.imagenet_labels()
    for fname, anns in boxes.items():
        h, w = data.sample_image(fname[:-4]).shape[:2]
        for a in anns:
            x0, y0, x1, y1 = a.box
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
            assert a.label is not None and labels[a.label] == a.name


@pytest.mark.slow
def test_evaluate_real_model_on_skimage_photos(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = tmp_path / "photos"
    for s in data.SAMPLES:
        data.sample_path(s, photos)
    boxes = Path(data.__file__).with_name("skimage_boxes.json")
    out = tmp_path / "out"
    args = ["--metrics", "pointing", "energy", "--resolutions", "224,324,424", "--no-progress"]
    assert main(["evaluate", "--images", str(photos), "--boxes", str(boxes), "--out", str(out), *args]) == 0
    report = json.loads((out / "evaluate.json").read_text())
    print(capsys.readouterr().out)
    by_image = {r["image"]: r for r in report["rows"]}
    assert set(by_image) == {f"{s}.png" for s in data.SAMPLES}
    # CAMERAS points at the annotated object on the cup and the cat (large, unambiguous objects).
    assert by_image["coffee.png"]["pointing"] == 1.0 and by_image["chelsea.png"]["pointing"] == 1.0
    assert by_image["coffee.png"]["energy"] > 0.5


def test_summarize_counts_undefined_values() -> None:
    from cameras.cli.evaluate import Row, summarize

    rows = [
        Row("a", 1, "x", "m", {"rho_pos": 2.0, "rho_neg": float("nan")}),
        Row("b", 1, "x", "m", {"rho_pos": 4.0, "rho_neg": 0.5}),
        Row("c", 1, "x", "m", {"rho_pos": float("nan"), "rho_neg": float("nan")}),
    ]
    s = summarize(rows, ["m"], ["rho_pos", "rho_neg"])["m"]
    assert s["rho_pos"] == {"mean": 3.0, "std": 1.0, "n": 2, "undefined": 1}
    assert s["rho_neg"]["n"] == 1 and s["rho_neg"]["undefined"] == 2 and s["rho_neg"]["mean"] == 0.5


def test_default_metrics_are_the_cheap_pair_and_the_run_says_so(
    tiny: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """#22 §3: without ``--metrics`` only pointing and energy run (no 100-step insertion/deletion), and the command
    names the metrics it runs and how to ask for the rest."""
    photos = _photos(tmp_path / "photos")
    out = tmp_path / "out"
    assert (
        main(["evaluate", "--images", str(photos), "--boxes", str(photos / "boxes.json"), "--out", str(out), *FAST])
        == 0
    )
    stdout = capsys.readouterr().out
    assert DEFAULT_METRICS == ("pointing", "energy")
    assert "cameras evaluate: metrics pointing, energy (the default; --metrics all adds insertion," in stdout
    with open(out / "per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert set(rows[0]) == {"image", "class", "class_name", "method", "pointing", "energy", "difficult"}
    assert json.loads((out / "evaluate.json").read_text())["metrics"].keys() == {"pointing", "energy"}


def test_evaluate_progress_moves_per_photo(tiny: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """#22 §3: the bar moves once per photo inside a 32-photo shard (it used to move once per shard), and
    ``progress=False`` disables it."""
    import tqdm.auto

    bars: list[tuple[bool, list[int]]] = []

    class Recording:
        def __init__(self, *args: object, total: int = 0, disable: bool = False, **kwargs: object) -> None:
            self.total, self.updates = total, []
            bars.append((disable, self.updates))

        def __enter__(self) -> Recording:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def update(self, n: int = 1) -> None:
            self.updates.append(n)

    monkeypatch.setattr(tqdm.auto, "tqdm", Recording)
    photos = _photos(tmp_path / "photos")
    extra = json.loads((photos / "boxes.json").read_text())
    for name in ("c.png", "d.png"):
        Image.fromarray(np.zeros((40, 60, 3), dtype=np.uint8) + 90).save(photos / name)
        extra[name] = [{"class": 4, "box": [10, 10, 40, 30]}]
    extra["missing.png"] = [{"class": 1, "box": [0, 0, 5, 5]}]  # skipped: done at once
    (photos / "boxes.json").write_text(json.dumps(extra))
    dataset = ("folder", str(photos))
    cameras.evaluate(None, dataset, ["gradcam"], boxes=str(photos / "boxes.json"), explain_batch=1, workers=0)
    disable, updates = bars[-1]
    assert not disable and sum(updates) == 5 and len(updates) >= 4  # one shard of 5 photos, one step per photo
    assert max(updates) <= 2  # a.png's two classes finish it once; the missing photo (and nothing else) at once
    cameras.evaluate(None, dataset, ["gradcam"], boxes=str(photos / "boxes.json"), workers=0, progress=False)
    assert bars[-1][0] is True


def test_default_out_is_one_folder_per_configuration(
    tiny: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """#22 §4: two evaluate commands with different options and no ``--out`` do not refuse each other (each gets
    ``cameras_out/evaluate/…``); the same command again resumes in its folder."""
    photos = _photos(tmp_path / "photos")
    monkeypatch.chdir(tmp_path)
    base = ["evaluate", "--images", str(photos), "--boxes", str(photos / "boxes.json"), *FAST]
    assert main(base) == 0
    assert main([*base, "--metrics", "pointing"]) == 0
    assert main([*base, "--methods", "gradcam"]) == 0
    capsys.readouterr()
    folders = sorted(p.name for p in (tmp_path / "cameras_out" / "evaluate").iterdir())
    assert len(folders) == 3 and folders[0].startswith("cameras_default_")
    assert any(f.startswith("cameras_pointing_") for f in folders) and any(f.startswith("gradcam_") for f in folders)
    assert main([*base, "--no-progress"]) == 0  # the same configuration: resumed, not refused
    assert "resuming" in capsys.readouterr().out
    run = json.loads((tmp_path / "cameras_out" / "evaluate" / folders[0] / "run.json").read_text())
    assert "default_out" not in run["config"]


def test_configuration_mismatch_says_what_differs_and_the_ways_out(
    tiny: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = _photos(tmp_path / "photos")
    out = tmp_path / "out"
    base = ["evaluate", "--images", str(photos), "--boxes", str(photos / "boxes.json"), "--out", str(out), *FAST]
    assert main(base) == 0
    capsys.readouterr()
    assert main([*base, "--metrics", "pointing", "--tolerance", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "metrics differs (['pointing', 'energy'] → ['pointing'])" in err
    assert "tolerance differs (15.0 → 3.0)" in err
    assert "give another --out, or pass --overwrite" in err
