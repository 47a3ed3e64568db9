"""Captum pixel methods: autograd references, Guided Backprop on in-place ReLUs and state restoration, IG on a
linear model, SmoothGrad's noise, multi-class calls, and the missing-Captum error."""

from __future__ import annotations

import copy
import sys

import numpy as np
import pytest
import torch
import torchvision
from torch import Tensor, nn

import cameras.methods as M

from ..engine.nets import TinyCNN
from .reference import minmax


def _input_gradients(model: nn.Module, x: Tensor, targets: list[int], transform: nn.Module | None = None) -> Tensor:
    """(B, 3, H, W) ∂y_t/∂x by plain autograd, one image at a time."""
    model.eval()
    grads = []
    for b, t in enumerate(targets):
        xb = x[b : b + 1].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(model(xb)[0, t], xb)
        grads.append(g[0])
    return torch.stack(grads)


def _normalised(maps: Tensor) -> Tensor:
    return torch.stack([minmax(m) for m in maps])


class GuidedReLUFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return grad * (x > 0) * (grad > 0)


class GuidedReLU(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return GuidedReLUFn.apply(x)  # type: ignore[no-any-return]


def _guided_copy(model: nn.Module) -> nn.Module:
    """A copy of the model whose every nn.ReLU passes back only positive gradients (Springenberg et al. 2015)."""
    guided = copy.deepcopy(model)
    for parent in list(guided.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(parent, name, GuidedReLU())
    return guided


@pytest.fixture(scope="module")
def resnet18() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).eval()


def test_gradient_equals_autograd_abs_max(resnet18: nn.Module) -> None:
    for model in (TinyCNN(seed=1), resnet18):
        torch.manual_seed(1)
        x = torch.randn(2, 3, 48, 56)
        out = M.Gradient(model)(x, [3, 5])
        ref = _input_gradients(model, x, [3, 5]).abs().amax(dim=1)
        assert torch.allclose(out.raw, ref, atol=1e-7, rtol=1e-5)
        assert (out.saliency - _normalised(ref)).abs().max().item() <= 1e-5


@pytest.mark.parametrize("inplace", [False, True])
def test_guided_backprop_equals_guided_relu_reference(inplace: bool) -> None:
    model = TinyCNN(seed=2, inplace=inplace)
    x = torch.randn(2, 3, 40, 40)
    out = M.GuidedBackprop(model)(x, [1, 6])
    ref = _input_gradients(_guided_copy(model), x, [1, 6]).abs().amax(dim=1)
    assert (out.saliency - _normalised(ref)).abs().max().item() <= 1e-5
    # the guided map differs from the plain gradient (the hooks really acted)
    assert (out.saliency - M.Gradient(model)(x, [1, 6]).saliency).abs().max().item() > 1e-2


def test_guided_backprop_resnet_inplace_relus_and_state(resnet18: nn.Module) -> None:
    """torchvision's ResNet uses ReLU(inplace=True), one module several times per block."""
    model = resnet18
    assert any(isinstance(m, nn.ReLU) and m.inplace for m in model.modules())
    model.train()
    hooks = {
        n: (len(m._forward_pre_hooks), len(m._forward_hooks), len(m._backward_hooks)) for n, m in model.named_modules()
    }
    torch.manual_seed(3)
    x = torch.randn(1, 3, 64, 64)
    out = M.GuidedBackprop(model)(x, [11])
    assert all(m.training for m in model.modules())
    assert all(p.requires_grad and p.grad is None for p in model.parameters())
    assert {
        n: (len(m._forward_pre_hooks), len(m._forward_hooks), len(m._backward_hooks)) for n, m in model.named_modules()
    } == hooks
    assert all(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))
    model.eval()
    ref = _input_gradients(_guided_copy(model), x, [11]).abs().amax(dim=1)
    assert (out.saliency - _normalised(ref)).abs().max().item() <= 1e-5
    # after the call the model computes ordinary gradients again (no hook left behind)
    plain = M.Gradient(model)(x, [11])
    assert (plain.raw - _input_gradients(model, x, [11]).abs().amax(dim=1)).abs().max().item() <= 1e-6


class Boom(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled():
            raise RuntimeError("boom during the attribution")
        return x


def test_state_restored_after_an_error() -> None:
    model = TinyCNN(seed=4).train()
    model.body.append(Boom())
    hooks = {n: (len(m._forward_pre_hooks), len(m._forward_hooks)) for n, m in model.named_modules()}
    for method in ("gradient", "guided_backprop", "integrated_gradients", "smoothgrad"):
        with pytest.raises(RuntimeError, match="boom"):
            M.get(method)(model)(torch.randn(1, 3, 32, 32))
        assert all(m.training for m in model.modules())
        assert all(p.requires_grad for p in model.parameters())
        assert {n: (len(m._forward_pre_hooks), len(m._forward_hooks)) for n, m in model.named_modules()} == hooks


class Linear(nn.Module):
    """Logits linear in the input: conv → global average pooling → linear (no nonlinearity)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.conv = nn.Conv2d(3, 6, 5, padding=2)
        self.fc = nn.Linear(6, 4)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.conv(x).mean(dim=(2, 3)))


def test_integrated_gradients_linear_model_exact() -> None:
    """For logits linear in x, IG = (x − x′) ⊙ ∇y exactly (any number of steps)."""
    model = Linear()
    x = torch.randn(2, 3, 24, 24)
    grads = _input_gradients(model, x, [1, 3])
    out = M.IntegratedGradients(model, n_steps=4)(x, [1, 3])
    assert torch.allclose(out.raw, (x * grads).abs().sum(dim=1), atol=1e-6, rtol=1e-4)
    base = torch.full((1, 3, 1, 1), 0.5)
    shifted = M.IntegratedGradients(model, n_steps=4, baseline=base)(x, [1, 3])
    assert torch.allclose(shifted.raw, ((x - base) * grads).abs().sum(dim=1), atol=1e-6, rtol=1e-4)
    same = M.IntegratedGradients(model, baseline=x[:1])(x[:1], [1])
    assert torch.equal(same.saliency, torch.zeros_like(same.saliency))


def test_integrated_gradients_nonlinear_matches_gauss_legendre_reference() -> None:
    """IG with n Gauss–Legendre nodes on [0, 1], written out with numpy's nodes and plain autograd."""
    model = TinyCNN(seed=6, width=4).eval()
    x = torch.randn(2, 3, 32, 32)
    nodes, weights = np.polynomial.legendre.leggauss(8)
    alphas = torch.tensor((nodes + 1) / 2, dtype=torch.float32)
    ref = []
    for b, t in enumerate([2, 5]):
        path = (alphas.reshape(-1, 1, 1, 1) * x[b]).requires_grad_(True)  # baseline 0
        (g,) = torch.autograd.grad(model(path)[:, t].sum(), path)
        integral = (torch.tensor(weights / 2, dtype=torch.float32).reshape(-1, 1, 1, 1) * g).sum(dim=0)
        ref.append((x[b] * integral).abs().sum(dim=0))
    out = M.IntegratedGradients(model, n_steps=8, batch_size=4)(x, [2, 5])
    assert torch.allclose(out.raw, torch.stack(ref), rtol=1e-4, atol=1e-7)
    # and the default of 32 steps is close to a fine Riemann sum (ReLU kinks make both approximations)
    fine = M.IntegratedGradients(model, n_steps=256, batch_size=256)(x, [2, 5])
    assert (M.IntegratedGradients(model)(x, [2, 5]).saliency - fine.saliency).abs().max().item() <= 0.05


def test_smoothgrad_noise_and_reproducibility() -> None:
    model = Linear()
    x = torch.randn(2, 3, 24, 24)
    # a linear model has the same gradient everywhere: SmoothGrad = Gradient
    assert torch.allclose(M.SmoothGrad(model, n_samples=4)(x, [0, 2]).raw, M.Gradient(model)(x, [0, 2]).raw)
    tiny = TinyCNN(seed=7)
    state = torch.random.get_rng_state()
    a = M.SmoothGrad(tiny, n_samples=4, seed=1)(x, [0, 2])
    assert torch.equal(torch.random.get_rng_state(), state), "the global RNG must be left untouched"
    b = M.SmoothGrad(tiny, n_samples=4, seed=1)(x, [0, 2])
    c = M.SmoothGrad(tiny, n_samples=4, seed=2)(x, [0, 2])
    assert torch.equal(a.saliency, b.saliency)
    assert (a.saliency - c.saliency).abs().max().item() > 1e-3
    zero = M.SmoothGrad(tiny, n_samples=3, noise_level=0.0)(x, [0, 2])
    assert torch.allclose(zero.raw, M.Gradient(tiny)(x, [0, 2]).raw, atol=1e-7)


def test_smoothgrad_sigma_is_fifteen_percent_of_each_image_range() -> None:
    model = TinyCNN(seed=8)
    explainer = M.SmoothGrad(model, n_samples=2)
    seen: list[float] = []
    original = explainer._method.attribute

    def spy(*args: object, **kwargs: object) -> Tensor:
        seen.append(float(kwargs["stdevs"]))  # type: ignore[arg-type]
        return original(*args, **kwargs)  # type: ignore[no-any-return]

    explainer._method.attribute = spy
    x = torch.stack([torch.rand(3, 16, 16) * 2 - 1, torch.rand(3, 16, 16) * 10])
    explainer(x, [0, 1])
    expected = [0.15 * float(x[b].max() - x[b].min()) for b in range(2)]
    assert seen == pytest.approx(expected)


@pytest.mark.parametrize("method", ["gradient", "guided_backprop", "integrated_gradients", "smoothgrad"])
def test_multi_class_top_k_and_layer_ignored(method: str) -> None:
    model = TinyCNN(seed=9)
    x = torch.randn(2, 3, 32, 32)
    cls = M.get(method)
    assert cls.needs_layer is False
    fast = {"integrated_gradients": {"n_steps": 8}, "smoothgrad": {"n_samples": 4}}.get(method, {})
    explainer = cls(model, layer="this layer does not exist", **fast)
    targets = torch.tensor([[1, 4], [0, 9]])
    multi = explainer(x, targets)
    assert multi.saliency.shape == (2, 2, 32, 32)
    for k in range(2):
        assert torch.allclose(multi.saliency[:, k], explainer(x, targets[:, k]).saliency, atol=1e-6)
    top = explainer(x, top_k=2)
    with torch.no_grad():
        assert torch.equal(top.targets, model(x).topk(2, dim=1).indices)
        probs = model(x).softmax(dim=1)
    one = explainer(x)
    assert one.saliency.shape == (2, 32, 32)
    assert torch.allclose(one.probabilities, probs.max(dim=1).values)
    assert float(one.saliency.min()) >= 0 and float(one.saliency.max()) == 1
    with pytest.raises(ValueError, match="out of range"):
        explainer(x, 10)


def test_missing_captum_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n == "captum" or n.startswith("captum.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "captum", None)
    with pytest.raises(ImportError, match=r"pip install 'cameras\[captum\]'"):
        M.Gradient(TinyCNN())
    assert M.get("cameras").__name__ == "CAMERAS"  # the rest of the package still works


def test_argument_errors() -> None:
    model = TinyCNN()
    with pytest.raises(ValueError, match="n_steps"):
        M.IntegratedGradients(model, n_steps=0)
    with pytest.raises(TypeError, match="baseline"):
        M.IntegratedGradients(model, baseline="black")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_samples"):
        M.SmoothGrad(model, n_samples=0)
    with pytest.raises(ValueError, match="noise_level"):
        M.SmoothGrad(model, noise_level=-1.0)


def test_guided_backprop_guides_relu6_like_relu() -> None:
    """A net built with ReLU6 (Lite/MobileNet style) gets the same guided map as the same net with ReLU, as long as
    no activation exceeds 6 (where the two functions coincide)."""
    import torch
    from torch import nn

    import cameras

    def net(act: type[nn.Module]) -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            act(),
            nn.Conv2d(8, 8, 3, padding=1),
            act(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(8, 5),
        ).eval()

    x = torch.randn(2, 3, 16, 16) * 0.5
    with_relu = cameras.GuidedBackprop(net(nn.ReLU))(x, targets=[1, 3])
    relu6_net = net(nn.ReLU6)
    with_relu6 = cameras.GuidedBackprop(relu6_net)(x, targets=[1, 3])
    plain = cameras.Gradient(net(nn.ReLU))(x, targets=[1, 3])
    assert (with_relu.saliency - with_relu6.saliency).abs().max() <= 1e-6
    assert (with_relu.saliency - plain.saliency).abs().max() > 1e-2  # guidance changes the map
    assert all(len(mod._backward_hooks) == 0 for mod in relu6_net.modules())  # hooks removed
