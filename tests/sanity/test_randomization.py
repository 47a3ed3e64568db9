"""Cascading / independent model-parameter randomisation on a tiny random CNN."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from cameras.engine.result import Result
from cameras.methods import CAMERAS
from cameras.sanity import (
    cascading_randomization,
    default_blocks,
    plot_similarity,
    plot_strip,
    reinitialize,
)

RES = [24, 32]


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.blocks = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()) for _ in range(2)]
        )
        self.act = nn.ReLU()
        self.head = nn.Linear(8, 5)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for b in self.blocks:
            x = b(x)
        return self.head(self.act(x).mean(dim=(2, 3)))


def cameras_factory(model: nn.Module) -> CAMERAS:
    return CAMERAS(model, layer="blocks.1", resolutions=RES)


class InputOnly:
    """A 'method' that ignores the model: the normalised intensity of the image."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __call__(self, images: Tensor, targets: Tensor) -> Result:
        m = images.abs().sum(dim=1)
        m = (m - m.amin(dim=(1, 2), keepdim=True)) / (
            m.amax(dim=(1, 2), keepdim=True) - m.amin(dim=(1, 2), keepdim=True)
        )
        b = images.shape[0]
        return Result(m, targets, torch.full((b,), float("nan")), m, torch.ones(b, 1, dtype=torch.bool))


def _images() -> Tensor:
    return torch.randn(2, 3, 24, 24, generator=torch.Generator().manual_seed(1))


def _snapshot(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _map(model: nn.Module, images: Tensor, targets: Tensor) -> Tensor:
    return cameras_factory(model)(images, targets).saliency


def test_default_blocks_order() -> None:
    net = Net()
    expected = ["head", "blocks.1", "blocks.0", "stem"]
    assert default_blocks(net) == expected
    assert default_blocks(net, _images()) == expected


def test_default_blocks_follow_execution_order_and_skip_unused() -> None:
    class Shuffled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)  # defined first, runs last
            self.unused = nn.Linear(4, 4)
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x: Tensor) -> Tensor:
            return self.fc(self.conv(x).mean(dim=(2, 3)))

    net = Shuffled()
    assert default_blocks(net, torch.randn(1, 3, 8, 8)) == ["fc", "conv"]
    assert default_blocks(net) == ["conv", "unused", "fc"]


def test_steps_match_manual_randomisation_and_original_untouched() -> None:
    net = Net()
    images = _images()
    before = _snapshot(net)
    rng_before = torch.get_rng_state()
    res = cascading_randomization(
        net, {"cameras": cameras_factory}, images, blocks=["head", "blocks.1"], seed=7, bn_stats="reset"
    )
    # The original model and the caller's RNG are untouched.
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not net.training and all(p.requires_grad for p in net.parameters())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    assert torch.equal(rng_before, torch.get_rng_state())

    targets = net(images).argmax(dim=1)
    assert res.targets.tolist() == targets.tolist()
    # Independent reconstruction of each step: re-initialise by hand with the documented seeds.
    manual = copy.deepcopy(net)
    torch.manual_seed(7 + 1)
    manual.head.reset_parameters()
    step1 = _map(manual, images, targets)
    torch.manual_seed(7 + 2)
    for m in manual.blocks[1].modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    step2 = _map(manual, images, targets)
    torch.testing.assert_close(res.maps["cameras"][0], _map(net, images, targets))
    torch.testing.assert_close(res.maps["cameras"][1], step1)
    torch.testing.assert_close(res.maps["cameras"][2], step2)
    assert res.steps == ["original", "head", "blocks.1"]
    for metric, values in res.similarity["cameras"].items():
        assert values.shape == (3, 2)
        np.testing.assert_allclose(values[0], 1.0, err_msg=metric)


def test_independent_variant_restores_each_block() -> None:
    net = Net()
    images = _images()
    res = cascading_randomization(
        net,
        {"cameras": cameras_factory},
        images,
        blocks=["head", "blocks.1"],
        variant="independent",
        seed=3,
        bn_stats="reset",
    )
    targets = res.targets
    manual = copy.deepcopy(net)
    torch.manual_seed(3 + 2)
    for m in manual.blocks[1].modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    torch.testing.assert_close(res.maps["cameras"][2], _map(manual, images, targets))  # head left trained


def test_model_dependent_method_drops_and_input_only_method_does_not() -> None:
    net = Net()
    res = cascading_randomization(net, {"cameras": cameras_factory, "input": InputOnly}, _images(), seed=0)
    assert len(res.steps) == 5
    for metric in ("spearman_abs", "ssim", "hog"):
        np.testing.assert_allclose(res.similarity["input"][metric], 1.0, atol=1e-9)
        assert res.mean("cameras", metric)[-1] < 0.9, metric


def test_explainer_instance_is_rebuilt_on_the_copy() -> None:
    net = Net()
    images = _images()
    explainer = CAMERAS(net, layer=net.blocks[1], resolutions=RES)  # bound to the original and a module object
    res = cascading_randomization(net, explainer, images, blocks=["head", "blocks.1", "blocks.0"], seed=0)
    assert res.methods == ["cameras"]
    assert explainer.model is net
    assert res.mean("cameras", "ssim")[-1] < 0.9  # maps changed, so the copy was used
    # Equivalent to naming the method with the layer given as a module of the original model.
    by_name = cascading_randomization(net, "cameras", images, layer=net.blocks[1], blocks=["head"], seed=0)
    assert by_name.similarity["cameras"]["ssim"].shape == (2, 2)


def test_same_seed_same_result_different_seed_differs() -> None:
    net = Net()
    kw: dict[str, Any] = {"blocks": ["head", "blocks.1"], "bn_stats": "reset"}
    a = cascading_randomization(net, {"c": cameras_factory}, _images(), seed=5, **kw)
    b = cascading_randomization(net, {"c": cameras_factory}, _images(), seed=5, **kw)
    c = cascading_randomization(net, {"c": cameras_factory}, _images(), seed=6, **kw)
    torch.testing.assert_close(a.maps["c"], b.maps["c"])
    assert not torch.allclose(a.maps["c"][2], c.maps["c"][2])


def test_batchnorm_statistics_options() -> None:
    net = Net()
    images = _images()
    seen: list[nn.Module] = []

    def capture(model: nn.Module) -> CAMERAS:
        seen.append(model)
        return cameras_factory(model)

    cascading_randomization(net, {"c": capture}, images, bn_stats="recalibrate")
    work = seen[-1]
    inputs: dict[str, Tensor] = {}
    hooks = [
        m.register_forward_pre_hook(lambda _m, a, n=n: inputs.__setitem__(n, a[0]))
        for n, m in work.named_modules()
        if isinstance(m, nn.BatchNorm2d)
    ]
    with torch.no_grad():
        work(images)
    for h in hooks:
        h.remove()
    # Recalibrated: running stats are the statistics of the explained images (up to the biased/unbiased variance
    # used by BatchNorm in training vs eval mode, a relative 1/(N-1) ~ 1e-3 effect on the layers above).
    for name, x in inputs.items():
        bn = work.get_submodule(name)
        assert isinstance(bn, nn.BatchNorm2d)
        torch.testing.assert_close(bn.running_mean, x.mean(dim=(0, 2, 3)), atol=1e-3, rtol=5e-3)
        torch.testing.assert_close(bn.running_var, x.var(dim=(0, 2, 3), unbiased=True), atol=1e-3, rtol=5e-3)

    cascading_randomization(net, {"c": capture}, images, bn_stats="reset")
    bn = seen[-1].get_submodule("stem.1")
    assert isinstance(bn, nn.BatchNorm2d)
    assert torch.equal(bn.running_mean, torch.zeros(8)) and torch.equal(bn.running_var, torch.ones(8))
    cascading_randomization(net, {"c": capture}, images, bn_stats="keep")
    bn = seen[-1].get_submodule("stem.1")
    assert isinstance(bn, nn.BatchNorm2d)
    assert torch.equal(bn.running_mean, net.stem[1].running_mean)


def test_reinitialize_fallback_for_modules_without_reset() -> None:
    class Scale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.full((100,), 3.0) + torch.linspace(-1, 1, 100))

    m = Scale()
    std = float(m.w.detach().std())
    reinitialize(m, seed=0)
    assert abs(float(m.w.detach().mean())) < 0.5 * std  # recentred on 0
    assert 0.5 * std < float(m.w.detach().std()) < 1.5 * std


def test_outputs_plots_and_json(tmp_path: Path) -> None:
    net = Net()
    res = cascading_randomization(net, {"cameras": cameras_factory, "input": InputOnly}, _images(), blocks=["head"])
    fig = plot_similarity(res, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert len(fig.axes) == 4 and all(len(ax.get_lines()) == 2 + 1 for ax in fig.axes)  # 2 methods + zero line
    strip = plot_strip(res, image=torch.rand(24, 24, 3), index=1, path=tmp_path / "strip.png")
    assert (tmp_path / "strip.png").stat().st_size > 0
    assert len(strip.axes) == 2 * 3  # 2 methods x (input + original + 1 step)
    data = json.loads(json.dumps(res.to_dict()))
    assert data["steps"] == ["original", "head"]
    assert data["methods"]["input"]["ssim"]["mean"] == pytest.approx([1.0, 1.0])
    assert len(data["methods"]["cameras"]["hog"]["per_image"]) == 2  # one curve per image
    no_maps = cascading_randomization(net, {"c": cameras_factory}, _images(), blocks=["head"], keep_maps=False)
    with pytest.raises(ValueError, match="keep_maps"):
        plot_strip(no_maps)


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"blocks": ["nope"]}, ValueError, "Unknown block"),
        ({"variant": "random"}, ValueError, "variant"),
        ({"bn_stats": "random"}, ValueError, "bn_stats"),
        ({"method": 3}, TypeError, "method"),
        ({"method": ["cameras", "cameras"]}, ValueError, "unique"),
        ({"method": "no-such-method"}, ValueError, "Unknown method"),
        ({"images": torch.randn(3, 24, 24)}, ValueError, "B, C, H, W"),
        ({"targets": [1]}, ValueError, "targets"),
    ],
)
def test_bad_inputs(kwargs: dict[str, Any], err: type[Exception], match: str) -> None:
    args: dict[str, Any] = {"model": Net(), "method": "cameras", "images": _images(), "layer": "blocks.1"}
    args.update(kwargs)
    with pytest.raises(err, match=match):
        cascading_randomization(**args)


def test_default_blocks_on_torchvision_models() -> None:
    import torchvision

    resnet = default_blocks(torchvision.models.resnet18())
    assert resnet[:3] == ["fc", "layer4.1", "layer4.0"] and resnet[-2:] == ["bn1", "conv1"]

    class VGGLike(nn.Module):  # torchvision's VGG layout, small
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3), nn.ReLU())
            self.classifier = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Dropout(), nn.Linear(4, 2))

    assert default_blocks(VGGLike()) == ["classifier.3", "classifier.0", "features.3", "features.0"]


@pytest.mark.slow
def test_real_lite0_cameras_loses_similarity() -> None:
    from cameras import data, models

    loaded = models.load()
    x = loaded.prepare(data.sample_image("chelsea")).tensor
    before = _snapshot(loaded.model)
    blocks = default_blocks(loaded.model, x)
    assert blocks[:3] == ["classifier", "head", "blocks.15"] and blocks[-1] == "stem"
    factory = {"cameras": lambda m: CAMERAS(m, layer=loaded.layer, resolutions=[224, 324])}
    res = cascading_randomization(loaded.model, factory, x, blocks=blocks[:3], seed=0)
    after = loaded.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    for metric in ("spearman_abs", "spearman", "ssim", "hog"):
        print(metric, np.round(res.mean("cameras", metric), 3).tolist())
    assert res.mean("cameras", "spearman_abs")[-1] < 0.9
    assert res.mean("cameras", "ssim")[-1] < 0.9
