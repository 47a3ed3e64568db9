"""Pointing game, energy in box and box rasterisation: hand-computed cases and brute-force references."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from cameras.metrics import boxes_to_mask, energy_in_box, pointing_game


def _inside(x: int, y: int, box: list[float]) -> bool:
    return box[0] <= x < box[2] and box[1] <= y < box[3]


def _ref_pointing(sal: Tensor, boxes: list[Tensor], tol: float) -> list[float]:
    """Slow reference straight from the definition: loop over every pixel of every box. 1.0 hit, 0.0 miss, NaN
    when undefined (a constant map, or no box pixel on the map)."""
    out = []
    for b in range(sal.shape[0]):
        s = sal[b].tolist()
        h, w = len(s), len(s[0])
        best, py, px = -math.inf, -1, -1
        for y in range(h):  # first maximum in row-major order
            for x in range(w):
                if s[y][x] > best:
                    best, py, px = s[y][x], y, x
        hit, on_map = False, False
        for box in boxes[b].tolist():
            for y in range(h):
                for x in range(w):
                    if _inside(x, y, box):
                        on_map = True
                        hit = hit or math.hypot(x - px, y - py) <= tol
        constant = min(min(row) for row in s) == best
        out.append(math.nan if constant or not on_map else float(hit))
    return out


def _same(got: Tensor, want: list[float]) -> bool:
    """Element-wise equality where NaN equals NaN."""
    values = got.tolist()
    return len(values) == len(want) and all((math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(values, want))


def _random_boxes(gen: torch.Generator, n: int, h: int, w: int) -> list[Tensor]:
    boxes = []
    for _ in range(n):
        k = int(torch.randint(0, 4, (1,), generator=gen))
        x0 = torch.rand(k, generator=gen) * (w + 4) - 2
        y0 = torch.rand(k, generator=gen) * (h + 4) - 2
        bw = torch.rand(k, generator=gen) * w * 0.6
        bh = torch.rand(k, generator=gen) * h * 0.6
        boxes.append(torch.stack([x0, y0, x0 + bw, y0 + bh], dim=1))
    return boxes


# ----------------------------------------------------------------------------------------------- pointing game


def test_pointing_hand_cases() -> None:
    box = torch.tensor([[2.0, 1.0, 5.0, 4.0]])  # pixels x = 2..4, y = 1..3
    sal = torch.zeros(5, 8, 8)
    sal[0, 3, 4] = 1  # inside (last column of the box)
    sal[1, 3, 5] = 1  # x = 5 is outside (half-open), distance 1 from (4, 3)
    sal[2, 7, 7] = 1  # distance to (4, 3) = 5 exactly
    sal[3, 0, 2] = 1  # y = 0, above the box: distance 1
    sal[4, 4, 1] = 1  # diagonal to corner (2, 3): sqrt(2)
    boxes = [box] * 5
    assert pointing_game(sal, boxes, tolerance=0).tolist() == [True, False, False, False, False]
    assert pointing_game(sal, boxes, tolerance=1).tolist() == [True, True, False, True, False]
    assert pointing_game(sal, boxes, tolerance=1.5).tolist() == [True, True, False, True, True]
    assert pointing_game(sal, boxes, tolerance=4.99).tolist() == [True, True, False, True, True]
    assert pointing_game(sal, boxes, tolerance=5).tolist() == [True, True, True, True, True]


def test_pointing_fractional_box_edges() -> None:
    # [1.5, 3.2) covers columns 2 and 3 only; [0, 0.5) covers row 0 only.
    box = torch.tensor([[1.5, 0.0, 3.2, 0.5]])
    sal = torch.zeros(3, 4, 6)
    sal[0, 0, 1] = 1
    sal[1, 0, 3] = 1
    sal[2, 1, 2] = 1
    assert pointing_game(sal, [box] * 3, tolerance=0).tolist() == [False, True, False]
    assert pointing_game(sal, [box] * 3, tolerance=1).tolist() == [True, True, True]


def test_pointing_ties_take_first_in_row_major_order() -> None:
    sal = torch.zeros(2, 6, 6)
    sal[:, 1, 4] = 1.0  # first maximum (row 1)
    sal[:, 4, 1] = 1.0  # second one (row 4)
    low_left = torch.tensor([[0.0, 3.0, 3.0, 6.0]])
    top_right = torch.tensor([[3.0, 0.0, 6.0, 3.0]])
    assert pointing_game(sal, [low_left, top_right], tolerance=0).tolist() == [False, True]


def test_pointing_union_empty_and_outside() -> None:
    sal = torch.zeros(3, 8, 8)
    sal[:, 6, 6] = 1
    two = torch.tensor([[0.0, 0.0, 2.0, 2.0], [6.0, 6.0, 7.0, 7.0]])
    none = torch.zeros(0, 4)
    outside = torch.tensor([[10.0, 6.0, 12.0, 7.0]])  # no pixel of the 8x8 map: undefined at any tolerance
    assert _same(pointing_game(sal, [two, none, outside], tolerance=0), [1.0, math.nan, math.nan])
    assert _same(pointing_game(sal, [two, none, outside], tolerance=100), [1.0, math.nan, math.nan])


def test_pointing_on_a_constant_map_is_undefined() -> None:
    """A constant map (all zero, uniform, or flat to a few ulps) points nowhere: NaN, not the hit or miss of its
    first pixel."""
    box = torch.tensor([[0.0, 0.0, 2.0, 2.0]])  # holds pixel (0, 0), the first maximum of a constant map
    flat = torch.full((3, 6, 6), 0.25)
    flat[1] = 0.0
    flat[2, 3, 3] = torch.nextafter(torch.tensor(0.25), torch.tensor(1.0))  # a one-ulp ripple (upsampling noise)
    assert float(flat[2].max()) > float(flat[2].min())
    out = pointing_game(flat, [box] * 3, tolerance=0)
    assert out.dtype == torch.float32 and torch.isnan(out).all()
    assert torch.isnan(energy_in_box(flat, [box] * 3)).all()
    flat[2, 3, 3] = 0.5  # a real maximum: defined again
    assert _same(pointing_game(flat, [box] * 3, tolerance=0), [math.nan, math.nan, 0.0])


def test_pointing_matches_bruteforce() -> None:
    gen = torch.Generator().manual_seed(0)
    h, w = 9, 11
    sal = torch.rand(24, h, w, generator=gen).round(decimals=1)  # many ties
    boxes = _random_boxes(gen, 24, h, w)
    for tol in (0, 1, 2.5, 4, 15):
        want = _ref_pointing(sal, boxes, tol)
        assert 0 < sum(math.isnan(v) for v in want) < len(want)  # undefined images occur, and not only them
        assert _same(pointing_game(sal, boxes, tolerance=tol), want)


def test_pointing_accepts_dtypes_and_single_row_boxes() -> None:
    sal = torch.zeros(1, 4, 4, dtype=torch.float64)
    sal[0, 1, 1] = 1
    assert pointing_game(sal, [torch.tensor([1, 1, 2, 2])], tolerance=0).tolist() == [True]
    assert pointing_game(sal.half(), [torch.tensor([[1.0, 1.0, 2.0, 2.0]])], tolerance=0).tolist() == [True]


@pytest.mark.parametrize(
    ("sal", "boxes", "tol", "err"),
    [
        (torch.zeros(4, 4), [torch.zeros(0, 4)], 15, ValueError),  # missing batch dim
        (torch.zeros(1, 4, 4), torch.zeros(1, 4), 15, TypeError),  # a tensor, not a list
        (torch.zeros(2, 4, 4), [torch.zeros(0, 4)], 15, ValueError),  # one box tensor for 2 maps
        (torch.zeros(1, 4, 4), [torch.zeros(2, 3)], 15, ValueError),  # rows of 3
        (torch.zeros(1, 4, 4), [torch.tensor([[3.0, 0.0, 1.0, 2.0]])], 15, ValueError),  # x1 < x0
        (torch.zeros(1, 4, 4), [torch.zeros(0, 4)], -1, ValueError),
        (torch.zeros(1, 4, 4), [torch.zeros(0, 4)], "15", TypeError),
        (torch.zeros(1, 4, 4, dtype=torch.long), [torch.zeros(0, 4)], 15, TypeError),
        (torch.full((1, 4, 4), float("nan")), [torch.zeros(0, 4)], 15, ValueError),
    ],
)
def test_pointing_rejects_bad_inputs(sal: Tensor, boxes: object, tol: object, err: type[Exception]) -> None:
    with pytest.raises(err):
        pointing_game(sal, boxes, tolerance=tol)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------- energy


def test_energy_hand_cases() -> None:
    sal = torch.tensor([[[1.0, 3.0, 0.0], [0.0, 4.0, 2.0]]])  # total 10
    assert energy_in_box(sal, [torch.tensor([[1.0, 0.0, 2.0, 2.0]])]).item() == pytest.approx(0.7)
    # Two overlapping boxes count once: columns 1..2 of both rows = 3 + 0 + 4 + 2 = 9.
    both = torch.tensor([[1.0, 0.0, 2.0, 2.0], [1.0, 0.0, 3.0, 2.0]])
    assert energy_in_box(sal, [both]).item() == pytest.approx(0.9)
    assert math.isnan(energy_in_box(sal, [torch.zeros(0, 4)]).item())  # no box: undefined
    assert math.isnan(energy_in_box(sal, [torch.tensor([[5.0, 0.0, 9.0, 2.0]])]).item())  # box outside the map
    assert math.isnan(energy_in_box(torch.zeros(1, 2, 3), [both]).item())  # all-zero map: undefined, not 0


def test_energy_matches_bruteforce() -> None:
    gen = torch.Generator().manual_seed(1)
    h, w = 7, 10
    sal = torch.rand(16, h, w, generator=gen, dtype=torch.float64)
    boxes = _random_boxes(gen, 16, h, w)
    got = energy_in_box(sal, boxes)
    assert got.dtype == torch.float64
    for b in range(16):
        inside = total = 0.0
        on_map = False
        for y in range(h):
            for x in range(w):
                v = float(sal[b, y, x])
                total += v
                if any(_inside(x, y, box) for box in boxes[b].tolist()):
                    inside += v
                    on_map = True
        if on_map:
            assert float(got[b]) == pytest.approx(inside / total, abs=1e-12)
        else:
            assert math.isnan(float(got[b]))


def test_energy_rejects_negative_maps() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        energy_in_box(torch.tensor([[[-1.0, 1.0]]]), [torch.zeros(0, 4)])


def test_mask_matches_definition() -> None:
    gen = torch.Generator().manual_seed(2)
    boxes = _random_boxes(gen, 5, 6, 9)
    mask = boxes_to_mask(boxes, (6, 9))
    assert mask.shape == (5, 6, 9) and mask.dtype == torch.bool
    for b in range(5):
        for y in range(6):
            for x in range(9):
                assert bool(mask[b, y, x]) == any(_inside(x, y, box) for box in boxes[b].tolist())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_metrics_on_cuda_match_cpu() -> None:
    gen = torch.Generator().manual_seed(3)
    sal = torch.rand(8, 9, 11, generator=gen)
    boxes = _random_boxes(gen, 8, 9, 11)
    pg = pointing_game(sal.cuda(), [b.cuda() for b in boxes], tolerance=2)
    en = energy_in_box(sal.cuda(), [b.cuda() for b in boxes])
    assert pg.device.type == "cuda" and en.device.type == "cuda"
    torch.testing.assert_close(pg.cpu(), pointing_game(sal, boxes, tolerance=2), equal_nan=True)
    torch.testing.assert_close(en.cpu(), energy_in_box(sal, boxes), equal_nan=True)


def test_batched_scores_equal_the_per_row_scores_after_a_batched_resize() -> None:
    """`cameras evaluate` resizes a batch's maps to the photo size in one call and scores them in one call per
    metric: the same numbers as resizing and scoring each map on its own (pointing, discrimination: exactly;
    energy: up to float32 summation order)."""
    from cameras.metrics import discrimination
    from cameras.models import resize_map

    g = torch.Generator().manual_seed(3)
    sal = torch.rand(5, 14, 14, generator=g)
    sal[2] = 0.25  # a constant map: undefined in both forms
    size = (75, 100)
    own = [torch.tensor([[5.0, 4.0, 60.0, 50.0]]), torch.tensor([[0.0, 0.0, 100.0, 75.0]]),
           torch.tensor([[10.0, 10.0, 30.0, 20.0], [70.0, 40.0, 99.5, 74.0]]), torch.zeros(0, 4),
           torch.tensor([[30.0, 20.0, 31.0, 21.0]])]  # fmt: skip
    rivals = [torch.tensor([[60.0, 50.0, 90.0, 70.0]]) for _ in own]
    loc = resize_map(sal, size)
    rows = [resize_map(sal[k : k + 1], size) for k in range(5)]
    for k in range(5):
        assert torch.equal(loc[k : k + 1], rows[k])
    batched_p = pointing_game(loc, own, tolerance=15)
    batched_e = energy_in_box(loc, own)
    batched_d = discrimination(loc, own, rivals)
    per_p = torch.cat([pointing_game(rows[k], [own[k]], tolerance=15) for k in range(5)])
    per_e = torch.cat([energy_in_box(rows[k], [own[k]]) for k in range(5)])
    per_d = torch.cat([discrimination(rows[k], [own[k]], [rivals[k]]) for k in range(5)])
    assert torch.equal(batched_p.isnan(), per_p.isnan()) and bool(per_p.isnan()[[2, 3]].all())
    assert torch.equal(batched_p.nan_to_num(-1), per_p.nan_to_num(-1))
    assert torch.equal(batched_d.nan_to_num(-1), per_d.nan_to_num(-1))
    torch.testing.assert_close(batched_e, per_e, rtol=1e-6, atol=1e-7, equal_nan=True)
