r"""Single-scale class activation maps on the engine's layer tap: CAM, Grad-CAM, Grad-CAM++, HiResCAM, LayerCAM,
XGrad-CAM.

Pipeline (every method): one forward pass through :class:`~cameras.engine.tap.LayerTap` at the input's own size
(layers below the tap run without autograd), the gradient of the target class *logit* back to the layer only, the
method's rule at the layer's resolution (B, K, C, h, w) → (B, K, h, w), ReLU, bilinear upsampling
(``align_corners=False``) to the input size, per-map min–max normalisation to [0, 1].

With ``contrast=`` (see :class:`~cameras.methods.base.Explainer`) the gradient is that of the contrastive score
:math:`y_c - \gamma\,\mathrm{mean}_j\,y_{d_j}` (Finer-CAM's, Zhang et al., CVPR 2025) and the rule is unchanged:
the map equals the plain map of a model whose logit :math:`c` is that difference. CAM, which has no gradient, uses
the same difference of its linear weights, :math:`W_c - \gamma\,\mathrm{mean}_j W_{d_j}`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..engine.accumulate import Recording, record_scales
from ..engine.contrast import Contrast
from ..engine.layout import Reshape
from ..engine.normalize import minmax_normalize
from ..engine.result import Result
from ..engine.state import ModelState
from ..engine.tap import LayerTap, resolve_layer
from .base import Explainer, Targets
from .cam_rules import gradcam_rule, gradcampp_rule, hirescam_rule, layercam_rule, xgradcam_rule

__all__ = [
    "CAM",
    "GradCAM",
    "GradCAMPlusPlus",
    "GradientCAM",
    "HiResCAM",
    "LayerCAM",
    "ModelState",
    "TopKExplainer",
    "XGradCAM",
    "upsample_maps",
]


def upsample_maps(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear (``align_corners=False``) resize of (B, K, h, w) maps to ``size``; identity when already that size."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


class TopKExplainer(Explainer):
    """An :class:`Explainer` whose call also accepts ``top_k`` (explain the model's top-k classes), like CAMERAS.

    Call: ``explainer(images, targets=None, top_k=1)``; with ``top_k > 1`` the maps are (B, k, H, W).
    """

    def __call__(self, images: Tensor, targets: Targets = None, top_k: int = 1, **kwargs: Any) -> Result:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive int, got {top_k!r}.")
        if top_k > 1 and targets is not None:
            raise ValueError("Give either targets or top_k > 1, not both.")
        result = super().__call__(images, targets, top_k=top_k, **kwargs)
        if targets is None and top_k == 1 and result.targets.dim() == 2:
            result = result.select(0)
        return result


def _single_scale_result(
    low: Tensor, recording: Recording, out_size: tuple[int, int], upsample: bool, method: str
) -> Result:
    """ReLU'd (B, K, h, w) maps at the layer's resolution → a :class:`Result` (upsampled unless told not to)."""
    return Result.from_recording(upsample_maps(low, out_size) if upsample else low, recording, method)


class GradientCAM(TopKExplainer):
    r"""Base class of the gradient-weighted CAMs: a subclass only defines :meth:`rule` (see :mod:`.cam_rules`).

    Args:
        model: classifier returning logits (B, num_classes); any device and floating dtype.
        layer: dotted name (``"layer4"``) or module; ``None`` uses ``model.cameras_default_layer``.
        reshape: the layer output's layout: ``None`` (the model's default; (B, C, h, w) maps and ViT tokens),
            ``"nchw"``, ``"tokens"``, ``"nhwc"``, a :class:`~cameras.engine.layout.TokenLayout` or a callable
            ``(output, input_size) -> (B, C, h, w)`` (see :class:`~cameras.methods.base.Explainer`).

    Call:
        ``explainer(images, targets=None, top_k=1, upsample=True, *, contrast=None, gamma=1.0, contrast_k=1)``

        * images: (B, 3, H, W) normalised for the model.
        * targets: ``None`` (top-1), an int, B ints, a (B,) LongTensor, or a (B, K) LongTensor.
        * top_k: with ``targets=None``, explain the k most probable classes ((B, k, H, W) maps).
        * upsample: ``False`` returns the maps at the layer's resolution (B, h, w), min–max normalised there
          (used to cross-check against other libraries before any resizing).
        * contrast, gamma, contrast_k: explain :math:`y_c - \gamma\,\mathrm{mean}_j\,y_{d_j}` (rival classes
          :math:`d_j`; see :class:`~cameras.methods.base.Explainer`).

    Returns:
        :class:`~cameras.engine.result.Result`: ``saliency`` (B, H, W) in [0, 1], ``targets`` (B,),
        ``probabilities`` (B,), ``raw`` (the ReLU'd map before normalisation), ``kept`` all True.
    """

    label: ClassVar[str] = ""
    """Human-readable name for figure titles (e.g. ``"Grad-CAM++"``)."""
    supports_contrast = True

    @staticmethod
    def rule(a: Tensor, g: Tensor, cell_area: float = 1.0) -> Tensor:
        """(B, K|1, C, h, w) activations × (B, K, C, h, w) gradients → (B, K, h, w) map before the ReLU."""
        raise NotImplementedError

    def explain(
        self,
        images: Tensor,
        targets: Tensor | None,
        top_k: int = 1,
        upsample: bool = True,
        contrast: Contrast | None = None,
        **kwargs: Any,
    ) -> Result:
        if kwargs:
            raise TypeError(f"Unexpected arguments for {type(self).__name__}: {', '.join(kwargs)}.")
        assert self.layer_name is not None
        out_size = (int(images.shape[-2]), int(images.shape[-1]))
        recording = record_scales(
            self.model,
            self.layer_name,
            images,
            [out_size],
            targets,
            top_k=top_k,
            contrast=contrast,
            reshape=self.reshape,
        )
        scale = recording.scales[0]
        low = torch.relu(self.rule(scale.activations.unsqueeze(1), scale.gradients))
        return _single_scale_result(low, recording, out_size, upsample, self.name)


class GradCAM(GradientCAM):
    r"""Grad-CAM (Selvaraju et al., ICCV 2017).

    .. math::
        M = \mathrm{ReLU}\Big(\sum_c w_c A_c\Big), \quad
        w_c = \frac{1}{hw}\sum_{ij} \frac{\partial y_c}{\partial A_{c,ij}}

    with :math:`y_c` the target class logit; upsampled bilinearly to the input and min–max normalised. Identical to
    Captum's ``LayerGradCam`` (``relu_attributions=True``) followed by the same upsampling and normalisation, and to
    pytorch-grad-cam's ``GradCAM`` at the layer's resolution.

    Example:
        >>> import torch, torchvision, cameras
        >>> net = torchvision.models.resnet18().eval()
        >>> out = cameras.GradCAM(net, layer="layer4")(torch.randn(2, 3, 64, 64), targets=[3, 5])
        >>> out.saliency.shape, out.targets.tolist()
        (torch.Size([2, 64, 64]), [3, 5])
    """

    name = "gradcam"
    label = "Grad-CAM"

    @staticmethod
    def rule(a: Tensor, g: Tensor, cell_area: float = 1.0) -> Tensor:
        return gradcam_rule(a, g, cell_area)


class GradCAMPlusPlus(GradientCAM):
    r"""Grad-CAM++ (Chattopadhay et al., WACV 2018) in the closed form for an exponential class score.

    .. math:: \alpha_{c,ij} = \frac{G_{c,ij}^2}{2G_{c,ij}^2 + \sum_{ab}A_{c,ab}\,G_{c,ij}^3},\quad
        w_c = \sum_{ij}\alpha_{c,ij}\,\mathrm{ReLU}(G_{c,ij}),\quad M = \mathrm{ReLU}\Big(\sum_c w_c A_c\Big)

    where :math:`G = \partial y_c / \partial A` (the paper's Eq. 19 with :math:`S_c = \exp(y_c)`), as pytorch-grad-cam
    does (which adds ``1e-6`` to the denominator; the division here is exact and 0/0 gives α = 0).

    Example:
        >>> import torch, torchvision, cameras
        >>> net = torchvision.models.resnet18().eval()
        >>> cameras.GradCAMPlusPlus(net, layer="layer4")(torch.randn(1, 3, 64, 64)).saliency.shape
        torch.Size([1, 64, 64])
    """

    name = "gradcam++"
    label = "Grad-CAM++"

    @staticmethod
    def rule(a: Tensor, g: Tensor, cell_area: float = 1.0) -> Tensor:
        return gradcampp_rule(a, g, cell_area)


class HiResCAM(GradientCAM):
    r"""HiResCAM (Draelos & Carin, 2020): :math:`M = \mathrm{ReLU}(\sum_c G_c \odot A_c)`, the element-wise product of
    gradients and activations (CAMERAS with a single scale evaluated at the layer's resolution).

    Example:
        >>> import torch, torchvision, cameras
        >>> net = torchvision.models.resnet18().eval()
        >>> cameras.HiResCAM(net, layer="layer4")(torch.randn(1, 3, 64, 64)).saliency.shape
        torch.Size([1, 64, 64])
    """

    name = "hirescam"
    label = "HiResCAM"

    @staticmethod
    def rule(a: Tensor, g: Tensor, cell_area: float = 1.0) -> Tensor:
        return hirescam_rule(a, g, cell_area)


class LayerCAM(GradientCAM):
    r"""LayerCAM (Jiang et al., IEEE TIP 2021): :math:`M = \mathrm{ReLU}(\sum_c \mathrm{ReLU}(G_c) \odot A_c)`.

    Example:
        >>> import torch, torchvision, cameras
        >>> net = torchvision.models.resnet18().eval()
        >>> cameras.LayerCAM(net, layer="layer3")(torch.randn(1, 3, 64, 64)).saliency.shape
        torch.Size([1, 64, 64])
    """

    name = "layercam"
    label = "LayerCAM"

    @staticmethod
    def rule(a: Tensor, g: Tensor, cell_area: float = 1.0) -> Tensor:
        return layercam_rule(a, g, cell_area)


class XGradCAM(GradientCAM):
    r"""XGrad-CAM (Fu et al., BMVC 2020): :math:`w_c = \sum_{ij} \frac{A_{c,ij}}{\sum_{ab}A_{c,ab}} G_{c,ij}`,
    :math:`M = \mathrm{ReLU}(\sum_c w_c A_c)` (weight 0 for a channel whose activations sum to 0; pytorch-grad-cam adds
    ``1e-7`` to that sum instead).

    Example:
        >>> import torch, torchvision, cameras
        >>> net = torchvision.models.resnet18().eval()
        >>> cameras.XGradCAM(net, layer="layer4")(torch.randn(1, 3, 64, 64)).saliency.shape
        torch.Size([1, 64, 64])
    """

    name = "xgradcam"
    label = "XGrad-CAM"

    @staticmethod
    def rule(a: Tensor, g: Tensor, cell_area: float = 1.0) -> Tensor:
        return xgradcam_rule(a, g, cell_area)


def _resolve_linear(model: nn.Module, fc: str | nn.Module | None) -> nn.Linear:
    if fc is None:
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ValueError(
                "CAM needs a model whose head is global average pooling + nn.Linear, but the model has no nn.Linear. "
                "Use GradCAM, which equals CAM on such heads and works on any head."
            )
        return linears[-1]
    _, module = resolve_layer(model, fc)
    if not isinstance(module, nn.Linear):
        raise TypeError(f"fc must name an nn.Linear layer, got {type(module).__name__}.")
    return module


class CAM(TopKExplainer):
    r"""Class activation mapping (Zhou et al., CVPR 2016) for models ending in global average pooling + linear.

    .. math:: M = \mathrm{ReLU}\Big(\sum_c W_{y,c} A_c\Big)

    with :math:`W` the final linear layer's weight and :math:`y` the target class; no gradients are computed
    (activations only). The ReLU (which Zhou et al. do not apply) keeps the positive evidence, as in every other CAM
    here; then bilinear upsampling and min–max normalisation. On a GAP + linear head
    :math:`\partial y/\partial A_{c,ij} = W_{y,c}/(hw)`, so CAM equals Grad-CAM up to the normalisation.

    The head is checked on every call: the logits must equal ``fc(mean_hw(A))`` (to float tolerance), otherwise a
    ``ValueError`` explains that the head is not GAP + linear.

    Contrastive CAM (``contrast=``, see :class:`~cameras.methods.base.Explainer`): the weights are
    :math:`W_{y,c} - \gamma\,\mathrm{mean}_j W_{d_j,c}`, the linear head's weights of the score
    :math:`y - \gamma\,\mathrm{mean}_j\,y_{d_j}` (the biases only shift it by a constant); on a GAP + linear head
    this equals contrastive Grad-CAM up to the normalisation, as the plain maps do.

    Args:
        model: classifier returning logits (B, num_classes).
        layer: the layer whose output is globally average-pooled into ``fc`` (e.g. ``"layer4"`` for ResNets).
        fc: the final ``nn.Linear`` (dotted name or module); ``None`` takes the model's last ``nn.Linear``.
        reshape: the layer output's layout (as for :class:`GradCAM`). On a Swin (timm), whose final ``norm`` is
            average-pooled into the linear head, CAM is exact; on a ViT's tokens the head reads the class token, and
            CAM's head check says so.

    Example:
        >>> import torch, torchvision, cameras
        >>> net = torchvision.models.resnet18().eval()
        >>> cameras.CAM(net, layer="layer4")(torch.randn(1, 3, 64, 64)).saliency.shape
        torch.Size([1, 64, 64])
    """

    name = "cam"
    label = "CAM"
    supports_contrast = True

    def __init__(
        self,
        model: nn.Module,
        layer: str | nn.Module | None = None,
        fc: str | nn.Module | None = None,
        *,
        reshape: Reshape = None,
    ) -> None:
        super().__init__(model, layer, reshape=reshape)
        self.fc = _resolve_linear(model, fc)

    def explain(
        self,
        images: Tensor,
        targets: Tensor | None,
        top_k: int = 1,
        upsample: bool = True,
        contrast: Contrast | None = None,
        **kwargs: Any,
    ) -> Result:
        if kwargs:
            raise TypeError(f"Unexpected arguments for CAM: {', '.join(kwargs)}.")
        assert self.layer_name is not None
        out_size = (int(images.shape[-2]), int(images.shape[-1]))
        with LayerTap(self.model, self.layer_name, reshape=self.reshape) as tap, torch.no_grad():
            out = tap.forward(images, grad=False)
            logits = out.logits.float()
            acts = out.activations.float()
            weight = self.fc.weight.detach().float()
            bias = self.fc.bias.detach().float() if self.fc.bias is not None else None
        num_classes = logits.shape[1]
        if weight.shape[1] != acts.shape[1] or weight.shape[0] != num_classes:
            raise ValueError(
                f"CAM needs the layer's channels to feed the final linear layer directly: layer {self.layer_name!r} "
                f"has {acts.shape[1]} channels and the model {num_classes} classes, but the linear layer maps "
                f"{weight.shape[1]} → {weight.shape[0]}. Tap the layer right before global pooling, pass fc=, or use "
                "GradCAM."
            )
        pooled = F.linear(acts.mean(dim=(2, 3)), weight, bias)
        tol = 1e-3 * max(1.0, float(logits.abs().max()))
        gap = float((pooled - logits).abs().max())
        if gap > tol:
            raise ValueError(
                f"CAM needs a global-average-pooling + linear head after layer {self.layer_name!r}, but the logits "
                f"differ from fc(mean(A)) by {gap:.3g}. Use GradCAM (which equals CAM on GAP + linear heads)."
            )
        if targets is None:
            if top_k > num_classes:
                raise ValueError(f"top_k={top_k} exceeds the model's {num_classes} classes.")
            targets = logits.topk(top_k, dim=1).indices
        elif bool((targets >= num_classes).any()):
            bad = int(targets[targets >= num_classes][0])
            raise ValueError(
                f"Target class {bad} is out of range for a model with {num_classes} classes "
                f"(valid: 0..{num_classes - 1})."
            )
        class_weights = weight[targets]  # (B, K, C)
        rivals: Tensor | None = None
        if contrast is not None:
            rivals = contrast.resolve(logits, targets)  # (B, K, M)
            class_weights = class_weights - contrast.gamma * weight[rivals].mean(dim=2)
        low = torch.relu(torch.einsum("bkc,bchw->bkhw", class_weights, acts))
        batch, k = targets.shape
        raw = upsample_maps(low, out_size) if upsample else low
        return Result(
            saliency=minmax_normalize(raw),
            targets=targets,
            probabilities=logits.softmax(dim=1).gather(1, targets),
            raw=raw,
            kept=torch.ones(batch, k, 1, dtype=torch.bool, device=targets.device),
            resolutions=[out_size],
            scale_top1=logits.argmax(dim=1, keepdim=True),
            method=self.name,
            contrast=torch.empty(0, dtype=torch.long) if rivals is None else rivals,
            gamma=None if contrast is None else contrast.gamma,
        )
