"""Degenerate (constant) maps are reported, not dressed up; absurd schedules are a ValueError."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import nn

import cameras
from cameras.engine import Result, constant_maps, minmax_normalize, schedule
from cameras.engine.scales import MAX_SCALE_SIDE

from .nets import TinyCNN

METHODS = [
    cameras.CAMERAS,
    cameras.GradCAM,
    cameras.GradCAMPlusPlus,
    cameras.HiResCAM,
    cameras.LayerCAM,
    cameras.XGradCAM,
    cameras.CAM,
    cameras.ScoreCAM,
]


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
def test_a_one_by_one_layer_gives_zeros_and_a_flag(method: type) -> None:
    """The issue's Grad-CAM on a 1×1 layer: bilinear upsampling leaves a one-ulp ripple on the constant map that
    min–max normalisation used to stretch into full-range noise."""
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=5).eval()
    x = torch.randn(2, 3, 32, 32)  # layer4 is 1×1 at 32 px
    kwargs = {"resolutions": [1.0, 0.9]} if method is cameras.CAMERAS else {}  # 1×1 at both scales
    if method is cameras.ScoreCAM:
        kwargs = {"batch_size": 512}
    out = method(net, layer="layer4", **kwargs)(x, [1, 2])
    assert out.degenerate.tolist() == [True, True]
    assert out.saliency.abs().max() == 0 and out.any_degenerate
    assert torch.isfinite(out.saliency).all()


def test_a_real_map_is_not_flagged_and_the_flag_follows_the_result() -> None:
    net = TinyCNN(classes=6, seed=1)
    x = torch.randn(3, 3, 24, 24)
    out = cameras.CAMERAS(net, layer="features", resolutions=[1.0, 1.5])(x, top_k=2)
    flat = out.raw.flatten(2)
    assert out.degenerate.shape == (3, 2)
    assert out.degenerate.tolist() == (flat.amax(-1) == flat.amin(-1)).tolist()  # here: exactly constant raw maps
    assert not out.degenerate[:, 0].any()  # the top class has a real map
    one = out.select(1)
    assert one.degenerate.shape == (3,) and one.targets.tolist() == out.targets[:, 1].tolist()
    both = Result.cat([one, one.to("cpu")])
    assert both.degenerate.shape == (6,)
    flat = Result(
        saliency=torch.zeros(2, 4, 4),
        targets=torch.tensor([0, 1]),
        probabilities=torch.ones(2),
        raw=torch.stack([torch.full((4, 4), 3.0), torch.eye(4)]),
        kept=torch.ones(2, 1, dtype=torch.bool),
    )
    assert flat.degenerate.tolist() == [True, False]  # computed from raw when not given


def test_constant_maps_and_minmax_normalize() -> None:
    base = torch.full((4, 6, 6), 1.2089293)
    base[1, 2, 2] = torch.nextafter(base[1, 2, 2], torch.tensor(2.0))  # one-ulp ripple
    base[2] = 0.0
    base[3, 0, 0] = 1.3  # a real difference
    assert constant_maps(base).tolist() == [True, True, True, False]
    norm = minmax_normalize(base)
    assert (norm[:3] == 0).all() and norm[3].max() == 1.0 and norm[3].min() == 0.0
    assert constant_maps(base.double()).tolist() == [True, True, True, False]  # float32 ripples, converted
    assert constant_maps(torch.zeros(2, 1, 1)).tolist() == [True, True]
    assert constant_maps(torch.tensor([[1, 2], [3, 4]])).item() is False


@pytest.mark.parametrize(
    ("resolutions", "match"),
    [
        ([1.0, math.inf], "finite"),
        ([1.0, math.nan], "finite"),
        ([1.0, 1e300], "larger than"),
        ([224, 10**9], "exceeds"),
        ([(224, 10**6)], "exceeds"),
        ([-1.0], "positive"),
        ([0], "positive"),
        ([], "empty"),
        ("224", "sequence"),
        ([True], "Invalid"),
        (["224"], "Invalid"),
    ],
)
def test_schedule_refuses_absurd_values_with_a_value_error(resolutions: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        schedule(resolutions, (224, 336))  # type: ignore[arg-type]


def test_schedule_accepts_numpy_numbers_and_bounds() -> None:
    import numpy as np

    assert schedule([np.int64(224), np.float32(1.5)], (224, 336)) == [(224, 336), (336, 504)]
    assert schedule([np.int64(224), np.float32(1.5)], (224, 336), square=True) == [(224, 224), (336, 336)]
    assert schedule([MAX_SCALE_SIDE], (1, 1)) == [(MAX_SCALE_SIDE, MAX_SCALE_SIDE)]
    with pytest.raises(ValueError):
        cameras.CAMERAS(nn.Sequential(nn.Conv2d(3, 2, 1)), layer="0", resolutions=[1.0, math.inf])
