"""Discrimination between annotated classes: a slow reference from the definition, hand-made cases, errors."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from cameras.metrics import discrimination


def _inside(px: int, py: int, boxes: Tensor) -> bool:
    return any(x0 <= px < x1 and y0 <= py < y1 for x0, y0, x1, y1 in boxes.tolist())


def _ref(sal: Tensor, own: list[Tensor], other: list[Tensor]) -> list[float]:
    """The definition: the first maximum in row-major order, inside one of the own boxes (half-open), inside none of
    the others; undefined (NaN) without an own box, as in the pointing game."""
    out = []
    for b in range(sal.shape[0]):
        rows = sal[b].tolist()
        best, px, py = float("-inf"), -1, -1
        for y, row in enumerate(rows):
            for x, v in enumerate(row):
                if v > best:
                    best, px, py = v, x, y
        hit = _inside(px, py, own[b]) and not _inside(px, py, other[b])
        out.append(float("nan") if own[b].shape[0] == 0 else float(hit))
    return out


def _boxes(gen: torch.Generator, n: int, h: int, w: int) -> Tensor:
    if n == 0:
        return torch.zeros(0, 4)
    x0 = torch.randint(0, w - 1, (n,), generator=gen).float()
    y0 = torch.randint(0, h - 1, (n,), generator=gen).float()
    x1 = x0 + torch.randint(1, w, (n,), generator=gen).float()
    y1 = y0 + torch.randint(1, h, (n,), generator=gen).float()
    return torch.stack([x0, y0, x1.clamp(max=w), y1.clamp(max=h)], dim=1) + 0.5 * torch.rand(n, 4, generator=gen)


def test_matches_the_definition_on_random_maps_and_boxes() -> None:
    gen = torch.Generator().manual_seed(0)
    batch, h, w = 64, 9, 11
    sal = torch.rand(batch, h, w, generator=gen)
    sal[::5] = sal[::5].round(decimals=1)  # ties: the first maximum counts
    own = [_boxes(gen, int(torch.randint(0, 3, (1,), generator=gen)), h, w) for _ in range(batch)]
    other = [_boxes(gen, int(torch.randint(0, 3, (1,), generator=gen)), h, w) for _ in range(batch)]
    got = discrimination(sal, own, other)
    want = torch.tensor(_ref(sal, own, other))
    torch.testing.assert_close(got, want, equal_nan=True)
    assert 0 < float(got.nansum()) < int((~got.isnan()).sum())  # both outcomes occur
    assert bool(got.isnan().any())  # and images with no own box are undefined, not misses


def test_hand_made_cases() -> None:
    sal = torch.zeros(4, 6, 6)
    sal[0, 1, 1] = 1.0  # own box only
    sal[1, 4, 4] = 1.0  # where own and other overlap
    sal[2, 5, 0] = 1.0  # in neither
    sal[3, 1, 1] = 1.0  # own, and no other class annotated
    own = torch.tensor([[0.0, 0.0, 5.0, 5.0]])
    other = torch.tensor([[3.0, 3.0, 6.0, 6.0]])
    assert discrimination(sal, [own, own, own, own], [other, other, other, torch.zeros(0, 4)]).tolist() == [
        True,
        False,
        False,
        True,
    ]


def test_errors() -> None:
    sal = torch.zeros(1, 4, 4)
    box = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    with pytest.raises((TypeError, ValueError)):
        discrimination(sal, [box, box], [box])
    with pytest.raises((TypeError, ValueError)):
        discrimination(torch.zeros(4, 4), [box], [box])
