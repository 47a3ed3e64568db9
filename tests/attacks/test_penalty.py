"""Saliency-penalised PGD (Eq. 4 of the CAMERAS paper): the rule against a slow reference, β = 0 against plain
targeted PGD, batch parity, bounds, model state, the report's controls and matched-success figure, bad inputs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cameras.attacks import (
    compare_penalty,
    constant_map,
    least_likely,
    penalty_maps,
    pgd_attack,
    saliency_pgd,
    shuffled_map,
)
from cameras.attacks.penalty import penalty_gradient
from cameras.attacks.penalty_report import SUMMARY_KEYS, check_penalty_sources

from .nets import SmallCNN

BOUNDS = (-1.0, 1.0)


def _data(b: int = 3, size: int = 12, seed: int = 1, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, 3, size, size, generator=g, dtype=dtype) * 1.6 - 0.8).clamp(-1, 1)


def _maps(b: int = 3, size: int = 12, seed: int = 2, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, size, size, generator=g, dtype=dtype)


def _reference(net: torch.nn.Module, x: torch.Tensor, psi: torch.Tensor, t: torch.Tensor, beta: float,
               eps: float, step: float, steps: int, bounds: tuple[float, float]) -> torch.Tensor:  # fmt: skip
    """The rule of Eq. 4 written from its definition, one image at a time, with autograd for the whole objective
    (the norm's gradient taken as 0 where p ⊙ (1 − Ψ) = 0)."""
    out = []
    for i in range(x.shape[0]):
        xi, w = x[i : i + 1], (1 - psi[i : i + 1])[:, None]
        p = torch.zeros_like(xi)
        for _ in range(steps):
            p = p.detach().requires_grad_(True)
            loss = F.cross_entropy(net(xi + p), t[i : i + 1])
            q = p * w
            if bool((q != 0).any()):
                loss = loss + beta * torch.sqrt((q * q).sum())
            (g,) = torch.autograd.grad(loss, p)
            p = p.detach() - step * g.sign()
            p = p.clamp(-eps, eps)
            p = (xi + p).clamp(*bounds) - xi
        out.append((xi + p).clamp(*bounds))
    return torch.cat(out)


@pytest.mark.parametrize("beta", [0.0, 0.05, 3.0])
def test_rule_matches_the_definition_one_image_at_a_time(beta: float) -> None:
    net = SmallCNN().double()
    x, psi = _data(), _maps()
    t = torch.tensor([0, 3, 4])
    res = saliency_pgd(net, x, psi, t, beta=beta, eps=0.2, step_size=0.03, steps=12, bounds=BOUNDS)
    ref = _reference(net, x, psi, t, beta, 0.2, 0.03, 12, BOUNDS)
    assert torch.allclose(res.adversarial, ref, atol=1e-10, rtol=0)
    probs = net(ref).softmax(1).gather(1, t[:, None]).squeeze(1)
    assert torch.allclose(res.target_probability.double(), probs, atol=1e-6)
    assert res.fooled.tolist() == (net(ref).argmax(1) == t).tolist()
    assert res.iterations.tolist() == [12, 12, 12] and res.targets.tolist() == t.tolist()


def test_beta_zero_is_plain_targeted_pgd() -> None:
    net = SmallCNN().double()
    x, psi = _data(4, 16), _maps(4, 16)
    t = torch.tensor([1, 2, 3, 4])
    eps, step, steps = 0.1, 0.02, 15
    mine = saliency_pgd(net, x, psi, t, beta=0.0, eps=eps, step_size=step, steps=steps, bounds=BOUNDS)
    plain = pgd_attack(
        net, x, t, eps, norm="linf", bounds=BOUNDS, targeted=True, steps=steps, rel_step=step / eps, loss="ce",
        random_start=False, early_stop=False,
    )  # fmt: skip
    # pgd_attack shrinks the ball by a float-rounding slack of ~1e-15 in float64; otherwise the same iterates
    assert torch.allclose(mine.adversarial, plain.adversarial, atol=1e-12, rtol=0)
    assert float((mine.adversarial - x).abs().max()) > 0.05  # it did move
    assert mine.predictions.tolist() == plain.predictions.tolist()
    assert mine.fooled.tolist() == plain.fooled.tolist()
    # and the map is irrelevant at β = 0
    other = saliency_pgd(net, x, 1 - psi, t, beta=0.0, eps=eps, step_size=step, steps=steps, bounds=BOUNDS)
    assert torch.equal(other.adversarial, mine.adversarial)


def test_batch_parity_and_per_image_beta() -> None:
    net = SmallCNN().double()
    x, psi = _data(4), _maps(4)
    t = torch.tensor([0, 1, 2, 3])
    betas = torch.tensor([0.0, 0.5, 5.0, 50.0], dtype=torch.float64)
    kw = {"eps": 0.15, "step_size": 0.02, "steps": 8, "bounds": BOUNDS}
    full = saliency_pgd(net, x, psi, t, beta=betas, **kw)
    chunked = saliency_pgd(net, x, psi, t, beta=betas, batch_size=3, **kw)
    singles = [
        saliency_pgd(net, x[i : i + 1], psi[i : i + 1], t[i : i + 1], beta=float(betas[i]), **kw) for i in range(4)
    ]
    assert torch.allclose(full.adversarial, chunked.adversarial, atol=1e-12, rtol=0)
    assert torch.allclose(full.adversarial, torch.cat([s.adversarial for s in singles]), atol=1e-12, rtol=0)
    assert full.beta.tolist() == betas.float().tolist()


def test_penalty_shrinks_the_perturbation_outside_the_map() -> None:
    net = SmallCNN()
    x = _data(2, 16, dtype=torch.float32)
    psi = torch.zeros(2, 16, 16)
    psi[:, 4:12, 4:12] = 1.0
    inside = psi.bool()[:, None].expand_as(x)
    kw = {"eps": 0.2, "step_size": 0.02, "steps": 30, "bounds": BOUNDS}
    free = saliency_pgd(net, x, psi, beta=0.0, **kw)
    tight = saliency_pgd(net, x, psi, beta=1000.0, **kw)
    d_free, d_tight = (free.adversarial - x).abs(), (tight.adversarial - x).abs()
    assert float(d_tight[~inside].mean()) < 0.5 * float(d_free[~inside].mean())
    # inside the map the penalty is 0: the perturbation is as free as without it
    assert float(d_tight[inside].mean()) > 0.5 * float(d_free[inside].mean())
    # outside it can only oscillate between 0 and one step
    assert float(d_tight[~inside].max()) <= 0.02 + 1e-6
    assert float(tight.l2.max()) < float(free.l2.min())


def test_default_target_is_least_likely_and_budget_holds_per_channel() -> None:
    net = SmallCNN()
    x = _data(3, 12, dtype=torch.float32)
    ll = least_likely(net, x)
    assert ll.tolist() == net(x).argmin(1).tolist()
    eps = [0.05, 0.1, 0.2]
    res = saliency_pgd(net, x, _maps(3, dtype=torch.float32), beta=0.0, eps=eps, step_size=[0.01, 0.02, 0.04],
                       steps=10, bounds=BOUNDS)  # fmt: skip
    assert res.targets.tolist() == ll.tolist()
    delta = res.adversarial - x
    for c, e in enumerate(eps):
        assert float(delta[:, c].abs().max()) <= e + 1e-6
        assert float(delta[:, c].abs().max()) > 0.5 * e
    assert float(res.adversarial.min()) >= -1 and float(res.adversarial.max()) <= 1
    assert torch.allclose(res.eps, torch.full((3,), 0.2))


def test_penalty_gradient_is_zero_at_zero_and_the_norm_gradient_elsewhere() -> None:
    w = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    zero = torch.zeros(2, 3, 4, 4, dtype=torch.float64)
    assert torch.equal(penalty_gradient(zero, w), zero)
    p = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(sum((p[i] * w[i]).norm() for i in range(2)), p)  # type: ignore[arg-type]
    assert torch.allclose(penalty_gradient(p.detach(), w), g, atol=1e-12)


def test_model_state_restored_also_on_error() -> None:
    net = SmallCNN().train()
    net.stem[0].weight.requires_grad_(True)
    x = _data(2, 12, dtype=torch.float32)
    saliency_pgd(net, x, _maps(2, dtype=torch.float32), eps=0.1, step_size=0.01, steps=2)
    assert net.training and all(m.training for m in net.modules())
    assert all(p.requires_grad for p in net.parameters()) and all(p.grad is None for p in net.parameters())
    with pytest.raises(ValueError, match="targets hold class"):
        saliency_pgd(net, x, _maps(2, dtype=torch.float32), torch.tensor([0, 99]), eps=0.1, step_size=0.01, steps=2)
    assert net.training and all(p.requires_grad for p in net.parameters())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"saliency": torch.full((2, 12, 12), 1.5)}, ValueError, r"saliency must lie in \[0, 1\]"),
        ({"saliency": -torch.ones(2, 12, 12)}, ValueError, r"saliency must lie in \[0, 1\]"),
        ({"saliency": torch.rand(2, 10, 12)}, ValueError, "saliency must have shape"),
        ({"saliency": torch.rand(3, 12, 12)}, ValueError, "saliency must have shape"),
        ({"targets": torch.tensor([0, 5])}, ValueError, "targets hold class 5"),
        ({"targets": torch.tensor([0, -1])}, ValueError, "non-negative"),
        ({"eps": 0.0}, ValueError, "eps must be finite and > 0"),
        ({"eps": -0.1}, ValueError, "eps must be finite and > 0"),
        ({"eps": [0.1, 0.1]}, ValueError, "eps must be a float or 3 per-channel"),
        ({"step_size": 0.0}, ValueError, "step_size must be finite and > 0"),
        ({"steps": 0}, ValueError, "steps must be an int >= 1"),
        ({"beta": -1.0}, ValueError, "beta must be finite and >= 0"),
        ({"beta": math.nan}, ValueError, "beta must be finite"),
        ({"bounds": (0.0, 0.5)}, ValueError, "images must lie inside bounds"),
    ],
)
def test_bad_inputs(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    net = SmallCNN()
    args: dict[str, object] = {
        "saliency": torch.rand(2, 12, 12), "targets": None, "eps": 0.1, "step_size": 0.01, "steps": 2,
        "bounds": BOUNDS, **kwargs,
    }  # fmt: skip
    x = _data(2, 12, dtype=torch.float32)
    with pytest.raises(error, match=match):
        saliency_pgd(net, x, args.pop("saliency"), args.pop("targets"), **args)  # type: ignore[arg-type]


def test_controls_keep_the_values_or_the_mean_but_not_the_location() -> None:
    sal = _maps(2, 8, dtype=torch.float32)
    s = shuffled_map(sal, seed=3)
    assert torch.equal(s.flatten(1).sort(1).values, sal.flatten(1).sort(1).values)
    assert not torch.equal(s, sal)
    assert torch.equal(shuffled_map(sal, seed=3), s) and not torch.equal(shuffled_map(sal, seed=4), s)
    c = constant_map(sal)
    assert torch.allclose(c.mean(dim=(1, 2)), sal.mean(dim=(1, 2))) and bool((c == c[:, :1, :1]).all())

    net = SmallCNN()
    x = _data(2, 8, dtype=torch.float32)
    maps = penalty_maps(net, x, torch.tensor([0, 1]), ["cameras", "shuffled", "constant", "none"],
                        maps={"cameras": sal})  # fmt: skip
    assert torch.equal(maps["cameras"], sal) and torch.equal(maps["shuffled"], shuffled_map(sal, 0))
    assert torch.equal(maps["none"], torch.ones_like(sal))


def test_sources_are_checked() -> None:
    assert check_penalty_sources(["CAMERAS", "none"]) == ["cameras", "none"]
    with pytest.raises(ValueError, match="unknown focus source 'nope'"):
        check_penalty_sources(["nope", "none"])
    with pytest.raises(ValueError, match="twice"):
        check_penalty_sources(["none", "none"])
    with pytest.raises(ValueError, match="must include 'none'"):
        check_penalty_sources(["cameras"])
    with pytest.raises(ValueError, match="non-empty"):
        check_penalty_sources([])


def test_compare_penalty_records_summary_and_matched_success() -> None:
    net = SmallCNN()
    with torch.no_grad():
        net.head.weight.mul_(20)  # sensitive enough that some runs reach the confidence and some do not
    x = _data(3, 12, dtype=torch.float32)
    sal = _maps(3, dtype=torch.float32)
    confidence = 0.25
    cmp = compare_penalty(
        net, x, sources=["gradcam", "constant", "none"], maps={"cameras": sal}, beta=0.1, betas=[0.01, 1.0],
        eps=0.5, step_size=0.05, steps=20, bounds=BOUNDS, confidence=confidence, scale=[2.0, 2.0, 2.0],
        layer="features", names=["a", "b", "c"],
    )  # fmt: skip
    assert cmp.settings["betas"] == [0.01, 0.1, 1.0]
    probs = [r.target_probability for r in cmp.runs]
    assert min(probs) < confidence < max(probs)  # both branches of the matched figure are exercised
    rows = cmp.summary()
    assert [r["source"] for r in rows] == ["gradcam", "constant", "none"]
    assert all(tuple(r) == SUMMARY_KEYS for r in rows)
    none = next(r for r in rows if r["source"] == "none")
    assert none["l2_reduction_percent"] == 0.0
    # the runs and records from the definitions
    for rec in cmp.records:
        runs = [r for r in cmp.runs if r.image == rec.image and r.source == rec.source]
        assert len(runs) == (1 if rec.source == "none" else 3)
        ref = next(r for r in cmp.runs if r.image == rec.image and r.source == "none")
        main = next(r for r in runs if r.beta == rec.beta)
        assert rec.l2 == main.l2 and rec.l2_reduction_percent == pytest.approx(100 * (1 - main.l2 / ref.l2))
        ok = [r for r in runs if r.target_probability >= confidence]
        if ok:
            assert rec.matched_l2 == min(r.l2 for r in ok)
        else:
            assert math.isnan(rec.matched_l2)
        if ok and ref.target_probability >= confidence:
            assert rec.matched_l2_reduction_percent == pytest.approx(100 * (1 - rec.matched_l2 / ref.l2))
        else:
            assert math.isnan(rec.matched_l2_reduction_percent)
    for row in rows:
        recs = [r for r in cmp.records if r.source == row["source"]]
        finite = [r.matched_l2_reduction_percent for r in recs if math.isfinite(r.matched_l2_reduction_percent)]
        assert row["matched_n"] == len(finite)
        assert row["fooled_rate"] == pytest.approx(sum(r.fooled for r in recs) / 3)
    # the report's units: scale 2 doubles the input-unit norms
    res = cmp.results["constant"]
    assert [r.l2 for r in cmp.records if r.source == "constant"] == pytest.approx((2 * res.l2).tolist(), rel=1e-5)
    d = cmp.to_dict()
    assert set(d) == {"settings", "summary", "schedule", "records", "runs"}
    assert len(d["schedule"]) == 2 * 3 + 1
