"""Fuzz-style tables of bad inputs for every command: files, options and output folders a user (or a hostile
tester) may throw at ``cameras``.

Every case asserts the contract of the CLI (:mod:`cameras.cli.common`):

* exit code 1 (some inputs failed, the others were written) or 2 (nothing could be done);
* exactly one ``cameras COMMAND: error:`` line on standard error, holding the expected words, and no traceback (nor
  the catch-all's "unexpected …" line, which would mean a bug slipped through);
* no temporary or partial file anywhere, and no output folder when nothing was written;
* a validation failure never loads the model (the fake registry counts loads);
* in a batch with one bad input, the good inputs of the same call are still written, whole.

The models are tiny random CNNs behind a fake registry (:mod:`tests.cli.fakes`), built once per module (the
commands never change a model: they run it inside :class:`cameras.engine.state.ModelState`).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

from cameras.cli.main import main
from cameras.models import LoadedModel, Preprocess

from ..engine.nets import TinyCNN
from .fakes import Registry, fake_registry

LABELS = [f"class{i}" for i in range(5)]


class Flat(nn.Module):
    """A CNN whose tapped layer is 1×1 (global pooling inside 'features'): every CAM of it is constant."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.features = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(8, len(LABELS))
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(self.stem(x)).flatten(1))


@functools.cache
def _tiny() -> LoadedModel:
    net = TinyCNN(classes=len(LABELS))
    net.cameras_default_layer = "features"  # type: ignore[assignment]
    return LoadedModel("tiny", net, "features", Preprocess(size=32), list(LABELS))


@functools.cache
def _flat() -> LoadedModel:
    net = Flat()
    net.cameras_default_layer = "features"  # type: ignore[assignment]
    return LoadedModel("flat", net, "features", Preprocess(size=40), list(LABELS))


@pytest.fixture
def reg(monkeypatch: pytest.MonkeyPatch) -> Registry:
    return fake_registry(monkeypatch, {"tiny": _tiny, "flat": _flat})


def _unwritable(tmp: Path) -> Path:
    """A folder that cannot be created or written, as root too: under /proc (no new entries there), or a folder
    without write permission for other users."""
    if hasattr(os, "geteuid") and os.geteuid() == 0 and Path("/proc/1").is_dir():
        return Path("/proc/1/cameras_out")
    locked = tmp / "locked"
    locked.mkdir(exist_ok=True)
    locked.chmod(0o500)
    return locked / "out"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every input file the tables use, made once."""
    d = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    good = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(good).save(d / "good.png")
    Image.fromarray((np.arange(40 * 60).reshape(40, 60) * 27).astype(np.uint16)).save(d / "gray16.png")
    Image.fromarray(np.dstack([good, np.full((40, 60), 128, np.uint8)])).save(d / "rgba.png")
    Image.fromarray(good).convert("CMYK").save(d / "cmyk.jpg")
    frames = [Image.fromarray(good), Image.fromarray(255 - good)]
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(good[:1, :1]).save(d / "one.png")  # a 1×1 photo
    Image.fromarray(rng.integers(0, 256, (20, 4000, 3), dtype=np.uint8)).save(d / "wide.png")
    data = (d / "good.png").read_bytes()
    (d / "trunc.png").write_bytes(data[: len(data) // 2])
    (d / "empty.png").write_bytes(b"")
    (d / "text.png").write_text("this is text, not a picture")
    (d / "zero.png").write_bytes(  # a PNG header claiming 0×5 pixels
        bytes.fromhex("89504e470d0a1a0a0000000d494844520000000000000005080200000000000000")
    )
    (d / "folder").mkdir()
    os.symlink(d / "loop.png", d / "loop.png")
    os.symlink(d / "nowhere", d / "dangling")  # a symbolic link to nothing
    (d / "a_file").write_text("not a folder")
    (d / "weights.pth").write_text("not a checkpoint")
    photos = d / "photos"
    photos.mkdir()
    Image.fromarray(good).save(photos / "a.png")
    Image.fromarray(255 - good).save(photos / "b.png")
    (photos / "text.png").write_text("not a picture")
    boxes = {"a.png": [{"class": 1, "box": [5, 5, 30, 35]}], "b.png": [{"class": 2, "box": [0, 0, 60, 40]}]}
    (d / "boxes.json").write_text(json.dumps(boxes))
    (d / "boxes_outside.json").write_text(
        json.dumps({**boxes, "a.png": [{"class": 1, "box": [100, 100, 120, 130]}]})  # beyond the 40×60 photo
    )
    (d / "boxes_all_outside.json").write_text(json.dumps({"a.png": [{"class": 1, "box": [100, 100, 120, 130]}]}))
    (d / "boxes_missing.json").write_text(json.dumps({**boxes, "missing.png": [{"class": 1, "box": [0, 0, 5, 5]}]}))
    (d / "boxes_text.json").write_text(json.dumps({**boxes, "text.png": [{"class": 1, "box": [0, 0, 5, 5]}]}))
    (d / "boxes_garbage.json").write_text("{ not json")
    (d / "boxes_empty.json").write_text("{}")
    runs = d / "runs"  # run folders for `cameras report`, each broken one way
    for name in ("garbage", "list", "nocommand", "badcsv", "emptycsv", "latin", "htmldir", "filesdir", "ok"):
        (runs / name).mkdir(parents=True)
    (runs / "garbage" / "run.json").write_text("{ not json")
    (runs / "list" / "run.json").write_text("[1, 2]")
    (runs / "nocommand" / "run.json").write_text('{"status": "done"}')
    (runs / "badcsv" / "per_image.csv").write_text("image,method\na.png,cameras\n")
    (runs / "emptycsv" / "per_image.csv").write_text("")
    (runs / "latin" / "per_image.csv").write_bytes(b"image,class,class_name,method\n\xff\xfe,1,x,y\n")
    (runs / "htmldir" / "report.html").mkdir()
    (runs / "filesdir" / "per_image.csv").write_text("image,class,class_name,method,pointing\na.png,1,x,cameras,1\n")
    (runs / "filesdir" / "report_files").write_text("not a folder")
    paths = {p.name.rsplit(".", 1)[0]: str(p) for p in d.iterdir()}
    paths.update({f"run_{p.name}": str(p) for p in runs.iterdir()})
    paths.update(missing=str(d / "missing.png"), photos=str(photos), dir=str(d), unwritable=str(_unwritable(d)))
    paths["under_file"] = str(d / "a_file" / "out")
    return paths


@dataclass(frozen=True)
class Case:
    """One bad call. ``argv`` may name ``{file}`` placeholders (see :func:`files`) and ``{out}``, the output folder
    (``--out {out}`` is added unless ``argv`` gives one). ``loads``: False = the model must not be loaded, None =
    either. ``written``: files that must exist, whole, in the output folder afterwards."""

    id: str
    argv: tuple[str, ...]
    code: int
    message: str
    loads: bool | None = False
    written: tuple[str, ...] = ()


def c(id: str, argv: str | tuple[str, ...], code: int, message: str, **kw: object) -> Case:
    return Case(id, tuple(argv.split()) if isinstance(argv, str) else argv, code, message, **kw)  # type: ignore[arg-type]


# Bad files and output folders, shared by the commands that take a photo (appended to each command's table).
BAD_FILES = [
    c("missing", "{missing}", 2, "no such file"),
    c("empty file", "{empty}", 2, "empty file"),
    c("not an image", "{text}", 2, "not an image file"),
    c("truncated", "{trunc}", 2, "truncated"),
    c("folder", "{folder}", 2, "is a folder"),
    c("zero-size PNG", "{zero}", 2, "not an image file"),
    c("device file", "/dev/null", 2, "not a regular file"),
    c("symlink loop", "{loop}", 2, "no such file"),
    c("4000x20 photo", "{wide}", 2, "longer than the limit"),
    c("photo over pixel cap", "{good} --max-photo-pixels 100", 2, "more than the limit"),
    c("input over pixel cap", "{good} --max-pixels 256", 2, "more than the limit"),
    c("scale over pixel cap", "{good} --resolutions 4000", 2, "exceeds the limit"),
    c("factor over pixel cap", "{good} --resolutions 1.0,64.0", 2, "exceeds the limit"),
]
BAD_OUT = [
    c("--out is a file", "{good} --out {a_file}", 2, "is an existing file"),
    c("--out under a file", "{good} --out {under_file}", 2, "lies under the file"),
    c("--out not writable", "{good} --out {unwritable}", 2, "not writable"),
    c("--out empty", ("{good}", "--out", ""), 2, "empty"),
    c("--out dangling symlink", "{good} --out {dangling}", 2, "a symbolic link to"),
    c("--out under a dangling symlink", "{good} --out {dangling}/run", 2, "which does not exist"),
    c("--out symlink loop", "{good} --out {loop}", 2, "a symbolic link to"),
]
BAD_RESOLUTIONS = [
    c("res empty", ("{good}", "--resolutions", ""), 2, "empty"),
    c("res blank", ("{good}", "--resolutions", " , "), 2, "empty"),
    c("res mixed", "{good} --resolutions 224,1.5", 2, "mixes absolute sizes"),
    c("res inf", "{good} --resolutions 1.0,inf", 2, "finite"),
    c("res nan", "{good} --resolutions nan", 2, "finite"),
    c("res 1e300", "{good} --resolutions 1.0,1e300", 2, "between 1/16 and 64"),
    c("res tiny sizes", "{good} --resolutions 8,12", 2, "at least 16"),
    c("res 1,2 as sizes", "{good} --resolutions 1,2", 2, "for factors write"),
    c("res text", "{good} --resolutions a,b", 2, "not a number"),
    c("res duplicate", "{good} --resolutions 224,224", 2, "twice"),
    c("res huge size", "{good} --resolutions 224,70000", 2, "at most"),
    c("res tiny factor", "{good} --resolutions 0.01", 2, "between 1/16 and 64"),
    c("res negative", "{good} --resolutions -224", 2, "at least 16"),
]
BAD_RUN = [
    c("device name", "{good} --device gpu0", 2, "not a torch device"),
    c("device absent", "{good} --device cuda:99", 2, "CUDA"),
    c("device meta", "{good} --device meta", 2, "does not compute"),
    c("device lazy", "{good} --device lazy", 2, "does not compute"),
    c("max-side 0", "{good} --max-side 0", 2, "--max-side"),
    c("max-pixels text", "{good} --max-pixels abc", 2, "--max-pixels"),
    c("max-photo-pixels negative", "{good} --max-photo-pixels -1", 2, "--max-photo-pixels"),
    c("model empty", ("{good}", "--model", ""), 2, "must not be empty"),
    c("model unknown", "{good} --model nosuch", 2, "Unknown model"),
    c("layer empty", ("{good}", "--layer", ""), 2, "must not be empty"),
    c("weights empty", ("{good}", "--weights", ""), 2, "must not be empty"),
    c("layer unknown", "{good} --layer nosuch", 2, "nosuch", loads=None),
]

EXPLAIN = [
    *BAD_FILES,
    *BAD_OUT,
    *BAD_RESOLUTIONS,
    *BAD_RUN,
    c("alpha 2", "{good} --alpha 2", 2, "--alpha"),
    c("alpha negative", "{good} --alpha -0.1", 2, "--alpha"),
    c("alpha nan", "{good} --alpha nan", 2, "finite"),
    c("alpha inf", "{good} --alpha inf", 2, "finite"),
    c("alpha text", "{good} --alpha abc", 2, "--alpha"),
    c("top-k 0", "{good} --top-k 0", 2, "--top-k"),
    c("top-k 1.5", "{good} --top-k 1.5", 2, "integer"),
    c("top-k huge", "{good} --top-k 100000", 2, "--top-k"),
    c("class empty", ("{good}", "--class", ""), 2, "must not be empty"),
    c("class unknown", ("{good}", "--class", "not a class at all"), 2, "not a class at all"),
    c("class and top-k", "{good} --class 1 --top-k 2", 2, "either --class or --top-k"),
    c("method empty", ("{good}", "--method", ""), 2, "must not be empty"),
    c("method unknown", "{good} --method nosuch", 2, "Unknown method"),
    c("precision unknown", "{good} --precision fp8", 2, "invalid choice"),
    c("precision on gradcam", "{good} --method gradcam --precision bf16", 2, "does not apply"),
    c("resolutions on gradcam", "{good} --method gradcam --resolutions 1.0,1.5", 2, "does not apply"),
    c("class out of range", "{good} --class 7", 2, "out of range", loads=True),  # nothing could be done
    c("against empty", ("{good}", "--against", ""), 2, "must not be empty"),
    c("against unknown", ("{good}", "--against", "not a class at all"), 2, "not a class at all"),
    c("against itself", "{good} --class 1 --against 1", 2, "against itself"),
    c("against auto twice", "{good} --against auto --against 2", 2, "stands alone"),
    c("gamma without against", "{good} --gamma 0.5", 2, "--gamma and --contrast-k apply"),
    c("gamma inf", "{good} --against 2 --gamma inf", 2, "finite"),
    c("contrast-k 0", "{good} --against auto --contrast-k 0", 2, "--contrast-k"),
    c("contrast-k without auto", "{good} --against 2 --contrast-k 2", 2, "applies to --against auto"),
    c(
        "batch: text among good",
        "{good} {text} {gray16} --resolutions 1.0,1.5",
        1,
        "text.png",
        loads=True,
        written=("good.png", "good.npy", "good.json", "gray16.png", "gray16.npy", "gray16.json"),
    ),
    c(
        "batch: missing among bundled",
        "{missing} chelsea {rgba} --resolutions 1.0,1.5",
        1,
        "missing.png",
        loads=True,
        written=("chelsea.png", "chelsea.npy", "chelsea.json", "rgba.json"),
    ),
    c(
        "batch: too long among good",
        "{wide} {cmyk} {anim} --resolutions 1.0,1.5",
        1,
        "wide.png",
        loads=True,
        written=("cmyk.json", "anim.json"),
    ),
]

COMPARE = [
    *BAD_FILES,
    *BAD_OUT,
    *BAD_RESOLUTIONS,
    *(x for x in BAD_RUN if x.id != "model empty" and x.id != "model unknown"),
    c("dpi 0", "{good} --dpi 0", 2, "--dpi"),
    c("dpi negative", "{good} --dpi -5", 2, "--dpi"),
    c("dpi huge", "{good} --dpi 1000000", 2, "--dpi"),
    c("dpi float", "{good} --dpi 1e9", 2, "integer"),
    c("alpha 2", "{good} --alpha 2", 2, "--alpha"),
    c("alpha nan", "{good} --alpha nan", 2, "finite"),
    c("methods empty", ("{good}", "--methods", ""), 2, "empty"),
    c("methods commas", "{good} --methods ,", 2, "empty"),
    c("methods duplicate", "{good} --methods gradcam,GradCAM", 2, "twice"),
    c("methods unknown", "{good} --methods nosuch", 2, "Unknown method"),
    c("classes empty", ("{good}", "--classes", ""), 2, "empty"),
    c("classes unknown", ("{good}", "--classes", "not a class at all"), 2, "not a class at all", loads=None),
    c("models empty", ("{good}", "--models", ""), 2, "empty"),
    c("models unknown", "{good} --models tiny,nosuch", 2, "Unknown model"),
    c("several lists", "{good} --methods gradcam,layercam --models tiny,flat", 2, "one thing at a time"),
    c("three lists", "{good} --classes 1,2 --methods gradcam,layercam --models tiny,flat", 2, "all list"),
    c("contrastive alone", "{good} --contrastive", 2, "--contrastive needs two or more --classes"),
    c("gamma without contrastive", "{good} --classes 1,2 --gamma 0.5", 2, "--gamma applies"),
    c("gamma nan", "{good} --classes 1,2 --contrastive --gamma nan", 2, "finite"),
    c("layer with models", "{good} --models tiny,flat --layer features", 2, "--layer applies to one model"),
    c("class out of range", "{good} --methods gradcam --classes 7", 2, "out of range", loads=True),
]

EVAL = ("--images", "{photos}", "--steps", "4", "--resolutions", "1.0", "--no-progress")
EVALUATE = [
    c(i.id, (*EVAL, "--boxes", "{boxes}", *i.argv[1:]), i.code, i.message, loads=i.loads)
    for i in [*BAD_OUT, *BAD_RESOLUTIONS, *BAD_RUN]
] + [
    c("images missing", (*EVAL[2:], "--images", "{missing}", "--boxes", "{boxes}"), 2, "not a folder"),
    c("images is a file", (*EVAL[2:], "--images", "{good}", "--boxes", "{boxes}"), 2, "not a folder"),
    c("images empty", (*EVAL[2:], "--images", "", "--boxes", "{boxes}"), 2, "must not be empty"),
    c("boxes missing", (*EVAL, "--boxes", "{missing}"), 2, "missing.png"),
    c("boxes garbage", (*EVAL, "--boxes", "{boxes_garbage}"), 2, "boxes_garbage"),
    c("boxes empty file", (*EVAL, "--boxes", "{boxes_empty}"), 2, "no annotated photo"),
    c("boxes is a photo", (*EVAL, "--boxes", "{good}"), 2, "good.png"),
    c(  # photos are decoded by the run's DataLoader (after the model is loaded), so the skips are recorded
        "every box outside",
        (*EVAL, "--boxes", "{boxes_all_outside}"),
        2,
        "no pixel on the 40×60 photo",
        loads=True,
        written=("skipped.csv",),
    ),
    c("metrics empty", (*EVAL, "--boxes", "{boxes}", "--metrics", ""), 2, "empty"),
    c("metrics unknown", (*EVAL, "--boxes", "{boxes}", "--metrics", "accuracy"), 2, "accuracy"),
    c("metrics density typo", (*EVAL, "--boxes", "{boxes}", "--metrics", "pointing,rho"), 2, "rho"),
    c(
        "metrics energy_mask, no masks",
        (*EVAL, "--boxes", "{boxes}", "--metrics", "energy_mask"),
        2,
        "needs instance masks",
    ),
    c("methods empty", (*EVAL, "--boxes", "{boxes}", "--methods", ""), 2, "empty"),
    c("methods unknown", (*EVAL, "--boxes", "{boxes}", "--methods", "nosuch"), 2, "Unknown method"),
    c("tolerance negative", (*EVAL, "--boxes", "{boxes}", "--tolerance", "-1"), 2, "--tolerance"),
    c("tolerance inf", (*EVAL, "--boxes", "{boxes}", "--tolerance", "inf"), 2, "finite"),
    c("tolerance nan", (*EVAL, "--boxes", "{boxes}", "--tolerance", "nan"), 2, "finite"),
    c("steps 0", (*EVAL, "--boxes", "{boxes}", "--steps", "0"), 2, "--steps"),
    c("steps huge", (*EVAL, "--boxes", "{boxes}", "--steps", "1000000"), 2, "--steps"),
    c("batch-size 0", (*EVAL, "--boxes", "{boxes}", "--batch-size", "0"), 2, "--batch-size"),
    c("gamma nan", (*EVAL, "--boxes", "{boxes}", "--gamma", "nan"), 2, "finite"),
    c("target unknown", (*EVAL, "--boxes", "{boxes}", "--target", "both"), 2, "invalid choice"),
    c("frame unknown", (*EVAL, "--boxes", "{boxes}", "--frame", "screen"), 2, "invalid choice"),
    c(
        "batch: box outside the photo",
        (*EVAL, "--boxes", "{boxes_outside}"),
        1,
        "no pixel on the 40×60 photo",
        loads=True,
        written=("per_image.csv", "summary.csv", "evaluate.json", "evaluate.png"),
    ),
    c(
        "batch: annotated photo missing",
        (*EVAL, "--boxes", "{boxes_missing}"),
        1,
        "missing.png",
        loads=True,
        written=("per_image.csv", "evaluate.json"),
    ),
    c(
        "batch: annotated photo not an image",
        (*EVAL, "--boxes", "{boxes_text}"),
        1,
        "text.png",
        loads=True,
        written=("per_image.csv", "evaluate.json"),
    ),
]

SANE = ("--resolutions", "1.0", "--max-steps", "2", "--no-progress")
ADV = ("--test", "adversarial", "--methods", "gradcam", "--patch", "8", "--attack-steps", "2", "--no-progress")
SANITY = [
    c(
        i.id,
        (*i.argv, *SANE) if "--resolutions" not in i.argv else (*i.argv, "--no-progress"),
        i.code,
        i.message,
        loads=i.loads,
    )
    for i in [*BAD_FILES, *BAD_OUT, *BAD_RESOLUTIONS, *BAD_RUN]
] + [
    c("methods empty", ("{good}", *SANE, "--methods", ""), 2, "empty"),
    c("methods unknown", ("{good}", *SANE, "--methods", "nosuch"), 2, "Unknown method"),
    c("methods duplicate", ("{good}", *SANE, "--methods", "gradcam", "gradcam"), 2, "twice"),
    c("max-steps 0", ("{good}", *SANE, "--max-steps", "0"), 2, "--max-steps"),
    c("max-steps negative", ("{good}", *SANE, "--max-steps", "-3"), 2, "--max-steps"),
    c("blocks empty", ("{good}", *SANE, "--blocks", ""), 2, "empty"),
    c("blocks unknown", ("{good}", *SANE, "--blocks", "nosuch"), 2, "nosuch", loads=None),
    c("class empty", ("{good}", *SANE, "--class", ""), 2, "must not be empty"),
    c("class unknown", ("{good}", *SANE, "--class", "not a class at all"), 2, "not a class at all"),
    c("class out of range", ("{good}", *SANE, "--class", "7"), 2, "7", loads=True),
    c("seed negative", ("{good}", *SANE, "--seed", "-1"), 2, "--seed"),
    c("bn-stats unknown", ("{good}", *SANE, "--bn-stats", "zero"), 2, "invalid choice"),
    c("variant unknown", ("{good}", *SANE, "--variant", "random"), 2, "invalid choice"),
    c("no image", SANE, 2, "required"),
    c("test unknown", ("{good}", *SANE, "--test", "nope"), 2, "invalid choice"),
    c("adv patch 0", ("{good}", *ADV, "--patch", "0"), 2, "--patch"),
    c("adv patch text", ("{good}", *ADV, "--patch", "big"), 2, "integer"),
    c("adv patch over the image", ("{good}", *ADV, "--patch", "400"), 2, "larger than the image", loads=True),
    c("adv eps 0", ("{good}", *ADV, "--eps", "0"), 2, "--eps"),
    c("adv eps negative", ("{good}", *ADV, "--eps", "-8"), 2, "--eps"),
    c("adv eps nan", ("{good}", *ADV, "--eps", "nan"), 2, "finite"),
    c("adv eps inf", ("{good}", *ADV, "--eps", "inf"), 2, "finite"),
    c("adv eps over 255", ("{good}", *ADV, "--eps", "300"), 2, "--eps"),
    c("adv attack-steps 0", ("{good}", *ADV, "--attack-steps", "0"), 2, "--attack-steps"),
    c("adv attack-steps float", ("{good}", *ADV, "--attack-steps", "2.5"), 2, "integer"),
    c("adv batch-size 0", ("{good}", *ADV, "--batch-size", "0"), 2, "--batch-size"),
    c("adv class out of range", ("{good}", *ADV, "--class", "7"), 2, "7", loads=True),
]

ATT0 = ("--steps", "2", "--search-steps", "1", "--no-figures")
ATT = (*ATT0, "--focus", "gradcam,full")
PEN = ("--objective", "penalty", "--steps", "2", "--betas", "0.5", "--beta", "5", "--no-figures")
ATTACK = [
    c(i.id, (*i.argv, *ATT), i.code, i.message, loads=i.loads)
    for i in [*BAD_FILES, *BAD_OUT, *BAD_RUN]
    if i.id not in ("scale over pixel cap", "factor over pixel cap")
] + [
    c("area 0", ("{good}", *ATT, "--area", "0"), 2, "--area"),
    c("area 1.5", ("{good}", *ATT, "--area", "1.5"), 2, "--area"),
    c("area nan", ("{good}", *ATT, "--area", "nan"), 2, "finite"),
    c("area negative", ("{good}", *ATT, "--area", "-0.1"), 2, "--area"),
    c("area text", ("{good}", *ATT, "--area", "ten"), 2, "--area"),
    c("steps 0", ("{good}", *ATT, "--steps", "0"), 2, "--steps"),
    c("steps float", ("{good}", *ATT, "--steps", "1.5"), 2, "integer"),
    c("search-steps negative", ("{good}", *ATT, "--search-steps", "-1"), 2, "--search-steps"),
    c("search-steps huge", ("{good}", *ATT, "--search-steps", "100"), 2, "--search-steps"),
    c("focus empty", ("{good}", *ATT0, "--focus", ""), 2, "empty"),
    c("focus commas", ("{good}", *ATT0, "--focus", ","), 2, "empty"),
    c("focus duplicate", ("{good}", *ATT0, "--focus", "full,FULL"), 2, "twice"),
    c("focus unknown only", ("{good}", *ATT0, "--focus", "nosuch"), 2, "no usable focus"),
    c("norm unknown", ("{good}", *ATT, "--norm", "l3"), 2, "invalid choice"),
    c("attack method unknown", ("{good}", *ATT, "--method", "sgd"), 2, "invalid choice"),
    c("seed negative", ("{good}", *ATT, "--seed", "-1"), 2, "--seed"),
    c("objective unknown", ("{good}", *ATT, "--objective", "both"), 2, "invalid choice"),
    c("penalty steps 0", ("{good}", *PEN, "--steps", "0"), 2, "--steps"),
    c("penalty eps 0", ("{good}", *PEN, "--eps", "0"), 2, "--eps"),
    c("penalty eps nan", ("{good}", *PEN, "--eps", "nan"), 2, "finite"),
    c("penalty eps over 255", ("{good}", *PEN, "--eps", "256"), 2, "--eps"),
    c("penalty step-size 0", ("{good}", *PEN, "--step-size", "0"), 2, "--step-size"),
    c("penalty step-size inf", ("{good}", *PEN, "--step-size", "inf"), 2, "finite"),
    c("penalty beta negative", ("{good}", *PEN, "--beta", "-1"), 2, "--beta"),
    c("penalty beta nan", ("{good}", *PEN, "--beta", "nan"), 2, "finite"),
    c("penalty beta huge", ("{good}", *PEN, "--beta", "1e300"), 2, "--beta"),
    c("penalty betas empty", ("{good}", *PEN, "--betas", ""), 2, "empty"),
    c("penalty betas commas", ("{good}", *PEN, "--betas", ",,"), 2, "empty"),
    c("penalty betas text", ("{good}", *PEN, "--betas", "1,x"), 2, "number"),
    c("penalty betas negative", ("{good}", *PEN, "--betas", "1,-2"), 2, "--betas"),
    c("penalty betas inf", ("{good}", *PEN, "--betas", "1,inf"), 2, "finite"),
    c("penalty betas duplicate", ("{good}", *PEN, "--betas", "1,1.0"), 2, "twice"),
    c("penalty confidence 0", ("{good}", *PEN, "--confidence", "0"), 2, "--confidence"),
    c("penalty confidence 1.5", ("{good}", *PEN, "--confidence", "1.5"), 2, "--confidence"),
    c("penalty confidence nan", ("{good}", *PEN, "--confidence", "nan"), 2, "finite"),
    c("penalty batch-size 0", ("{good}", *PEN, "--batch-size", "0"), 2, "--batch-size"),
    c("penalty focus without none", ("{good}", *PEN, "--focus", "gradcam,shuffled"), 2, "must include 'none'"),
    c("penalty focus mask source", ("{good}", *PEN, "--focus", "gradcam,random,none"), 2, "unknown focus source"),
    c("penalty focus unknown", ("{good}", *PEN, "--focus", "nosuch,none"), 2, "nosuch"),
    c(
        "penalty batch: text among good",
        ("{good}", "{text}", *PEN, "--focus", "gradcam,none"),
        1,
        "text.png",
        loads=True,
        written=("penalty.json", "penalty.md", "penalty.csv", "penalty_summary.csv"),
    ),
    c(
        "batch: text among good",
        ("{good}", "{text}", "{rgba}", *ATT),
        1,
        "text.png",
        loads=True,
        written=("attack.json", "attack.md"),
    ),
    c(
        "batch: unknown focus among good",
        ("{good}", *ATT0, "--focus", "full,nosuch"),
        1,
        "nosuch",
        loads=True,
        written=("attack.json", "attack.md"),
    ),
]

# `cameras report RUN_DIR` reads a folder and takes no --out: its table is the ways a run folder can be unusable.
REPORT = [
    c("no folder", (), 2, "required"),
    c("missing", "{missing}", 2, "no such folder"),
    c("a file", "{good}", 2, "is not a folder"),
    c("empty", ("",), 2, "must not be empty"),
    c("device file", "/dev/null", 2, "is not a folder"),
    c("symlink loop", "{loop}", 2, "no such folder"),
    c("under a file", "{under_file}", 2, "no such folder"),
    c("not writable", "{unwritable}", 2, "no such folder"),
    c("two folders", "{run_ok} {run_ok}", 2, "unrecognized arguments"),
    c("unknown option", "{run_ok} --out x", 2, "unrecognized arguments"),
    c("run.json garbage", "{run_garbage}", 2, "not a readable run record"),
    c("run.json a list", "{run_list}", 2, "no 'command' field"),
    c("run.json without command", "{run_nocommand}", 2, "no 'command' field"),
    c("per_image.csv lacks columns", "{run_badcsv}", 2, "per_image.csv has no column class, class_name"),
    c("per_image.csv empty", "{run_emptycsv}", 2, "per_image.csv is empty"),
    c("per_image.csv not UTF-8", "{run_latin}", 2, "per_image.csv is not UTF-8 text (byte 0xff cannot be decoded)"),
    c("report.html a folder", "{run_htmldir}", 2, "is a folder"),
    c("report_files a file", "{run_filesdir}", 2, "is an existing file"),
]
OUTLESS = ("report",)
"""Commands without ``--out`` (no ``--out`` is added to their cases)."""

TABLES = {
    "explain": EXPLAIN,
    "compare": COMPARE,
    "evaluate": EVALUATE,
    "sanity": SANITY,
    "attack": ATTACK,
    "report": REPORT,
}
CASES = [(cmd, case) for cmd, table in TABLES.items() for case in table]


def _fill(argv: tuple[str, ...], files: dict[str, str], out: Path, cmd: str = "") -> list[str]:
    values = {**files, "out": str(out)}
    filled = [a.format_map(values) for a in argv]
    return filled if "--out" in argv or cmd in OUTLESS else [*filled, "--out", str(out)]


def _leftovers(*roots: Path) -> list[Path]:
    """Temporary files of the atomic writer, or probe files of the folder check, left anywhere."""
    found: list[Path] = []
    for root in roots:
        if root.is_dir():
            found += [p for p in root.rglob(".*") if p.name.endswith(".tmp") or p.name.startswith(".cameras-probe")]
    return found


def _check_whole(path: Path) -> None:
    if path.suffix == ".json":
        json.loads(path.read_text())
    elif path.suffix == ".npy":
        np.load(path)
    elif path.suffix == ".png":
        with Image.open(path) as im:
            im.load()
    elif path.suffix in (".csv", ".md"):
        assert path.read_text().endswith("\n")


def test_every_command_has_a_table() -> None:
    from cameras.cli.main import COMMANDS

    assert set(TABLES) == set(COMMANDS)
    for cmd, table in TABLES.items():
        ids = [case.id for case in table]
        assert len(ids) == len(set(ids)), f"{cmd}: duplicate case ids"
        assert len(table) >= (15 if cmd in OUTLESS else 40), (cmd, len(table))


@pytest.mark.parametrize(("cmd", "case"), CASES, ids=[f"{cmd}: {case.id}" for cmd, case in CASES])
def test_bad_input(
    cmd: str,
    case: Case,
    files: dict[str, str],
    reg: Registry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    argv = [cmd, *_fill(case.argv, files, out, cmd)]
    code = main(argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ": error:" in line]
    assert code == case.code, (argv, err)
    assert len(errors) == 1, err
    assert errors[0].startswith(f"cameras {cmd}: error: ") and case.message in errors[0], errors[0]
    assert "Traceback" not in err and "unexpected" not in err, err
    assert not _leftovers(tmp_path, Path(files["dir"]))
    if case.loads is False:
        assert reg.loads == [], f"the model was loaded for a validation failure: {argv}"
    elif case.loads:
        assert reg.loads, "the case expected the model to run"
    if case.written:
        for name in case.written:
            _check_whole(out / name)
    elif not any(a.startswith("--out") for a in case.argv):
        assert not out.exists(), f"{out} created by a run that wrote nothing"


@pytest.mark.parametrize("cmd", list(TABLES))
def test_no_traceback_in_a_real_process(cmd: str, files: dict[str, str], tmp_path: Path) -> None:
    """The issue's first finding, in a real process: ``--out`` an existing file gave every command a traceback."""
    argv = {"evaluate": ["--images", files["photos"], "--boxes", files["boxes"]], "sanity": [files["good"]]}
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    folder = [files["a_file"]] if cmd in OUTLESS else ["--out", files["a_file"]]  # report: RUN_DIR is the folder
    proc = subprocess.run(
        [sys.executable, "-m", "cameras.cli", cmd, *argv.get(cmd, []), *folder],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2
    option = "RUN_DIR" if cmd in OUTLESS else "--out"
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"cameras {cmd}: error: argument {option}:")
    assert ("is not a folder" if cmd in OUTLESS else "is an existing file") in proc.stderr
    assert "Traceback" not in proc.stderr


# -- good inputs of every kind, and what a degenerate map looks like ------------------------------------------------


def test_explain_reads_every_kind_of_photo(
    files: dict[str, str], reg: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kinds = ["good", "gray16", "rgba", "cmyk", "anim"]
    out = tmp_path / "out"
    argv = [*(files[k] for k in kinds), "chelsea", "--resolutions", "1.0,1.5", "--no-progress", "--out", str(out)]
    assert main(["explain", *argv]) == 0
    assert reg.loads == ["tiny"]  # one load for the whole batch
    for k in [*kinds, "chelsea"]:
        side = json.loads((out / f"{k}.json").read_text())
        sal = np.load(out / f"{k}.npy")
        assert sal.shape == tuple(side["original_size"]) and 0 <= sal.min() < 0.5 < sal.max() <= 1
        assert side["degenerate"] is False
    notes = {k: json.loads((out / f"{k}.json").read_text())["warnings"] for k in kinds}
    assert notes["gray16"] == ["photo: 16-bit scaled to 8-bit"]
    assert notes["rgba"] == ["photo: alpha composited over the background"]
    assert notes["anim"] == ["photo: first of 2 frames"]
    assert "error" not in capsys.readouterr().err


def test_repeated_stems_do_not_overwrite(files: dict[str, str], reg: Registry, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "good.png").write_bytes(Path(files["rgba"]).read_bytes())
    out = tmp_path / "out"
    assert main(["explain", files["good"], str(other / "good.png"), "--no-progress", "--out", str(out)]) == 0
    assert json.loads((out / "good.json").read_text())["image"] == files["good"]
    assert json.loads((out / "good_2.json").read_text())["image"] == str(other / "good.png")


def test_degenerate_maps_are_flagged_not_stretched(
    files: dict[str, str], reg: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 1×1 layer gives a constant map: saved as zeros, flagged in the JSON, warned about; its metrics are
    undefined (NaN, counted), never a number."""
    out = tmp_path / "out"
    assert main(["explain", files["good"], "--model", "flat", "--method", "gradcam", "--out", str(out)]) == 0
    side = json.loads((out / "good.json").read_text())
    assert side["degenerate"] is True and "degenerate" in side["warnings"][0]
    assert not np.load(out / "good.npy").any()
    err = capsys.readouterr().err
    assert err.count("cameras explain: warning:") == 1 and "error" not in err

    ev = tmp_path / "ev"
    argv = ["evaluate", "--images", files["photos"], "--boxes", files["boxes"], "--model", "flat", "--steps", "4"]
    assert main([*argv, "--methods", "gradcam", "--no-progress", "--out", str(ev)]) == 0
    report = json.loads((ev / "evaluate.json").read_text())
    for metric, stats in report["summary"]["gradcam"].items():
        assert stats == {"mean": None, "std": None, "n": 0, "undefined": 2}, metric
    assert all(r["degenerate"] and r["pointing"] is None for r in report["rows"])
    assert "undefined" in capsys.readouterr().out

    sa = tmp_path / "sa"
    assert (
        main(["sanity", files["good"], "--model", "flat", "--methods", "gradcam", "--no-progress", "--out", str(sa)])
        == 0
    )
    report = json.loads((sa / "sanity.json").read_text())
    spearman = report["methods"]["gradcam"]["spearman_abs"]
    assert spearman["mean"][0] is None and spearman["undefined"][0] == 1  # not "0.000 for a map against itself"
    assert "degenerate" in report["warnings"][0]


def test_one_pixel_photo_is_a_degenerate_result(files: dict[str, str], reg: Registry, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["explain", files["one"], "--method", "gradcam", "--no-progress", "--out", str(out)]) in (0,)
    side = json.loads((out / "one.json").read_text())
    sal = np.load(out / "one.npy")
    assert sal.shape == (1, 1) and side["original_size"] == [1, 1]
    assert side["degenerate"] is True  # a 1×1 map is constant by definition


def test_absolute_sizes_keep_the_aspect(files: dict[str, str], reg: Registry, tmp_path: Path) -> None:
    """``--resolutions 32,48`` are shorter sides: the 40×60 photo's 32×48 input runs at 32×48 and 48×72 (never a
    squashed 48×48); with --square, squares."""
    out = tmp_path / "out"
    assert main(["explain", files["good"], "--resolutions", "32,48", "--no-progress", "--out", str(out)]) == 0
    assert json.loads((out / "good.json").read_text())["resolutions"] == [[32, 48], [48, 72]]
    assert (
        main(["explain", files["good"], "--resolutions", "32,48", "--square", "--no-progress", "--out", str(out)]) == 0
    )
    assert json.loads((out / "good.json").read_text())["resolutions"] == [[32, 32], [48, 48]]


def test_interrupted_run_leaves_whole_files_only(
    files: dict[str, str],
    reg: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Ctrl-C in the middle of writing the .npy: the PNG before it is whole, the old .npy is untouched, the JSON
    after it is never written, no temporary file is left, and the exit is one line with code 130."""
    import cameras.io.atomic as atomic

    out = tmp_path / "out"
    out.mkdir()
    (out / "good.npy").write_bytes(b"old content")

    def interrupted_save(f: object, arr: object, allow_pickle: bool = False) -> None:
        f.write(b"\x93NUMPY half")  # type: ignore[attr-defined]
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.np, "save", interrupted_save)
    assert main(["explain", files["good"], "--no-progress", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cameras explain: error: interrupted")
    _check_whole(out / "good.png")
    assert (out / "good.npy").read_bytes() == b"old content"
    assert not (out / "good.json").exists() and not _leftovers(out)


def test_weights_file_errors_with_the_real_registry(
    files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A checkpoint that is not one, or is missing, is one line (the photo was read, nothing written)."""
    out = tmp_path / "out"
    for weights, message in ((files["weights"], "Cannot read"), (files["missing"], "not found")):
        assert main(["explain", files["good"], "--weights", weights, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("cameras explain: error:") and message in err, err
        assert not out.exists()
