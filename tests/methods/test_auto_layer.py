"""``layer=None`` on a plain ``nn.Module``: the last spatial layer, found by a probe pass, named in a warning, on the
explainer (``layer_name``, ``layer_chosen``) and on the result (``Result.layer``); refused for a transformer that no
known rule covers."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import Tensor, nn

import cameras
from cameras.engine import last_spatial_layer

from ..engine.nets import Shared, TinyCNN


class PlainCNN(nn.Module):
    """conv → top-level ReLU → a conv down to a 1×1 map (not spatial) used as a side branch → head with adaptive
    pooling and dropout: the last spatial layer is ``act`` (the pooling, dropout and the 1×1 map do not count)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.act = nn.ReLU()
        self.gate = nn.AdaptiveAvgPool2d(1)
        self.squeeze = nn.Conv2d(6, 6, 1)  # on the 1×1 pooled map: a channel gate, not a spatial map
        self.pool = nn.AdaptiveAvgPool2d(2)  # 2×2 output, but head pooling: skipped
        self.drop = nn.Dropout(0.0)
        self.fc = nn.Linear(24, 4)

    def forward(self, x: Tensor) -> Tensor:
        a = self.act(self.conv(x))
        a = a * torch.sigmoid(self.squeeze(self.gate(a)))
        return self.fc(self.drop(self.pool(a)).flatten(1))


class Tokens(nn.Module):
    """A patch embedding (the only 4-D map) followed by token mixing: a transformer without a known rule."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 8, stride=8)
        self.mix = nn.Linear(8, 8)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.embed(x).flatten(2).transpose(1, 2)  # (B, N, C)
        return self.fc(self.mix(tokens).mean(dim=1))


def _auto(model: nn.Module, **kwargs: object) -> tuple[cameras.CAMERAS, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        explainer = cameras.CAMERAS(model, resolutions=[1.0, 1.5], **kwargs)  # type: ignore[arg-type]
    return explainer, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


@pytest.mark.parametrize(
    ("model", "expected"),
    [(TinyCNN(), "features"), (PlainCNN(), "act"), (Shared(), "c2")],
    ids=["container-not-identity", "top-level-relu-not-pooling", "shared-module-skipped"],
)
def test_picks_the_last_spatial_layer_and_says_which(model: nn.Module, expected: str) -> None:
    assert last_spatial_layer(model, (32, 32)) == expected
    explainer, messages = _auto(model)
    assert explainer.layer_name == expected and explainer.layer_chosen
    assert len(messages) == 1 and f"{type(model).__name__}.{expected}" in messages[0]
    x = torch.randn(2, 3, 32, 40)
    auto = explainer(x)
    assert auto.layer == expected
    given = cameras.CAMERAS(model, layer=expected, resolutions=[1.0, 1.5])(x)
    assert given.layer == expected and not cameras.CAMERAS(model, layer=expected).layer_chosen
    assert torch.equal(auto.saliency, given.saliency)


def test_probe_leaves_training_flags_and_batchnorm_statistics() -> None:
    model = TinyCNN().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert last_spatial_layer(model) == "features"
    assert model.training and all(m.training for m in model.modules())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_default_layer_attribute_wins_without_a_warning() -> None:
    model = TinyCNN()
    model.cameras_default_layer = "body"  # type: ignore[assignment]
    explainer, messages = _auto(model)
    assert explainer.layer_name == "body" and not explainer.layer_chosen and messages == []


def test_token_model_without_a_rule_is_refused() -> None:
    with pytest.raises(ValueError, match=r"tokens \(B, N, C\).*pass layer="):
        cameras.CAMERAS(Tokens())
    with pytest.raises(ValueError, match="produces no"):
        cameras.GradCAM(nn.Sequential(nn.Flatten(), nn.Linear(3 * 224 * 224, 2)))


def test_timm_vit_uses_the_timm_rule() -> None:
    pytest.importorskip("timm", reason="timm is an optional extra (cameras[timm])")
    from ..engine.timm_nets import tiny_vit

    vit = tiny_vit()
    explainer, messages = _auto(vit)
    assert explainer.layer_name == "blocks.1.norm1" and "blocks.1.norm1" in messages[0]
    out = explainer(torch.randn(1, 3, 64, 64))
    assert out.layer == "blocks.1.norm1" and out.saliency.shape == (1, 64, 64) and not out.any_degenerate
