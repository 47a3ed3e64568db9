"""Fast paths (mixed precision, channels-last, batch splitting) checked against the exact float32 engine."""

from __future__ import annotations

import pytest
import torch

import cameras

from .nets import TinyCNN


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten() - a.mean(), b.flatten() - b.mean()
    return float((a @ b) / (a.norm() * b.norm()))


def test_bfloat16_autocast_is_close_to_exact() -> None:
    model = TinyCNN(seed=11, width=16)
    x = torch.randn(3, 3, 48, 48)
    exact = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 1.5, 2.0])(x)
    fast = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 1.5, 2.0], dtype=torch.bfloat16)(x)
    assert fast.saliency.dtype == torch.float32 and fast.raw.dtype == torch.float32
    assert torch.equal(fast.targets, exact.targets)
    for i in range(3):
        assert _corr(fast.saliency[i], exact.saliency[i]) > 0.98
    assert (fast.saliency - exact.saliency).abs().max() < 0.15
    assert not torch.equal(fast.raw, exact.raw)  # it really ran in reduced precision


def test_channels_last_and_max_batch_equal_exact() -> None:
    model = TinyCNN(seed=12)
    x = torch.randn(5, 3, 40, 36)
    base = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 2.0])(x)
    split = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 2.0], max_batch=2)(x)
    assert torch.equal(split.targets, base.targets) and torch.equal(split.kept, base.kept)
    assert (split.saliency - base.saliency).abs().max() <= 1e-5
    given = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 2.0], max_batch=3)(x, targets=[1, 2, 3, 4, 5])
    assert given.targets.tolist() == [1, 2, 3, 4, 5]
    cl_model = TinyCNN(seed=12).to(memory_format=torch.channels_last)
    cl = cameras.CAMERAS(cl_model, layer="features", resolutions=[1.0, 2.0], channels_last=True)(x)
    assert (cl.saliency - base.saliency).abs().max() <= 1e-5


def test_fast_path_argument_errors() -> None:
    model = TinyCNN(seed=0)
    with pytest.raises(ValueError, match="dtype"):
        cameras.CAMERAS(model, layer="features", dtype=torch.float64)
    with pytest.raises(ValueError, match="max_batch"):
        cameras.CAMERAS(model, layer="features", max_batch=0)


def test_multi_class_shares_one_forward_per_scale() -> None:
    model = TinyCNN(seed=13)
    calls: list[int] = []
    handle = model.stem.register_forward_hook(lambda m, i, o: calls.append(1))
    out = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 1.5, 2.0])(torch.randn(2, 3, 32, 32), top_k=4)
    handle.remove()
    assert out.saliency.shape == (2, 4, 32, 32)
    assert len(calls) == 3  # one forward per scale for all 4 classes
