"""Fixed-budget attacks: budget, bounds, exact masks, closed forms on linear models, seeds, batching, errors."""

from __future__ import annotations

import pytest
import torch

from cameras.attacks import perturbation_norms, pgd_attack

from .nets import Linear, SmallCNN, margin_and_direction

BOUNDS = (-1.0, 1.0)


def _data(b: int = 4, size: int = 16, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, 3, size, size, generator=g) * 2 - 1
    x[:, :, 0, 0] = 1.0  # some pixels sit exactly on the bounds
    x[:, :, 1, 1] = -1.0
    return x


def _mask(b: int, size: int, seed: int = 2, soft: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    m = (torch.rand(b, size, size, generator=g) < 0.3).float()
    if soft:
        m = m * torch.rand(b, size, size, generator=g)
    m[:, 0, 0] = 1.0  # a free pixel on the upper bound
    return m


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("method", ["pgd", "ifgsm"])
@pytest.mark.parametrize("soft", [False, True])
def test_budget_bounds_and_exact_mask(norm: str, method: str, soft: bool) -> None:
    net = SmallCNN()
    x = _data()
    y = net(x).argmax(1)
    mask = _mask(4, 16, soft=soft)
    eps = torch.tensor([0.05, 0.3, 1.0, 3.0]) if norm == "l2" else torch.tensor([0.01, 0.05, 0.2, 0.6])
    res = pgd_attack(
        net, x, y, eps, norm=norm, mask=mask, bounds=BOUNDS, steps=15, method=method,
        random_start=True, early_stop=False, rel_step=0.3,
    )  # fmt: skip
    delta = (res.adversarial - x).double()
    norms = delta.flatten(1).norm(dim=1) if norm == "l2" else delta.flatten(1).abs().amax(dim=1)
    assert bool((norms <= eps.double()).all()), (norms, eps)  # strict, on the returned values
    assert float(res.adversarial.min()) >= BOUNDS[0] and float(res.adversarial.max()) <= BOUNDS[1]
    frozen = (mask == 0)[:, None].expand_as(x)
    assert bool((res.adversarial[frozen] == x[frozen]).all())  # bit-exact
    assert float(delta.abs().sum()) > 0  # the attack did move the free pixels


def test_mask_exact_even_with_nan_gradients() -> None:
    class Nan(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            z = x.flatten(1)[:, :2]
            return torch.sqrt(z - 10)  # NaN values and gradients everywhere

    x = torch.zeros(1, 3, 4, 4)
    m = torch.zeros(1, 4, 4)
    res = pgd_attack(Nan(), x, torch.tensor([0]), 0.5, mask=m, steps=3)
    assert bool((res.adversarial == x).all())


def test_norms_match_hand_computation() -> None:
    x = torch.zeros(2, 3, 2, 2)
    a = x.clone()
    a[0, :, 0, 0] = torch.tensor([3.0, 0.0, -4.0])
    a[0, 1, 1, 1] = 0.5
    l2, linf, l0 = perturbation_norms(a, x)
    assert l2.tolist() == pytest.approx([(9 + 16 + 0.25) ** 0.5, 0.0])
    assert linf.tolist() == [4.0, 0.0]
    assert l0.tolist() == [2.0, 0.0]  # pixels, not channel values


def test_ifgsm_linf_closed_form_on_linear_model() -> None:
    """Iterative FGSM on a linear model moves every free value by ε against the margin: δ = −ε·sign(w_y − w_o)."""
    net = Linear()
    x = torch.rand(3, 3, 8, 8) * 0.5
    y = net(x).argmax(1)
    _, diff = margin_and_direction(net, x, y)
    eps = 0.01
    res = pgd_attack(net, x, y, eps, norm="linf", method="ifgsm", steps=4, early_stop=False)
    expected = -eps * diff.sign()
    torch.testing.assert_close(res.adversarial - x, expected, atol=1e-6, rtol=0)
    assert res.iterations.tolist() == [4, 4, 4]


def test_pgd_l2_closed_form_on_linear_model() -> None:
    """L2 PGD on a linear model walks straight along −(w_y − w_o) and stops on the sphere of radius ε."""
    net = Linear()
    x = torch.rand(2, 3, 8, 8) * 0.5
    y = net(x).argmax(1)
    margin, diff = margin_and_direction(net, x, y)
    eps = 0.5 * margin / diff.flatten(1).norm(dim=1)  # half the distance to the boundary: never fooled
    res = pgd_attack(net, x, y, eps, norm="l2", steps=10)
    expected = -eps.view(-1, 1, 1, 1) * diff / diff.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    torch.testing.assert_close(res.adversarial - x, expected, atol=1e-5, rtol=1e-4)
    assert not bool(res.fooled.any())


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_targeted_reaches_every_class_of_easy_model(norm: str) -> None:
    net = Linear(classes=5, seed=3)
    x = torch.zeros(5, 3, 8, 8)
    wanted = torch.arange(5)
    res = pgd_attack(net, x, wanted, 2.0 if norm == "linf" else 20.0, norm=norm, targeted=True, steps=30)
    assert res.fooled.tolist() == [True] * 5
    assert res.predictions.tolist() == wanted.tolist()
    assert net(res.adversarial).argmax(1).tolist() == wanted.tolist()


@pytest.mark.parametrize("loss", ["margin", "ce"])
def test_untargeted_fools_and_early_exit(loss: str) -> None:
    net = SmallCNN()
    x = _data()
    y = net(x).argmax(1)
    res = pgd_attack(net, x, y, 20.0, norm="l2", bounds=BOUNDS, steps=40, loss=loss)
    assert bool(res.fooled.all())
    assert bool((net(res.adversarial).argmax(1) != y).all())
    assert bool((res.iterations < 40).all())


def test_zero_eps_and_zero_mask_change_nothing() -> None:
    net = SmallCNN()
    x = _data(2)
    y = net(x).argmax(1)
    for kwargs in ({"eps": 0.0}, {"eps": 5.0, "mask": torch.zeros(2, 16, 16)}):
        res = pgd_attack(net, x, y, bounds=BOUNDS, **kwargs)  # type: ignore[arg-type]
        assert bool((res.adversarial == x).all())
        assert res.fooled.tolist() == [False, False]
        assert res.l2.tolist() == [0.0, 0.0] and res.l0.tolist() == [0.0, 0.0]
        assert res.iterations.tolist() == [0, 0]


def test_random_start_is_seeded() -> None:
    net = SmallCNN()
    x = _data(2)
    y = net(x).argmax(1)

    def run(seed: int) -> torch.Tensor:
        return pgd_attack(net, x, y, 0.5, steps=1, rel_step=1e-3, random_start=True, seed=seed).adversarial

    torch.testing.assert_close(run(0), run(0), rtol=0, atol=0)
    assert not torch.equal(run(0), run(1))


@pytest.mark.parametrize("random_start", [False, True])
def test_batch_equals_single_calls(random_start: bool) -> None:
    net = SmallCNN()
    x = _data(3)
    y = net(x).argmax(1)
    mask = _mask(3, 16)
    eps = torch.tensor([0.2, 1.0, 4.0])
    kw = {"norm": "l2", "bounds": BOUNDS, "steps": 8, "random_start": random_start, "seed": 5}
    batch = pgd_attack(net, x, y, eps, mask=mask, **kw)  # type: ignore[arg-type]
    for i in range(3):
        one = pgd_attack(net, x[i : i + 1], y[i : i + 1], eps[i : i + 1], mask=mask[i : i + 1], **kw)  # type: ignore[arg-type]
        torch.testing.assert_close(one.adversarial[0], batch.adversarial[i], atol=1e-5, rtol=1e-5)
        assert bool(one.fooled[0]) == bool(batch.fooled[i])
        assert int(one.iterations[0]) == int(batch.iterations[i])


def test_soft_mask_weights_the_step() -> None:
    """With one step of L∞ iterative FGSM, a pixel of weight w moves by exactly w·ε."""
    net = Linear()
    x = torch.zeros(1, 3, 8, 8)
    y = net(x).argmax(1)
    w = torch.linspace(0, 1, 64).view(1, 8, 8)
    res = pgd_attack(net, x, y, 0.1, norm="linf", method="ifgsm", steps=1, mask=w, early_stop=False)
    torch.testing.assert_close((res.adversarial - x).abs(), (0.1 * w)[:, None].expand_as(x), atol=1e-7, rtol=0)


@pytest.mark.parametrize(
    ("model_dtype", "image_dtype"), [(torch.float64, torch.float32), (torch.float32, torch.float64)]
)
def test_other_dtype_keeps_mask_bounds_and_budget(model_dtype: torch.dtype, image_dtype: torch.dtype) -> None:
    net = SmallCNN().to(model_dtype)
    x = (_data(2).double() * 0.999 + 1e-9).to(image_dtype)  # float64 values that float32 cannot hold exactly
    mask = _mask(2, 16)
    res = pgd_attack(net, x, net(x.to(model_dtype)).argmax(1), 0.5, mask=mask, bounds=BOUNDS, early_stop=False)
    assert res.adversarial.dtype == image_dtype and res.adversarial.device == x.device
    frozen = (mask == 0)[:, None].expand_as(x)
    assert bool((res.adversarial[frozen] == x[frozen]).all())
    assert bool(((res.adversarial - x).double().flatten(1).norm(dim=1) <= 0.5).all())
    assert float(res.adversarial.min()) >= -1.0 and float(res.adversarial.max()) <= 1.0


def test_bad_inputs_raise_clear_errors() -> None:
    net = SmallCNN()
    x = _data(2)
    y = net(x).argmax(1)
    with pytest.raises(TypeError, match="images"):
        pgd_attack(net, x.numpy(), y, 0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        pgd_attack(net, x[0], y, 0.1)
    with pytest.raises(TypeError, match="floating"):
        pgd_attack(net, (x * 100).long(), y, 0.1)
    with pytest.raises(ValueError, match="NaN"):
        pgd_attack(net, x * float("nan"), y, 0.1)
    with pytest.raises(TypeError, match="integer"):
        pgd_attack(net, x, y.float(), 0.1)
    with pytest.raises(ValueError, match="shape"):
        pgd_attack(net, x, y[:1], 0.1)
    with pytest.raises(ValueError, match="non-negative"):
        pgd_attack(net, x, -torch.ones(2, dtype=torch.long), 0.1)
    with pytest.raises(ValueError, match="5 classes"):
        pgd_attack(net, x, torch.tensor([0, 5]), 0.1)
    with pytest.raises(ValueError, match="mask must have shape"):
        pgd_attack(net, x, y, 0.1, mask=torch.ones(2, 8, 8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pgd_attack(net, x, y, 0.1, mask=2 * torch.ones(2, 16, 16))
    with pytest.raises(ValueError, match="lo < hi"):
        pgd_attack(net, x, y, 0.1, bounds=(1.0, -1.0))
    with pytest.raises(ValueError, match="inside bounds"):
        pgd_attack(net, x * 2, y, 0.1, bounds=BOUNDS)
    with pytest.raises(ValueError, match="non-negative"):
        pgd_attack(net, x, y, -0.1)
    with pytest.raises(ValueError, match="eps"):
        pgd_attack(net, x, y, torch.ones(3))
    with pytest.raises(ValueError, match="norm"):
        pgd_attack(net, x, y, 0.1, norm="l1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="method"):
        pgd_attack(net, x, y, 0.1, method="cw")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="loss"):
        pgd_attack(net, x, y, 0.1, loss="hinge")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Module"):
        pgd_attack(lambda t: t, x, y, 0.1)  # type: ignore[arg-type]


def test_per_channel_bounds() -> None:
    net = SmallCNN()
    lo, hi = torch.tensor([-1.0, -0.5, 0.0]), torch.tensor([1.0, 0.5, 0.25])
    x = lo.view(1, 3, 1, 1) + (hi - lo).view(1, 3, 1, 1) * torch.rand(2, 3, 16, 16)
    res = pgd_attack(net, x, net(x).argmax(1), 0.5, norm="linf", bounds=(lo, hi.tolist()), early_stop=False)
    for c in range(3):
        assert float(res.adversarial[:, c].min()) >= float(lo[c]) and float(res.adversarial[:, c].max()) <= float(hi[c])
    # the box is reached: an ε of 0.5 exceeds channel 2's width, so some values sit on its bounds
    assert bool(((res.adversarial[:, 2] == 0.0) | (res.adversarial[:, 2] == 0.25)).any())
    with pytest.raises(ValueError, match="3 per-channel"):
        pgd_attack(net, x, net(x).argmax(1), 0.5, bounds=([0.0, 0.0], [1.0, 1.0]))
    with pytest.raises(ValueError, match="inside bounds"):
        pgd_attack(net, x, net(x).argmax(1), 0.5, bounds=(lo, torch.tensor([1.0, 0.5, 0.1])))
