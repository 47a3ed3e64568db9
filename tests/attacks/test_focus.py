"""Focus masks: top-k area, soft weights, random masks of equal area, masks from a saliency method by name."""

from __future__ import annotations

import pytest
import torch

import cameras
from cameras.attacks import focus_masks, full_mask, random_area_mask, saliency_maps, soft_weight, top_area_mask

from .nets import SmallCNN


def test_top_area_mask_selects_the_highest_pixels() -> None:
    g = torch.Generator().manual_seed(0)
    sal = torch.rand(3, 10, 12, generator=g)
    mask = top_area_mask(sal, 0.1)
    k = round(0.1 * 120)
    assert mask.sum(dim=(1, 2)).tolist() == [float(k)] * 3
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    for i in range(3):
        chosen, rest = sal[i][mask[i] == 1], sal[i][mask[i] == 0]
        assert float(chosen.min()) >= float(rest.max())
        # the k-th largest value by an independent sort
        assert float(chosen.min()) == float(torch.sort(sal[i].flatten(), descending=True).values[k - 1])


def test_top_area_mask_ties_and_minimum_of_one_pixel() -> None:
    flat = torch.zeros(1, 2, 3)
    assert top_area_mask(flat, 0.5).flatten().tolist() == [1, 1, 1, 0, 0, 0]  # ties: lowest index first
    assert int(top_area_mask(flat, 1e-6).sum()) == 1
    assert int(top_area_mask(flat[:, None], 1.0).sum()) == 6  # (B, 1, H, W) accepted


def test_soft_weight_is_map_over_its_max() -> None:
    sal = torch.tensor([[[0.0, 0.5], [2.0, -1.0]], [[0.0, 0.0], [0.0, 0.0]]])
    expected = torch.tensor([[[0.0, 0.25], [1.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    torch.testing.assert_close(soft_weight(sal), expected)


def test_random_area_mask_count_seed_and_device_independence() -> None:
    a = random_area_mask(3, 16, 16, 0.2, seed=7)
    assert a.sum(dim=(1, 2)).tolist() == [float(round(0.2 * 256))] * 3
    assert torch.equal(a, random_area_mask(3, 16, 16, 0.2, seed=7))
    assert not torch.equal(a, random_area_mask(3, 16, 16, 0.2, seed=8))
    assert not torch.equal(a[0], a[1])  # images get different draws
    assert torch.equal(a[1], random_area_mask(1, 16, 16, 0.2, seed=8)[0])  # image i uses seed + i
    assert full_mask(2, 3, 4).shape == (2, 3, 4) and float(full_mask(2, 3, 4).min()) == 1.0


def test_focus_masks_from_registered_method() -> None:
    net = SmallCNN()
    x = torch.rand(2, 3, 16, 16)
    y = net(x).argmax(1)
    masks, maps = focus_masks(net, x, y, ["cameras", "random", "full"], area=0.25, layer="features")
    expected_map = cameras.methods.get("cameras")(net, layer="features")(x, y).saliency
    torch.testing.assert_close(maps["cameras"], expected_map)
    torch.testing.assert_close(masks["cameras"], top_area_mask(expected_map, 0.25))
    assert masks["random"].sum(dim=(1, 2)).tolist() == [64.0, 64.0]
    assert float(masks["full"].sum()) == 2 * 256
    soft, _ = focus_masks(net, x, y, ["cameras"], mode="soft", layer="features")
    torch.testing.assert_close(soft["cameras"], soft_weight(expected_map))
    torch.testing.assert_close(saliency_maps("cameras", net, x, y, layer="features"), expected_map)


def test_focus_errors() -> None:
    net = SmallCNN()
    x = torch.rand(1, 3, 16, 16)
    y = torch.tensor([0])
    with pytest.raises(ValueError, match="Unknown method"):
        focus_masks(net, x, y, ["nosuchmethod"], layer="features")
    with pytest.raises(ValueError, match="duplicates"):
        focus_masks(net, x, y, ["full", "full"])
    with pytest.raises(ValueError, match="non-empty"):
        focus_masks(net, x, y, "full")
    with pytest.raises(ValueError, match="area"):
        focus_masks(net, x, y, ["full"], area=0.0)
    with pytest.raises(ValueError, match="mode"):
        focus_masks(net, x, y, ["full"], mode="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="area"):
        top_area_mask(torch.rand(1, 4, 4), 1.5)
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        top_area_mask(torch.rand(4, 4), 0.5)
    with pytest.raises(ValueError, match="NaN"):
        soft_weight(torch.full((1, 2, 2), float("nan")))
    with pytest.raises(ValueError, match="positive int"):
        random_area_mask(0, 4, 4, 0.5)
