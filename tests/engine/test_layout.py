"""Token and channels-last layouts in the layer tap: values, gradients, model state, and the errors for outputs and
input sizes the engine cannot use."""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision
from torch import Tensor, nn

import cameras
from cameras.engine import LayerTap, TokenLayout, record_scales, resolve_layout
from cameras.engine.layout import AutoLayout, ChannelsLastLayout, FunctionLayout, SpatialLayout, patch_grid

from .timm_nets import nhwc_to_nchw, tiny_swin, tiny_vit, vit_tokens_to_grid

VITS = {"vit": (dict(), 1), "vit+registers": (dict(reg_tokens=2), 3), "deit-distilled": (dict(arch="deit"), 2)}


def _hooked_gradient(model: nn.Module, layer: nn.Module, x: Tensor, target: int) -> tuple[Tensor, Tensor, Tensor]:
    """Plain autograd on the whole model: (logits, hooked output, its gradient)."""
    store: dict[str, Tensor] = {}

    def hook(_m: nn.Module, _i: object, out: Tensor) -> None:
        out.retain_grad()
        store["out"] = out

    handle = layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = model(x)
            logits[:, target].sum().backward()
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
    grad = store["out"].grad
    assert grad is not None
    return logits.detach(), store["out"].detach(), grad


@pytest.mark.parametrize("case", list(VITS))
@pytest.mark.parametrize("size", [(64, 64), (70, 90)])
def test_vit_tokens_are_the_patch_grid_and_the_gradient_follows(case: str, size: tuple[int, int]) -> None:
    """At block 0 (whose tokens later blocks read in place; the last block's class token reads them through
    order-free attention, where a misplaced token would go unnoticed)."""
    kwargs, prefix = VITS[case]
    model = tiny_vit(1, **kwargs)  # type: ignore[arg-type]
    assert model.num_prefix_tokens == prefix
    x = torch.randn(2, 3, *size)
    logits, tokens, grad = _hooked_gradient(model, model.blocks[0].norm1, x, 4)
    to_grid = vit_tokens_to_grid(8, prefix)
    with LayerTap(model, "blocks.0.norm1") as tap:
        out = tap.forward(x)
        g = LayerTap.gradient(out, torch.full((2, 1), 4))
    assert torch.allclose(out.logits, logits, atol=1e-6, rtol=0)  # the rebuilt tokens leave the model unchanged
    assert out.activations.shape == (2, 32, -(-size[0] // 8), -(-size[1] // 8))
    assert torch.equal(out.activations, to_grid(tokens, size))
    assert torch.allclose(g[:, 0], to_grid(grad, size), atol=1e-7, rtol=1e-5)
    assert float(g.abs().max()) > 0


@pytest.mark.parametrize("layer", ["norm", "layers.2", "layers.3.blocks.0.norm1"])
def test_swin_channels_last_maps(layer: str) -> None:
    model = tiny_swin(2)
    x = torch.randn(2, 3, 64, 96)
    module = dict(model.named_modules())[layer]
    logits, maps, grad = _hooked_gradient(model, module, x, 3)
    with LayerTap(model, layer, reshape="nhwc") as tap:
        out = tap.forward(x)
        g = LayerTap.gradient(out, torch.full((2, 1), 3))
    assert torch.allclose(out.logits, logits, atol=1e-6, rtol=0)
    assert torch.equal(out.activations, nhwc_to_nchw(maps, (64, 96)))
    assert torch.allclose(g[:, 0], nhwc_to_nchw(grad, (64, 96)), atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize(
    ("net", "layer", "layout", "grid"),
    [
        ("swin", "norm", "nhwc", (2, 3)),
        ("swin", "layers.1", "nhwc", (8, 12)),
        ("swin", "patch_embed", "nhwc", (16, 24)),
        ("vit", "patch_embed", "nhwc", (8, 12)),  # timm's dynamic patch embedding outputs (B, h, w, C)
        ("vit", "patch_embed.proj", "nchw", (8, 12)),  # the convolution inside it (B, C, h, w)
    ],
)
def test_auto_layout_tells_channels_last_maps_by_the_patch_grid(
    net: str, layer: str, layout: str, grid: tuple[int, int]
) -> None:
    model = tiny_swin(9) if net == "swin" else tiny_vit(9)
    x = torch.randn(1, 3, 64, 96)
    results = []
    for reshape in (None, layout):
        with LayerTap(model, layer, reshape=reshape) as tap:
            out = tap.forward(x)
            results.append((out.activations.detach(), LayerTap.gradient(out, torch.tensor([[1]]))))
    assert results[0][0].shape[-2:] == grid
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


def test_callable_reshape_equals_the_token_layout() -> None:
    """A pytorch-grad-cam style reshape (a rearrangement of the tokens) gives the same A and G through the
    vector-Jacobian rebuild as the built-in token layout."""
    model = tiny_vit(3)
    x = torch.randn(1, 3, 72, 56)
    t = torch.tensor([[2, 5]])
    results = []
    for reshape in (None, "tokens", vit_tokens_to_grid(8, 1), TokenLayout(prefix=1, grid=lambda s: (9, 7))):
        with LayerTap(model, "blocks.0.norm1", reshape=reshape) as tap:
            out = tap.forward(x)
            results.append((out.logits, out.activations.detach(), LayerTap.gradient(out, t)))
    base = results[0]
    for logits, a, g in results[1:]:
        assert torch.allclose(logits, base[0], atol=1e-6, rtol=0)
        assert torch.equal(a, base[1])
        assert torch.allclose(g, base[2], atol=1e-8, rtol=1e-5)


def test_model_state_is_restored_on_token_layers_also_after_errors() -> None:
    model = tiny_vit(4).train()
    model.blocks[0].requires_grad_(False)
    before = [(n, p.requires_grad) for n, p in model.named_parameters()]
    cameras.CAMERAS(model, layer="blocks.1.norm1", resolutions=[1.0, 1.3])(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match="tokens"):
        cameras.GradCAM(model, layer="blocks.1.norm1", reshape=TokenLayout(prefix=0))(torch.randn(1, 3, 64, 64))
    assert all(m.training for m in model.modules())
    assert [(n, p.requires_grad) for n, p in model.named_parameters()] == before


def test_layout_names_and_defaults() -> None:
    assert isinstance(resolve_layout(None), AutoLayout)
    assert isinstance(resolve_layout("NHWC"), ChannelsLastLayout)
    assert isinstance(resolve_layout("channels-last"), ChannelsLastLayout)
    assert isinstance(resolve_layout("nchw"), SpatialLayout)
    assert resolve_layout("tokens") == TokenLayout()
    assert isinstance(resolve_layout(lambda t, s: t), FunctionLayout)
    net = nn.Conv2d(3, 3, 1)
    net.cameras_default_reshape = "nhwc"  # type: ignore[assignment]
    assert isinstance(resolve_layout(None, net), ChannelsLastLayout)
    assert isinstance(resolve_layout("nchw", net), SpatialLayout)  # an explicit layout wins over the default
    with pytest.raises(ValueError, match="not a layout"):
        resolve_layout("tokenz")
    with pytest.raises(TypeError, match="reshape must be"):
        resolve_layout(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a layout"):
        cameras.GradCAM(tiny_vit(), layer="blocks.1.norm1", reshape="bogus")
    with pytest.raises(ValueError, match="grid"):
        TokenLayout(grid=(3, 0))
    with pytest.raises(ValueError, match="prefix"):
        TokenLayout(prefix=-1)
    assert patch_grid(tiny_vit(), (70, 90)) == (9, 12)  # padded to whole 8 px patches
    assert patch_grid(nn.Conv2d(3, 3, 1), (70, 90)) is None


def test_record_scales_on_tokens_at_every_scale() -> None:
    model = tiny_vit(5)
    x = torch.randn(1, 3, 64, 80)
    rec = record_scales(model, "blocks.1.norm1", x, [(64, 80), (100, 124), (40, 48)], torch.tensor([[1]]))
    assert [tuple(s.activations.shape[-2:]) for s in rec.scales] == [(8, 10), (13, 16), (5, 6)]
    assert all(s.gradients.shape[:3] == (1, 1, 32) for s in rec.scales)


# -- errors ---------------------------------------------------------------------------------------------------------


class Tokens(nn.Module):
    """A token model with no patch embedding: 50 tokens of 4 channels that do not form a 16×16 input's grid."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(3, 4)
        self.mix = nn.Identity()
        self.head = nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.embed(x.flatten(2).transpose(1, 2)[:, :50])
        return self.head(self.mix(tokens).mean(dim=1))


def test_token_count_that_is_not_a_grid() -> None:
    with pytest.raises(ValueError, match=r"50 tokens .* does not form the 7×7 patch grid .*aspect ratio"):
        cameras.GradCAM(Tokens(), layer="mix")(torch.randn(1, 3, 16, 16))
    model = tiny_vit(6)
    with pytest.raises(ValueError, match=r"65 tokens at input size 64×64; with 0 prefix token\(s\) .* 8×8"):
        cameras.CAMERAS(model, layer="blocks.1.norm1", resolutions=[1.0], reshape=TokenLayout(prefix=0))(
            torch.randn(1, 3, 64, 64)
        )
    with pytest.raises(ValueError, match="grid="):
        cameras.GradCAM(model, layer="blocks.1.norm1", reshape=TokenLayout(grid=(4, 4)))(torch.randn(1, 3, 64, 64))


def test_layer_that_returns_neither_maps_nor_tokens() -> None:
    model = tiny_vit(7)
    x = torch.randn(1, 3, 64, 64)
    with pytest.raises(ValueError, match=r"'head' returned a tensor of shape \(1, 10\): neither a feature map"):
        cameras.GradCAM(model, layer="head")(x)
    with pytest.raises(ValueError, match=r"channels-last map \(B, H, W, C\) was expected"):
        cameras.GradCAM(model, layer="blocks.1.norm1", reshape="nhwc")(x)
    with pytest.raises(ValueError, match=r"feature map \(B, C, h, w\)"):
        cameras.GradCAM(model, layer="blocks.1.norm1", reshape="nchw")(x)
    with pytest.raises(ValueError, match="must return a"):
        cameras.GradCAM(model, layer="blocks.1.norm1", reshape=lambda t, s: t[:, 1:])(x)
    with pytest.raises(ValueError, match="differentiable"):
        cameras.GradCAM(model, layer="blocks.1.norm1", reshape=lambda t, s: torch.zeros(1, 2, 3, 3))(x)


def test_fixed_size_models_say_so_and_how_to_build_them() -> None:
    torch.manual_seed(0)
    fixed = timm.create_model("vit_tiny_patch16_224", img_size=64, patch_size=8, embed_dim=32, depth=1, num_heads=2)
    fixed.eval()
    x = torch.randn(1, 3, 64, 64)
    assert cameras.GradCAM(fixed, layer="blocks.0.norm1")(x).saliency.shape == (1, 64, 64)  # its own size works
    with pytest.raises(ValueError, match=r"takes only 64×64 inputs .*dynamic_img_size=True"):
        cameras.CAMERAS(fixed, layer="blocks.0.norm1", resolutions=[1.0, 1.5])(x)
    swin = tiny_swin(dynamic=False)
    with pytest.raises(ValueError, match=r"SwinTransformer takes only 64×64 inputs"):
        cameras.CAMERAS(swin, layer="norm", reshape="nhwc", resolutions=[1.0, 2.0])(x)
    no_pad = timm.create_model(
        "vit_tiny_patch16_224", img_size=64, patch_size=8, embed_dim=32, depth=1, num_heads=2, dynamic_img_size=True
    ).eval()
    with pytest.raises(ValueError, match=r"multiples of its patch size 8×8, got 70×70.*dynamic_img_pad"):
        cameras.GradCAM(no_pad, layer="blocks.0.norm1")(torch.randn(1, 3, 70, 70))
    tv = torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=16, num_classes=5
    ).eval()
    layer = "encoder.layers.encoder_layer_0.ln_1"
    assert cameras.GradCAM(tv, layer=layer)(torch.randn(1, 3, 32, 32)).saliency.shape == (1, 32, 32)
    with pytest.raises(ValueError, match=r"VisionTransformer takes only 32×32 inputs, got 48×48"):
        cameras.GradCAM(tv, layer=layer)(torch.randn(1, 3, 48, 48))


def test_compiled_model_on_tokens_equals_eager() -> None:
    """The hook reads only a context prepared before the pass, so torch.compile traces token layers too."""
    model = tiny_vit(8)
    x = torch.randn(1, 3, 64, 56)
    eager = cameras.CAMERAS(model, layer="blocks.0.norm1", resolutions=[1.0, 1.5])(x, [2])
    compiled = cameras.CAMERAS(model, layer="blocks.0.norm1", resolutions=[1.0, 1.5], compile="aot_eager")(x, [2])
    assert (eager.saliency - compiled.saliency).abs().max().item() <= 1e-5
