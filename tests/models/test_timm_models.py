"""``cameras.models.load("timm:NAME")``: local checkpoints (seeded random timm models), default layers and layouts
per family, timm's preprocessing, models that take any size or one size, and the errors (offline, unknown names,
checkpoints that do not fit, timm missing)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import cameras
from cameras import models
from cameras.models import Preprocess, WeightsUnavailableError

SMALL_SWIN = dict(img_size=64, window_size=4, embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1))


def _checkpoint(tmp_path: Path, arch: str, seed: int = 0, **kwargs: object) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(seed)
    net = timm.create_model(arch, **kwargs).eval()
    path = tmp_path / f"{arch}.pth"
    torch.save({"state_dict": net.state_dict()}, path)
    return path, net


def test_vit_from_a_local_checkpoint(tmp_path: Path) -> None:
    path, net = _checkpoint(tmp_path, "test_vit", num_classes=10)
    m = models.load("timm:test_vit", weights=path)
    assert m.name == "timm:test_vit" and m.weights == str(path)
    assert m.layer == "blocks.5.norm1" and m.reshape is None and m.model.cameras_default_layer == "blocks.5.norm1"
    assert m.labels == [str(i) for i in range(10)]  # the head was rebuilt for the checkpoint's 10 classes
    config = timm.data.resolve_model_data_config(net)
    assert m.preprocess == Preprocess(
        size=160, mean=config["mean"], std=config["std"], square=False, interpolation=config["interpolation"]
    )
    x = torch.randn(1, 3, 160, 160)
    with torch.no_grad():
        assert torch.allclose(m.model(x), net(x), atol=1e-5)  # the same weights (and 160 px is its native size)
        assert m.model(torch.randn(1, 3, 100, 244)).shape == (1, 10)  # any size: dynamic embeddings, padding
    out = cameras.CAMERAS(m.model, resolutions=[1.0, 1.6])(m.prepare(cameras.data.sample_image("rocket")).tensor)
    assert out.saliency.shape == (1, 160, 240) and not m.model.training  # rocket: 427×640


def test_safetensors_checkpoint_and_default_layers_per_family(tmp_path: Path) -> None:
    torch.manual_seed(1)
    net = timm.create_model("test_convnext").eval()
    save_file(net.state_dict(), str(tmp_path / "convnext.safetensors"))
    m = models.load("timm:test_convnext", weights=tmp_path / "convnext.safetensors")
    assert m.layer == "stages.3" and m.labels == models.imagenet_labels()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(m.model(x), net(x), atol=1e-5)
    assert models.load("timm:test_resnet", weights=None).layer == "layer4"
    assert models.load("timm:test_resnet", weights=None).preprocess.interpolation == "bilinear"
    swin = models.load("timm:swin_tiny_patch4_window7_224", weights=None, build_kwargs=SMALL_SWIN)
    assert swin.layer == "norm" and swin.reshape == "nhwc" and swin.model.cameras_default_reshape == "nhwc"
    deit = models.load(
        "timm:deit_tiny_distilled_patch16_224", weights=None, build_kwargs=dict(depth=2, embed_dim=32, num_heads=2)
    )
    assert deit.layer == "blocks.1.norm1" and deit.model.num_prefix_tokens == 2


def test_swin_default_layout_is_used_by_every_method() -> None:
    m = models.load("timm:swin_tiny_patch4_window7_224", weights=None, build_kwargs=SMALL_SWIN)
    x = torch.randn(1, 3, 64, 92)  # 92 is not a multiple of 32: the merges pad; of 4: the patch embedding pads
    default = cameras.CAMERAS(m.model, resolutions=[1.0, 1.5])(x, [3])
    explicit = cameras.CAMERAS(m.model, layer="norm", reshape="nhwc", resolutions=[1.0, 1.5])(x, [3])
    assert torch.equal(default.saliency, explicit.saliency)
    low = cameras.GradCAM(m.model)(x, [3], upsample=False)
    assert low.saliency.shape == (1, 2, 3)  # the (B, H, W, C) norm read as channels-last: a 2×3 grid at 64×92


def test_a_fixed_size_architecture_gets_square_preprocessing_and_a_clear_error() -> None:
    m = models.load("timm:beit_base_patch16_224", weights=None, build_kwargs=dict(depth=1, embed_dim=32, num_heads=2))
    assert m.preprocess.square and m.preprocess.size == 224
    x = m.prepare(cameras.data.sample_image("chelsea")).tensor
    assert x.shape == (1, 3, 224, 224)
    assert cameras.GradCAM(m.model)(x).saliency.shape == (1, 224, 224)
    with pytest.raises(ValueError, match=r"Beit takes only 224×224 inputs .* resolutions=\[\(224, 224\)\]"):
        cameras.CAMERAS(m.model)(x)


def test_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"Unknown timm model 'vit_tiny_patch16_22'\. Did you mean"):
        models.load("timm:vit_tiny_patch16_22", weights=None)
    with pytest.raises(ValueError, match="timm cannot build"):
        models.load("timm:test_vit", weights=None, build_kwargs={"no_such_argument": 1})
    with pytest.raises(ValueError, match="build_kwargs applies to timm"):
        models.load("resnet18", weights=None, build_kwargs={"depth": 2})
    path, _ = _checkpoint(tmp_path, "test_vit2")
    with pytest.raises(ValueError, match=r"does not fit timm:test_vit"):
        models.load("timm:test_vit", weights=path)
    with pytest.raises(FileNotFoundError):
        models.load("timm:test_vit", weights=tmp_path / "missing.pth")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # what an offline machine sees, at once
    with pytest.raises(WeightsUnavailableError, match=r"Hugging Face Hub.*--weights PATH"):
        models.load("timm:test_vit")
    monkeypatch.setitem(sys.modules, "timm", None)  # timm not installed
    with pytest.raises(ImportError, match=r"cameras\[timm\]"):
        models.load("timm:test_vit", weights=None)


def test_preprocess_interpolation() -> None:
    rgb = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)
    base = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
    for mode in ("bilinear", "bicubic"):
        got = Preprocess(size=24, mean=(0, 0, 0), std=(1, 1, 1), interpolation=mode)(rgb).tensor
        want = F.interpolate(base, size=(24, 36), mode=mode, align_corners=False, antialias=True)
        assert torch.allclose(got, want.clamp(0, 255) / 255, atol=1e-6)
    bilinear = Preprocess(size=24)(rgb).tensor
    assert not torch.allclose(Preprocess(size=24, interpolation="bicubic")(rgb).tensor, bilinear)
    nearest = Preprocess(size=20, mean=(0, 0, 0), std=(1, 1, 1), interpolation="nearest")(rgb).tensor
    assert torch.equal(nearest * 255, base[:, :, 1::2, 1::2].round())  # every other pixel, halfway-centred
    with pytest.raises(ValueError, match="interpolation must be one of"):
        Preprocess(interpolation="lanczos")
