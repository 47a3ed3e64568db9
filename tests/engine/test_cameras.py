"""CAMERAS engine vs the slow definition-level reference, plus behaviour and error tests."""

from __future__ import annotations

import gc
import warnings

import pytest
import torch
import torchvision
from torch import Tensor, nn

import cameras
from cameras.engine import PAPER_RESOLUTIONS, LayerNotReachedError, LayerReusedError, schedule

from .nets import Shared, SizeSensitive, TinyCNN
from .reference import reference_cameras

TOL = 1e-4


def _check(model: nn.Module, layer: str, x: Tensor, resolutions: list, targets: Tensor | None = None) -> None:
    sizes = schedule(resolutions, tuple(x.shape[-2:]))
    ref_map, ref_t, ref_kept = reference_cameras(model, dict(model.named_modules())[layer], x, sizes, targets)
    out = cameras.CAMERAS(model, layer=layer, resolutions=resolutions)(x, targets)
    assert torch.equal(out.targets, ref_t)
    assert torch.equal(out.kept, ref_kept)
    assert out.saliency.shape == ref_map.shape
    assert (out.saliency - ref_map).abs().max().item() <= TOL
    assert out.saliency.min() >= 0 and out.saliency.max() <= 1


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("hw", [(40, 40), (36, 52)])
def test_reference_tiny_cnn(seed: int, hw: tuple[int, int]) -> None:
    torch.manual_seed(100 + seed)
    model = TinyCNN(seed=seed)
    x = torch.randn(2, 3, *hw)
    _check(model, "features", x, [1.0, 1.5, 2.2, 3.0])
    _check(model, "features", x, [1.0, 1.5, 2.2, 3.0], targets=torch.tensor([3, 7]))


def test_reference_paper_schedule_square_224() -> None:
    model = TinyCNN(seed=5, width=4)
    x = torch.randn(1, 3, 224, 224)
    assert schedule(None, (224, 224)) == [(r, r) for r in PAPER_RESOLUTIONS]
    _check(model, "features", x, None)  # type: ignore[arg-type]


def test_reference_absolute_resolutions_and_inner_layer() -> None:
    model = TinyCNN(seed=3)
    x = torch.randn(2, 3, 48, 40)
    _check(model, "body", x, [48, 64, 80])
    _check(model, "features.1", x, [(48, 40), (60, 50)], targets=torch.tensor([1, 2]))


def test_keep_rule_drops_disagreeing_scales() -> None:
    model = SizeSensitive()
    x = torch.rand(2, 3, 16, 16)
    sizes = [1.0, 2.0, 4.0, 6.0]
    out = cameras.CAMERAS(model, layer="features", resolutions=sizes)(x)
    # the model was built so that large scales flip to class 1: some scales must be dropped
    assert out.targets.tolist() == [0, 0]
    assert not bool(out.kept.all()) and bool(out.kept[:, 0].all())
    _check(model, "features", x, sizes)
    # with a target every scale is kept
    given = cameras.CAMERAS(model, layer="features", resolutions=sizes)(x, targets=0)
    assert bool(given.kept.all())
    _check(model, "features", x, sizes, targets=torch.tensor([0, 0]))


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_reference_torchvision_resnets(arch: str) -> None:
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(weights=None).eval()
    x = torch.randn(2, 3, 64, 80)
    _check(model, "layer4", x, [1.0, 1.5, 2.0])
    _check(model, "layer4", x, [1.0, 1.5, 2.0], targets=torch.tensor([10, 500]))


def test_inplace_relu_after_layer_keeps_activations() -> None:
    """A ReLU(inplace=True) right after the tapped layer must not corrupt A or break autograd."""
    model_ip = TinyCNN(seed=4, inplace=True)
    model_ref = TinyCNN(seed=4, inplace=False)
    x = torch.randn(2, 3, 32, 32)
    a = cameras.CAMERAS(model_ip, layer="features.1", resolutions=[1.0, 2.0])(x)  # BN output, then ReLUs
    b = cameras.CAMERAS(model_ref, layer="features.1", resolutions=[1.0, 2.0])(x)
    assert torch.allclose(a.saliency, b.saliency, atol=1e-6)


def test_batch_parity_chunk_parity_determinism() -> None:
    model = TinyCNN(seed=7)
    x = torch.randn(4, 3, 40, 44)
    explainer = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 1.7, 2.5])
    batch = explainer(x)
    singles = torch.cat([explainer(x[i : i + 1]).saliency for i in range(4)])
    assert (batch.saliency - singles).abs().max() <= 1e-5
    for chunk in (1, 3, 32):
        chunked = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 1.7, 2.5], chunk_size=chunk)(x)
        assert (chunked.saliency - batch.saliency).abs().max() <= 1e-5
        assert (chunked.raw - batch.raw).abs().max() <= 1e-5 * batch.raw.abs().max()
    again = explainer(x)
    assert torch.equal(again.saliency, batch.saliency) and torch.equal(again.raw, batch.raw)


def test_multi_class_equals_single_class_calls() -> None:
    model = TinyCNN(seed=8)
    x = torch.randn(2, 3, 32, 32)
    explainer = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 2.0])
    targets = torch.tensor([[1, 4, 6], [0, 2, 9]])
    multi = explainer(x, targets)
    assert multi.saliency.shape == (2, 3, 32, 32)
    for k in range(3):
        single = explainer(x, targets[:, k])
        assert (multi.saliency[:, k] - single.saliency).abs().max() <= 1e-5
    top = explainer(x, top_k=3)
    assert top.saliency.shape == (2, 3, 32, 32)
    assert torch.equal(top.targets[:, 0], explainer(x).targets)


def test_float64_model() -> None:
    model = TinyCNN(seed=9).double()
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    _check(model, "features", x, [1.0, 2.0])


def test_all_zero_map_is_zero_not_nan() -> None:
    class Flat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Conv2d(3, 2, 3, padding=1)
            self.fc = nn.Linear(2, 2)
            nn.init.zeros_(self.fc.weight)

        def forward(self, x: Tensor) -> Tensor:
            return self.fc(self.features(x).mean(dim=(2, 3)))

    out = cameras.CAMERAS(Flat(), layer="features", resolutions=[1.0, 2.0])(torch.randn(1, 3, 16, 16))
    assert torch.equal(out.saliency, torch.zeros_like(out.saliency))


# -- engineering guarantees --------------------------------------------------------------------------------------


class Probe(nn.Module):
    """Records grad mode in its forward and whether its backward ever runs."""

    def __init__(self) -> None:
        super().__init__()
        self.grad_modes: list[bool] = []
        self.backward_calls = 0

    def forward(self, x: Tensor) -> Tensor:
        self.grad_modes.append(torch.is_grad_enabled())
        probe = self

        class Fn(torch.autograd.Function):
            @staticmethod
            def forward(ctx: object, t: Tensor) -> Tensor:
                return t.clone()

            @staticmethod
            def backward(ctx: object, g: Tensor) -> Tensor:
                probe.backward_calls += 1
                return g

        return Fn.apply(x)  # type: ignore[no-any-return]


def test_no_graph_below_layer_and_no_parameter_gradients() -> None:
    model = TinyCNN(seed=1)
    below, above = Probe(), Probe()
    model.stem.append(below)
    model.features.append(above)  # inside the tapped block? no: after 'features.2' but we tap 'features.2'
    out = cameras.CAMERAS(model, layer="features.2", resolutions=[1.0, 2.0])(torch.randn(2, 3, 32, 32))
    assert out.saliency.shape == (2, 32, 32)
    assert below.grad_modes == [False, False]  # layers below the tap: no autograd
    assert above.grad_modes == [True, True]  # layers above the tap build the graph
    assert below.backward_calls == 0 and above.backward_calls == 2
    assert all(p.grad is None for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())


def test_state_and_hooks_restored_even_on_error() -> None:
    model = TinyCNN(seed=2)
    model.train()
    model.stem[0].weight.requires_grad_(False)
    calls: list[int] = []
    user_handle = model.features.register_forward_hook(lambda m, i, o: calls.append(1))
    before = [(n, p.requires_grad) for n, p in model.named_parameters()]
    hooks_before = {n: len(m._forward_hooks) for n, m in model.named_modules()}

    cameras.CAMERAS(model, layer="features", resolutions=[1.0, 2.0])(torch.randn(1, 3, 32, 32))
    assert model.training and all(m.training for m in model.modules())
    assert [(n, p.requires_grad) for n, p in model.named_parameters()] == before
    assert {n: len(m._forward_hooks) for n, m in model.named_modules()} == hooks_before
    assert len(calls) == 2 and torch.is_grad_enabled()

    class Boom(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            if x.shape[-1] > 20:  # body output is 16 px at scale 1, 32 px at scale 2
                raise RuntimeError("boom at a large scale")
            return x

    model.body.append(Boom())
    hooks_before = {n: len(m._forward_hooks) for n, m in model.named_modules()}
    with pytest.raises(RuntimeError, match="boom"):
        cameras.CAMERAS(model, layer="features", resolutions=[1.0, 2.0])(torch.randn(1, 3, 32, 32))
    assert model.training and all(m.training for m in model.modules())
    assert [(n, p.requires_grad) for n, p in model.named_parameters()] == before
    assert {n: len(m._forward_hooks) for n, m in model.named_modules()} == hooks_before
    assert torch.is_grad_enabled()
    user_handle.remove()


def test_no_memory_growth_over_repeated_calls() -> None:
    model = TinyCNN(seed=3)
    explainer = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 2.0])
    x = torch.randn(2, 3, 32, 32)

    def live_tensors() -> int:
        gc.collect()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return sum(1 for o in gc.get_objects() if isinstance(o, Tensor))

    explainer(x)
    base = live_tensors()
    for _ in range(5):
        explainer(x)
    assert live_tensors() <= base


# -- errors -------------------------------------------------------------------------------------------------------


@pytest.fixture
def tiny() -> TinyCNN:
    return TinyCNN(seed=0)


def test_errors_inputs(tiny: TinyCNN) -> None:
    e = cameras.CAMERAS(tiny, layer="features", resolutions=[1.0])
    with pytest.raises(ValueError, match=r"\(B, C, H, W\).*unsqueeze"):
        e(torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match="channels"):
        e(torch.randn(1, 4, 32, 32))
    with pytest.raises(ValueError, match="NaN"):
        x = torch.randn(1, 3, 32, 32)
        x[0, 0, 0, 0] = float("nan")
        e(x)
    with pytest.raises(TypeError, match="floating"):
        e(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(TypeError, match="Tensor"):
        e([[1.0]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty batch"):
        e(torch.randn(0, 3, 32, 32))


def test_errors_targets(tiny: TinyCNN) -> None:
    e = cameras.CAMERAS(tiny, layer="features", resolutions=[1.0])
    x = torch.randn(2, 3, 32, 32)
    with pytest.raises(ValueError, match="3 targets for a batch of 2"):
        e(x, [1, 2, 3])
    with pytest.raises(ValueError, match=r"out of range.*10 classes"):
        e(x, 10)
    with pytest.raises(ValueError, match="non-negative"):
        e(x, -1)
    with pytest.raises(TypeError):
        e(x, torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match="top_k"):
        e(x, 1, top_k=2)


def test_errors_scales_and_layers(tiny: TinyCNN) -> None:
    with pytest.raises(ValueError, match="empty"):
        cameras.CAMERAS(tiny, layer="features", resolutions=[])
    with pytest.raises(ValueError, match="positive"):
        cameras.CAMERAS(tiny, layer="features", resolutions=[0])
    with pytest.raises(ValueError, match=r"not found.*'features'"):
        cameras.CAMERAS(tiny, layer="featurs")
    with pytest.warns(UserWarning, match=r"TinyCNN\.features"):  # layer=None: the last spatial layer, named
        assert cameras.CAMERAS(tiny).layer_name == "features"
    with pytest.raises(ValueError, match="no last spatial layer"):
        cameras.CAMERAS(nn.Sequential(nn.Flatten(), nn.Linear(3 * 224 * 224, 2)))
    model = Shared()
    x = torch.randn(1, 3, 16, 16)
    with pytest.raises(LayerReusedError, match="more than once"):
        cameras.CAMERAS(model, layer="act", resolutions=[1.0])(x)
    with pytest.raises(LayerNotReachedError, match="not reached"):
        cameras.CAMERAS(model, layer="unused", resolutions=[1.0])(x)
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


def test_inference_mode_is_refused(tiny: TinyCNN) -> None:
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        cameras.CAMERAS(tiny, layer="features", resolutions=[1.0])(torch.randn(1, 3, 16, 16))
