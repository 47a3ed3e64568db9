"""Score-CAM: definition-level reference, pytorch-grad-cam cross-check, batching, no autograd, progress, state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import pytorch_grad_cam as pgc
import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

import cameras.methods as M

from ..engine.nets import TinyCNN
from .reference import minmax, up


def reference_scorecam(model: nn.Module, layer: nn.Module, x: Tensor, targets: list[int]) -> Tensor:
    """Wang et al. 2020, one image and one channel at a time."""
    store: dict[str, Tensor] = {}
    handle = layer.register_forward_hook(lambda _m, _i, out: store.__setitem__("a", out.detach()))
    maps = []
    try:
        model.eval()
        with torch.no_grad():
            for b in range(x.shape[0]):
                model(x[b : b + 1])
                acts = store["a"][0].double()
                total = torch.zeros(acts.shape[-2:], dtype=torch.float64)
                for c in range(acts.shape[0]):
                    mask = minmax(up(acts[c : c + 1], tuple(x.shape[-2:]))[0])
                    prob = F.softmax(model(x[b : b + 1] * mask.float()).double(), dim=1)[0, targets[b]]
                    total = total + prob * acts[c]
                maps.append(minmax(up(torch.clamp(total, min=0)[None], tuple(x.shape[-2:]))[0]))
    finally:
        handle.remove()
    return torch.stack(maps).float()


def test_matches_definition_reference_for_any_batch_size() -> None:
    torch.manual_seed(0)
    model = TinyCNN(seed=0, width=4)
    x = torch.randn(2, 3, 36, 40)
    ref = reference_scorecam(model, model.features, x, [3, 8])
    for batch_size in (1, 7, 64):
        out = M.ScoreCAM(model, layer="features", batch_size=batch_size, progress=False)(x, [3, 8])
        assert out.targets.tolist() == [3, 8]
        assert (out.saliency - ref).abs().max().item() <= 1e-5


class LogSoftmaxTarget:
    """pytorch-grad-cam softmaxes its per-channel target scores over the channels; with log p_k as the score that
    softmax is p_k / Σ_j p_j, a positive rescaling of Score-CAM's weights p_k that the normalisation removes."""

    def __init__(self, category: int) -> None:
        self.category = category

    def __call__(self, output: Tensor) -> Tensor:
        return torch.log_softmax(output, dim=-1)[..., self.category]


@pytest.fixture
def masks_align_corners_false(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """pytorch-grad-cam upsamples the masks with nn.UpsamplingBilinear2d (align_corners=True); the method here, like
    every map in this library, uses align_corners=False. Swap it for the comparison."""

    def upsample(size: tuple[int, int]) -> nn.Module:
        return nn.Upsample(size=size, mode="bilinear", align_corners=False)

    monkeypatch.setattr(torch.nn, "UpsamplingBilinear2d", upsample)
    yield


def _pgc_scorecam(model: nn.Module, layer: nn.Module, x: Tensor, targets: list[int], hw: tuple[int, int]) -> Tensor:
    class AtLayer(pgc.ScoreCAM):  # type: ignore[misc]
        def get_target_width_height(self, _x: Tensor) -> tuple[int, int]:
            return hw[1], hw[0]

    with AtLayer(model, [layer]) as cam:
        cam.batch_size = 64
        return torch.from_numpy(cam(x, [LogSoftmaxTarget(t) for t in targets]))


@pytest.mark.usefixtures("masks_align_corners_false")
def test_agrees_with_pytorch_grad_cam_random_cnn() -> None:
    torch.manual_seed(1)
    model = TinyCNN(seed=1)
    x = torch.randn(2, 3, 40, 48)
    ours = M.ScoreCAM(model, layer="features", progress=False)(x, [1, 4], upsample=False).saliency
    theirs = _pgc_scorecam(model, model.features, x, [1, 4], (10, 12))
    assert (ours - theirs).abs().max().item() <= 1e-4


@pytest.fixture(scope="module")
def resnet18_case() -> tuple[nn.Module, Tensor, Tensor]:
    """A torchvision ResNet-18 (seeded random weights) tapped at layer3 (256 channels, 4×4 at 64 px)."""
    torch.manual_seed(2)
    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.randn(1, 3, 64, 64)
    ours = M.ScoreCAM(model, layer="layer3", batch_size=128, progress=False)(x, [17], upsample=False).saliency
    return model, x, ours


def test_agrees_with_pytorch_grad_cam_resnet18(
    resnet18_case: tuple[nn.Module, Tensor, Tensor], masks_align_corners_false: None
) -> None:
    model, x, ours = resnet18_case
    theirs = _pgc_scorecam(model, model.layer3, x, [17], (4, 4))
    assert (ours - theirs).abs().max().item() <= 1e-4


def test_mask_upsampling_is_the_difference(resnet18_case: tuple[nn.Module, Tensor, Tensor]) -> None:
    """Unpatched (align_corners=True masks) the maps differ: the cross-check above is not vacuous."""
    model, x, ours = resnet18_case
    theirs = _pgc_scorecam(model, model.layer3, x, [17], (4, 4))
    assert (ours - theirs).abs().max().item() > 1e-3


class Probe(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[bool, int, bool]] = []

    def forward(self, x: Tensor) -> Tensor:
        self.calls.append((torch.is_grad_enabled(), int(x.shape[0]), self.training))
        return x


def test_batched_without_autograd_and_state_restored(capsys: pytest.CaptureFixture[str]) -> None:
    model = TinyCNN(seed=3, width=4).train()  # 16 channels at 'features'
    probe = Probe()
    model.stem.insert(0, probe)
    before = [(n, p.requires_grad) for n, p in model.named_parameters()]
    out = M.ScoreCAM(model, layer="features", batch_size=5, progress=True)(torch.randn(2, 3, 32, 32))
    assert out.saliency.shape == (2, 32, 32)
    # one pass to record A, then per image ceil(16 / 5) = 4 masked batches of ≤ 5 inputs
    assert [c[1] for c in probe.calls] == [2, 5, 5, 5, 1, 5, 5, 5, 1]
    assert not any(c[0] for c in probe.calls), "Score-CAM must not build autograd graphs"
    assert not any(c[2] for c in probe.calls), "the model must run in eval mode"
    assert all(m.training for m in model.modules())
    assert [(n, p.requires_grad) for n, p in model.named_parameters()] == before
    assert all(p.grad is None for p in model.parameters())
    assert "Score-CAM" in capsys.readouterr().err


def test_top_k_and_errors() -> None:
    model = TinyCNN(seed=4, width=4)
    x = torch.randn(1, 3, 32, 32)
    explainer = M.ScoreCAM(model, layer="features", progress=False)
    top = explainer(x, top_k=2)
    for k in range(2):
        assert torch.allclose(top.saliency[:, k], explainer(x, top.targets[:, k]).saliency, atol=1e-6)
    with pytest.raises(ValueError, match="batch_size"):
        M.ScoreCAM(model, layer="features", batch_size=0)
