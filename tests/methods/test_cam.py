"""Single-scale CAMs: definition-level references, Captum and pytorch-grad-cam cross-checks, the CAM = Grad-CAM
identity, multi-class calls, model state and errors."""

from __future__ import annotations

import copy

import pytest
import pytorch_grad_cam as pgc
import torch
import torchvision
from captum.attr import LayerAttribution, LayerGradCam
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import Tensor, nn

import cameras.methods as M
from cameras.methods.cam_rules import gradcampp_rule, xgradcam_rule

from ..engine.nets import TinyCNN
from .reference import minmax, reference_cam

GRADIENT_CAMS = ["gradcam", "gradcam++", "hirescam", "layercam", "xgradcam"]


def _layer(model: nn.Module, name: str) -> nn.Module:
    return dict(model.named_modules())[name]


# -- definition-level reference ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", GRADIENT_CAMS)
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_definition_reference(method: str, seed: int) -> None:
    torch.manual_seed(10 + seed)
    model = TinyCNN(seed=seed)
    x = torch.randn(2, 3, 40, 48)
    explainer = M.get(method)(model, layer="features")
    for targets in (None, [3, 7]):
        ref, chosen = reference_cam(method, model, model.features, x, targets)
        out = explainer(x, targets)
        assert out.targets.tolist() == chosen
        assert out.saliency.shape == (2, 40, 48)
        assert (out.saliency - ref).abs().max().item() <= 1e-5
        low_ref, _ = reference_cam(method, model, model.features, x, targets, upsample=False)
        low = explainer(x, targets, upsample=False)
        assert low.saliency.shape == (2, 10, 12)
        assert (low.saliency - low_ref).abs().max().item() <= 1e-5


@pytest.mark.parametrize("method", GRADIENT_CAMS)
def test_signed_activations_layer(method: str) -> None:
    """The BN output before the last ReLU has negative activations: exercises Σ A < 0 and negative A·G."""
    model = TinyCNN(seed=3)
    x = torch.randn(2, 3, 32, 36)
    ref, _ = reference_cam(method, model, _layer(model, "features.1"), x, [2, 5])
    out = M.get(method)(model, layer="features.1")(x, [2, 5])
    assert (out.saliency - ref).abs().max().item() <= 1e-5


def test_rules_hand_computed() -> None:
    # one channel, 2 cells: A = (1, 3), G = (1, -1). Σ A = 4.
    a = torch.tensor([1.0, 3.0]).reshape(1, 1, 1, 1, 2)
    g = torch.tensor([1.0, -1.0]).reshape(1, 1, 1, 1, 2)
    # Grad-CAM++: α_1 = 1 / (2 + 4) = 1/6, only G > 0 counts: w = 1/6 → map = (1/6, 3/6)
    assert torch.allclose(gradcampp_rule(a, g).flatten(), torch.tensor([1 / 6, 0.5]))
    # XGrad-CAM: w = (1·1 + 3·(−1)) / 4 = −0.5 → map = (−0.5, −1.5)
    assert torch.allclose(xgradcam_rule(a, g).flatten(), torch.tensor([-0.5, -1.5]))
    # zero denominators: G = 0 everywhere → α = 0, never NaN
    assert torch.equal(gradcampp_rule(a, torch.zeros_like(g)), torch.zeros(1, 1, 1, 2))
    assert torch.equal(xgradcam_rule(torch.zeros_like(a), g), torch.zeros(1, 1, 1, 2))


# -- Captum: LayerGradCam with ReLU, same upsampling and normalisation ---------------------------------------------


def _captum_gradcam(model: nn.Module, layer: nn.Module, x: Tensor, targets: Tensor) -> Tensor:
    attr = LayerGradCam(model, layer).attribute(x, target=targets, relu_attributions=True)
    attr = LayerAttribution.interpolate(attr, tuple(x.shape[-2:]), interpolate_mode="bilinear")
    return torch.stack([minmax(m) for m in attr[:, 0].detach()])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradcam_equals_captum_random_cnn(seed: int) -> None:
    torch.manual_seed(seed)
    model = TinyCNN(seed=seed, width=6)
    x = torch.randn(3, 3, 36, 44)
    t = torch.tensor([1, 4, 9])
    out = M.GradCAM(model, layer="features")(x, t)
    assert (out.saliency - _captum_gradcam(model, model.features, x, t)).abs().max().item() <= 1e-5


@pytest.fixture(scope="module")
def resnet50() -> nn.Module:
    """torchvision ResNet-50 with seeded random weights (shared by the tests of this module; never modified)."""
    torch.manual_seed(0)
    return torchvision.models.resnet50(weights=None).eval()


def test_gradcam_equals_captum_resnet50(resnet50: nn.Module) -> None:
    model = resnet50
    torch.manual_seed(0)
    x = torch.randn(2, 3, 224, 224)
    t = torch.tensor([7, 300])
    out = M.GradCAM(model, layer="layer4")(x, t)
    assert (out.saliency - _captum_gradcam(model, model.layer4, x, t)).abs().max().item() <= 1e-5


# -- pytorch-grad-cam at the layer's resolution ---------------------------------------------------------------------

PGC = {
    "gradcam": pgc.GradCAM,
    "gradcam++": pgc.GradCAMPlusPlus,
    "hirescam": pgc.HiResCAM,
    "layercam": pgc.LayerCAM,
    "xgradcam": pgc.XGradCAM,
}


def _pgc_at_layer(
    cls: type, model: nn.Module, layer: nn.Module, x: Tensor, t: list[int], hw: tuple[int, int]
) -> Tensor:
    """pytorch-grad-cam's map resized to the layer's own size (its cv2 resize is then the identity)."""

    class AtLayer(cls):  # type: ignore[misc, valid-type]
        def get_target_width_height(self, _x: Tensor) -> tuple[int, int]:
            return hw[1], hw[0]

    with AtLayer(model, [layer]) as cam:
        return torch.from_numpy(cam(x, [ClassifierOutputTarget(k) for k in t]))


def _boost_head(linear: nn.Linear, factor: float) -> None:
    """Scale the class logits. pytorch-grad-cam adds 1e-6 to Grad-CAM++'s α denominator 2G² + ΣA·G³; with gradients of
    order 1e-3 (random heads) that term dominates. Larger logits make it negligible: there the definitions coincide."""
    with torch.no_grad():
        linear.weight.mul_(factor)
        linear.bias.mul_(factor)


@pytest.mark.parametrize("method", GRADIENT_CAMS)
def test_agrees_with_pytorch_grad_cam_random_cnn(method: str) -> None:
    torch.manual_seed(5)
    model = TinyCNN(seed=5)
    if method == "gradcam++":
        _boost_head(model.head, 1e6)
    x = torch.randn(2, 3, 40, 48)
    t = [2, 6]
    ours = M.get(method)(model, layer="features")(x, t, upsample=False).saliency
    theirs = _pgc_at_layer(PGC[method], model, model.features, x, t, (10, 12))
    assert (ours - theirs).abs().max().item() <= 1e-4


@pytest.mark.parametrize("method", GRADIENT_CAMS)
def test_agrees_with_pytorch_grad_cam_resnet50(method: str, resnet50: nn.Module) -> None:
    model = resnet50
    if method == "gradcam++":
        model = copy.deepcopy(resnet50)
        _boost_head(model.fc, 1e6)
    torch.manual_seed(1)
    x = torch.randn(1, 3, 224, 224)
    ours = M.get(method)(model, layer="layer4")(x, [42], upsample=False).saliency
    theirs = _pgc_at_layer(PGC[method], model, model.layer4, x, [42], (7, 7))
    assert (ours - theirs).abs().max().item() <= 1e-4


def test_gradcampp_epsilon_is_the_only_difference() -> None:
    """Without the boost the maps differ (pytorch-grad-cam's ε); so the boosted test above is not vacuous."""
    torch.manual_seed(5)
    model = TinyCNN(seed=5)
    x = torch.randn(2, 3, 40, 48)
    ours = M.GradCAMPlusPlus(model, layer="features")(x, [2, 6], upsample=False).saliency
    theirs = _pgc_at_layer(pgc.GradCAMPlusPlus, model, model.features, x, [2, 6], (10, 12))
    assert (ours - theirs).abs().max().item() > 1e-2


# -- CAM ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["tiny", "resnet18", "resnet50"])
def test_cam_equals_gradcam_on_gap_linear_head(arch: str, resnet50: nn.Module) -> None:
    torch.manual_seed(2)
    if arch == "tiny":
        model: nn.Module = TinyCNN(seed=2)
        layer = "features"
    else:
        model = resnet50 if arch == "resnet50" else torchvision.models.resnet18(weights=None).eval()
        layer = "layer4"
    x = torch.randn(2, 3, 64, 80)
    cam = M.CAM(model, layer=layer)(x, [1, 8])
    grad = M.GradCAM(model, layer=layer)(x, [1, 8])
    assert (cam.saliency - grad.saliency).abs().max().item() <= 1e-5
    # before normalisation: ∂y/∂A = W/(hw), so CAM = hw · Grad-CAM
    cam_low = M.CAM(model, layer=layer)(x, [1, 8], upsample=False)
    grad_low = M.GradCAM(model, layer=layer)(x, [1, 8], upsample=False)
    h, w = cam_low.raw.shape[-2:]
    assert torch.allclose(cam_low.raw, grad_low.raw * h * w, rtol=1e-4, atol=1e-6 * float(cam_low.raw.max()))
    assert torch.allclose(cam.probabilities, grad.probabilities, atol=1e-6)
    # top-1 choice agrees too
    assert torch.equal(M.CAM(model, layer=layer)(x).targets, M.GradCAM(model, layer=layer)(x).targets)


class MaxPoolHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(8, 4)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x).amax(dim=(2, 3)))


class NoLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x).mean(dim=(2, 3))


def test_cam_errors() -> None:
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(ValueError, match="global-average-pooling"):
        M.CAM(MaxPoolHead(), layer="features")(x)
    with pytest.raises(ValueError, match="channels"):
        M.CAM(TinyCNN(), layer="body")(x)
    with pytest.raises(ValueError, match=r"no nn\.Linear"):
        M.CAM(NoLinear(), layer="features")
    with pytest.raises(TypeError, match=r"nn\.Linear"):
        M.CAM(TinyCNN(), layer="features", fc="features")
    with pytest.raises(ValueError, match="out of range"):
        M.CAM(TinyCNN(), layer="features")(x, 10)
    model = TinyCNN()
    assert torch.equal(
        M.CAM(model, layer="features", fc="head")(x).saliency, M.CAM(model, layer="features")(x).saliency
    )


# -- calls, state, errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", [*GRADIENT_CAMS, "cam"])
def test_multi_class_and_top_k(method: str) -> None:
    model = TinyCNN(seed=8)
    x = torch.randn(2, 3, 32, 32)
    explainer = M.get(method)(model, layer="features")
    targets = torch.tensor([[1, 4, 6], [0, 2, 9]])
    multi = explainer(x, targets)
    assert multi.saliency.shape == (2, 3, 32, 32) and torch.equal(multi.targets, targets)
    for k in range(3):
        single = explainer(x, targets[:, k])
        assert (multi.saliency[:, k] - single.saliency).abs().max().item() <= 1e-6
        assert torch.allclose(multi.probabilities[:, k], single.probabilities)
    top = explainer(x, top_k=2)
    assert top.saliency.shape == (2, 2, 32, 32)
    with torch.no_grad():
        expected = model(x).topk(2, dim=1).indices
    assert torch.equal(top.targets, expected)
    plain = explainer(x)
    assert plain.saliency.shape == (2, 32, 32) and torch.equal(plain.targets, expected[:, 0])
    assert plain.saliency.min() >= 0 and plain.saliency.max() == 1


@pytest.mark.parametrize("method", [*GRADIENT_CAMS, "cam"])
def test_model_state_restored(method: str) -> None:
    model = TinyCNN(seed=1).train()
    model.stem[0].weight.requires_grad_(False)
    before = [(n, p.requires_grad) for n, p in model.named_parameters()]
    hooks = {n: (len(m._forward_hooks), len(m._backward_hooks)) for n, m in model.named_modules()}
    M.get(method)(model, layer="features")(torch.randn(2, 3, 32, 32))
    assert all(m.training for m in model.modules())
    assert [(n, p.requires_grad) for n, p in model.named_parameters()] == before
    assert all(p.grad is None for p in model.parameters())
    assert {n: (len(m._forward_hooks), len(m._backward_hooks)) for n, m in model.named_modules()} == hooks


def test_errors() -> None:
    model = TinyCNN()
    explainer = M.GradCAM(model, layer="features")
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(ValueError, match="top_k"):
        explainer(x, top_k=0)
    with pytest.raises(ValueError, match="not both"):
        explainer(x, targets=1, top_k=2)
    with pytest.raises(ValueError, match="out of range"):
        explainer(x, targets=10)
    with pytest.raises(TypeError, match=r"unexpected keyword argument .bogus."):
        explainer(x, bogus=1)
    with pytest.raises(ValueError, match="not found"):
        M.GradCAM(model, layer="nope")
    with pytest.warns(UserWarning, match="last spatial layer"):
        assert M.GradCAM(model).layer_name == "features"
    with pytest.raises(ValueError, match="no last spatial layer"):
        M.GradCAM(nn.Sequential(nn.Flatten(), nn.Linear(3 * 224 * 224, 2)))


def test_float64_and_batch_parity() -> None:
    model = TinyCNN(seed=9).double()
    x = torch.randn(3, 3, 32, 40, dtype=torch.float64)
    for method in GRADIENT_CAMS:
        explainer = M.get(method)(model, layer="features")
        batch = explainer(x)
        singles = torch.cat([explainer(x[i : i + 1]).saliency for i in range(3)])
        assert batch.saliency.dtype == torch.float32
        assert (batch.saliency - singles).abs().max().item() <= 1e-6
        ref, _ = reference_cam(method, model, model.features, x, batch.targets.tolist())
        assert (batch.saliency - ref).abs().max().item() <= 1e-6
