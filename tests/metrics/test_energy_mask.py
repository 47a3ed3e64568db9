"""energy_in_mask: the energy-based pointing game on instance masks, against a slow per-pixel reference."""

from __future__ import annotations

import math

import pytest
import torch

from cameras.metrics import boxes_to_mask, energy_in_box, energy_in_mask


def _slow(sal: torch.Tensor, mask: torch.Tensor) -> float:
    """Σ_{mask} S / Σ S, pixel by pixel (Score-CAM's definition); NaN for a constant map or an empty mask."""
    h, w = sal.shape
    total = inside = 0.0
    values = set()
    for y in range(h):
        for x in range(w):
            v = float(sal[y, x])
            values.add(v)
            total += v
            if bool(mask[y, x]):
                inside += v
    if len(values) == 1 or not bool(mask.any()) or total <= 0:
        return math.nan
    return inside / total


def test_energy_in_mask_matches_the_per_pixel_definition() -> None:
    g = torch.Generator().manual_seed(3)
    sal = torch.rand(4, 9, 7, generator=g) ** 3
    masks = torch.rand(4, 9, 7, generator=g) > 0.6
    sal[2] = 0.5  # constant map: undefined
    masks[3] = False  # empty mask: undefined
    got = energy_in_mask(sal, masks)
    want = [_slow(sal[b], masks[b]) for b in range(4)]
    assert got.tolist() == pytest.approx(want, rel=1e-5, nan_ok=True)
    assert math.isnan(got[2]) and math.isnan(got[3]) and 0 < float(got[0]) < 1


def test_energy_in_mask_of_a_box_is_energy_in_box() -> None:
    sal = torch.rand(2, 12, 10, generator=torch.Generator().manual_seed(0))
    boxes = [torch.tensor([[1.0, 2.0, 6.0, 9.0]]), torch.tensor([[0.0, 0.0, 3.0, 3.0], [5.0, 5.0, 10.0, 12.0]])]
    mask = boxes_to_mask(boxes, (12, 10))
    torch.testing.assert_close(energy_in_mask(sal, mask), energy_in_box(sal, boxes))


def test_energy_in_mask_rejects_bad_masks() -> None:
    sal = torch.rand(1, 4, 4)
    with pytest.raises(TypeError, match="bool tensor"):
        energy_in_mask(sal, torch.ones(1, 4, 4))
    with pytest.raises(ValueError, match="maps' shape"):
        energy_in_mask(sal, torch.ones(1, 4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="energy_in_mask needs a non-negative map"):
        energy_in_mask(-sal, torch.ones(1, 4, 4, dtype=torch.bool))
