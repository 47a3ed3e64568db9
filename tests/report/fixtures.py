"""Run folders for the report tests, written file by file as a data-set ``evaluate`` run lays them out.

:func:`dataset_run` writes what the data-set issue's ``evaluate`` writes: ``per_image.csv`` (``image, class,
class_name, method`` + one column per metric + an extra text column), ``summary.csv``, ``pointing_table.csv``,
``skipped.csv``, ``run.json`` with ``image_root`` / ``dataset`` / ``world_size``, and optionally the ``--save-maps``
store (``maps/index.csv`` + ``.npz`` chunks of float16 maps at the model-input resolution). The photos are flat
colours, one per image, and the maps are a bright square whose place is known, so a test can check pixels of the
thumbnails.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

METHODS = ("cameras", "gradcam")
METRICS = ("pointing", "energy", "deletion")
HIGHER = {"pointing": True, "energy": True, "deletion": False}
BOX = (30, 20, 54, 36)  # x0, y0, x1, y1 on every 60 × 40 photo: the map's peak (top-left quarter) is outside
INPUT_HW = (24, 36)  # the model input of every photo (aspect 2:3, like the 40 × 60 photos)


@dataclass
class DatasetRun:
    """A written run folder: ``rows`` as in ``per_image.csv`` (dicts of text), the photos' folder, the maps."""

    path: Path
    photos: Path
    rows: list[dict[str, str]]
    maps: dict[tuple[str, str, str], np.ndarray]


def _value(i: int, method: str, metric: str) -> float:
    """Deterministic metric values with ties broken: pointing misses on every third image for gradcam, on every
    fifth for cameras; energy and deletion spread over (0, 1); image 3's cameras energy is undefined (NaN)."""
    m = METHODS.index(method)
    if metric == "pointing":
        return 0.0 if (i % (5 if m == 0 else 3)) == 2 else 1.0
    if metric == "energy":
        return math.nan if (i == 3 and m == 0) else round(((i * 37 + 11 * m) % 97) / 97 + 0.001 * i, 6)
    return round(((i * 53 + 7 * m) % 89) / 89, 6)


def dataset_run(root: Path, n_images: int = 30, *, maps: bool = True, classes_per_image: int = 1) -> DatasetRun:
    """Write a data-set run of ``n_images`` photos × ``classes_per_image`` × :data:`METHODS` into ``root/run``."""
    photos = root / "photos" / "sub"
    photos.mkdir(parents=True)
    run = root / "run"
    run.mkdir()
    rows: list[dict[str, str]] = []
    saved: dict[tuple[str, str, str], np.ndarray] = {}
    for i in range(n_images):
        name = f"sub/img_{i:03d}{' #x' if i == 7 else ''}.png"  # one name with a space and a '#'
        colour = np.array([(i * 40) % 256, (i * 90) % 256, (i * 150) % 256], dtype=np.uint8)
        Image.fromarray(np.broadcast_to(colour, (40, 60, 3)).copy()).save(root / "photos" / name)
        for c in range(classes_per_image):
            cls = str(100 + (i + c) % 7)
            for method in METHODS:
                row = {"image": name, "class": cls, "class_name": f"class <{cls}>", "method": method}
                for k in METRICS:
                    v = _value(i + 10 * c, method, k)
                    row[k] = "nan" if math.isnan(v) else f"{v:.6g}"
                row["note"] = "odd" if i % 2 else "even"
                rows.append(row)
                if maps:
                    sal = np.zeros(INPUT_HW, dtype=np.float16)
                    sal[:12, :18] = 1.0  # the top-left quarter
                    saved[(name, cls, method)] = sal
    boxes = {r["image"]: [{"class": int(r["class"]), "box": list(BOX)}] for r in rows}
    (root / "photos" / "boxes.json").write_text(json.dumps(boxes))
    header = ["image", "class", "class_name", "method", *METRICS, "note"]
    with open(run / "per_image.csv", "w", newline="") as f:
        w = csv.DictWriter(f, header)
        w.writeheader()
        w.writerows(rows)
    with open(run / "summary.csv", "w", newline="") as f:
        w2 = csv.writer(f)
        w2.writerow(["method", "metric", "mean", "std", "n", "undefined", "higher_is_better"])
        for method in METHODS:
            for k in METRICS:
                vals = [float(r[k]) for r in rows if r["method"] == method and r[k] != "nan"]
                n = len(vals)
                mean = sum(vals) / n
                std = math.sqrt(sum((v - mean) ** 2 for v in vals) / n)
                undefined = sum(1 for r in rows if r["method"] == method and r[k] == "nan")
                w2.writerow([method, k, f"{mean:.6g}", f"{std:.6g}", n, undefined, HIGHER[k]])
    with open(run / "pointing_table.csv", "w", newline="") as f:
        w2 = csv.writer(f)
        w2.writerow(["method", "All", "Diff"])
        for method in METHODS:
            w2.writerow([method, "0.81", "0.64"])
    with open(run / "skipped.csv", "w", newline="") as f:
        w2 = csv.writer(f)
        w2.writerow(["image", "reason"])
        w2.writerow(["sub/broken.jpg", "cannot identify image file"])
    if maps:
        (run / "maps").mkdir()
        keys = list(saved)
        index = []
        for start in range(0, len(keys), 16):  # chunks of 16 maps
            file = f"chunk_{start // 16:04d}.npz"
            arrays = {f"m{j}": saved[k] for j, k in enumerate(keys[start : start + 16])}
            np.savez(run / "maps" / file, **arrays)
            for j, k in enumerate(keys[start : start + 16]):
                index.append([*k, file, f"m{j}", INPUT_HW[0], INPUT_HW[1]])
        with open(run / "maps" / "index.csv", "w", newline="") as f:
            w2 = csv.writer(f)
            w2.writerow(["image", "class", "method", "file", "key", "height", "width"])
            w2.writerows(index)
    Image.fromarray(np.full((30, 40, 3), 200, dtype=np.uint8)).save(run / "evaluate.png")
    record = {
        "schema": 1,
        "command": "evaluate",
        "status": "done",
        "exit_code": 1,
        "config": {
            "model": "tiny",
            "layer": "features",
            "methods": list(METHODS),
            "resolutions": [32, 40],
            "boxes": str(root / "photos" / "boxes.json"),
        },
        "argv": ["evaluate", "--dataset", "folder"],
        "outputs": ["per_image.csv", "summary.csv", "pointing_table.csv", "skipped.csv", "evaluate.png"],
        "versions": {"cameras": "0.1.0", "torch": "2", "python": "3"},
        "started": "2026-01-01T00:00:00+00:00",
        "finished": "2026-01-01T00:01:00+00:00",
        "seconds": 60.0,
        "image_root": str((root / "photos").resolve()),
        "dataset": {"kind": "folder", "root": str(root / "photos"), "split": "val", "items": n_images},
        "world_size": 2,
    }
    (run / "run.json").write_text(json.dumps(record))
    return DatasetRun(run, root / "photos", rows, saved)
