"""Contrastive maps (``contrast=``): each method's map of ``y_c − γ·mean_j y_{d_j}`` equals the plain map of a model
whose logit c *is* that difference (computed by the slow definition-level references on the wrapped model), γ = 0
equals the plain map, "auto" picks the most probable other classes, multi-class calls, CAMERAS's keep rule, CAM's
weight difference, Score-CAM's score difference, and the bad-input errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import cameras
import cameras.methods as M
from cameras.engine import schedule

from ..engine.nets import SizeSensitive, TinyCNN
from ..engine.reference import reference_cameras
from .reference import minmax, reference_cam, reference_multiscale

GRADIENT_CAMS = ["gradcam", "gradcam++", "hirescam", "layercam", "xgradcam"]
PIXEL_METHODS = ["gradient", "guided_backprop", "integrated_gradients", "smoothgrad"]
TOL = 1e-5


class Difference(nn.Module):
    """The wrapped model of the definition: ``net``'s logits with column ``target`` replaced by
    ``y_target − gamma · mean(y_rivals)``, for every row (so it stands for one image at a time)."""

    def __init__(self, net: nn.Module, target: int, rivals: list[int], gamma: float) -> None:
        super().__init__()
        self.net = net
        self.target = target
        self.rivals = rivals
        self.gamma = gamma

    def forward(self, x: Tensor) -> Tensor:
        logits = self.net(x)
        columns = list(logits.unbind(dim=1))
        rival_mean = sum(logits[:, d] for d in self.rivals) / len(self.rivals)
        columns[self.target] = logits[:, self.target] - self.gamma * rival_mean
        return torch.stack(columns, dim=1)


def _inputs(seed: int = 0) -> tuple[TinyCNN, Tensor]:
    torch.manual_seed(100 + seed)
    return TinyCNN(seed=seed), torch.randn(2, 3, 24, 28)


TARGETS = [3, 7]
RIVALS = [[5], [1, 2]]  # image 0 against class 5, image 1 against the mean of classes 1 and 2


def _nonzero(maps: Tensor) -> None:
    """Every map reaches 1 (min–max normalised, not all zero), so that a comparison of maps says something."""
    assert bool((maps.flatten(-2).amax(dim=-1) > 0.99).all())


def _rivals_tensor() -> Tensor:
    """RIVALS as a (B, 1, M) tensor; image 0's single rival repeated (the mean of [5, 5] is y_5)."""
    return torch.tensor([[5, 5], [1, 2]])


# -- equivalence with the wrapped model ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", GRADIENT_CAMS)
@pytest.mark.parametrize("gamma", [1.0, 0.6])
def test_single_scale_cams_equal_the_wrapped_model(method: str, gamma: float) -> None:
    model, x = _inputs()
    out = M.get(method)(model, layer="features")(x, TARGETS, contrast=_rivals_tensor(), gamma=gamma)
    for b, (c, rivals) in enumerate(zip(TARGETS, RIVALS)):
        wrapped = Difference(model, c, rivals, gamma)
        ref, _ = reference_cam(method, wrapped, model.features, x[b : b + 1], [c])
        assert (out.saliency[b] - ref[0]).abs().max().item() <= TOL
    assert out.contrast.tolist() == [[5, 5], [1, 2]] and out.gamma == gamma
    assert out.targets.tolist() == TARGETS
    _nonzero(out.saliency)


def test_cameras_equals_the_wrapped_model() -> None:
    model, x = _inputs(1)
    sizes = schedule([1.0, 1.5, 2.2], (24, 28))
    explainer = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 1.5, 2.2], max_batch=1)
    out = explainer(x, TARGETS, contrast=_rivals_tensor(), gamma=1.0)
    for b, (c, rivals) in enumerate(zip(TARGETS, RIVALS)):
        wrapped = Difference(model, c, rivals, 1.0)
        ref, _, kept = reference_cameras(wrapped, model.features, x[b : b + 1], sizes, torch.tensor([c]))
        assert (out.saliency[b] - ref[0]).abs().max().item() <= TOL
        assert bool(kept.all()) and bool(out.kept[b].all())  # a target was given: every scale is kept
    _nonzero(out.saliency)


def test_cameras_on_vit_tokens_equals_the_wrapped_model() -> None:
    """The contrast is on the score side, so it composes with the token layouts of the tap (a timm ViT)."""
    from ..engine.timm_nets import tiny_vit, vit_tokens_to_grid

    model, to_grid = tiny_vit(11), vit_tokens_to_grid(8, 1)
    x = torch.randn(2, 3, 64, 72)
    sizes = schedule([1.0, 1.4], (64, 72))
    out = cameras.CAMERAS(model, layer="blocks.0.norm1", resolutions=[1.0, 1.4])(x, TARGETS, contrast=_rivals_tensor())
    for b, (c, rivals) in enumerate(zip(TARGETS, RIVALS)):
        wrapped = Difference(model, c, rivals, 1.0)
        ref, _, _ = reference_cameras(
            wrapped, model.blocks[0].norm1, x[b : b + 1], sizes, torch.tensor([c]), reshape=to_grid
        )
        assert (out.saliency[b] - ref[0]).abs().max().item() <= 1e-4  # the token tests' tolerance
    _nonzero(out.saliency)


@pytest.mark.parametrize("method", ["gradcam++", "layercam"])
def test_multiscale_equals_the_wrapped_model(method: str) -> None:
    model, x = _inputs(2)
    sizes = schedule([1.0, 1.7], (24, 28))
    out = M.MultiScale(M.get(method))(model, layer="features", resolutions=[1.0, 1.7])(
        x, TARGETS, contrast=_rivals_tensor(), gamma=0.8
    )
    for b, (c, rivals) in enumerate(zip(TARGETS, RIVALS)):
        ref, _, _ = reference_multiscale(
            method, Difference(model, c, rivals, 0.8), model.features, x[b : b + 1], sizes, [c]
        )
        assert (out.saliency[b] - ref[0]).abs().max().item() <= TOL
    _nonzero(out.saliency)


@pytest.mark.parametrize("method", PIXEL_METHODS)
def test_pixel_methods_equal_the_wrapped_model(method: str) -> None:
    model, x = _inputs(3)
    kwargs = {"n_steps": 6} if method == "integrated_gradients" else {"n_samples": 3} if method == "smoothgrad" else {}
    out = M.get(method)(model, **kwargs)(x, TARGETS, contrast=_rivals_tensor(), gamma=1.3)
    for b, (c, rivals) in enumerate(zip(TARGETS, RIVALS)):
        wrapped = Difference(model, c, rivals, 1.3)
        # The plain map of the wrapped model (on the whole batch, so that SmoothGrad draws the same noise for image
        # b; only row b is the image the wrapped model stands for).
        ref = M.get(method)(wrapped, **kwargs)(x, c)
        assert (out.saliency[b] - ref.saliency[b]).abs().max().item() <= TOL
    assert out.contrast.tolist() == [[5, 5], [1, 2]]


def test_vanilla_gradient_matches_autograd_of_the_difference() -> None:
    """Independent of Captum: |∂(y_c − γ·mean y_d)/∂x| maxed over colour channels, min–max normalised."""
    model, x = _inputs(4)
    out = M.Gradient(model)(x, TARGETS, contrast=_rivals_tensor(), gamma=0.5)
    for b, (c, rivals) in enumerate(zip(TARGETS, RIVALS)):
        xb = x[b : b + 1].clone().requires_grad_(True)
        logits = model(xb)[0]
        score = logits[c] - 0.5 * torch.stack([logits[d] for d in rivals]).mean()
        (g,) = torch.autograd.grad(score, xb)
        assert (out.saliency[b] - minmax(g[0].abs().amax(dim=0))).abs().max().item() <= TOL


@pytest.mark.parametrize("method", ["cameras", "gradcam", "gradcam++", "ms-hirescam", "gradient", "cam", "scorecam"])
def test_gamma_zero_is_the_plain_map(method: str) -> None:
    model, x = _inputs(12)
    kwargs = {"resolutions": [1.0, 1.4]} if method in ("cameras", "ms-hirescam") else {}
    kwargs.update({"progress": False} if method == "scorecam" else {})
    explainer = M.get(method)(model, layer="features", **kwargs)
    plain = explainer(x, TARGETS)
    zero = explainer(x, TARGETS, contrast=[5, 1], gamma=0.0)
    assert (plain.saliency - zero.saliency).abs().max().item() <= 1e-6
    _nonzero(plain.saliency)
    assert zero.contrast.tolist() == [[5], [1]] and zero.gamma == 0.0
    assert plain.contrast.numel() == 0 and plain.gamma is None
    strong = explainer(x, TARGETS, contrast=[5, 1], gamma=1.0)
    assert (plain.saliency - strong.saliency).abs().max().item() > 1e-3  # the contrast does change the map


# -- "auto", multi-class calls and CAMERAS's keep rule ----------------------------------------------------------


def test_auto_takes_the_most_probable_other_classes() -> None:
    model, x = _inputs(6)
    with torch.no_grad():
        order = model(x).argsort(dim=1, descending=True)
    explainer = M.GradCAM(model, layer="features")
    top = explainer(x, contrast="auto", contrast_k=2)  # target: top-1, rivals: top-2 and top-3
    assert top.targets.tolist() == order[:, 0].tolist()
    assert top.contrast.tolist() == order[:, 1:3].tolist()
    given = explainer(x, order[:, 1], contrast="auto")  # target: top-2, rival: top-1
    assert given.contrast.tolist() == order[:, :1].tolist()
    same = explainer(x, order[:, 1], contrast=order[:, :1])
    assert torch.equal(given.saliency, same.saliency)


@pytest.mark.parametrize("method", ["cameras", "gradcam", "gradient", "cam", "scorecam"])
def test_multi_class_calls(method: str) -> None:
    """(B, K) targets: a (B, M) contrast is shared by the K targets, a (B, K, M) one is per target; each class's
    map equals the single-class call; top_k=2 with "auto" explains the top-2 classes each against the other."""
    model, x = _inputs(7)
    kwargs = {"resolutions": [1.0, 1.5]} if method == "cameras" else {"progress": False} if method == "scorecam" else {}
    explainer = M.get(method)(model, layer="features", **kwargs)
    targets = torch.tensor([[3, 4], [7, 0]])
    shared = explainer(x, targets, contrast=torch.tensor([[5], [1]]))
    per = explainer(x, targets, contrast=torch.tensor([[[5], [6]], [[1], [2]]]))
    assert shared.saliency.shape == (2, 2, 24, 28) and shared.contrast.shape == (2, 2, 1)
    assert per.contrast.tolist() == [[[5], [6]], [[1], [2]]]
    for k in range(2):
        single = explainer(x, targets[:, k], contrast=[5, 1])
        assert (shared.saliency[:, k] - single.saliency).abs().max().item() <= 1e-6
        assert single.contrast.tolist() == [[5], [1]]
    assert (per.saliency[:, 1] - explainer(x, targets[:, 1], contrast=[6, 2]).saliency).abs().max().item() <= 1e-6
    with torch.no_grad():
        order = model(x).argsort(dim=1, descending=True)
    both = explainer(x, top_k=2, contrast="auto")
    assert both.targets.tolist() == order[:, :2].tolist()
    assert both.contrast[:, :, 0].tolist() == order[:, [1, 0]].tolist()  # each against the other
    manual = explainer(x, order[:, :2], contrast=order[:, [1, 0]].unsqueeze(2))
    assert (both.saliency - manual.saliency).abs().max().item() <= 1e-6


def test_cameras_without_target_keeps_the_papers_rule() -> None:
    """With no target, the class is the base scale's top-1 and a scale enters only when its own top-1 agrees, as for
    the plain map; the map is the wrapped model's averaged over exactly those scales."""
    torch.manual_seed(3)
    model = SizeSensitive()
    x = torch.randn(2, 3, 16, 16)
    factors = [1.0, 2.0, 3.3, 5.0]
    sizes = schedule(factors, (16, 16))
    explainer = cameras.CAMERAS(model, layer="features", resolutions=factors)
    plain = explainer(x)
    out = explainer(x, contrast="auto")
    assert torch.equal(out.kept, plain.kept) and torch.equal(out.targets, plain.targets)
    assert not bool(out.kept.all())  # the model does drop scales, so the rule is exercised
    for b in range(2):
        c = int(out.targets[b])
        assert out.contrast[b].tolist() == [1 - c]  # two classes: the rival is the other one
        kept_sizes = [s for s, keep in zip(sizes, out.kept[b].tolist()) if keep]
        wrapped = Difference(model, c, [1 - c], 1.0)
        ref, _, _ = reference_cameras(wrapped, model.features, x[b : b + 1], kept_sizes, torch.tensor([c]))
        assert (out.saliency[b] - ref[0]).abs().max().item() <= TOL


def test_groups_and_passes_slice_the_contrast() -> None:
    """max_batch (groups of images) and memory_budget (passes per scale) hand each image its own rivals."""
    model, x = _inputs(8)
    x = torch.cat([x, x.flip(-1)])
    rivals = torch.tensor([[5], [1], [0], [9]])
    whole = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 1.5], max_batch=4)
    split = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 1.5], max_batch=1, memory_budget=1)
    a, b = whole(x, [3, 7, 2, 4], contrast=rivals), split(x, [3, 7, 2, 4], contrast=rivals)
    assert (a.saliency - b.saliency).abs().max().item() <= 1e-5
    assert a.contrast.tolist() == b.contrast.tolist() == rivals.tolist()


# -- CAM and Score-CAM ---------------------------------------------------------------------------------------------


def test_cam_uses_the_weight_difference_and_equals_contrastive_gradcam() -> None:
    model, x = _inputs(4)
    out = M.CAM(model, layer="features")(x, TARGETS, contrast=_rivals_tensor(), gamma=0.7)
    w = model.head.weight.detach()
    with torch.no_grad():
        acts = model.features(model.body(model.stem(x)))
    for b, (c, rivals) in enumerate(zip(TARGETS, RIVALS)):
        weights = w[c] - 0.7 * torch.stack([w[d] for d in rivals]).mean(dim=0)
        low = torch.relu(torch.einsum("c,chw->hw", weights, acts[b]))
        ref = minmax(F.interpolate(low[None, None], size=(24, 28), mode="bilinear", align_corners=False)[0, 0])
        assert (out.saliency[b] - ref).abs().max().item() <= TOL
    _nonzero(out.saliency)
    gradcam = M.GradCAM(model, layer="features")(x, TARGETS, contrast=_rivals_tensor(), gamma=0.7)
    assert (out.saliency - gradcam.saliency).abs().max().item() <= TOL


def test_scorecam_uses_the_probability_difference() -> None:
    model, x = _inputs(10)
    out = M.ScoreCAM(model, layer="features", progress=False, batch_size=5)(x, TARGETS, contrast=_rivals_tensor())
    with torch.no_grad():
        acts = model.features(model.body(model.stem(x)))
        for b, (c, rivals) in enumerate(zip(TARGETS, RIVALS)):
            low = torch.zeros(acts.shape[-2:])
            for k in range(acts.shape[1]):
                mask = F.interpolate(acts[b, k][None, None], size=(24, 28), mode="bilinear", align_corners=False)[0, 0]
                mask = minmax(mask)
                p = model(x[b : b + 1] * mask).softmax(dim=1)[0]
                weight = p[c] - torch.stack([p[d] for d in rivals]).mean()
                low += weight * acts[b, k]
            ref = minmax(F.interpolate(torch.relu(low)[None, None], size=(24, 28), mode="bilinear")[0, 0])
            assert (out.saliency[b] - ref).abs().max().item() <= TOL


# -- bad input -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["cameras", "gradcam", "gradient", "cam", "scorecam"])
def test_bad_contrast_is_a_clear_error(method: str) -> None:
    model, x = _inputs(11)
    kwargs = {"resolutions": [1.0]} if method == "cameras" else {"progress": False} if method == "scorecam" else {}
    explainer = M.get(method)(model, layer="features", **kwargs)
    with pytest.raises(ValueError, match="contrast class 3 equals the target"):
        explainer(x, [3, 7], contrast=[3, 1])
    with torch.no_grad():
        top1 = int(model(x[:1]).argmax())
    with pytest.raises(ValueError, match="equals the target"):  # found once the model chose its top-1
        explainer(x[:1], contrast=top1)
    with pytest.raises(ValueError, match=r"contrast class 10 is out of range .* 10 classes"):
        explainer(x, [3, 7], contrast=[10, 1])
    with pytest.raises(ValueError, match="contrast classes for 3 images but the batch has 2"):
        explainer(x, [3, 7], contrast=[1, 2, 4])
    with pytest.raises(ValueError, match="contrast classes must be non-negative"):
        explainer(x, [3, 7], contrast=-1)
    with pytest.raises(ValueError, match="gamma must be finite"):
        explainer(x, [3, 7], contrast=[1, 2], gamma=float("nan"))
    with pytest.raises(ValueError, match="gamma must be finite"):
        explainer(x, [3, 7], contrast=[1, 2], gamma=float("inf"))
    with pytest.raises(TypeError, match="gamma must be a real number"):
        explainer(x, [3, 7], contrast=[1, 2], gamma="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="contrast must be an integer tensor"):
        explainer(x, [3, 7], contrast=torch.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="not a bool"):
        explainer(x, [3, 7], contrast=True)
    with pytest.raises(ValueError, match="'auto'"):
        explainer(x, [3, 7], contrast="other")
    with pytest.raises(ValueError, match="contrast_k=10 needs more classes"):
        explainer(x, [3, 7], contrast="auto", contrast_k=10)
    with pytest.raises(ValueError, match="contrast_k must be ≥ 1"):
        explainer(x, [3, 7], contrast="auto", contrast_k=0)
    with pytest.raises(ValueError, match="contrast_k applies to contrast='auto'"):
        explainer(x, [3, 7], contrast=[1, 2], contrast_k=2)
    with pytest.raises(ValueError, match="give contrast= as well"):
        explainer(x, [3, 7], gamma=0.5)
    with pytest.raises(ValueError, match="rivals for 3 classes per image, but 2"):
        explainer(x, torch.tensor([[3, 4], [7, 0]]), contrast=torch.ones(2, 3, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="no classes"):
        explainer(x, [3, 7], contrast=torch.empty(2, 0, dtype=torch.long))


def test_a_method_without_contrast_support_says_so() -> None:
    class Plain(M.Explainer):
        name = "plain"
        needs_layer = False

        def explain(self, images: Tensor, targets: Tensor | None, **kwargs: object) -> cameras.Result:
            raise AssertionError("not reached")

    model, x = _inputs(12)
    with pytest.raises(ValueError, match="contrast does not apply to the method 'plain'"):
        Plain(model)(x, 1, contrast=2)
