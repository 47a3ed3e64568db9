"""`cameras.evaluate` from Python on tiny random CNNs: the same rows, summary and Table 1 as `cameras evaluate` on
the VOC / COCO / ImageNet / folder fixtures; a user's explainer object and metric callable against a direct
per-photo computation; a run in memory equals a run with `out=`; bad arguments raise the CLI's one line before any
model is loaded; a bad photo is a skipped record."""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor

import cameras
from cameras.cli.main import main
from cameras.datasets import open_dataset
from cameras.evaluation import Evaluation, EvaluationError, EvaluationFileError
from cameras.io import LOCK_FILE, lock_folder
from cameras.methods import CAMERAS

from ..cli.fakes import fake_registry
from ..datasets.fixtures import make_coco, make_imagenet, make_voc
from .procs import records, tiny

FAST = ["--resolutions", "32,40", "--no-progress", "--workers", "0", "--shard-size", "2", "--explain-batch", "3"]
API = {"resolutions": [32, 40], "workers": 0, "shard_size": 2, "explain_batch": 3, "progress": False}


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Any:
    return fake_registry(monkeypatch, {f"tiny{n}": (lambda n=n: tiny(n)) for n in (20, 80, 1000, 6)})


def _csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _g(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _folder(root: Path) -> Path:
    """Photos with a box file: two classes on one photo, a box off its photo, an unreadable and a missing photo."""
    root.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(root / name)
    (root / "bad.png").write_bytes(b"not a photo")
    boxes = {
        "a.png": [{"class": 1, "box": [5, 5, 30, 35]}, {"class": 2, "box": [30, 0, 60, 20]}],
        "b.png": [{"class": 3, "box": [0, 0, 60, 40]}, {"class": 3, "box": [100, 100, 120, 120]}],
        "c.png": [{"class": 4, "box": [0, 0, 10, 10]}, {"class": 1, "box": [10, 10, 60, 40]}],
        "bad.png": [{"class": 1, "box": [0, 0, 5, 5]}],
        "missing.png": [{"class": 1, "box": [0, 0, 5, 5]}],
    }
    (root / "boxes.json").write_text(json.dumps(boxes))
    return root


def _cases(tmp: Path) -> dict[str, tuple[list[str], Any, dict[str, Any], list[str]]]:
    """name → (CLI data set options, the API's `dataset`, the API's data set options, metrics)."""
    voc = make_voc(tmp / "VOC2007")
    coco = make_coco(tmp / "coco").root
    imagenet = make_imagenet(tmp / "imagenet")
    folder = _folder(tmp / "photos")
    return {
        "voc": (
            ["--dataset", "voc", "--root", str(voc), "--model", "tiny20"],
            open_dataset("voc", voc),
            {},
            ["pointing", "energy", "discrimination"],
        ),
        "coco": (
            ["--dataset", "coco", "--root", str(coco), "--model", "tiny80"],
            ("coco", coco),
            {},
            ["pointing", "energy"],
        ),
        "imagenet": (
            ["--dataset", "imagenet", "--root", str(imagenet), "--model", "tiny1000"],
            ("imagenet", imagenet),
            {},
            ["pointing", "avg_drop", "increase"],
        ),
        "folder": (
            ["--images", str(folder), "--boxes", str(folder / "boxes.json"), "--model", "tiny6"],
            ("folder", folder),
            {"boxes": folder / "boxes.json"},
            ["pointing", "energy", "insertion", "deletion"],
        ),
    }


@pytest.mark.parametrize("case", ["voc", "coco", "imagenet", "folder"])
def test_api_rows_summary_and_table_equal_the_cli_files(
    case: str, tmp_path: Path, registry: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_options, dataset, dataset_options, metrics = _cases(tmp_path)[case]
    out = tmp_path / "cli"
    methods = ["--methods", "gradcam", "cameras", "--metrics", *metrics, "--steps", "4"]
    code = main(["evaluate", *cli_options, *methods, "--out", str(out), "--no-report", *FAST])
    assert code == (1 if case == "folder" else 0)
    model = cli_options[cli_options.index("--model") + 1]
    # the model by name through the registry for two cases, the loaded object for the others
    given = model if case in ("voc", "folder") else tiny(int(model[4:]))
    ev = cameras.evaluate(given, dataset, ["gradcam", "cameras"], metrics, steps=4, **API, **dataset_options)
    assert isinstance(ev, Evaluation) and ev.out is None and ev.is_main

    per_image = _csv(out / "per_image.csv")
    columns = ["image", "class", "class_name", "method", *ev.metrics, *(["difficult"] if ev.table else [])]
    assert per_image[0] == columns
    mine = [[_g(r[c]) if c != "difficult" else ("" if r[c] is None else str(int(r[c]))) for c in columns]
            for r in ev.records()]  # fmt: skip
    assert mine == per_image[1:] and len(mine) >= 3

    summary = _csv(out / "summary.csv")
    ours = [
        [m, k, _g(s["mean"]), _g(s["std"]), str(s["n"]), str(s["undefined"]), str(ev.metric_info[k][1])]
        for m, per in ev.summary().items()
        for k, s in per.items()
    ]
    assert ours == summary[1:]
    # the summary from its definition: the mean of the defined values of each column
    for m in ev.methods:
        vals = [float(r[4 + ev.metrics.index("pointing")]) for r in per_image[1:] if r[3] == m]
        defined = [v for v in vals if math.isfinite(v)]
        assert ev.summary()[m]["pointing"]["mean"] == pytest.approx(np.mean(defined), abs=1e-6)

    table = out / "pointing_table.csv"
    assert table.is_file() == ev.table == (case != "imagenet")
    if ev.table:
        rows = _csv(table)
        assert rows[0] == list(ev.pointing_table()[0])
        assert [[_g(v) for v in t.values()] for t in ev.pointing_table()] == rows[1:]
    assert [[s.image, s.reason] for s in ev.skipped] == _csv(out / "skipped.csv")[1:]
    if case == "folder":
        assert [s.image for s in ev.skipped] == ["b.png", "bad.png", "missing.png"]  # one bad photo: no exception

    # save(): the CLI's files, byte for byte
    saved = tmp_path / "saved"
    written = ev.save(saved)
    assert "per_image.csv" in written
    for name in ("per_image.csv", "summary.csv", "skipped.csv", *(["pointing_table.csv"] if ev.table else [])):
        assert (saved / name).read_bytes() == (out / name).read_bytes(), name
    a, b = (json.loads((d / "evaluate.json").read_text()) for d in (saved, out))
    assert a == b


def _box_mass(model: Any, x: Tensor, saliency: Tensor, targets: Tensor, boxes: list[Tensor]) -> Tensor:
    """A user's metric: the share of the map's mass inside the boxes (pixel centres), in the input frame."""
    h, w = saliency.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    out = []
    for sal, b in zip(saliency, boxes):
        inside = torch.zeros(h, w, dtype=torch.bool)
        for x0, y0, x1, y1 in b.tolist():
            inside |= (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
        out.append(float((sal * inside).sum() / sal.sum()))
    return torch.tensor(out)


_box_mass.higher_is_better = True  # type: ignore[attr-defined]


def _ramp(x: Tensor, targets: Tensor, **kwargs: Any) -> Tensor:
    """A user's explainer: the map rises from the left edge to the right one, whatever the class."""
    b, _, h, w = x.shape
    return torch.linspace(0.0, 1.0, w).expand(b, h, w).clone()


def test_user_explainer_and_metric(tmp_path: Path) -> None:
    root = make_voc(tmp_path / "VOC2007")
    loaded = tiny()
    ev = cameras.evaluate(loaded, ("voc", root), [_ramp], ["pointing", _box_mass], **API)
    assert ev.methods == ["_ramp"] and ev.metrics == ["pointing", "_box_mass"]
    assert ev.metric_info["_box_mass"] == ("_box_mass", True)
    ds = open_dataset("voc", root)
    checked = 0  # misses + 10 × hits
    for r in ev.rows:
        record = next(rec for rec in ds.records if rec.image == r.image)
        prepared = loaded.preprocess(ds.path(record))
        (H, W), (h, w) = prepared.original_size, prepared.input_size
        ramp = np.broadcast_to(np.linspace(0.0, 1.0, w), (h, w))
        inside = np.zeros((h, w), dtype=bool)
        cy, cx = np.mgrid[0:h, 0:w] + 0.5
        for a in record.objects:
            if a.label == r.cls:
                x0, y0, x1, y1 = a.box
                sx, sy = w / W, h / H
                inside |= (cx >= x0 * sx) & (cx < x1 * sx) & (cy >= y0 * sy) & (cy < y1 * sy)
        assert r.values["_box_mass"] == pytest.approx(float((ramp * inside).sum() / ramp.sum()), rel=1e-5)
        # the pointing game on the ramp: its peak lies in the photo's last few columns
        own = [a.box for a in record.objects if a.label == r.cls]
        if all(b[2] < W - 20 for b in own):
            assert r.values["pointing"] == 0.0, r
            checked += 1
        if any(b[2] >= W - 1 and b[1] <= 1 and b[3] >= H - 1 for b in own):
            assert r.values["pointing"] == 1.0, r
            checked += 10
    assert len(ev.rows) == 7 and checked % 10 and checked > 10
    s = ev.summary()["_ramp"]["_box_mass"]
    assert s["mean"] == pytest.approx(np.mean([r.values["_box_mass"] for r in ev.rows])) and s["n"] == 7

    # a user's configured CAMERAS object gives the rows of the registry's CAMERAS with the same scales
    own = CAMERAS(loaded.model, layer="features", resolutions=[1.0, 1.25])
    by_object = cameras.evaluate(loaded, ("voc", root), [own], ["pointing", "energy"], **API)
    by_name = cameras.evaluate(loaded, ("voc", root), ["cameras"], ["pointing", "energy"], **API)
    assert by_object.methods == ["cameras"] and records(by_object) == records(by_name)
    with pytest.raises(EvaluationError, match="explains another model"):
        cameras.evaluate(tiny(), ("voc", root), [own], ["pointing"], **API)


def test_memory_and_out_runs_agree(tmp_path: Path) -> None:
    root = make_voc(tmp_path / "VOC2007")
    kw: dict[str, Any] = {**API, "shard_size": 3}
    memory = cameras.evaluate(tiny(), ("voc", root), ["gradcam"], ["pointing", "energy", "rho_pos"], **kw)
    out = tmp_path / "run"
    disk = cameras.evaluate(tiny(), ("voc", root), ["gradcam"], ["pointing", "energy", "rho_pos"], out=out, **kw)
    assert records(memory) == records(disk) and len(memory.rows) == 7
    assert sorted(p.name for p in (out / "shards").glob("chunk-*.json")) == ["chunk-000000.json", "chunk-000001.json"]
    assert disk.written == ["per_image.csv", "summary.csv", "pointing_table.csv", "evaluate.json", "evaluate.png",
                            "skipped.csv"]  # fmt: skip
    memory.save(tmp_path / "saved")
    for name in ("per_image.csv", "summary.csv", "pointing_table.csv", "skipped.csv", "evaluate.json"):
        assert (tmp_path / "saved" / name).read_bytes() == (out / name).read_bytes(), name
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "done" and run["exit_code"] == 0 and run["command"] == "evaluate"
    assert run["dataset"]["kind"] == "voc" and run["world_size"] == 1
    assert run["config"]["methods"] == ["gradcam"] and run["config"]["shard_size"] == 3
    # a second call resumes: every chunk is committed, nothing is recomputed, the same rows come back
    said: list[tuple[str, str]] = []
    again = cameras.evaluate(
        tiny(),
        ("voc", root),
        ["gradcam"],
        ["pointing", "energy", "rho_pos"],
        out=out,
        log=lambda *a: said.append(a),
        **kw,
    )
    assert records(again) == records(disk)
    assert said == [
        ("info", "cameras evaluate: metrics pointing, energy, rho_pos"),  # which metrics run, then the resume
        ("info", f"cameras evaluate: resuming {out}: 6 of 6 photos done, 0 to go"),
    ]
    with pytest.raises(EvaluationError, match="methods differs") as err:
        cameras.evaluate(tiny(), ("voc", root), ["cameras"], ["pointing", "energy", "rho_pos"], out=out, **kw)
    assert str(err.value).startswith(f"--out {out}: ") and "\n" not in str(err.value)
    fresh = cameras.evaluate(tiny(), ("voc", root), ["cameras"], ["pointing"], out=out, resume=False, **kw)
    assert fresh.methods == ["cameras"]
    page = fresh.report()
    assert page == out / "report.html" and page.stat().st_size > 0
    memory_page = memory.report(tmp_path / "page")
    assert memory_page.is_file() and (tmp_path / "page" / "run.json").is_file()
    frame = memory.to_pandas()
    assert list(frame.columns) == ["image", "class", "class_name", "method", "pointing", "energy", "rho_pos",
                                   "difficult"]  # fmt: skip
    assert frame["energy"].tolist() == [r.values["energy"] for r in memory.rows]
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "pandas", None)
        with pytest.raises(ImportError, match="pip install pandas"):
            memory.to_pandas()


def test_the_call_holds_out_s_lock_nested_in_its_caller_s_and_releases_it_on_errors(tmp_path: Path) -> None:
    """Issue 21 §7 from Python: ``cameras evaluate`` (the CLI) locks ``--out`` and then calls ``cameras.evaluate``
    in the same thread: the call re-enters the lock and leaves it to the caller; a failed call releases its own."""
    root = make_voc(tmp_path / "VOC2007")
    out = tmp_path / "run"
    with lock_folder(out, command="cameras evaluate") as held:
        ev = cameras.evaluate(tiny(), ("voc", root), ["gradcam"], ["pointing"], out=out, **API)
        assert len(ev.rows) == 7 and (out / "per_image.csv").is_file()
        assert json.loads((out / LOCK_FILE).read_text())["token"] == held.holder["token"]  # still the caller's
    assert not (out / LOCK_FILE).exists()
    seen: list[dict[str, Any]] = []

    class Peek:  # a user's explainer that looks at the lock file while the call runs
        name = "peek"

        def __call__(self, x: Tensor, targets: Tensor) -> Tensor:
            seen.append(json.loads((out / LOCK_FILE).read_text()))
            raise KeyboardInterrupt  # the call ends by an exception mid-run

    with pytest.raises(KeyboardInterrupt):
        cameras.evaluate(tiny(), ("voc", root), [Peek()], ["pointing"], out=out, resume=False, **API)
    assert seen and seen[0]["command"] == "cameras.evaluate" and seen[0]["pid"] == os.getpid()
    assert not (out / LOCK_FILE).exists()  # released on the way out
    failed = tmp_path / "failed"
    with pytest.raises(EvaluationError, match="20 classes"):  # found after the lock was taken: the model's head
        cameras.evaluate(tiny(5), ("voc", root), ["gradcam"], ["pointing"], out=failed, **API)
    assert not failed.exists()  # the folder made for the lock is gone again: nothing was written


def test_bad_arguments_raise_the_cli_line_before_loading(
    tmp_path: Path, registry: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_voc(tmp_path / "VOC2007")

    def cli_line(argv: list[str]) -> str:
        assert (
            main(["evaluate", "--dataset", "voc", "--root", str(root), *argv, "--out", str(tmp_path / "o"), *FAST]) == 2
        )
        err = capsys.readouterr().err
        assert err.startswith("cameras evaluate: error: ") and err.count("\n") == 1
        return err[len("cameras evaluate: error: ") :].strip()

    def api_line(*args: Any, **kw: Any) -> str:
        with pytest.raises(EvaluationError) as err:
            cameras.evaluate(*args, **{**API, **kw})
        return str(err.value)

    loads = len(registry.loads)
    assert api_line("tiny20", ("voc", root), ["cameras"], ["pointing", "nope"]) == cli_line(
        ["--model", "tiny20", "--metrics", "pointing", "nope"]
    )
    assert api_line("tiny20", ("voc", root), ["nope"]) == cli_line(["--model", "tiny20", "--methods", "nope"])
    assert api_line("tiny20", ("voc", root), metrics=["energy_mask"]) == cli_line(
        ["--model", "tiny20", "--metrics", "energy_mask"]
    )
    assert api_line("nomodel", ("voc", root)) == cli_line(["--model", "nomodel"])
    assert api_line("tiny20", ("voc", root), split="val") == cli_line(["--model", "tiny20", "--split", "val"])
    assert len(registry.loads) == loads  # nothing was loaded: every check comes first
    assert api_line("tiny6", ("voc", root), ["cameras"], ["pointing"]) == cli_line(["--model", "tiny6"])
    with pytest.raises(EvaluationFileError):
        cameras.evaluate("tiny20", ("voc", tmp_path / "nowhere"), **API)
    assert "save_maps needs an output folder" in api_line("tiny20", ("voc", root), save_maps=True)
    assert "tolerance must be" in api_line("tiny20", ("voc", root), tolerance=-1.0)
    assert "resolutions" in api_line("tiny20", ("voc", root), resolutions=[1, 2])
    assert not (tmp_path / "o").exists()
