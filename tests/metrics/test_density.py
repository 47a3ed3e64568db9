"""Positive / negative map density (CAMERAS paper, Sec. 4.2): a slow reference from the definition, the all-ones
map, undefined entries, batch parity, the paper's black baseline, model state and bad inputs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cameras.metrics import black_baseline, map_density
from cameras.models import Preprocess

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Dropout(0.5), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(24, 5),
    ).eval()  # fmt: skip


def _batch(b: int = 4, size: int = 10, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 3, size, size, generator=g), torch.rand(b, size, size, generator=g)


def _reference(net: nn.Module, x: torch.Tensor, sal: torch.Tensor, t: list[int], base: torch.Tensor) -> list[tuple]:
    """ρ⁺ and ρ⁻ image by image, straight from P(K(I ⊙ Ψ)) / mean(Ψ) and P(K(I ⊙ (1 − Ψ))) / mean(1 − Ψ)."""
    rows = []
    with torch.no_grad():
        for i in range(x.shape[0]):
            psi = sal[i].double()
            kept = base + psi * (x[i].double() - base)
            removed = base + (1 - psi) * (x[i].double() - base)
            p_kept = torch.softmax(net(kept[None].float()).double(), 1)[0, t[i]]
            p_removed = torch.softmax(net(removed[None].float()).double(), 1)[0, t[i]]
            area = float(psi.sum()) / psi.numel()
            rows.append(
                (
                    float(p_kept) / area if area > 0 else math.nan,
                    float(p_removed) / (1 - area) if area < 1 else math.nan,
                )
            )
    return rows


@pytest.mark.parametrize("baseline", ["zero", 0.3, "black"])
def test_matches_the_definition(baseline: object) -> None:
    net = _net()
    x, sal = _batch()
    t = [0, 1, 4, 2]
    base = black_baseline(MEAN, STD) if baseline == "black" else baseline
    d = map_density(net, x, sal, t, baseline=base)  # type: ignore[arg-type]
    b = (
        black_baseline(MEAN, STD).double()
        if baseline == "black"
        else torch.zeros(3, 1, 1, dtype=torch.float64) + (0.0 if baseline == "zero" else float(baseline))  # type: ignore[arg-type]
    )
    for i, (pos, neg) in enumerate(_reference(net, x, sal, t, b)):
        assert float(d.positive[i]) == pytest.approx(pos, rel=1e-5)
        assert float(d.negative[i]) == pytest.approx(neg, rel=1e-5)
    assert torch.allclose(d.map_mean, sal.double().mean(dim=(1, 2)))


def test_all_ones_gives_the_confidence_and_no_negative_density() -> None:
    net = _net()
    x, _ = _batch(3)
    t = torch.tensor([1, 2, 3])
    d = map_density(net, x, torch.ones(3, 10, 10), t)
    conf = torch.softmax(net(x), 1).gather(1, t[:, None]).squeeze(1)
    assert torch.allclose(d.positive.float(), conf, atol=1e-6)
    assert torch.allclose(d.original_probability, conf, atol=1e-6)
    assert bool(d.negative.isnan().all()) and d.undefined_negative == 3 and d.undefined_positive == 0


def test_undefined_entries_are_nan_and_counted_never_inf() -> None:
    net = _net()
    x, sal = _batch(4)
    sal[0] = 0.0  # no positive density
    sal[1] = 1.0  # no negative density
    sal[2] = 0.0
    sal[2, 0, 0] = 1e-30  # a tiny but non-zero mean: large and finite
    d = map_density(net, x, sal, 0)
    assert math.isnan(float(d.positive[0])) and math.isfinite(float(d.negative[0]))
    assert math.isnan(float(d.negative[1])) and math.isfinite(float(d.positive[1]))
    assert math.isfinite(float(d.positive[2])) and float(d.positive[2]) > 1e20
    assert not bool(d.positive.isinf().any() or d.negative.isinf().any())
    s = d.summary()
    assert s["rho_pos"]["undefined"] == 1 and s["rho_pos"]["n"] == 3
    assert s["rho_neg"]["undefined"] == 1 and s["rho_neg"]["n"] == 3
    finite = d.negative[~d.negative.isnan()].double()
    assert s["rho_neg"]["mean"] == pytest.approx(float(finite.mean()))
    # nothing defined at all: NaN aggregates, no exception
    none = map_density(net, x[:2], torch.zeros(2, 10, 10), 0).summary()["rho_pos"]
    assert none["n"] == 0 and none["undefined"] == 2 and math.isnan(none["mean"])


def test_batch_parity() -> None:
    net = _net()
    x, sal = _batch(5)
    t = [0, 1, 2, 3, 4]
    one = map_density(net, x, sal, t, batch_size=1)
    two = map_density(net, x, sal, t, batch_size=2)
    full = map_density(net, x, sal, t)
    for a in (one, two):
        assert torch.allclose(a.positive, full.positive, rtol=1e-5)
        assert torch.allclose(a.negative, full.negative, rtol=1e-5)


def test_black_baseline_is_the_papers_product_on_the_photo() -> None:
    prep = Preprocess(size=10, mean=MEAN, std=STD)
    g = torch.Generator().manual_seed(3)
    photo = torch.rand(2, 3, 10, 10, generator=g)  # pixels in [0, 1]
    sal = torch.rand(2, 10, 10, generator=g)
    net = _net()
    d = map_density(net, prep.normalize(photo), sal, [1, 2], baseline=black_baseline(prep.mean, prep.std))
    with torch.no_grad():
        p = torch.softmax(net(prep.normalize(photo * sal[:, None])), 1)[[0, 1], [1, 2]]
    assert torch.allclose(d.positive_probability, p, atol=1e-6)
    assert black_baseline().flatten().tolist() == pytest.approx([-m / s for m, s in zip(MEAN, STD)])


def test_model_state_is_restored() -> None:
    net = _net().train()
    x, sal = _batch(2)
    a = map_density(net, x, sal, 0)
    b = map_density(net, x, sal, 0)  # dropout off inside: deterministic
    assert torch.equal(a.positive, b.positive)
    assert net.training and all(m.training for m in net.modules())
    assert all(p.requires_grad for p in net.parameters())
    with pytest.raises(ValueError):
        map_density(net, x, sal, 7)
    assert net.training


@pytest.mark.parametrize(
    ("sal", "targets", "kwargs", "match"),
    [
        (torch.full((2, 10, 10), 1.2), 0, {}, r"saliency must be in \[0, 1\]"),
        (-torch.rand(2, 10, 10) - 0.1, 0, {}, r"saliency must be in \[0, 1\]"),
        (torch.rand(2, 9, 10), 0, {}, "saliency is"),
        (torch.rand(3, 10, 10), 0, {}, "Got 3 maps for 2 images"),
        (torch.rand(10, 10), 0, {}, r"shape \(B, H, W\)"),
        (torch.rand(2, 10, 10), 5, {}, "out of range"),
        (torch.rand(2, 10, 10), -1, {}, "non-negative"),
        (torch.rand(2, 10, 10), 0, {"batch_size": 0}, "batch_size"),
        (torch.rand(2, 10, 10), 0, {"baseline": "grey"}, "Unknown baseline"),
    ],
)
def test_bad_inputs(sal: torch.Tensor, targets: int, kwargs: dict[str, object], match: str) -> None:
    x, _ = _batch(2)
    with pytest.raises(ValueError, match=match):
        map_density(_net(), x, sal, targets, **kwargs)  # type: ignore[arg-type]


def test_black_baseline_bad_inputs() -> None:
    with pytest.raises(ValueError, match="std"):
        black_baseline((0.5, 0.5, 0.5), (0.2, 0.0, 0.2))
    with pytest.raises(ValueError, match="equally long"):
        black_baseline((0.5, 0.5), (0.2, 0.2, 0.2))
