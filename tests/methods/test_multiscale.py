"""MultiScale(rule): definition-level reference, the CAMERAS identity, keep rule, chunking, classes and errors."""

from __future__ import annotations

import pytest
import torch

import cameras.methods as M
from cameras.engine import schedule

from ..engine.nets import SizeSensitive, TinyCNN
from .reference import reference_multiscale

RULES = {
    "gradcam": M.GradCAM,
    "gradcam++": M.GradCAMPlusPlus,
    "hirescam": M.HiResCAM,
    "layercam": M.LayerCAM,
    "xgradcam": M.XGradCAM,
}


@pytest.mark.parametrize("method", list(RULES))
def test_matches_definition_reference(method: str) -> None:
    torch.manual_seed(3)
    model = TinyCNN(seed=3, width=4)
    x = torch.randn(2, 3, 32, 36)
    resolutions = [1.0, 1.5, 2.0]
    sizes = schedule(resolutions, (32, 36))
    explainer = M.MultiScale(RULES[method])(model, layer="features", resolutions=resolutions)
    for targets in (None, [4, 9]):
        ref, chosen, kept = reference_multiscale(method, model, model.features, x, sizes, targets)
        out = explainer(x, targets)
        assert out.targets.tolist() == chosen
        assert out.kept.tolist() == kept
        assert out.resolutions == sizes
        assert (out.saliency - ref).abs().max().item() <= 1e-5


def test_keep_rule_drops_scales_like_cameras() -> None:
    model = SizeSensitive()
    x = torch.rand(2, 3, 16, 16)
    sizes = [1.0, 2.0, 4.0, 6.0]
    out = M.MultiScale(M.LayerCAM)(model, layer="features", resolutions=sizes)(x)
    assert not bool(out.kept.all()) and bool(out.kept[:, 0].all())
    cam = M.CAMERAS(model, layer="features", resolutions=sizes)(x)
    assert torch.equal(out.kept, cam.kept)
    ref, _, kept = reference_multiscale("layercam", model, model.features, x, schedule(sizes, (16, 16)), None)
    assert out.kept.tolist() == kept
    assert (out.saliency - ref).abs().max().item() <= 1e-5


def test_multiscale_hirescam_is_cameras() -> None:
    model = TinyCNN(seed=4)
    x = torch.randn(2, 3, 40, 44)
    for targets in (None, torch.tensor([1, 2])):
        ms = M.MultiScale(M.HiResCAM)(model, layer="features", resolutions=[1.0, 1.7, 2.5])(x, targets)
        cam = M.CAMERAS(model, layer="features", resolutions=[1.0, 1.7, 2.5])(x, targets)
        assert torch.equal(ms.targets, cam.targets) and torch.equal(ms.kept, cam.kept)
        assert (ms.saliency - cam.saliency).abs().max().item() <= 1e-6


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "xgradcam"])
def test_chunking_is_exact(method: str) -> None:
    model = TinyCNN(seed=5)
    x = torch.randn(1, 3, 32, 32)
    base = M.MultiScale(RULES[method])(model, layer="features", resolutions=[1.0, 2.0])(x)
    for chunk in (1, 5):
        out = M.MultiScale(RULES[method])(model, layer="features", resolutions=[1.0, 2.0], chunk_size=chunk)(x)
        assert (out.saliency - base.saliency).abs().max().item() <= 1e-5


def test_classes_resolutions_and_registry() -> None:
    cls = M.MultiScale(M.GradCAMPlusPlus)
    assert cls is M.MultiScale(M.GradCAMPlusPlus) is M.get("ms-gradcam++") is M.get("MS_GradCAM++")
    assert cls.name == "ms-gradcam++" and cls.base is M.GradCAMPlusPlus and issubclass(cls, M.MultiScaleCAM)
    model = TinyCNN(seed=6)
    x = torch.randn(2, 3, 32, 32)
    paper = cls(model, layer="features")
    assert paper.resolutions is None  # the paper's factors
    fixed = M.MultiScale(M.GradCAMPlusPlus, resolutions=[1.0, 1.5])
    assert fixed.name == "ms-gradcam++" and issubclass(fixed, cls)
    assert fixed(model, layer="features")(x).resolutions == [(32, 32), (48, 48)]
    assert fixed(model, layer="features", resolutions=[40])(x).resolutions == [(40, 40)]
    explainer = cls(model, layer="features", resolutions=[1.0, 2.0])
    targets = torch.tensor([[1, 3], [5, 7]])
    multi = explainer(x, targets)
    for k in range(2):
        assert (multi.saliency[:, k] - explainer(x, targets[:, k]).saliency).abs().max().item() <= 1e-5
    assert explainer(x, top_k=3).saliency.shape == (2, 3, 32, 32)
    for name in ("ms-gradcam", "ms-hirescam", "ms-layercam", "ms-xgradcam"):
        assert M.get(name).name == name


def test_errors() -> None:
    for bad in (M.ScoreCAM, M.CAM, M.CAMERAS, M.Gradient, M.GradientCAM, int):
        with pytest.raises(TypeError, match="gradient-based CAM"):
            M.MultiScale(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="MultiScale"):
        M.MultiScaleCAM(TinyCNN(), layer="features")
    with pytest.raises(ValueError):
        M.MultiScale(M.GradCAM, resolutions=[])
    with pytest.raises(ValueError, match="chunk_size"):
        M.MultiScale(M.GradCAM)(TinyCNN(), layer="features", chunk_size=0)
