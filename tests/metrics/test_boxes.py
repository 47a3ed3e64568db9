"""Box files: JSON and Pascal VOC reading, writing, filtering and mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cameras.metrics import Annotation, boxes_tensor, boxes_to_input, load_boxes, load_boxes_json, save_boxes_json

VOC = """<annotation>
  <folder>VOC2007</folder><filename>{fname}</filename>
  <size><width>500</width><height>375</height><depth>3</depth></size>
  <object><name>cat</name><difficult>0</difficult>
    <bndbox><xmin>48</xmin><ymin>240</ymin><xmax>195</xmax><ymax>371</ymax></bndbox></object>
  <object><name>n02123045</name>
    <bndbox><xmin>8</xmin><ymin>12</ymin><xmax>352</xmax><ymax>498</ymax></bndbox></object>
  <object><name>7</name>
    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>1</xmax><ymax>1</ymax></bndbox></object>
</annotation>"""


def test_json_roundtrip(tmp_path: Path) -> None:
    anns = {
        "a.jpg": [Annotation((1, 2, 30, 40), 951), Annotation((0.5, 0, 3.25, 4), None, "thing")],
        "b.png": [],
    }
    p = tmp_path / "boxes.json"
    save_boxes_json(anns, p)
    raw = json.loads(p.read_text())
    assert raw["a.jpg"][0] == {"class": 951, "box": [1, 2, 30, 40]}
    back = load_boxes_json(p)
    assert back == {
        "a.jpg": [Annotation((1.0, 2.0, 30.0, 40.0), 951), Annotation((0.5, 0.0, 3.25, 4.0), None, "thing")],
        "b.png": [],
    }
    assert load_boxes(p) == back


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected an object"),
        ('{"a.jpg": {"class": 1}}', "must be a list"),
        ('{"a.jpg": [{"class": 1}]}', "'box'"),
        ('{"a.jpg": [{"class": 1, "box": [0, 0, 1]}]}', "x0, y0, x1, y1"),
        ('{"a.jpg": [{"class": 1, "box": [5, 0, 1, 1]}]}', "x1 < x0"),
        ('{"a.jpg": [{"class": "cat", "box": [0, 0, 1, 1]}]}', "non-negative int"),
        ('{"a.jpg": [{"class": 1, "box": [0, "a", 1, 1]}]}', "numbers"),
    ],
)
def test_json_errors_name_the_problem(tmp_path: Path, content: str, match: str) -> None:
    p = tmp_path / "b.json"
    p.write_text(content)
    with pytest.raises(ValueError, match=match):
        load_boxes_json(p)


def test_voc_file_and_folder(tmp_path: Path) -> None:
    (tmp_path / "x1.xml").write_text(VOC.format(fname="000001.jpg"))
    (tmp_path / "x2.xml").write_text(VOC.format(fname="000002.jpg"))
    one = load_boxes(tmp_path / "x1.xml", class_index={"cat": 281, "n02123045": 281})
    anns = one["000001.jpg"]
    # 1-based inclusive corners -> 0-based half-open.
    assert anns[0] == Annotation((47.0, 239.0, 195.0, 371.0), 281, "cat")
    assert anns[1].label == 281 and anns[1].box == (7.0, 11.0, 352.0, 498.0)
    assert anns[2] == Annotation((0.0, 0.0, 1.0, 1.0), 7, "7")  # a one-pixel box, digits taken as the class
    folder = load_boxes(tmp_path)
    assert sorted(folder) == ["000001.jpg", "000002.jpg"]
    assert folder["000002.jpg"][0].label is None  # no class_index: name kept, label unknown


def test_load_boxes_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_boxes(tmp_path / "missing.json")
    (tmp_path / "b.txt").write_text("")
    with pytest.raises(ValueError, match="unknown box format"):
        load_boxes(tmp_path / "b.txt")
    (tmp_path / "bad.xml").write_text("<annotation><object><name>a</name></object></annotation>")
    with pytest.raises(ValueError, match="bndbox"):
        load_boxes(tmp_path / "bad.xml")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no"):
        load_boxes(empty)


def test_boxes_tensor_filters_by_class() -> None:
    anns = [Annotation((0, 0, 2, 2), 1), Annotation((1, 1, 3, 3), 2), Annotation((4, 4, 5, 6), 2)]
    assert boxes_tensor(anns).shape == (3, 4)
    assert boxes_tensor(anns, label=2).tolist() == [[1, 1, 3, 3], [4, 4, 5, 6]]
    assert boxes_tensor(anns, label=9).shape == (0, 4)


class HalfScale:
    """A stand-in preprocessing: input = original resized by 1/2, then the left 4 input columns cropped away."""

    def box_to_input(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x0, y0, x1, y1 = (v / 2 for v in box)
        return (max(x0 - 4, 0), y0, max(x1 - 4, 0), y1)


def test_boxes_to_input_maps_and_drops_empty() -> None:
    boxes = torch.tensor([[10.0, 2.0, 20.0, 8.0], [0.0, 0.0, 6.0, 6.0]])  # the second is cropped away
    assert boxes_to_input(boxes, HalfScale()).tolist() == [[1.0, 1.0, 6.0, 4.0]]
    with pytest.raises(TypeError, match="box_to_input"):
        boxes_to_input(boxes, object())
