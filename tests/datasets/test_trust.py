"""What an annotation file can make a reader do, on real files: names that leave the data set become refused records
(symlinks, absolute paths and ``..`` included), duplicates are refused with a line naming them, a bad box is left out
with its reason while the photo's other objects stay, ``--synsets`` must be a list of wnids, and the data set's
fingerprint follows its annotation files' contents."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from cameras.datasets import DatasetError, imagenet_synsets, open_dataset
from cameras.datasets.records import OUTSIDE, OutsideError, check_box, contain
from cameras.io import file_digest

from .fixtures import VOC_IMAGES, make_coco, make_imagenet, make_voc, photo, voc_xml


def _outside(tmp_path: Path) -> Path:
    """A real photo and a VOC XML outside every data set folder (what a hostile name points at)."""
    out = tmp_path / "outside"
    photo(out / "secret.jpg", (20, 20), 1)
    photo(out / "secret.JPEG", (20, 20), 2)
    (out / "secret.xml").write_text(voc_xml([("dog", (1, 1, 9, 9), False)], "secret.jpg"))
    return out


def _refused(ds: object, image: str) -> str:
    records = {r.image: r for r in ds.records}  # type: ignore[attr-defined]
    record = records[image]
    assert record.refused is not None and record.refused.startswith(OUTSIDE), record
    assert record.objects == ()
    with pytest.raises(OutsideError):
        ds.path(record)  # type: ignore[attr-defined]
    return str(record.refused)


def test_contain_resolves_symlinks_dots_and_absolute_names(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    secret = _outside(tmp_path) / "secret.jpg"
    assert contain(folder, "sub/../a.jpg") == folder.resolve() / "a.jpg"
    for name in ("../outside/secret.jpg", str(secret), "sub/../../outside/secret.jpg", "", ".", "a\0b.jpg"):
        with pytest.raises(OutsideError, match=OUTSIDE):
            contain(folder, name)
    (folder / "link.jpg").symlink_to(secret)  # a file symlinked out of the folder
    with pytest.raises(OutsideError, match=r"resolves to .*outside/secret\.jpg"):
        contain(folder, "link.jpg")
    (folder / "loop.jpg").symlink_to(folder / "loop.jpg")
    with pytest.raises(OutsideError):
        contain(folder, "loop.jpg/x")
    moved = tmp_path / "elsewhere"  # a folder that is itself a symlink is fine: its files are inside it
    moved.mkdir()
    (tmp_path / "linked").symlink_to(moved)
    assert contain(tmp_path / "linked", "x.jpg") == moved.resolve() / "x.jpg"


def test_voc_ids_leaving_the_folders_are_refused_records(tmp_path: Path) -> None:
    _outside(tmp_path)
    root = make_voc(tmp_path / "VOC2007")
    listing = root / "ImageSets" / "Main" / "test.txt"
    listing.write_text(listing.read_text() + "../../outside/secret\n000003\n")
    (root / "Annotations" / "000003.xml").symlink_to(tmp_path / "outside" / "secret.xml")
    ds = open_dataset("voc", root)
    assert "resolves to " + str((tmp_path / "outside/secret.xml").resolve()) in _refused(ds, "../../outside/secret.jpg")
    assert "outside/secret.xml" in _refused(ds, "000003.jpg")
    assert [r.image for r in ds.records if r.refused is None] == [f"{i}.jpg" for i, _, _ in VOC_IMAGES]
    xmls = [root.resolve() / "Annotations" / f"{i}.xml" for i, _, _ in VOC_IMAGES]
    assert ds.sources == (root.resolve() / "ImageSets/Main/test.txt", *xmls)  # the outside XML is never read
    photo_link = root / "JPEGImages" / "000001.jpg"
    photo_link.unlink()
    photo_link.symlink_to(tmp_path / "outside" / "secret.jpg")  # the photo itself symlinked out
    with pytest.raises(OutsideError):
        open_dataset("voc", root).path(ds.records[0])


def test_coco_imagenet_and_folder_names_leaving_the_folders_are_refused(tmp_path: Path) -> None:
    _outside(tmp_path)
    coco = make_coco(tmp_path / "coco")
    ann = coco.root / "annotations" / "instances_val2014.json"
    data = json.loads(ann.read_text())
    data["images"][0]["file_name"] = "/etc/passwd"
    data["images"][1]["file_name"] = "../../outside/secret.jpg"
    ann.write_text(json.dumps(data))
    ds = open_dataset("coco", coco.root)
    _refused(ds, "/etc/passwd")
    _refused(ds, "../../outside/secret.jpg")
    assert [r.refused for r in ds.records if r.image.startswith("COCO")] == [None]

    imagenet = make_imagenet(tmp_path / "imagenet")
    csv_file = imagenet / "LOC_val_solution.csv"
    csv_file.write_text(csv_file.read_text() + "../outside/secret,n01440764 1 1 9 9\n")
    ds = open_dataset("imagenet", imagenet)
    _refused(ds, "../outside/secret.JPEG")
    assert sum(r.refused is None for r in ds.records) == 3

    xmls = make_imagenet(tmp_path / "imagenet_xml", form="xml")
    folder = xmls / "ILSVRC" / "Annotations" / "CLS-LOC" / "val"
    (folder / "ILSVRC2012_val_00000009.xml").symlink_to(tmp_path / "outside" / "secret.xml")
    (folder / "ILSVRC2012_val_00000010.xml").write_text(
        voc_xml([("n01440764", (1, 1, 9, 9), False)], "../../../../../outside/secret.JPEG")
    )
    ds = open_dataset("imagenet", xmls)
    assert "secret.xml" in _refused(ds, "ILSVRC2012_val_00000009.JPEG")
    _refused(ds, "../../../../../outside/secret.JPEG")
    assert ds.sources and all(folder.resolve() in p.parents for p in ds.sources)  # the outside XML is not read

    photos = tmp_path / "photos"
    photo(photos / "a.png", (20, 20), 3)
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"a.png": [{"class": 1, "box": [0, 0, 5, 5]}], "../x.png": [{"box": [0, 0, 5, 5]}]}))
    ds = open_dataset("folder", photos, boxes=boxes)
    _refused(ds, "../x.png")
    assert ds.path(ds.records[0]) == (photos / "a.png").resolve()
    xml_boxes = tmp_path / "xml_boxes"
    xml_boxes.mkdir()
    (xml_boxes / "a.xml").write_text(voc_xml([("1", (1, 1, 5, 5), False)], "a.png"))
    assert len(open_dataset("folder", photos, boxes=xml_boxes).sources) == 1
    (xml_boxes / "b.xml").symlink_to(tmp_path / "outside" / "secret.xml")  # an annotation symlinked out
    with pytest.raises(OutsideError, match=r"b\.xml: outside the data set"):
        open_dataset("folder", photos, boxes=xml_boxes)


def test_duplicates_are_refused_with_a_line_naming_them(tmp_path: Path) -> None:
    root = make_voc(tmp_path / "VOC2007")
    listing = root / "ImageSets" / "Main" / "test.txt"
    listing.write_text(listing.read_text() + "000002\n")
    with pytest.raises(DatasetError, match=r"test\.txt: line 7: image id '000002' is listed twice \(first on line 2\)"):
        open_dataset("voc", root)

    coco = make_coco(tmp_path / "coco")
    ann = coco.root / "annotations" / "instances_val2014.json"
    good = ann.read_text()
    for change, message in [
        (lambda d: d["categories"].append({"id": coco.category_ids[3], "name": "twin"}), r"category id \d+ is listed"),
        (
            lambda d: d["images"].append({"id": 42, "file_name": "other.jpg", "height": 4, "width": 4}),
            r"image id 42 is listed twice \('COCO_val2014_000000000042.jpg' and 'other.jpg'\)",
        ),
        (
            lambda d: d["images"].append({"id": 5, "file_name": "COCO_val2014_000000000013.jpg"}),
            r"file_name 'COCO_val2014_000000000013.jpg' is listed twice \(image ids 5 and 13\)",
        ),
    ]:
        data = json.loads(good)
        change(data)
        ann.write_text(json.dumps(data))
        with pytest.raises(DatasetError, match=f"instances_val2014.json: {message}"):
            open_dataset("coco", coco.root)

    imagenet = make_imagenet(tmp_path / "imagenet")
    csv_file = imagenet / "LOC_val_solution.csv"
    csv_file.write_text(csv_file.read_text() + "ILSVRC2012_val_00000002,n01440764 1 1 9 9\n")
    with pytest.raises(DatasetError, match=r"line 5: ImageId 'ILSVRC2012_val_00000002' is listed twice \(first on"):
        open_dataset("imagenet", imagenet)

    boxes = tmp_path / "boxes.json"
    boxes.write_text('{"a.png": [{"box": [0, 0, 5, 5]}], "a.png": [{"box": [1, 1, 5, 5]}]}')
    with pytest.raises(DatasetError, match=r"boxes\.json: 'a\.png' is listed twice"):
        open_dataset("folder", tmp_path, boxes=boxes)


def test_bad_boxes_are_dropped_with_their_reason_and_the_rest_kept(tmp_path: Path) -> None:
    coco = make_coco(tmp_path / "coco")
    ann = coco.root / "annotations" / "instances_val2014.json"
    data = json.loads(ann.read_text())
    bad = [["nan", "nan", 10, 10], [float("nan"), 0, 5, 5], [10, 10, -5, 5], [100, 5, 10, 10], [1, 2, 0, 4], None]
    for k, bbox in enumerate(bad):
        data["annotations"].append(
            {"id": 100 + k, "image_id": 42, "category_id": coco.category_ids[1], "bbox": bbox, "iscrowd": 0}
        )
    data["annotations"].append({"id": 200, "image_id": 99, "category_id": coco.category_ids[1], "bbox": [0, 0, 0, 0]})
    ann.write_text(json.dumps(data))  # json writes float("nan") as NaN, which json reads back as nan
    ds = open_dataset("coco", coco.root)
    by_name = {r.image: r for r in ds.records}
    r42 = by_name["COCO_val2014_000000000042.jpg"]
    assert [a.box for a in r42.objects] == [(2.5, 3.0, 22.5, 33.0), (30.0, 5.0, 60.0, 45.0)]  # the good two stay
    assert r42.size == (48, 64)
    assert len(r42.dropped) == 6
    assert (
        r42.dropped[0] == 'annotation 5 (id 100): bbox ["nan", "nan", 10, 10] is not four numbers [x, y, width, height]'
    )
    assert "NaN" in r42.dropped[1] and r42.dropped[1].endswith("is not finite")
    assert r42.dropped[2].endswith("has no area (width and height must be positive)")
    assert r42.dropped[3].endswith("has no pixel on the declared 48×64 photo")
    assert "[1, 2, 0, 4] has no area" in r42.dropped[4] and "null is not four numbers" in r42.dropped[5]
    r99 = by_name["COCO_val2014_000000000099.jpg"]  # every object bad: the photo is kept, with nothing to score
    assert r99.objects == () and len(r99.dropped) == 1

    root = make_voc(tmp_path / "VOC2007")
    (root / "Annotations" / "000002.xml").write_text(
        voc_xml(
            [("cat", (1, 1, 48, 64), False), ("dog", (30, 5, 10, 45), False), ("dog", (5, 5, 5, 9), False)], ""
        ).replace("<xmin>5</xmin><ymin>5</ymin><xmax>5</xmax>", "<xmin>5</xmin><ymin>5</ymin><xmax>inf</xmax>")
    )
    record = open_dataset("voc", root).records[1]
    assert [a.name for a in record.objects] == ["cat"]
    assert record.dropped[0].startswith("object 1: box [29.0, 4.0, 10.0, 45.0] has x1 < x0")
    assert record.dropped[1].startswith("object 2: box coordinates must be finite")

    imagenet = make_imagenet(tmp_path / "imagenet")
    csv_file = imagenet / "LOC_val_solution.csv"
    text = csv_file.read_text().replace("n01440764 3 4 30 40", "n01440764 3 4 30 40 n01440764 x 4 30 40")
    csv_file.write_text(text.replace("n15075141 5 5 35 35", "n15075141 5 5 nan 35"))
    records = open_dataset("imagenet", imagenet).records
    assert [len(r.objects) for r in records] == [2, 1, 0]
    assert records[1].dropped == ("object 1: box ['x', '4', '30', '40'] is not four numbers",)
    assert records[2].dropped == ("object 0: box [4, 4, nan, 35] is not finite",)
    assert check_box([0, 0, 1, 1], (1, 1)) is None and check_box("abc") is not None


def test_synsets_must_be_a_list_of_wnids(tmp_path: Path) -> None:
    as_json = tmp_path / "synsets.json"
    as_json.write_text(json.dumps(imagenet_synsets()[:5]))
    with pytest.raises(DatasetError, match=r"--synsets .*synsets\.json: line 1: .* is not a synset id"):
        imagenet_synsets(as_json)
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(os.urandom(64) + b"\xff\xfe")
    with pytest.raises(DatasetError, match=r"garbage\.bin"):
        imagenet_synsets(garbage)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(DatasetError, match=r"empty\.txt: no synset id"):
        imagenet_synsets(empty)
    twice = tmp_path / "twice.txt"
    twice.write_text("n01440764 tench\nn01443537\nn01440764\n")
    with pytest.raises(DatasetError, match=r"twice\.txt: line 3: synset n01440764 is listed twice \(first on line 1\)"):
        imagenet_synsets(twice)
    good = tmp_path / "good.txt"
    good.write_text("n01440764 tench\n\nn01443537\n")
    assert imagenet_synsets(good) == ["n01440764", "n01443537"]


def test_file_digest_and_the_fingerprint_follow_the_contents(tmp_path: Path) -> None:
    p = tmp_path / "big.bin"
    data = os.urandom(3 * (1 << 20) + 17)  # several read blocks
    p.write_bytes(data)
    assert file_digest(p) == hashlib.sha256(data).hexdigest()
    p.write_bytes(data[:-1] + b"x")
    assert file_digest(p) == hashlib.sha256(data[:-1] + b"x").hexdigest()  # same size, new mtime: hashed again

    coco = make_coco(tmp_path / "coco")
    ann = coco.root / "annotations" / "instances_val2014.json"
    ds = open_dataset("coco", coco.root)
    assert ds.sources == (ann.resolve(),)
    before = ds.fingerprint()
    assert open_dataset("coco", coco.root).fingerprint() == before
    ann.write_text(ann.read_text().replace('"cat1"', '"renamed"'))
    assert open_dataset("coco", coco.root).fingerprint() != before

    root = make_voc(tmp_path / "VOC2007")
    ds = open_dataset("voc", root)
    assert len(ds.sources) == 7  # the split list and the six XMLs
    before = ds.fingerprint()
    xml = root / "Annotations" / "000004.xml"
    xml.write_text(xml.read_text().replace("<annotation>", "<annotation><pose>x</pose>"))
    assert open_dataset("voc", root).fingerprint() != before
