"""Adversarial sanity test (our reconstruction of CAMERAS Sec. 6.1): the quadrant model, slow references for the
cell effects, the cell means, Spearman and the top-10 % overlap, batch parity, the randomised copy, bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import Tensor, nn

from cameras.attacks import pgd_attack
from cameras.sanity import (
    adversarial_effect,
    adversarial_sanity,
    cascading_randomization,
    cell_means,
    plot_adversarial_sanity,
    randomized_copy,
)

SIZE = 16


class Quadrant(nn.Module):
    """A small random CNN that only looks at the top-left quadrant of the image."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU())
        self.fc = nn.Linear(6, 4)
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2] // 2, x.shape[-1] // 2
        return self.fc(self.features(x[:, :, :h, :w]).mean(dim=(2, 3)))


def _images(b: int = 2, seed: int = 1) -> Tensor:
    return torch.rand(b, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _quadrant_maps(b: int, which: str) -> Tensor:
    m = torch.zeros(b, SIZE, SIZE)
    half = SIZE // 2
    if which == "top-left":
        m[:, :half, :half] = 1.0
    else:
        m[:, half:, half:] = 1.0
    return m


@pytest.mark.parametrize("patch", [1, 4, 5])
def test_quadrant_model(patch: int) -> None:
    net, x = Quadrant(), _images()
    good = adversarial_sanity(net, _quadrant_maps(2, "top-left"), x, [0, 1], patch=patch, eps=0.1, steps=5)
    bad = adversarial_sanity(net, _quadrant_maps(2, "bottom-right"), x, [0, 1], patch=patch, eps=0.1, steps=5,
                             effect=good.effect)  # fmt: skip
    assert bool((good.spearman > 0.5).all()), good.spearman
    assert bool((bad.spearman < 0).all()), bad.spearman
    # the most affected cells are in the quadrant: none among the opposite quadrant's (the map of the right
    # quadrant ties all its cells, so its top 10 % are the first ones in row-major order, not necessarily those)
    assert bool((bad.top_overlap == 0).all()) and bool((good.top_overlap > 0).all())
    # outside the quadrant the perturbation has no effect at all
    e = good.effect.effect
    gh = e.shape[1]
    assert float(e[:, gh // 2 + 1 :, :].abs().max()) == 0.0


def _slow_effect(net: nn.Module, x: Tensor, delta: Tensor, t: list[int], patch: int) -> Tensor:
    b, _, h, w = x.shape
    gh, gw = math.ceil(h / patch), math.ceil(w / patch)
    out = torch.zeros(b, gh, gw, dtype=torch.float64)
    with torch.no_grad():
        for i in range(b):
            clean = float(net(x[i : i + 1])[0, t[i]])
            for r in range(gh):
                for c in range(gw):
                    m = torch.zeros(1, 1, h, w)
                    m[..., r * patch : (r + 1) * patch, c * patch : (c + 1) * patch] = 1
                    out[i, r, c] = clean - float(net(x[i : i + 1] + delta[i : i + 1] * m)[0, t[i]])
    return out


def test_effect_matches_the_definition_and_batch_size_does_not_matter() -> None:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                        nn.Linear(20, 3)).eval()  # fmt: skip
    x = _images(2)
    t = [2, 0]
    res = adversarial_effect(net, x, t, patch=5, eps=0.2, steps=4, bounds=(-1.0, 1.0), batch_size=5)
    pgd = pgd_attack(net, x, torch.tensor(t), 0.2, norm="linf", bounds=(-1.0, 1.0), steps=4, early_stop=False)
    assert torch.equal(res.perturbation, pgd.adversarial - x)
    assert res.grid == (4, 4)  # 16 = 5 + 5 + 5 + 1: partial last cells
    ref = _slow_effect(net, x, res.perturbation, t, 5)
    assert torch.allclose(res.effect, ref, atol=1e-5)
    for bs in (1, 64):
        other = adversarial_effect(net, x, t, patch=5, eps=0.2, steps=4, bounds=(-1.0, 1.0), batch_size=bs)
        assert torch.allclose(other.effect, res.effect, atol=1e-5)
    with torch.no_grad():
        full = net(pgd.adversarial).gather(1, torch.tensor(t)[:, None]).squeeze(1)
    assert torch.allclose(res.adversarial_logit.float(), full, atol=1e-5)


def test_cell_means_spearman_and_overlap_match_the_definitions() -> None:
    g = torch.Generator().manual_seed(5)
    maps = torch.rand(2, 7, 10, generator=g)
    cm = cell_means(maps, 3)
    assert cm.shape == (2, 3, 4)
    for i in range(2):
        for r in range(3):
            for c in range(4):
                cell = maps[i, r * 3 : (r + 1) * 3, c * 3 : (c + 1) * 3]
                assert float(cm[i, r, c]) == pytest.approx(float(cell.double().mean()))
    torch.manual_seed(4)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    x = torch.rand(2, 3, 7, 10, generator=g)
    out = adversarial_sanity(net, maps, x, 1, patch=3, eps=0.05, steps=3)
    for i in range(2):
        s, e = out.cell_saliency[i].flatten().numpy(), out.effect.effect[i].flatten().numpy()
        rho = np.corrcoef(stats.rankdata(s), stats.rankdata(e))[0, 1]
        assert float(out.spearman[i]) == pytest.approx(rho)
        k = max(1, round(0.1 * s.size))
        top_s, top_e = set(np.argsort(-s, kind="stable")[:k]), set(np.argsort(-e, kind="stable")[:k])
        assert float(out.top_overlap[i]) == pytest.approx(len(top_s & top_e) / k)


def test_constant_map_gives_nan_not_an_error() -> None:
    net, x = Quadrant(), _images(1)
    out = adversarial_sanity(net, torch.full((1, SIZE, SIZE), 0.5), x, 0, patch=4, eps=0.1, steps=2)
    assert math.isnan(float(out.spearman[0])) and math.isnan(float(out.top_overlap[0]))
    assert out.to_dict()["spearman"] == [None] and out.to_dict()["top_overlap"] == [None]
    # a degenerate map (all zeros, or constant up to an upsampling ripple of a few ulps) ranks no cell: both
    # scores undefined, not the overlap of an arbitrary tie order
    ripple = torch.full((2, SIZE, SIZE), 0.75)
    ripple[1, 0, 0] += 2e-7
    ripple[0] = 0
    out = adversarial_sanity(net, ripple, _images(2), 0, patch=4, eps=0.1, steps=2)
    assert torch.isnan(out.spearman).all() and torch.isnan(out.top_overlap).all()


def test_method_by_name_and_model_state_restored() -> None:
    net = Quadrant().train()
    net.cameras_default_layer = "features"  # type: ignore[assignment]
    x = _images(1)
    out = adversarial_sanity(net, "gradcam", x, 0, patch=4, eps=0.1, steps=2)
    assert out.saliency.shape == (1, SIZE, SIZE) and float(out.saliency.max()) <= 1
    assert net.training and all(m.training for m in net.modules())
    assert all(p.requires_grad for p in net.parameters())
    with pytest.raises(ValueError, match="targets must be classes"):
        adversarial_sanity(net, "gradcam", x, 9, patch=4, eps=0.1, steps=2)
    assert net.training and all(p.requires_grad for p in net.parameters())


def test_randomized_copy_is_the_last_cascading_step() -> None:
    net = Quadrant()
    net.cameras_default_layer = "features"  # type: ignore[assignment]
    x = _images(2)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rnd = randomized_copy(net, x, seed=3)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # the original is untouched
    assert not torch.equal(rnd.fc.weight, net.fc.weight)
    cascade = cascading_randomization(net, "gradcam", x, [0, 1], seed=3)
    from cameras.methods import GradCAM

    maps = GradCAM(rnd, layer="features")(x, [0, 1]).saliency
    assert torch.allclose(cascade.maps["gradcam"][-1], maps, atol=1e-5)
    with pytest.raises(ValueError, match="needs images"):
        randomized_copy(net)
    with pytest.raises(ValueError, match="Unknown block"):
        randomized_copy(net, x, blocks=["nope"])


@pytest.mark.parametrize(
    ("maps", "kwargs", "match"),
    [
        (torch.full((2, SIZE, SIZE), 1.5), {}, r"maps must be in \[0, 1\]"),
        (torch.rand(2, SIZE, SIZE + 1), {}, "maps must have shape"),
        (torch.rand(2, SIZE, SIZE), {"patch": SIZE + 1}, "larger than the image"),
        (torch.rand(2, SIZE, SIZE), {"patch": 0}, "patch must be an int >= 1"),
        (torch.rand(2, SIZE, SIZE), {"eps": 0.0}, "eps must be a finite number > 0"),
        (torch.rand(2, SIZE, SIZE), {"eps": -1.0}, "eps must be a finite number > 0"),
        (torch.rand(2, SIZE, SIZE), {"steps": 0}, "steps must be an int >= 1"),
        (torch.rand(2, SIZE, SIZE), {"top": 0.0}, "top must be a fraction"),
        (torch.rand(2, SIZE, SIZE), {"targets": [0, 4]}, "targets must be classes"),
        (torch.rand(2, SIZE, SIZE), {"targets": [0, 1, 2]}, "3 targets for 2 images"),
    ],
)
def test_bad_inputs(maps: Tensor, kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"targets": 0, "patch": 4, "eps": 0.1, "steps": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        adversarial_sanity(Quadrant(), maps, _images(2), args.pop("targets"), **args)  # type: ignore[arg-type]


def test_plot(tmp_path: object) -> None:
    net, x = Quadrant(), _images(1)
    a = adversarial_sanity(net, _quadrant_maps(1, "top-left"), x, 0, patch=4, eps=0.1, steps=2)
    b = adversarial_sanity(net, _quadrant_maps(1, "bottom-right"), x, 0, effect=a.effect, eps=0.1)
    fig = plot_adversarial_sanity(
        {"trained": {"q": a, "r": b}, "randomized": {"q": b, "r": a}}, image=np.zeros((16, 16, 3))
    )
    assert len(fig.axes) == 3 * 5
    with pytest.raises(ValueError, match="same"):
        plot_adversarial_sanity({"trained": {"q": a}, "randomized": {"r": b}})
