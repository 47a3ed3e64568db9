"""Registry: names, default layers of the torchvision models, weights from files / torchvision / offline errors."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision
from torch import nn

from cameras import models
from cameras.models import DEFAULT_MODEL, WeightsUnavailableError, available, info, load, registry

TORCHVISION = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "vgg16",
    "vgg19",
    "densenet121",
    "inception_v3",
    "efficientnet_b0",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "convnext_tiny",
]


def _seeded_resnet18(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = torchvision.models.resnet18(weights=None).eval()
    with torch.no_grad():  # non-trivial BN statistics, so that a mismatched load shows in the logits
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net


def test_names() -> None:
    names = available()
    assert names[0] == DEFAULT_MODEL == "efficientnet_lite0"
    assert set(names) == {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", *TORCHVISION}
    assert info("ResNet-50").name == "resnet50"
    assert info(" EfficientNet-Lite0 ").layer == "head"
    with pytest.raises(ValueError, match="Did you mean 'resnet50'"):
        info("resnet5O")
    with pytest.raises(ValueError, match="Available"):
        load("alexnet", weights=None)


def test_nothing_heavy_imported_at_import_time() -> None:
    heavy = "('torchvision', 'efficientnet_lite_pytorch', 'PIL', 'skimage')"
    code = f"import sys, cameras.models; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


@pytest.mark.parametrize("name", [n for n in TORCHVISION if n != "inception_v3"])
def test_sizes_and_normalisation_agree_with_torchvision_metadata(name: str) -> None:
    tf = torchvision.models.get_model_weights(name).DEFAULT.transforms()
    spec = info(name)
    assert spec.input_size == tf.crop_size[0]
    assert list(spec.mean) == pytest.approx(tf.mean) and list(spec.std) == pytest.approx(tf.std)


def test_inception_size() -> None:
    assert info("inception_v3").input_size == torchvision.models.Inception_V3_Weights.DEFAULT.transforms().crop_size[0]


@pytest.mark.parametrize("name", TORCHVISION)
def test_default_layer_runs_once_and_is_the_last_spatial_map(name: str) -> None:
    """Record every module call; the default layer must run once, give a 4-D map, and no module with weights may see
    a spatial (h·w > 1) 4-D input after it (outside the layer itself): only pooling and the classifier follow.

    The network is built by the registry on the meta device (shapes only, no initialisation cost)."""
    with torch.device("meta"):
        m = load(name, weights=None, device="meta")
    assert m.model.cameras_default_layer == m.layer == info(name).layer
    assert not m.model.training
    calls: list[tuple[str, nn.Module, Any, Any]] = []
    handles = [
        mod.register_forward_hook(lambda mod, inp, out, n=n: calls.append((n, mod, inp, out)))
        for n, mod in m.model.named_modules()
        if n
    ]
    size = 128 if name == "inception_v3" else 64
    with torch.no_grad():
        logits = m.model(torch.empty(1, 3, size, size, device="meta"))
    for h in handles:
        h.remove()
    assert logits.shape == (1, 1000)
    hits = [k for k, c in enumerate(calls) if c[0] == m.layer]
    assert len(hits) == 1
    out = calls[hits[0]][3]
    assert isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[-1] * out.shape[-2] > 1
    later = [
        n
        for n, mod, inp, _ in calls[hits[0] + 1 :]
        if not n.startswith(m.layer + ".")
        and any(True for _ in mod.parameters(recurse=False))
        and isinstance(inp[0], torch.Tensor)
        and inp[0].dim() == 4
        and inp[0].shape[-1] * inp[0].shape[-2] > 1
    ]
    assert later == []


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_large"])
def test_default_layer_on_real_tensors(name: str) -> None:
    """The same check with real (CPU) tensors for two models: hooked output feeds the logits."""
    torch.manual_seed(0)
    m = load(name, weights=None)
    layer = dict(m.model.named_modules())[m.layer]
    count = [0]

    def zero(mod: nn.Module, inp: Any, out: torch.Tensor) -> torch.Tensor:
        count[0] += 1
        return torch.zeros_like(out)

    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = m.model(x)
        handle = layer.register_forward_hook(zero)
        after = m.model(x)
        handle.remove()
    assert count[0] == 1
    assert not torch.equal(before, after)  # the logits depend on the layer
    # with the layer's output zeroed, the logits no longer depend on the input (nothing spatial bypasses it)
    with torch.no_grad():
        handle = layer.register_forward_hook(zero)
        other = m.model(torch.randn(1, 3, 64, 64))
        handle.remove()
    torch.testing.assert_close(after, other)


def test_checkpoint_files(tmp_path: Path) -> None:
    ref = _seeded_resnet18()
    x = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        expected = ref(x)
    sd = ref.state_dict()
    variants: dict[str, Any] = {
        "bare.pt": sd,
        "lightning.ckpt": {"state_dict": sd, "epoch": 3},
        "ddp.pth": {"model": {f"module.{k}": v for k, v in sd.items()}, "optimizer": {}},
    }
    for fname, obj in variants.items():
        torch.save(obj, tmp_path / fname)
        m = load("resnet18", weights=tmp_path / fname)
        assert m.weights == str(tmp_path / fname)
        with torch.no_grad():
            torch.testing.assert_close(m.model(x), expected, rtol=0, atol=0)
    # a str path works too
    assert load("resnet18", weights=str(tmp_path / "bare.pt")).weights == str(tmp_path / "bare.pt")


def test_checkpoint_errors(tmp_path: Path) -> None:
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), tmp_path / "r34.pt")
    with pytest.raises(ValueError, match="does not fit resnet18"):
        load("resnet18", weights=tmp_path / "r34.pt")
    torch.save(torchvision.models.resnet18(weights=None), tmp_path / "whole.pt")
    with pytest.raises(ValueError, match="state_dict"):
        load("resnet18", weights=tmp_path / "whole.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="Cannot read"):
        load("resnet18", weights=tmp_path / "junk.pt")
    torch.save({"epoch": 3}, tmp_path / "meta.pt")
    with pytest.raises(ValueError, match="holds no state_dict"):
        load("resnet18", weights=tmp_path / "meta.pt")
    with pytest.raises(FileNotFoundError, match="IMAGENET1K_V1"):
        load("resnet18", weights=str(tmp_path / "missing.pt"))


def test_inception_checkpoint_without_aux_head(tmp_path: Path) -> None:
    torch.manual_seed(0)
    ref = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, transform_input=True)
    ref.eval()
    torch.save(ref.state_dict(), tmp_path / "inc.pt")
    m = load("inception_v3", weights=tmp_path / "inc.pt")
    x = torch.randn(1, 3, 80, 80)
    with torch.no_grad():
        torch.testing.assert_close(m.model(x), ref(x), rtol=0, atol=0)


def test_download_path_uses_torchvision_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """weights='DEFAULT' goes through torchvision's own weight loading (faked here: no network in tests)."""
    ref = _seeded_resnet18(seed=1)
    seen: list[str] = []

    def fake_get_state_dict(self: Any, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        seen.append(self.url)
        return ref.state_dict()

    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", fake_get_state_dict)
    monkeypatch.setattr(registry, "reachable", lambda url: True)  # the server answers (no probe in tests)
    m = load("resnet18")
    assert m.weights == "ResNet18_Weights.IMAGENET1K_V1"
    assert seen == [torchvision.models.ResNet18_Weights.DEFAULT.url]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(m.model(x), ref(x), rtol=0, atol=0)
    assert load("resnet18", weights="IMAGENET1K_V1").weights == "ResNet18_Weights.IMAGENET1K_V1"
    assert len(seen) == 2


def test_offline_error_says_how_to_supply_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(self: Any, *args: Any, **kwargs: Any) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", offline)
    monkeypatch.setattr(registry, "reachable", lambda url: True)  # the server answered, then the download failed
    with pytest.raises(WeightsUnavailableError) as info_:
        load("resnet18")
    text = str(info_.value)
    assert "--weights PATH" in text and "weights=PATH" in text and "name resolution" in text
    with pytest.raises(WeightsUnavailableError, match="--weights PATH"):
        load("mobilenet_v2", weights="IMAGENET1K_V2")


def test_random_weights_keywords_and_device() -> None:
    torch.manual_seed(0)
    a = load("mobilenet_v2", weights=None, device=torch.device("cpu"))
    torch.manual_seed(0)
    b = load("mobilenet_v2", weights="none")
    assert a.weights is None and b.weights is None and a.device == torch.device("cpu")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(a.model(x), b.model(x))
    assert isinstance(a.preprocess, models.Preprocess) and a.preprocess.size == 224
    assert len(a.labels) == 1000 and a.labels[281] == "tabby"
    top = a.predict(x, k=3)
    assert len(top) == 1 and len(top[0]) == 3
    with torch.no_grad():
        probs = a.model(x).softmax(1)[0]
    assert top[0][0].index == int(probs.argmax()) and top[0][0].probability == pytest.approx(float(probs.max()))
    assert top[0][0].label == a.labels[top[0][0].index]
    with pytest.raises(TypeError, match="weights"):
        load("resnet18", weights=3)  # type: ignore[arg-type]
