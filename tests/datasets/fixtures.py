"""Tiny data sets in the four standard layouts, written into a temporary folder for the tests.

Each builder writes random photos and the layout's own annotation files (VOC XML + ImageSets, COCO instances JSON,
ImageNet's LOC_val_solution.csv or per-photo XMLs) and returns what it wrote, so that a test can compare the reader's
records with the truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cameras.datasets import VOC_CLASSES

# (id, (H, W), [(class name, (xmin, ymin, xmax, ymax) 1-based inclusive, difficult)])
VOC_IMAGES: list[tuple[str, tuple[int, int], list[tuple[str, tuple[int, int, int, int], bool]]]] = [
    ("000001", (48, 64), [("dog", (5, 4, 30, 40), False), ("person", (33, 2, 64, 48), False)]),
    ("000002", (64, 48), [("cat", (1, 1, 48, 64), False)]),
    ("000004", (48, 64), [("car", (10, 10, 20, 20), False), ("bus", (30, 5, 60, 45), True)]),
    ("000005", (40, 40), [("bird", (2, 2, 12, 12), False), ("bird", (20, 20, 38, 36), False)]),
    ("000007", (48, 64), [("chair", (1, 1, 10, 10), True)]),  # only difficult: nothing scored
    ("000009", (64, 48), [("sofa", (3, 3, 40, 60), False), ("tvmonitor", (1, 1, 8, 8), False)]),
]


def photo(path: Path, size: tuple[int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path, quality=95)


def voc_xml(objects: list[tuple[str, tuple[int, int, int, int], bool]], filename: str) -> str:
    body = "".join(
        f"<object><name>{n}</name><difficult>{int(d)}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, b, d in objects
    )
    return f"<annotation><filename>{filename}</filename>{body}</annotation>"


def make_voc(root: Path, images: list | None = None, split: str = "test", photos: bool = True) -> Path:  # type: ignore[type-arg]
    """``root`` as a VOC2007 year folder holding ``images`` (default :data:`VOC_IMAGES`) in ``split``."""
    images = VOC_IMAGES if images is None else images
    (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i, _, _ in images))
    (root / "ImageSets" / "Main" / "dog_test.txt").write_text("000001  1\n")  # a per-class list: not a split
    for k, (i, size, objects) in enumerate(images):
        (root / "Annotations" / f"{i}.xml").write_text(voc_xml(objects, f"{i}.jpg"))
        if photos:
            photo(root / "JPEGImages" / f"{i}.jpg", size, k)
    return root


@dataclass
class Coco:
    root: Path
    category_ids: list[int]  # in id order: index = position
    names: list[str]


def make_coco(root: Path, split: str = "val2014", n_categories: int = 80) -> Coco:
    """A COCO root with 80 categories (ids with gaps, listed out of order), 4 photos, one without annotations."""
    ids = [i for i in range(1, 200) if i % 7 != 3][:n_categories]  # gaps, like COCO's 1..90
    names = [f"cat{i}" for i in ids]
    cats = [{"id": i, "name": n, "supercategory": "x"} for i, n in zip(ids, names)][::-1]  # shuffled order
    images = [
        {"id": 42, "file_name": "COCO_val2014_000000000042.jpg", "height": 48, "width": 64},
        {"id": 7, "file_name": "COCO_val2014_000000000007.jpg", "height": 64, "width": 48},
        {"id": 99, "file_name": "COCO_val2014_000000000099.jpg", "height": 40, "width": 40},  # no annotation
        {"id": 13, "file_name": "COCO_val2014_000000000013.jpg", "height": 48, "width": 64},
    ]
    anns = [
        {"id": 1, "image_id": 42, "category_id": ids[0], "bbox": [2.5, 3.0, 20.0, 30.0], "iscrowd": 0},
        {"id": 2, "image_id": 42, "category_id": ids[79 % n_categories], "bbox": [30, 5, 30, 40], "iscrowd": 0},
        {"id": 3, "image_id": 7, "category_id": ids[5], "bbox": [0, 0, 48, 64], "iscrowd": 1},
        {"id": 4, "image_id": 13, "category_id": ids[5], "bbox": [10, 10, 5, 5], "iscrowd": 0},
        {"id": 5, "image_id": 13, "category_id": ids[5], "bbox": [40, 20, 10, 10], "iscrowd": 0},
    ]
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    data = {"images": images, "annotations": anns, "categories": cats}
    (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
    for k, im in enumerate(images):
        photo(root / split / im["file_name"], (im["height"], im["width"]), 100 + k)
    return Coco(root, ids, names)


# ImageNet val: (file stem, size, [(wnid, (xmin, ymin, xmax, ymax))])
IMAGENET_IMAGES = [
    ("ILSVRC2012_val_00000002", (48, 64), [("n01440764", (3, 4, 30, 40))]),
    ("ILSVRC2012_val_00000001", (64, 48), [("n02123045", (1, 1, 20, 30)), ("n02123045", (25, 30, 48, 64))]),
    ("ILSVRC2012_val_00000003", (40, 40), [("n15075141", (5, 5, 35, 35))]),
]


def make_imagenet(root: Path, form: str = "csv") -> Path:
    """An ImageNet root with val photos and boxes as ``LOC_val_solution.csv`` (``form="csv"``) or XMLs."""
    for k, (stem, size, _) in enumerate(IMAGENET_IMAGES):
        photo(root / "val" / f"{stem}.JPEG", size, 200 + k)
    if form == "csv":
        lines = ["ImageId,PredictionString"]
        for stem, _, objs in IMAGENET_IMAGES:
            lines.append(f"{stem}," + " ".join(f"{w} {b[0]} {b[1]} {b[2]} {b[3]}" for w, b in objs) + " ")
        (root / "LOC_val_solution.csv").write_text("\n".join(lines) + "\n")
    else:
        folder = root / "ILSVRC" / "Annotations" / "CLS-LOC" / "val"
        folder.mkdir(parents=True)
        for stem, _, objs in IMAGENET_IMAGES:
            (folder / f"{stem}.xml").write_text(voc_xml([(w, b, False) for w, b in objs], stem))
    return root


def voc_index(name: str) -> int:
    return VOC_CLASSES.index(name)


def rle_counts(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE of a bool (H, W) mask, written from the format's definition: run lengths over the
    pixels in column-major order, the first run counting zeros (0 when the first pixel is set)."""
    flat = mask.astype(bool).flatten(order="F")
    counts, value, run = [], False, 0
    for v in flat:
        if bool(v) == value:
            run += 1
        else:
            counts.append(run)
            value, run = bool(v), 1
    counts.append(run)
    return counts


@dataclass
class CocoMasks:
    root: Path
    polygon: list[float]  # object 0 (class 0) of the masked photo, one polygon
    crowd: np.ndarray  # object 1 (class 1, iscrowd): the hand-made mask written as uncompressed RLE
    compressed: np.ndarray  # object 2 (class 1): the hand-made mask written as compressed RLE
    compressed_counts: str


MASKED_SIZE = (48, 64)  # (H, W) of the masked photo


def make_coco_masks(root: Path, split: str = "val2014") -> CocoMasks:
    """A COCO root with 80 categories and two photos: ``m1.jpg`` (48×64) with a polygon object (class 0), a crowd
    object in uncompressed RLE and an object in compressed RLE (both class 1); ``m2.jpg`` with one object that has a
    box only (class 2)."""
    from pycocotools import mask as mask_api

    h, w = MASKED_SIZE
    ys, xs = np.mgrid[0:h, 0:w]
    crowd = (ys >= 30) & (ys < 46) & (xs >= 40) & (xs < 61)
    crowd[33, 45] = False  # a hole: several runs per column
    compressed = (ys - 12) ** 2 + (xs - 50) ** 2 <= 36  # a disk of radius 6
    rle = mask_api.encode(np.asfortranarray(compressed.astype(np.uint8)))
    counts = rle["counts"].decode("ascii")
    polygon = [10.0, 5.0, 40.0, 8.0, 30.0, 35.0, 8.0, 30.0]
    cats = [{"id": i + 1, "name": f"cat{i + 1}"} for i in range(80)]
    images = [
        {"id": 1, "file_name": "m1.jpg", "height": h, "width": w},
        {"id": 2, "file_name": "m2.jpg", "height": 40, "width": 40},
    ]

    def bbox(m: np.ndarray) -> list[int]:
        yy, xx = np.nonzero(m)
        return [int(xx.min()), int(yy.min()), int(xx.max() - xx.min() + 1), int(yy.max() - yy.min() + 1)]

    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [8, 5, 32, 30], "segmentation": [polygon], "iscrowd": 0},
        {
            "id": 2,
            "image_id": 1,
            "category_id": 2,
            "bbox": bbox(crowd),
            "segmentation": {"size": [h, w], "counts": rle_counts(crowd)},
            "iscrowd": 1,
        },
        {
            "id": 3,
            "image_id": 1,
            "category_id": 2,
            "bbox": bbox(compressed),
            "segmentation": {"size": [h, w], "counts": counts},
            "iscrowd": 0,
        },
        {"id": 4, "image_id": 2, "category_id": 3, "bbox": [5, 5, 20, 20], "iscrowd": 0},
    ]
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    data = {"images": images, "annotations": anns, "categories": cats}
    (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
    for k, im in enumerate(images):
        photo(root / split / im["file_name"], (im["height"], im["width"]), 300 + k)
    return CocoMasks(root, polygon, crowd, compressed, counts)
