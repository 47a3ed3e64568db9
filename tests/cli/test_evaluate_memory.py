"""A real `cameras evaluate` process on a COCO file that declares a 100000×100000 photo (really 48×64) with a polygon,
under ``--metrics energy_mask``: the photo is skipped with its reason (the declared size is checked against the decoded
photo before any mask is decoded at it), the honest photo is scored, and the child's peak RSS stays bounded.

The child runs under an address-space limit (``RLIMIT_AS``) well above what it needs, so that code decoding the mask
at the declared size (10¹⁰ pixels) fails fast instead of exhausting the machine's memory.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cameras

from ..datasets.fixtures import photo

pytest.importorskip("timm")
pytest.importorskip("pycocotools")

PEAK_LIMIT = 2 << 30  # bytes: the run needs about 1.2 GB (torch and timm included)
ADDRESS_SPACE = 12 << 30  # bytes: the child's virtual memory cap; a 10¹⁰-byte mask does not fit beside torch


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


@pytest.mark.slow
def test_declared_size_does_not_drive_memory(tmp_path: Path) -> None:
    from cameras import models

    root = tmp_path / "coco"
    for k in (1, 2):
        photo(root / "val2014" / f"m{k}.jpg", (48, 64), k)
    polygon = [[10.0, 5.0, 40.0, 8.0, 30.0, 35.0, 8.0, 30.0]]
    data = {
        "images": [
            {"id": 1, "file_name": "m1.jpg", "height": 100000, "width": 100000},  # a lie: the photo is 48×64
            {"id": 2, "file_name": "m2.jpg", "height": 48, "width": 64},
        ],
        "annotations": [
            {"id": k, "image_id": k, "category_id": k, "bbox": [8, 5, 32, 30], "segmentation": polygon, "iscrowd": 0}
            for k in (1, 2)
        ],
        "categories": [{"id": i, "name": f"c{i}"} for i in (1, 2, 3)],
    }
    (root / "annotations").mkdir()
    (root / "annotations" / "instances_val2014.json").write_text(json.dumps(data))
    ckpt = tmp_path / "c3.pt"
    torch.manual_seed(0)
    torch.save(models.load("timm:test_convnext", None, num_classes=3).model.state_dict(), ckpt)
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([str(Path(cameras.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
    )
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "cameras", "evaluate", "--dataset", "coco", "--root", str(root),
        "--model", "timm:test_convnext", "--weights", str(ckpt), "--methods", "gradcam", "--metrics", "energy_mask",
        "--resolutions", "64", "--workers", "0", "--no-progress", "--device", "cpu", "--out", str(out),
    ]  # fmt: skip
    with open(tmp_path / "stdout", "w") as so, open(tmp_path / "stderr", "w") as se:
        proc = subprocess.Popen(cmd, env=env, stdout=so, stderr=se, preexec_fn=_limit)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak, not that of other tests' children
    code = os.waitstatus_to_exitcode(status)
    err = (tmp_path / "stderr").read_text()
    peak = usage.ru_maxrss * 1024  # kilobytes on Linux
    assert code == 1, err  # 1: a photo was skipped, the rest written
    assert peak < PEAK_LIMIT, f"peak RSS {peak / 2**30:.2f} GiB"
    assert "unexpected" not in err and "Traceback" not in err
    with open(out / "skipped.csv", newline="") as f:
        skipped = list(csv.DictReader(f))
    assert [r["image"] for r in skipped] == ["m1.jpg"]
    assert "declares a 100000×100000 photo but it is 48×64" in skipped[0]["reason"]
    with open(out / "per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["image"], r["class"]) for r in rows] == [("m2.jpg", "1")]
    assert 0.0 <= float(rows[0]["energy_mask"]) <= 1.0
