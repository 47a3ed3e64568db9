"""Insertion/deletion and confidence change: slow references written from the definitions, and behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage
import torch
from torch import Tensor, nn

from cameras.metrics import confidence_change, insertion_deletion


class Weighted(nn.Module):
    """Two classes: logit 0 = k * <w, x>, logit 1 = 0, so p0 = sigmoid(k <w, x>)."""

    def __init__(self, w: Tensor, k: float = 1.0) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.k = k

    def forward(self, x: Tensor) -> Tensor:
        s = self.k * (x * self.w).sum(dim=(1, 2, 3))
        return torch.stack([s, torch.zeros_like(s)], dim=1)


class WithBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.bn.running_mean.fill_(0.3)
        self.bn.running_var.fill_(2.0)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3)))


def _prob0(model: nn.Module, x: Tensor, target: int) -> float:
    with torch.no_grad():
        return float(torch.softmax(model(x[None]).double(), dim=1)[0, target])


def _ref_curves(
    model: nn.Module, img: Tensor, sal: Tensor, target: int, steps: int, base_ins: Tensor, base_del: Tensor
) -> tuple[list[float], list[float], list[float]]:
    """Loop over steps; pixel order by decreasing saliency, ties by row-major index."""
    _, h, w = img.shape
    flat = sal.flatten().tolist()
    order = sorted(range(h * w), key=lambda p: (-flat[p], p))
    ins, dele, fr = [], [], []
    for i in range(steps + 1):
        n = (i * h * w) // steps
        chosen = order[:n]
        a = base_ins.clone()
        d = img.clone()
        for p in chosen:
            y, x = divmod(p, w)
            a[:, y, x] = img[:, y, x]
            d[:, y, x] = base_del[:, y, x]
        ins.append(_prob0(model, a, target))
        dele.append(_prob0(model, d, target))
        fr.append(n / (h * w))
    return ins, dele, fr


def _trapz(y: list[float], x: list[float]) -> float:
    return sum((x[i + 1] - x[i]) * (y[i + 1] + y[i]) / 2 for i in range(len(y) - 1))


@pytest.mark.parametrize("steps", [1, 7, 30])
def test_insertion_deletion_matches_reference(steps: int) -> None:
    gen = torch.Generator().manual_seed(0)
    h = w = 5
    model = Weighted(torch.randn(3, h, w, generator=gen), k=0.7)
    images = torch.randn(3, 3, h, w, generator=gen)
    sal = torch.rand(3, h, w, generator=gen).round(decimals=1)  # ties exercise the order rule
    targets = [0, 1, 0]
    out = insertion_deletion(model, images, sal, targets, steps=steps, baseline=0.25, batch_size=5)
    assert out.insertion_curve.shape == (3, steps + 1)
    for b in range(3):
        base = torch.full_like(images[b], 0.25)
        ins, dele, fr = _ref_curves(model, images[b], sal[b], targets[b], steps, base, base)
        np.testing.assert_allclose(out.insertion_curve[b].numpy(), ins, atol=1e-6)
        np.testing.assert_allclose(out.deletion_curve[b].numpy(), dele, atol=1e-6)
        np.testing.assert_allclose(out.fractions.numpy(), fr, atol=1e-7)
        assert float(out.insertion[b]) == pytest.approx(_trapz(ins, fr), abs=1e-6)
        assert float(out.deletion[b]) == pytest.approx(_trapz(dele, fr), abs=1e-6)


def test_default_baselines_are_blur_and_zero() -> None:
    gen = torch.Generator().manual_seed(1)
    h, w = 12, 14
    model = Weighted(torch.randn(3, h, w, generator=gen), k=0.3)
    images = torch.randn(1, 3, h, w, generator=gen)
    sal = torch.rand(1, h, w, generator=gen)
    out = insertion_deletion(model, images, sal, 0, steps=6)
    # Blur reference: an 11-tap Gaussian (sigma 5) with mirror padding, written with scipy.
    blurred = torch.from_numpy(
        scipy.ndimage.gaussian_filter(images[0].double().numpy(), sigma=(0, 5, 5), radius=(0, 5, 5), mode="mirror")
    ).float()
    ins, dele, _ = _ref_curves(model, images[0], sal[0], 0, 6, blurred, torch.zeros(3, h, w))
    np.testing.assert_allclose(out.insertion_curve[0].numpy(), ins, atol=1e-5)
    np.testing.assert_allclose(out.deletion_curve[0].numpy(), dele, atol=1e-6)


def test_good_map_beats_reversed_map() -> None:
    gen = torch.Generator().manual_seed(2)
    h = w = 8
    weight = torch.randn(3, h, w, generator=gen)
    model = Weighted(weight, k=0.5)
    images = weight.sign()[None] * torch.rand(2, 3, h, w, generator=gen)  # every pixel adds evidence for class 0
    evidence = (images * weight).sum(dim=1)  # each pixel's contribution to logit 0
    good = insertion_deletion(model, images, evidence, 0, steps=16, baseline="zero")
    bad = insertion_deletion(model, images, -evidence, 0, steps=16, baseline="zero")
    assert bool((good.insertion > bad.insertion).all())
    assert bool((good.deletion < bad.deletion).all())
    # Full insertion is the image, full deletion is the baseline; the curves start and end there.
    torch.testing.assert_close(good.insertion_curve[:, -1], good.deletion_curve[:, 0])
    torch.testing.assert_close(good.insertion_curve[:, 0], good.deletion_curve[:, -1])


def test_chunking_and_tensor_baseline_and_pair() -> None:
    gen = torch.Generator().manual_seed(3)
    model = Weighted(torch.randn(3, 6, 6, generator=gen))
    images = torch.randn(2, 3, 6, 6, generator=gen)
    sal = torch.rand(2, 6, 6, generator=gen)
    mean = torch.tensor([0.1, -0.2, 0.3])[:, None, None]
    a = insertion_deletion(model, images, sal, [0, 1], steps=9, baseline=(mean, "zero"), batch_size=1)
    b = insertion_deletion(model, images, sal, [0, 1], steps=9, baseline=(mean, 0.0), batch_size=100)
    torch.testing.assert_close(a.insertion_curve, b.insertion_curve)
    torch.testing.assert_close(a.deletion_curve, b.deletion_curve)
    ins, _, _ = _ref_curves(model, images[1], sal[1], 1, 9, mean.expand(3, 6, 6), torch.zeros(3, 6, 6))
    np.testing.assert_allclose(a.insertion_curve[1].numpy(), ins, atol=1e-6)


def test_eval_mode_used_and_training_flag_restored() -> None:
    model = WithBN().train()
    images = torch.randn(2, 3, 8, 8)
    sal = torch.rand(2, 8, 8)
    out = insertion_deletion(model, images, sal, [0, 2], steps=4, baseline="zero")
    assert model.training
    model.eval()
    expected = torch.softmax(model(images), dim=1)[[0, 1], [0, 2]]
    torch.testing.assert_close(out.deletion_curve[:, 0], expected)
    cc = confidence_change(model.train(), images, torch.ones(2, 8, 8), [0, 2])
    assert model.training
    torch.testing.assert_close(cc.original, expected)


def test_confidence_change_hand_values() -> None:
    # p0 = sigmoid(sum(x)) with w = 1. Image 0: sum 2 -> shown half -> sum 1 (drop); image 1: sum -2 -> -1 (rise).
    model = Weighted(torch.ones(1, 2, 2))
    images = torch.tensor([[[[0.5, 0.5], [0.5, 0.5]]], [[[-0.5, -0.5], [-0.5, -0.5]]]])
    sal = torch.tensor([[[1.0, 0.0], [0.5, 0.5]]]).expand(2, 2, 2)  # weights summing to 2 of 4: half the sum
    out = confidence_change(model, images, sal, 0)

    def sig(v: float) -> float:
        return 1 / (1 + math.exp(-v))

    y = [sig(2), sig(-2)]
    o = [sig(1), sig(-1)]
    np.testing.assert_allclose(out.original.numpy(), y, rtol=1e-6)
    np.testing.assert_allclose(out.explained.numpy(), o, rtol=1e-6)
    np.testing.assert_allclose(out.drop.numpy(), [(y[0] - o[0]) / y[0], 0.0], rtol=1e-6, atol=1e-7)
    assert out.increase.tolist() == [False, True]
    assert out.average_drop == pytest.approx(100 * (y[0] - o[0]) / y[0] / 2, rel=1e-5)
    assert out.increase_in_confidence == pytest.approx(50.0)
    assert out.undefined == 0


def test_constant_maps_are_undefined_not_scored() -> None:
    """A constant map (e.g. the zeros of a degenerate explanation) orders no pixel: NaN and a count, the other
    images of the batch scored as if alone."""
    model = Weighted(torch.ones(1, 2, 2))
    images = torch.tensor([[[[0.5, 0.5], [0.5, 0.5]]], [[[-0.5, -0.5], [-0.5, -0.5]]], [[[0.5, 0.5], [0.5, 0.5]]]])
    good = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    sal = torch.stack([good, torch.zeros(2, 2), torch.full((2, 2), 0.7)])
    out = confidence_change(model, images, sal, 0)
    alone = confidence_change(model, images[:1], sal[:1], 0)
    assert out.undefined == 2
    assert (
        torch.isnan(out.drop[1:]).all() and torch.isnan(out.increase[1:]).all() and torch.isnan(out.explained[1:]).all()
    )
    torch.testing.assert_close(out.drop[:1], alone.drop)
    assert out.average_drop == pytest.approx(alone.average_drop)  # the mean is over defined images
    ins = insertion_deletion(model, images, sal, 0, steps=4, baseline="zero")
    ins_alone = insertion_deletion(model, images[:1], sal[:1], 0, steps=4, baseline="zero")
    assert ins.undefined == 2 and torch.isnan(ins.insertion_curve[1:]).all() and torch.isnan(ins.deletion[1:]).all()
    torch.testing.assert_close(ins.insertion[:1], ins_alone.insertion)
    torch.testing.assert_close(ins.deletion_curve[:1], ins_alone.deletion_curve)


def test_confidence_change_with_baseline() -> None:
    model = Weighted(torch.ones(1, 2, 2))
    images = torch.full((1, 1, 2, 2), 1.0)
    sal = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    out = confidence_change(model, images, sal, 0, baseline=0.5)  # shown: [[1, .5], [.5, .5]] -> sum 2.5
    assert float(out.explained[0]) == pytest.approx(1 / (1 + math.exp(-2.5)), rel=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "err"),
    [
        ({"saliency": torch.rand(2, 6, 5)}, ValueError),  # map size differs from image size
        ({"saliency": torch.rand(3, 6, 6)}, ValueError),  # batch differs
        ({"targets": [0]}, ValueError),
        ({"targets": [0, 5]}, ValueError),  # class out of range
        ({"targets": [0.0, 1.0]}, TypeError),
        ({"baseline": "mean"}, ValueError),
        ({"baseline": torch.zeros(2, 2)}, ValueError),
        ({"steps": 0}, ValueError),
        ({"batch_size": 0}, ValueError),
        ({"model": "net"}, TypeError),
    ],
)
def test_insertion_deletion_rejects_bad_inputs(kwargs: dict[str, object], err: type[Exception]) -> None:
    args: dict[str, object] = {
        "model": Weighted(torch.ones(3, 6, 6)),
        "images": torch.randn(2, 3, 6, 6),
        "saliency": torch.rand(2, 6, 6),
        "targets": [0, 1],
    }
    args.update(kwargs)
    with pytest.raises(err):
        insertion_deletion(**args)  # type: ignore[arg-type]


def test_confidence_change_rejects_unnormalised_maps() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        confidence_change(Weighted(torch.ones(3, 4, 4)), torch.randn(1, 3, 4, 4), torch.full((1, 4, 4), 2.0), 0)
