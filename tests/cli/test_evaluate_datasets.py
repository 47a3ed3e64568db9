"""`cameras evaluate --dataset …` in-process on tiny random CNNs: rows against a per-photo reference, the Table 1
pointing table and the difficult subset from their definitions, resume, configuration mismatch, saved maps, skipped
photos and bad options."""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import cameras.methods as M
from cameras import models
from cameras.cli.main import main
from cameras.datasets import VOC_CLASSES, open_dataset
from cameras.metrics import boxes_tensor, energy_in_box, pointing_game
from cameras.models import LoadedModel, Preprocess
from cameras.runs import read_map

from ..datasets.fixtures import make_coco, make_coco_masks, make_imagenet, make_voc
from .fakes import fake_registry


class Tiny(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        torch.manual_seed(n)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU())
        self.fc = nn.Linear(8, n)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


def _tiny(n: int) -> LoadedModel:
    model = Tiny(n).eval()
    model.cameras_default_layer = "features"  # type: ignore[assignment]
    labels = [f"class {i}" for i in range(n)]
    return LoadedModel(name=f"tiny{n}", model=model, layer="features", preprocess=Preprocess(size=32), labels=labels)


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_registry(monkeypatch, {f"tiny{n}": (lambda n=n: _tiny(n)) for n in (20, 80, 1000, 6)})


FAST = ["--resolutions", "32,40", "--no-progress", "--workers", "0", "--shard-size", "2", "--explain-batch", "3"]
METHODS = ["--methods", "gradcam", "cameras", "--metrics", "pointing", "energy"]


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _area(boxes: Tensor, size: tuple[int, int]) -> int:
    ys, xs = np.mgrid[0 : size[0], 0 : size[1]]
    inside = np.zeros(size, dtype=bool)
    for x0, y0, x1, y1 in boxes.tolist():
        inside |= (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
    return int(inside.sum())


@pytest.mark.usefixtures("tiny")
def test_voc_rows_table_and_skipped_photos(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_voc(tmp_path / "VOC2007")
    listing = root / "ImageSets" / "Main" / "test.txt"
    listing.write_text(listing.read_text() + "000010\n000011\n")
    for i in ("000010", "000011"):
        (root / "Annotations" / f"{i}.xml").write_text(
            "<annotation><object><name>dog</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax>"
            "</bndbox></object></annotation>"
        )
    (root / "JPEGImages" / "000011.jpg").write_bytes(b"not a jpeg")  # 000010.jpg is absent
    out = tmp_path / "out"
    code = main(
        ["evaluate", "--dataset", "voc", "--root", str(root), "--model", "tiny20", "--out", str(out), *METHODS, *FAST]
    )
    captured = capsys.readouterr()
    assert code == 1  # two photos skipped, the others evaluated
    assert "000010.jpg: no such file" in captured.err and "000011.jpg" in captured.err
    assert "pointing game (mean over classes)" in captured.out and "2 skipped" in captured.out

    rows = _csv(out / "per_image.csv")
    assert list(rows[0]) == ["image", "class", "class_name", "method", "pointing", "energy", "difficult"]
    ds = open_dataset("voc", root)
    loaded = _tiny(20)
    explainers = {
        "gradcam": M.get("gradcam")(loaded.model, layer="features"),
        "cameras": M.get("cameras")(loaded.model, layer="features", resolutions=[1.0, 1.25]),
    }
    expected = []
    for record in ds.records[:6]:
        prepared = loaded.preprocess(ds.path(record))
        for c in record.classes:
            if all(a.difficult for a in record.objects if a.label == c):
                continue  # 000007's chair: only difficult objects
            boxes = boxes_tensor(record.objects, label=c)
            others = [o for o in record.classes if o != c]
            h, w = prepared.original_size
            hard = bool(others) and 4 * _area(boxes, (h, w)) < h * w
            for name, explainer in explainers.items():
                sal = prepared.to_original(explainer(prepared.tensor, c).saliency)
                expected.append(
                    (
                        record.image,
                        c,
                        VOC_CLASSES[c],
                        name,
                        float(pointing_game(sal, [boxes], tolerance=15)[0]),
                        float(energy_in_box(sal, [boxes])[0]),
                        int(hard),
                    )
                )
    assert [(r["image"], int(r["class"]), r["class_name"], r["method"]) for r in rows] == [e[:4] for e in expected]
    for r, e in zip(rows, expected):
        assert float(r["pointing"]) == pytest.approx(e[4], nan_ok=True), r
        assert float(r["energy"]) == pytest.approx(e[5], rel=1e-4, abs=1e-5, nan_ok=True), r
        assert int(r["difficult"]) == e[6], r
    assert any(e[6] for e in expected) and not all(e[6] for e in expected)

    # Table 1: per class accuracy, then the mean over classes, on All and on the difficult subset
    table = _csv(out / "pointing_table.csv")
    for method in ("gradcam", "cameras"):
        mine = [r for r in rows if r["method"] == method]
        mine = [r for r in mine if r["pointing"] != "nan"]  # undefined rows count as neither hit nor miss
        per_class = {
            c: [float(r["pointing"]) for r in mine if int(r["class"]) == c] for c in {int(r["class"]) for r in mine}
        }
        hard = {
            c: [float(r["pointing"]) for r in mine if int(r["class"]) == c and r["difficult"] == "1"] for c in per_class
        }
        lines = [t for t in table if t["method"] == method]
        assert lines[0]["class"] == "mean"
        assert float(lines[0]["all"]) == pytest.approx(np.mean([np.mean(v) for v in per_class.values()]), abs=1e-6)
        assert float(lines[0]["diff"]) == pytest.approx(np.mean([np.mean(v) for v in hard.values() if v]), abs=1e-6)
        assert [int(t["class"]) for t in lines[1:]] == sorted(per_class)
        for t in lines[1:]:
            c = int(t["class"])
            assert float(t["all"]) == pytest.approx(np.mean(per_class[c]), abs=1e-6) and int(t["all_n"]) == len(
                per_class[c]
            )
            assert t["class_name"] == VOC_CLASSES[c]

    report = json.loads((out / "evaluate.json").read_text())
    for method in ("gradcam", "cameras"):  # one computation: the table's mean row is the JSON's Table 1 figure
        mean = next(t for t in table if t["method"] == method and t["class"] == "mean")
        assert float(mean["all"]) == pytest.approx(report["summary"][method]["pointing_all"], abs=1e-6)
        assert float(mean["diff"]) == pytest.approx(report["summary"][method]["pointing_difficult"], abs=1e-6)
        assert report["pointing_protocol"][method]["pairs"] == sum(
            1 for r in rows if r["method"] == method and r["pointing"] != "nan"
        )

    skipped = _csv(out / "skipped.csv")
    assert [s["image"] for s in skipped] == ["000010.jpg", "000011.jpg"]
    assert "no such file" in skipped[0]["reason"] and "not an image" in skipped[1]["reason"]
    run = json.loads((out / "run.json").read_text())
    assert run["dataset"] == {"kind": "voc", "root": str(root.absolute()), "split": "test", "items": 8}
    assert run["world_size"] == 1 and run["image_root"] == str(root.absolute() / "JPEGImages")
    assert all((Path(run["image_root"]) / r["image"]).is_file() for r in rows)
    assert {"per_image.csv", "summary.csv", "pointing_table.csv", "skipped.csv"} <= set(run["outputs"])
    assert json.loads((out / "evaluate.json").read_text())["skipped"] == 2


@pytest.mark.usefixtures("tiny")
def test_resume_equals_one_run_and_another_configuration_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_voc(tmp_path / "VOC2007")
    out = tmp_path / "out"
    argv = ["evaluate", "--dataset", "voc", "--root", str(root), "--model", "tiny20", "--out", str(out), *FAST]
    assert main([*argv, *METHODS]) == 0
    files = ["per_image.csv", "summary.csv", "pointing_table.csv", "evaluate.json", "skipped.csv"]
    first = {f: (out / f).read_bytes() for f in files}
    assert sorted(p.name for p in (out / "shards").iterdir()) == [f"chunk-00000{i}.json" for i in range(3)] + [
        "config.json"
    ]
    for f in ("chunk-000001.json", "chunk-000002.json"):  # as if the run had died after its first shard
        (out / "shards" / f).unlink()
    (out / "per_image.csv").unlink()
    (out / "shards" / ".chunk-000001.json.0123456789abcdef.tmp").write_text('{"half')  # a torn write
    capsys.readouterr()
    assert main([*argv, *METHODS]) == 0
    said = capsys.readouterr().out
    assert "resuming" in said and "2 of 6 photos done, 4 to go" in said
    assert {f: (out / f).read_bytes() for f in files} == first

    assert main([*argv, "--methods", "gradcam", "--metrics", "pointing", "energy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cameras evaluate: error: --out")
    assert "methods differs" in err and "--overwrite" in err
    assert (out / "per_image.csv").read_bytes() == first["per_image.csv"]  # nothing already written is lost
    assert main([*argv, "--methods", "gradcam", "--metrics", "pointing", "energy", "--overwrite"]) == 0
    assert {r["method"] for r in _csv(out / "per_image.csv")} == {"gradcam"}


@pytest.mark.usefixtures("tiny")
def test_saved_maps_are_the_explainers_maps_at_input_resolution(tmp_path: Path) -> None:
    root = make_voc(tmp_path / "VOC2007")
    out = tmp_path / "out"
    argv = ["evaluate", "--dataset", "voc", "--root", str(root), "--model", "tiny20", "--limit", "3", "--save-maps"]
    assert main([*argv, "--out", str(out), *METHODS, *FAST]) == 0
    rows = _csv(out / "per_image.csv")
    index = _csv(out / "maps" / "index.csv")
    assert list(index[0]) == ["image", "class", "method", "file", "key", "height", "width"]
    assert [(i["image"], i["class"], i["method"]) for i in index] == [
        (r["image"], r["class"], r["method"]) for r in rows
    ]
    ds = open_dataset("voc", root)
    loaded = _tiny(20)
    cam = M.get("cameras")(loaded.model, layer="features", resolutions=[1.0, 1.25])
    for i in index:
        arr = np.load(out / "maps" / i["file"])[i["key"]]
        assert arr.dtype == np.float16 and arr.shape == (int(i["height"]), int(i["width"]))
        assert np.array_equal(arr, read_map(out, i["image"], int(i["class"]), i["method"]))
        if i["method"] == "cameras":
            record = next(r for r in ds.records if r.image == i["image"])
            prepared = loaded.preprocess(ds.path(record))
            want = cam(prepared.tensor, int(i["class"])).saliency[0].numpy()
            assert arr.shape == want.shape == prepared.input_size  # model-input frame, aspect kept
            assert np.allclose(arr.astype(np.float32), want, atol=1e-3)
    with pytest.raises(KeyError):
        read_map(out, "000001.jpg", 19, "cameras")


@pytest.mark.usefixtures("tiny")
def test_coco_and_imagenet_rows_follow_the_records(tmp_path: Path) -> None:
    coco = make_coco(tmp_path / "coco")
    out = tmp_path / "coco_out"
    base = ["--methods", "gradcam", "--metrics", "pointing", *FAST]
    assert (
        main(["evaluate", "--dataset", "coco", "--root", str(coco.root), "--model", "tiny80", "--out", str(out), *base])
        == 0
    )
    ds = open_dataset("coco", coco.root)
    rows = _csv(out / "per_image.csv")
    assert [(r["image"], int(r["class"])) for r in rows] == [(rec.image, c) for rec in ds.records for c in rec.classes]
    assert (out / "pointing_table.csv").is_file()
    imagenet = make_imagenet(tmp_path / "imagenet")
    out = tmp_path / "imagenet_out"
    assert (
        main(
            [
                "evaluate",
                "--dataset",
                "imagenet",
                "--root",
                str(imagenet),
                "--model",
                "tiny1000",
                "--out",
                str(out),
                *base,
            ]
        )
        == 0
    )
    rows = _csv(out / "per_image.csv")
    assert [(r["image"], r["class"], r["class_name"]) for r in rows] == [
        ("ILSVRC2012_val_00000001.JPEG", "281", "tabby"),
        ("ILSVRC2012_val_00000002.JPEG", "0", "tench"),
        ("ILSVRC2012_val_00000003.JPEG", "999", "toilet tissue"),
    ]
    assert not (out / "pointing_table.csv").exists()  # one class per photo: no Table 1
    assert math.isfinite(float(rows[0]["pointing"]))


@pytest.mark.usefixtures("tiny")
def test_energy_mask_on_coco_masks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    coco = make_coco_masks(tmp_path / "coco")
    out = tmp_path / "out"
    argv = ["evaluate", "--dataset", "coco", "--root", str(coco.root), "--model", "tiny80", "--methods", "gradcam"]
    assert main([*argv, "--metrics", "energy", "energy_mask", "--out", str(out), *FAST]) == 0
    rows = _csv(out / "per_image.csv")
    assert [(r["image"], r["class"]) for r in rows] == [("m1.jpg", "0"), ("m1.jpg", "1"), ("m2.jpg", "2")]
    assert list(rows[0])[4:6] == ["energy", "energy_mask"]
    ds = open_dataset("coco", coco.root)
    loaded = _tiny(80)
    explainer = M.get("gradcam")(loaded.model, layer="features")
    prepared = loaded.preprocess(ds.path(ds.records[0]))
    from cameras.metrics import decode_segmentation

    polygon = ds.records[0].objects[0].segmentation
    assert polygon is not None
    truth = {0: decode_segmentation(polygon), 1: coco.crowd | coco.compressed}  # the hand-made masks of class 1
    for r in rows[:2]:
        c = int(r["class"])
        sal = prepared.to_original(explainer(prepared.tensor, c).saliency)[0].double().numpy()
        want = float((sal * truth[c]).sum() / sal.sum())  # Score-CAM's energy, on the masks
        assert float(r["energy_mask"]) == pytest.approx(want, rel=1e-4, abs=1e-6), r
    assert math.isnan(float(rows[2]["energy_mask"])) and math.isfinite(float(rows[2]["energy"]))  # box only
    summary = {r["metric"]: r for r in _csv(out / "summary.csv")}
    assert summary["energy_mask"]["n"] == "2" and summary["energy_mask"]["undefined"] == "1"
    capsys.readouterr()
    # the input frame: the masks follow the map (nearest resize), the scores stay shares of the mass
    out_in = tmp_path / "out_in"
    assert main([*argv, "--metrics", "energy_mask", "--frame", "input", "--out", str(out_in), *FAST]) == 0
    assert all(0 < float(r["energy_mask"]) < 1 for r in _csv(out_in / "per_image.csv")[:2])

    def one_error(args: list[str]) -> str:
        assert main([*args, "--metrics", "energy_mask", "--out", str(tmp_path / "bad"), *FAST]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("cameras evaluate: error:"), err
        return err

    plain = make_coco(tmp_path / "plain")
    err = one_error(["evaluate", "--dataset", "coco", "--root", str(plain.root), "--model", "tiny80"])
    assert "energy_mask needs instance masks" in err and "coco data set" in err
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "pycocotools", None)  # not installed
        assert 'pip install "cameras[coco]"' in one_error(argv)


@pytest.mark.usefixtures("tiny")
def test_bad_options_and_heads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_voc(tmp_path / "VOC2007")
    out = tmp_path / "out"

    def one_error(argv: list[str]) -> str:
        assert main(["evaluate", *argv, "--out", str(out), *FAST]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("cameras evaluate: error:"), err
        return err

    assert "6 outputs but the voc data set has 20 classes" in one_error(
        ["--dataset", "voc", "--root", str(root), "--model", "tiny6"]
    )
    assert "--num-classes 20" in one_error(["--dataset", "voc", "--root", str(root), "--model", "tiny6"])
    assert "test.txt" not in one_error(["--dataset", "voc"]) and "needs --root" in one_error(["--dataset", "voc"])
    assert "drop --images" in one_error(["--dataset", "voc", "--root", str(root), "--images", str(root)])
    assert "val.txt: no such file: unknown split 'val'" in one_error(
        ["--dataset", "voc", "--root", str(root), "--split", "val"]
    )
    assert "--images DIR and --boxes FILE" in one_error([])
    assert "--limit" in one_error(["--dataset", "voc", "--root", str(root), "--limit", "0"])
    assert not out.exists()  # nothing was written
    shutil.rmtree(root / "JPEGImages")
    assert (
        main(["evaluate", "--dataset", "voc", "--root", str(root), "--model", "tiny20", "--out", str(out), *FAST]) == 2
    )
    assert len(_csv(out / "skipped.csv")) == 6 and capsys.readouterr().err.count("no such file") == 6
    _ = models  # the registry the fixture replaced


@pytest.mark.usefixtures("tiny")
def test_metrics_all_adds_energy_mask_only_where_there_are_masks(tmp_path: Path) -> None:
    """#22 §3: ``metrics="all"`` (``--metrics all``) is every metric that applies: ``energy_mask`` on COCO's masks,
    not on boxes-only VOC."""
    from cameras.evaluation import METRICS, evaluate

    coco = make_coco_masks(tmp_path / "coco")
    ev = evaluate("tiny80", ("coco", str(coco.root)), ["gradcam"], "all", resolutions="1.0", steps=2, workers=0)
    assert ev.metrics == list(METRICS)
    voc = make_voc(tmp_path / "voc")
    ev = evaluate("tiny20", ("voc", str(voc)), ["gradcam"], "all", resolutions="1.0", steps=2, workers=0)
    assert ev.metrics == [k for k in METRICS if k != "energy_mask"]
    assert {k for r in ev.rows for k in r.values} == set(ev.metrics)
