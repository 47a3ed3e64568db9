"""Minimal-norm search: closed forms on linear models, brackets, special cases, seeds, batching, errors."""

from __future__ import annotations

import pytest
import torch

from cameras.attacks import minimal_norm_attack, pgd_attack

from .nets import Linear, SmallCNN, margin_and_direction

BOUNDS = (-1.0, 1.0)


def _data(b: int = 4, size: int = 16, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, size, size, generator=g) * 2 - 1


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("masked", [False, True])
def test_linear_model_closed_form(norm: str, masked: bool) -> None:
    """Crossing the boundary of a 2-class linear model needs margin / ‖m ⊙ (w_y − w_o)‖_dual: ‖·‖₂ for L2,
    ‖·‖₁ for L∞. No perturbation of smaller norm can fool, and the search must land just above it."""
    net = Linear()
    x = torch.rand(4, 3, 8, 8) * 0.5
    y = net(x).argmax(1)
    margin, diff = margin_and_direction(net, x, y)
    mask = torch.zeros(4, 8, 8)
    mask[:, 2:6, 1:7] = 1
    m = mask[:, None] if masked else torch.ones(4, 1, 8, 8)
    dual = (diff * m).flatten(1).norm(dim=1) if norm == "l2" else (diff * m).flatten(1).abs().sum(dim=1)
    ref = margin / dual
    res = minimal_norm_attack(net, x, y, mask=mask if masked else None, norm=norm, bounds=(-10.0, 10.0))
    assert res.fooled.tolist() == [True] * 4
    achieved = res.l2 if norm == "l2" else res.linf
    assert bool((achieved >= ref * (1 - 1e-4)).all())  # cannot beat the optimum
    assert bool((res.eps <= ref * 1.01).all()), res.eps / ref
    assert bool((res.eps_lower <= ref * (1 + 1e-4)).all())
    assert bool((achieved.double() <= res.eps.double()).all())


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_bracket_and_larger_eps_still_fools(norm: str) -> None:
    net = SmallCNN()
    x = _data()
    y = net(x).argmax(1)
    steps = 10
    res = minimal_norm_attack(net, x, y, norm=norm, bounds=BOUNDS, steps=steps, search_steps=6)
    assert bool(res.fooled.all())
    assert bool((res.eps_lower < res.eps).all())
    assert bool(((res.eps - res.eps_lower) / res.eps <= 2.0**-5).all())
    achieved = res.l2 if norm == "l2" else res.linf
    assert bool((achieved.double() <= res.eps.double()).all())
    assert bool((net(res.adversarial).argmax(1) != y).all())
    rerun = pgd_attack(net, x, y, res.eps, norm=norm, bounds=BOUNDS, steps=steps)
    assert bool(rerun.fooled.all())
    failed = pgd_attack(net, x, y, res.eps_lower, norm=norm, bounds=BOUNDS, steps=steps)
    assert not bool(failed.fooled.any())
    larger = pgd_attack(net, x, y, 2 * res.eps, norm=norm, bounds=BOUNDS, steps=steps)
    assert bool(larger.fooled.all())


def test_mask_exact_and_bounds() -> None:
    net = SmallCNN()
    x = _data()
    x[:, :, 3, 3] = 1.0
    y = net(x).argmax(1)
    mask = torch.zeros(4, 16, 16)
    mask[:, 2:10, 3:12] = 1.0
    res = minimal_norm_attack(net, x, y, mask=mask, norm="linf", bounds=BOUNDS, steps=8, search_steps=4)
    frozen = (mask == 0)[:, None].expand_as(x)
    assert bool((res.adversarial[frozen] == x[frozen]).all())
    assert float(res.adversarial.min()) >= -1.0 and float(res.adversarial.max()) <= 1.0
    assert bool((res.l0 <= 8 * 9).all())


def test_full_image_vs_zero_mask() -> None:
    net = SmallCNN()
    x = _data(3)
    y = net(x).argmax(1)
    full = minimal_norm_attack(net, x, y, mask=torch.ones(3, 16, 16), bounds=BOUNDS, steps=8, search_steps=4)
    zero = minimal_norm_attack(net, x, y, mask=torch.zeros(3, 1, 16, 16), bounds=BOUNDS, steps=8, search_steps=4)
    assert full.fooled.tolist() == [True] * 3
    assert zero.fooled.tolist() == [False] * 3
    assert zero.l2.tolist() == [0.0] * 3 and zero.linf.tolist() == [0.0] * 3 and zero.l0.tolist() == [0.0] * 3
    assert bool((zero.adversarial == x).all())
    assert zero.eps.isinf().all() and zero.iterations.tolist() == [0, 0, 0]


def test_already_fooled_and_targeted() -> None:
    net = Linear(classes=4, seed=2)
    x = torch.zeros(4, 3, 8, 8)
    clean = int(net(x[:1]).argmax(1))
    wrong = torch.full((4,), (clean + 1) % 4)  # untargeted with a wrong "true" class: already fooled
    res = minimal_norm_attack(net, x, wrong, bounds=BOUNDS)
    assert res.fooled.tolist() == [True] * 4
    assert res.eps.tolist() == [0.0] * 4 and res.l2.tolist() == [0.0] * 4
    wanted = torch.tensor([0, 1, 2, 3])
    tgt = minimal_norm_attack(net, x, wanted, norm="linf", bounds=BOUNDS, targeted=True)
    assert tgt.fooled.tolist() == [True] * 4
    assert tgt.predictions.tolist() == wanted.tolist()
    assert float(tgt.eps[clean]) == 0.0 and bool((tgt.eps[wanted != clean] > 0).all())


def test_budget_cap_gives_not_fooled() -> None:
    net = SmallCNN()
    x = _data(2)
    y = net(x).argmax(1)
    res = minimal_norm_attack(net, x, y, bounds=BOUNDS, eps_max=1e-4, steps=5)
    assert res.fooled.tolist() == [False, False]
    assert bool(res.eps.isinf().all())
    assert bool((res.l2 <= 1e-4).all()) and float(res.l2.min()) > 0


def test_seeded_random_start_reproducible() -> None:
    net = SmallCNN()
    x = _data(2)
    y = net(x).argmax(1)
    kw = {"bounds": BOUNDS, "steps": 5, "search_steps": 3, "random_start": True}
    a = minimal_norm_attack(net, x, y, seed=3, **kw)  # type: ignore[arg-type]
    b = minimal_norm_attack(net, x, y, seed=3, **kw)  # type: ignore[arg-type]
    c = minimal_norm_attack(net, x, y, seed=4, **kw)  # type: ignore[arg-type]
    assert torch.equal(a.adversarial, b.adversarial) and torch.equal(a.eps, b.eps)
    assert not torch.equal(a.adversarial, c.adversarial)


def test_batch_equals_single_calls() -> None:
    net = SmallCNN()
    x = _data(3)
    y = net(x).argmax(1)
    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(3, 16, 16, generator=g) < 0.5).float()
    kw = {"norm": "l2", "bounds": BOUNDS, "steps": 6, "search_steps": 4}
    batch = minimal_norm_attack(net, x, y, mask=mask, **kw)  # type: ignore[arg-type]
    for i in range(3):
        one = minimal_norm_attack(net, x[i : i + 1], y[i : i + 1], mask=mask[i : i + 1], **kw)  # type: ignore[arg-type]
        assert bool(one.fooled[0]) == bool(batch.fooled[i])
        torch.testing.assert_close(one.eps[0], batch.eps[i])
        torch.testing.assert_close(one.adversarial[0], batch.adversarial[i], atol=1e-5, rtol=1e-5)
        assert int(one.iterations[0]) == int(batch.iterations[i]) and int(one.runs[0]) == int(batch.runs[i])


def test_positional_contract() -> None:
    net = SmallCNN()
    x = _data(2)
    y = net(x).argmax(1)
    res = minimal_norm_attack(net, x, y, None, "linf", BOUNDS, False, 0)
    assert res.adversarial.shape == x.shape
    assert res.fooled.dtype == torch.bool
    for t in (res.l2, res.linf, res.l0):
        assert t.dtype == torch.float32 and t.shape == (2,)


def test_bad_inputs_raise_clear_errors() -> None:
    net = SmallCNN()
    x = _data(2)
    y = net(x).argmax(1)
    with pytest.raises(ValueError, match="norm"):
        minimal_norm_attack(net, x, y, norm="l0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="steps"):
        minimal_norm_attack(net, x, y, steps=0)
    with pytest.raises(ValueError, match="eps_max"):
        minimal_norm_attack(net, x, y, eps_max=-1.0)
    with pytest.raises(ValueError, match="inside bounds"):
        minimal_norm_attack(net, x * 3, y, bounds=BOUNDS)
    with pytest.raises(ValueError, match="mask"):
        minimal_norm_attack(net, x, y, mask=torch.ones(2, 3, 16, 16))
    with pytest.raises(TypeError, match="targets"):
        minimal_norm_attack(net, x, [0, 1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="5 classes"):
        minimal_norm_attack(net, x, torch.tensor([7, 0]))
    with pytest.raises(TypeError, match="seed"):
        minimal_norm_attack(net, x, y, seed=0.5)  # type: ignore[arg-type]
