"""The data-set pointing protocol (Zhang et al. 2016; CAMERAS Table 1): the difficult criterion and the mean of
per-class accuracies, against slow references from the definitions."""

from __future__ import annotations

import math
import random

import pytest
import torch

from cameras.metrics import is_difficult, pointing_accuracy


def _covered(boxes: list[list[float]], h: int, w: int) -> int:
    """Pixels (x, y) inside at least one half-open box, counted one by one."""
    return sum(any(b[0] <= x < b[2] and b[1] <= y < b[3] for b in boxes) for y in range(h) for x in range(w))


def test_is_difficult_matches_the_rule_on_random_boxes() -> None:
    rng = random.Random(0)
    seen = set()
    for _ in range(60):
        h, w = rng.randint(8, 30), rng.randint(8, 30)
        boxes = []
        for _ in range(rng.randint(0, 3)):
            x0, y0 = rng.uniform(-3, w), rng.uniform(-3, h)
            boxes.append([x0, y0, x0 + rng.uniform(0, w / 2), y0 + rng.uniform(0, h / 2)])
        classes = rng.randint(1, 3)
        expected = _covered(boxes, h, w) < h * w / 4 and classes >= 2
        t = torch.tensor(boxes) if boxes else torch.zeros(0, 4)
        assert is_difficult(t, (h, w), classes) == expected
        seen.add(expected)
    assert seen == {True, False}


def test_is_difficult_uses_the_union_and_a_strict_quarter() -> None:
    # two boxes of 15 % each overlapping: union 20 % (difficult), sum 30 % (would not be)
    boxes = torch.tensor([[0.0, 0.0, 15.0, 10.0], [5.0, 0.0, 20.0, 10.0]])
    assert is_difficult(boxes, (10, 100), 2)
    quarter = torch.tensor([[0.0, 0.0, 25.0, 10.0]])  # exactly 1/4: not less than 1/4
    assert not is_difficult(quarter, (10, 100), 3)
    assert not is_difficult(torch.tensor([[0.0, 0.0, 10.0, 10.0]]), (10, 100), 1)  # small but alone
    assert is_difficult(torch.tensor([[90.0, 5.0, 500.0, 500.0]]), (10, 100), 2)  # mostly outside: 50 px


def test_is_difficult_bad_inputs() -> None:
    box = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="classes_in_image"):
        is_difficult(box, (4, 4), 0)
    with pytest.raises(ValueError, match="image_size"):
        is_difficult(box, (0, 4), 2)
    with pytest.raises(TypeError, match="image_size"):
        is_difficult(box, 4, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"shape \(K, 4\)"):
        is_difficult(torch.zeros(2, 3), (4, 4), 2)
    with pytest.raises(ValueError, match="x1 < x0"):
        is_difficult(torch.tensor([[3.0, 0.0, 1.0, 1.0]]), (4, 4), 2)


def _reference(hits: list[bool], classes: list[int], difficult: list[bool]) -> tuple[float, float]:
    def score(keep: list[bool]) -> float:
        per: dict[int, list[bool]] = {}
        for h, c, k in zip(hits, classes, keep):
            if k:
                per.setdefault(c, []).append(h)
        rates = [sum(v) / len(v) for v in per.values()]
        return sum(rates) / len(rates) if rates else math.nan

    return score([True] * len(hits)), score(difficult)


def test_pointing_accuracy_matches_the_definition() -> None:
    rng = random.Random(1)
    for n in (1, 5, 40, 200):
        hits = [rng.random() < 0.6 for _ in range(n)]
        classes = [rng.randint(0, 6) for _ in range(n)]
        difficult = [rng.random() < 0.3 for _ in range(n)]
        out = pointing_accuracy(torch.tensor(hits), torch.tensor(classes), torch.tensor(difficult))
        ref_all, ref_diff = _reference(hits, classes, difficult)
        assert out["all"] == pytest.approx(ref_all)
        if math.isnan(ref_diff):
            assert math.isnan(out["difficult"])
        else:
            assert out["difficult"] == pytest.approx(ref_diff)
        assert set(out["per_class"]) == set(classes)
        assert out["pairs"] == n and out["difficult_pairs"] == sum(difficult)
        assert sum(v["n_all"] for v in out["per_class"].values()) == n


def test_class_mean_differs_from_the_pair_mean() -> None:
    # class 0: 3 hits of 3 pairs, class 1: 0 of 1 → per-class mean 0.5, pair mean 0.75
    out = pointing_accuracy([1, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0])
    assert out["all"] == 0.5 and math.isnan(out["difficult"])
    assert math.isnan(out["per_class"][0]["difficult"])
    assert math.isnan(pointing_accuracy([], [], [])["all"])


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (([1, 0], [0], [0, 0]), ValueError, "same length"),
        (([1, 0], [0.5, 1.0], [0, 0]), TypeError, "integer class"),
        (([2, 0], [0, 1], [0, 0]), ValueError, "booleans"),
        (([1, 0], [0, 1], [0.5, 0]), ValueError, "booleans"),
        (([[1, 0]], [[0, 1]], [[0, 0]]), ValueError, "1-D"),
    ],
)
def test_pointing_accuracy_bad_inputs(args: tuple[object, object, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        pointing_accuracy(*args)
