"""Cross-check against Quantus (test-only dependency, LGPL) where it implements the same definition.

* ``quantus.PointingGame`` = our pointing game with ``tolerance=0`` (hit when a maximum lies in the mask; equal to
  ours when the maximum is unique, which the random float maps here guarantee).
* ``quantus.RelevanceMassAccuracy`` = our energy in box on a non-negative map (mass inside / total mass).
"""

from __future__ import annotations

import numpy as np
import quantus
import torch

from cameras.metrics import boxes_to_mask, energy_in_box, pointing_game


def _case(seed: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    sal = torch.rand(32, 12, 14, generator=gen, dtype=torch.float64)
    boxes = []
    for _ in range(32):
        x0, y0 = torch.randint(0, 10, (2,), generator=gen).tolist()
        w, h = torch.randint(1, 8, (2,), generator=gen).tolist()
        boxes.append(torch.tensor([[x0, y0, x0 + w, y0 + h]], dtype=torch.float32))
    return sal, boxes


def test_pointing_game_matches_quantus() -> None:
    sal, boxes = _case(0)
    masks = boxes_to_mask(boxes, (12, 14)).numpy()[:, None].astype(np.float64)
    theirs = quantus.PointingGame(disable_warnings=True).evaluate_batch(a_batch=sal.numpy()[:, None], s_batch=masks)
    ours = pointing_game(sal, boxes, tolerance=0).numpy()
    assert 0 < ours.sum() < len(ours)  # both outcomes occur
    np.testing.assert_array_equal(ours, np.asarray(theirs, dtype=bool))


def test_energy_matches_quantus_relevance_mass() -> None:
    sal, boxes = _case(1)
    masks = boxes_to_mask(boxes, (12, 14)).numpy()[:, None].astype(np.float64)
    theirs = quantus.RelevanceMassAccuracy(disable_warnings=True).evaluate_batch(
        a_batch=sal.numpy()[:, None], s_batch=masks
    )
    np.testing.assert_allclose(energy_in_box(sal, boxes).numpy(), np.asarray(theirs), rtol=1e-10)
