"""Every CAM method of the registry on Vision Transformer tokens and Swin's channels-last maps (seeded random timm
models): CAMERAS and the multi-scale rules against the definition-level references (hooks, token reshape, per-scale
plain autograd on the whole model, full-resolution fusion), the single-scale CAMs against their references and
pytorch-grad-cam with its documented ``reshape_transform``, CAM on Swin, Score-CAM."""

from __future__ import annotations

import pytest
import pytorch_grad_cam as pgc
import torch
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import Tensor, nn

import cameras
import cameras.methods as M
from cameras.engine import schedule

from ..engine.reference import reference_cameras
from ..engine.timm_nets import Reshape, nhwc_to_nchw, tiny_swin, tiny_vit, vit_tokens_to_grid
from .reference import reference_cam, reference_multiscale
from .test_scorecam import LogSoftmaxTarget, masks_align_corners_false  # noqa: F401  (a fixture)

GRADIENT_CAMS = ["gradcam", "gradcam++", "hirescam", "layercam", "xgradcam"]
VITS = {"vit": (dict(), 1), "vit+registers": (dict(reg_tokens=2), 3), "deit-distilled": (dict(arch="deit"), 2)}


def _vit(case: str, seed: int) -> tuple[nn.Module, Reshape]:
    kwargs, prefix = VITS[case]
    return tiny_vit(seed, **kwargs), vit_tokens_to_grid(8, prefix)  # type: ignore[arg-type]


def _nontrivial(saliency: Tensor) -> None:
    """The compared maps carry structure (not constant, not one hot pixel), so agreement is not vacuous."""
    assert float(saliency.std()) > 0.05 and float((saliency > 0.5).float().mean()) > 0.01


# -- CAMERAS ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer", [1, 0])
@pytest.mark.parametrize("case", list(VITS))
def test_cameras_on_vit_matches_the_definition(case: str, layer: int) -> None:
    """At the last block the class token reads the patch tokens through attention alone, which does not depend on
    their order; block 0 feeds later blocks, so there a misplaced token changes the map."""
    model, to_grid = _vit(case, seed=11)
    x = torch.randn(2, 3, 64, 72)
    resolutions = [1.0, 1.4, 1.9, 0.7]  # 64×72 … 122×137: most scales are padded to whole 8 px patches
    sizes = schedule(resolutions, (64, 72))
    explainer = cameras.CAMERAS(model, layer=f"blocks.{layer}.norm1", resolutions=resolutions)
    for targets in (None, torch.tensor([3, 7])):
        ref, chosen, kept = reference_cameras(model, model.blocks[layer].norm1, x, sizes, targets, reshape=to_grid)
        out = explainer(x, targets)
        assert out.targets.tolist() == chosen.tolist()
        assert out.kept.tolist() == kept.tolist()
        assert out.resolutions == sizes
        _nontrivial(out.saliency)
        assert (out.saliency - ref).abs().max().item() <= 1e-4


@pytest.mark.parametrize("layer", ["norm", "layers.2"])
def test_cameras_on_swin_matches_the_definition(layer: str) -> None:
    model = tiny_swin(12)
    x = torch.randn(2, 3, 64, 80)
    resolutions = [1.0, 1.5, 2.0]
    sizes = schedule(resolutions, (64, 80))
    module = dict(model.named_modules())[layer]
    explainer = cameras.CAMERAS(model, layer=layer, resolutions=resolutions, reshape="nhwc")
    for targets in (None, torch.tensor([1, 8])):
        ref, chosen, kept = reference_cameras(model, module, x, sizes, targets, reshape=nhwc_to_nchw)
        out = explainer(x, targets)
        assert out.targets.tolist() == chosen.tolist()
        assert out.kept.tolist() == kept.tolist()
        _nontrivial(out.saliency)
        assert (out.saliency - ref).abs().max().item() <= 1e-4


def test_cameras_on_vit_paper_schedule_batch_and_top_k() -> None:
    """The paper's factors (up to 4.1× the input) on a batch, and top-k classes from one pass per scale."""
    model, to_grid = _vit("vit", seed=13)
    x = torch.randn(2, 3, 48, 40)
    out = cameras.CAMERAS(model, layer="blocks.1.norm1")(x)
    sizes = schedule(None, (48, 40))
    ref, chosen, kept = reference_cameras(model, model.blocks[-1].norm1, x, sizes, reshape=to_grid)
    assert out.targets.tolist() == chosen.tolist() and out.kept.tolist() == kept.tolist()
    assert (out.saliency - ref).abs().max().item() <= 1e-4
    top = cameras.CAMERAS(model, layer="blocks.1.norm1", resolutions=[1.0, 2.0])(x, top_k=3)
    assert top.saliency.shape == (2, 3, 48, 40)
    again = cameras.CAMERAS(model, layer="blocks.1.norm1", resolutions=[1.0, 2.0])(x, top.targets)
    assert (top.saliency - again.saliency).abs().max().item() <= 1e-5


# -- the multi-scale rules ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", GRADIENT_CAMS)
def test_multiscale_rules_on_vit_match_the_definition(method: str) -> None:
    model, to_grid = _vit("vit+registers", seed=14)
    x = torch.randn(2, 3, 56, 64)
    resolutions = [1.0, 1.5, 2.2]
    sizes = schedule(resolutions, (56, 64))
    explainer = M.get(f"ms-{method}")(model, layer="blocks.0.norm1", resolutions=resolutions)
    for targets in (None, [2, 9]):
        ref, chosen, kept = reference_multiscale(method, model, model.blocks[0].norm1, x, sizes, targets, to_grid)
        out = explainer(x, targets)
        assert out.targets.tolist() == chosen and out.kept.tolist() == kept
        assert (out.saliency - ref).abs().max().item() <= 1e-4


@pytest.mark.parametrize("method", GRADIENT_CAMS)
def test_multiscale_rules_on_swin_match_the_definition(method: str) -> None:
    model = tiny_swin(15)
    x = torch.randn(1, 3, 64, 64)
    sizes = schedule([1.0, 1.5], (64, 64))
    explainer = M.get(f"ms-{method}")(model, layer="layers.2", resolutions=[1.0, 1.5], reshape="nhwc")
    ref, _, _ = reference_multiscale(method, model, model.layers[2], x, sizes, [4], nhwc_to_nchw)
    out = explainer(x, [4])
    assert (out.saliency - ref).abs().max().item() <= 1e-4


# -- single-scale CAMs ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", GRADIENT_CAMS)
@pytest.mark.parametrize("case", list(VITS))
def test_single_scale_cams_on_vit_match_the_definition(method: str, case: str) -> None:
    model, to_grid = _vit(case, seed=16)
    x = torch.randn(2, 3, 64, 48)
    explainer = M.get(method)(model, layer="blocks.0.norm1")
    for targets in (None, [5, 1]):
        ref, chosen = reference_cam(method, model, model.blocks[0].norm1, x, targets, reshape=to_grid)
        out = explainer(x, targets)
        assert out.targets.tolist() == chosen
        assert (out.saliency - ref).abs().max().item() <= 1e-5
        low, _ = reference_cam(method, model, model.blocks[0].norm1, x, targets, upsample=False, reshape=to_grid)
        assert explainer(x, targets, upsample=False).saliency.shape == (2, 8, 6)
        assert (explainer(x, targets, upsample=False).saliency - low).abs().max().item() <= 1e-5


@pytest.mark.parametrize("method", GRADIENT_CAMS)
def test_single_scale_cams_on_swin_match_the_definition(method: str) -> None:
    model = tiny_swin(17)
    x = torch.randn(2, 3, 64, 96)
    ref, chosen = reference_cam(method, model, model.layers[2], x, None, reshape=nhwc_to_nchw)
    out = M.get(method)(model, layer="layers.2", reshape="nhwc")(x)
    assert out.targets.tolist() == chosen
    assert (out.saliency - ref).abs().max().item() <= 1e-5


def _pgc_reshape_transform(height: int, width: int, prefix: int = 1) -> Reshape:
    """pytorch-grad-cam's documented ViT ``reshape_transform``: drop the class token, (B, h·w, C) → (B, C, h, w)."""

    def transform(tensor: Tensor) -> Tensor:  # type: ignore[return]
        grid = tensor[:, prefix:, :].reshape(tensor.size(0), height, width, tensor.size(2))
        return grid.transpose(2, 3).transpose(1, 2)

    return transform  # type: ignore[return-value]


def _pgc(cls: type, model: nn.Module, layer: nn.Module, x: Tensor, t: list[int], hw: tuple[int, int]) -> Tensor:
    class AtLayer(cls):  # type: ignore[misc, valid-type]
        def get_target_width_height(self, _x: Tensor) -> tuple[int, int]:
            return hw[1], hw[0]

    with AtLayer(model, [layer], reshape_transform=_pgc_reshape_transform(*hw)) as cam:
        if isinstance(cam, pgc.ScoreCAM):
            cam.batch_size = 64
            return torch.from_numpy(cam(x, [LogSoftmaxTarget(k) for k in t]))
        return torch.from_numpy(cam(x, [ClassifierOutputTarget(k) for k in t]))


def test_gradcam_on_vit_equals_pytorch_grad_cam() -> None:
    torch.manual_seed(18)
    model = tiny_vit(18, classes=20)
    x = torch.randn(2, 3, 64, 64)
    ours = M.GradCAM(model, layer="blocks.1.norm1")(x, [3, 17], upsample=False).saliency
    theirs = _pgc(pgc.GradCAM, model, model.blocks[-1].norm1, x, [3, 17], (8, 8))
    _nontrivial(ours)
    assert (ours - theirs).abs().max().item() <= 1e-5


@pytest.mark.parametrize("method", ["gradcam++", "hirescam", "layercam", "xgradcam"])
def test_other_cams_on_vit_agree_with_pytorch_grad_cam(method: str) -> None:
    model = tiny_vit(19)
    if method == "gradcam++":  # pytorch-grad-cam's ε in the α denominator: see tests/methods/test_cam.py
        with torch.no_grad():
            model.head.weight.mul_(1e4)
            model.head.bias.mul_(1e4)
    x = torch.randn(1, 3, 64, 64)
    ours = M.get(method)(model, layer="blocks.1.norm1")(x, [6], upsample=False).saliency
    theirs = _pgc({"gradcam++": pgc.GradCAMPlusPlus, "hirescam": pgc.HiResCAM, "layercam": pgc.LayerCAM,
                   "xgradcam": pgc.XGradCAM}[method], model, model.blocks[-1].norm1, x, [6], (8, 8))  # fmt: skip
    assert (ours - theirs).abs().max().item() <= 1e-4


@pytest.mark.usefixtures("masks_align_corners_false")
def test_scorecam_on_vit_agrees_with_pytorch_grad_cam() -> None:
    model = tiny_vit(20)
    x = torch.randn(1, 3, 64, 64)
    ours = M.ScoreCAM(model, layer="blocks.1.norm1", progress=False)(x, [2], upsample=False).saliency
    theirs = _pgc(pgc.ScoreCAM, model, model.blocks[-1].norm1, x, [2], (8, 8))
    assert (ours - theirs).abs().max().item() <= 1e-4


def test_cam_is_gradcam_on_swin_and_refused_on_vit_tokens() -> None:
    """Swin's final norm is average-pooled into the linear head (CAM's premise); a ViT's head reads the class token."""
    swin = tiny_swin(21)
    x = torch.randn(2, 3, 64, 96)
    cam = M.CAM(swin, layer="norm", reshape="nhwc")(x, [1, 2])
    grad = M.GradCAM(swin, layer="norm", reshape="nhwc")(x, [1, 2])
    assert (cam.saliency - grad.saliency).abs().max().item() <= 1e-5
    with pytest.raises(ValueError, match="global-average-pooling"):
        M.CAM(tiny_vit(), layer="blocks.1.norm1")(torch.randn(1, 3, 64, 64))


def test_every_layer_method_of_the_registry_runs_on_tokens_and_channels_last_maps() -> None:
    vit = tiny_vit(22)
    swin = cameras.models.load(
        "timm:swin_tiny_patch4_window7_224",
        weights=None,
        build_kwargs=dict(img_size=64, window_size=4, embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1)),
    ).model  # carries its default layer "norm" and layout "nhwc"
    x = torch.randn(1, 3, 64, 64)
    ran = []
    for name in M.available():
        cls = M.get(name)
        if not cls.needs_layer:
            continue  # pixel-gradient methods: no layer, no layout
        kwargs = {"progress": False} if cls is M.ScoreCAM else {}
        if issubclass(cls, M.CAMERAS | M.MultiScaleCAM):
            kwargs["resolutions"] = [1.0, 1.5]
        for model, layer in ((vit, "blocks.1.norm1"), (swin, None)):
            if cls is M.CAM and model is vit:
                continue  # refused, see above
            out = cls(model, layer=layer, **kwargs)(x, [3])
            assert out.saliency.shape == (1, 64, 64) and bool(torch.isfinite(out.saliency).all())
            assert float(out.saliency.max()) == pytest.approx(1.0) and float(out.saliency.min()) == 0.0
        ran.append(name)
    assert {"cameras", "cam", "gradcam", "gradcam++", "hirescam", "layercam", "xgradcam", "scorecam"} <= set(ran)
    assert {f"ms-{m}" for m in GRADIENT_CAMS} <= set(ran)


def test_reference_reshape_is_not_vacuous() -> None:
    """Reading the tokens with the prefix at the wrong end gives other maps: the references check which tokens are
    the patches, not only the shapes."""
    model = tiny_vit(23, reg_tokens=2)
    x = torch.randn(1, 3, 64, 64)
    out = M.GradCAM(model, layer="blocks.1.norm1")(x, [1], upsample=False).saliency
    right, _ = reference_cam("gradcam", model, model.blocks[-1].norm1, x, [1], False, vit_tokens_to_grid(8, 3))
    wrong, _ = reference_cam(
        "gradcam", model, model.blocks[-1].norm1, x, [1], False, lambda a, s: vit_tokens_to_grid(8, 0)(a[:, :-3], s)
    )
    assert (out - right).abs().max().item() <= 1e-5
    assert (out - wrong).abs().max().item() > 1e-2
