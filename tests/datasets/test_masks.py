"""COCO instance masks: kept undecoded by the reader, decoded on demand (polygons, uncompressed and compressed RLE)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from cameras.datasets import DatasetError, open_dataset
from cameras.evaluation.run import records_digest as _records_digest
from cameras.metrics import Segmentation, decode_segmentation, instance_mask

from .fixtures import MASKED_SIZE, make_coco, make_coco_masks, make_voc, rle_counts


def test_reader_keeps_segmentations_undecoded(tmp_path: Path) -> None:
    coco = make_coco_masks(tmp_path / "coco")
    ds = open_dataset("coco", coco.root)
    assert ds.has_masks
    m1, m2 = ds.records
    assert m1.image == "m1.jpg" and m1.has_masks and not m2.has_masks
    segs = [a.segmentation for a in m1.objects]
    assert all(isinstance(s, Segmentation) and s.size == MASKED_SIZE for s in segs)
    assert [s.crowd for s in segs if s is not None] == [False, True, False]
    assert [json.loads(s.data) for s in segs if s is not None] == [
        [coco.polygon],
        {"size": list(MASKED_SIZE), "counts": rle_counts(coco.crowd)},
        {"size": list(MASKED_SIZE), "counts": coco.compressed_counts},
    ]
    assert m2.objects[0].segmentation is None  # a box-only object
    # boxes-only layouts are unchanged: no masks
    voc = open_dataset("voc", make_voc(tmp_path / "VOC2007"))
    assert not voc.has_masks and all(a.segmentation is None for r in voc.records for a in r.objects)
    assert not open_dataset("coco", make_coco(tmp_path / "plain").root).has_masks


def test_rle_masks_decode_to_the_hand_made_masks(tmp_path: Path) -> None:
    coco = make_coco_masks(tmp_path / "coco")
    _, crowd, compressed = open_dataset("coco", coco.root).records[0].objects
    assert crowd.segmentation is not None and compressed.segmentation is not None
    for seg, truth in ((crowd.segmentation, coco.crowd), (compressed.segmentation, coco.compressed)):
        got = decode_segmentation(seg)
        assert got.dtype == np.bool_ and got.shape == MASKED_SIZE
        np.testing.assert_array_equal(got, truth)
    union = instance_mask([crowd.segmentation, compressed.segmentation], MASKED_SIZE)
    assert union is not None
    np.testing.assert_array_equal(union.numpy(), coco.crowd | coco.compressed)
    assert instance_mask([crowd.segmentation, None], MASKED_SIZE) is None  # an object without a mask


def test_polygon_mask_matches_an_independent_rasterisation(tmp_path: Path) -> None:
    coco = make_coco_masks(tmp_path / "coco")
    seg = open_dataset("coco", coco.root).records[0].objects[0].segmentation
    assert seg is not None
    got = decode_segmentation(seg)
    h, w = MASKED_SIZE
    canvas = Image.new("1", (w, h), 0)
    pts = coco.polygon
    ImageDraw.Draw(canvas).polygon(list(zip(pts[0::2], pts[1::2])), fill=1, outline=1)
    ref = np.array(canvas, dtype=bool)
    # pycocotools and PIL decide differently which pixels the polygon's edges cross (pixel-centre vs. sampled-edge
    # conventions), so the two may disagree on the one-pixel band along the outline (8-connected: a steep edge's
    # staircase steps diagonally) — and nowhere else.
    square = np.ones((3, 3), dtype=bool)
    band = ndimage.binary_dilation(ref, square) & ~ndimage.binary_erosion(ref, square)
    disagree = got ^ ref
    assert not (disagree & ~band).any()
    assert disagree.sum() < 0.5 * band.sum()  # a border effect, not a shifted or wrong polygon
    assert got.sum() > 500 and ref.sum() > 500


def test_malformed_segmentations_name_the_file(tmp_path: Path) -> None:
    coco = make_coco_masks(tmp_path / "coco")
    ann = coco.root / "annotations" / "instances_val2014.json"
    good = json.loads(ann.read_text())
    cases = [
        (lambda d: d["annotations"][0].update(segmentation=[[1, 2, 3]]), "annotation 0: malformed segmentation"),
        (lambda d: d["annotations"][1]["segmentation"].update(size=[10, 10]), "annotation 1: malformed segmentation"),
        (lambda d: d["annotations"][2].update(segmentation="x"), "annotation 2: malformed segmentation"),
        (lambda d: d["images"][0].pop("height"), "annotation 0: has a segmentation but its image has no"),
    ]
    for change, message in cases:
        data = json.loads(json.dumps(good))
        change(data)
        ann.write_text(json.dumps(data))
        with pytest.raises(DatasetError, match=rf"instances_val2014\.json: {message}"):
            open_dataset("coco", coco.root)


def test_a_changed_mask_changes_the_resume_key(tmp_path: Path) -> None:
    coco = make_coco_masks(tmp_path / "coco")
    before = _records_digest(open_dataset("coco", coco.root))
    ann = coco.root / "annotations" / "instances_val2014.json"
    data = json.loads(ann.read_text())
    data["annotations"][0]["segmentation"][0][0] = 11.0  # same box, another polygon
    ann.write_text(json.dumps(data))
    assert _records_digest(open_dataset("coco", coco.root)) != before


def test_missing_pycocotools_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pycocotools", None)
    seg = Segmentation('{"size":[2,2],"counts":[1,3]}', (2, 2))
    with pytest.raises(ImportError, match=r'pip install "cameras\[coco\]"'):
        decode_segmentation(seg)
