"""Multi-scale fusion for any gradient-based CAM rule (beyond the CAMERAS paper).

``MultiScale(GradCAMPlusPlus)`` is a method class that runs Grad-CAM++'s rule on the CAMERAS multi-scale averages
instead of a single forward pass. CAMERAS itself (:class:`cameras.CAMERAS`) is unchanged: it keeps the paper's exact
fusion; ``MultiScale(HiResCAM)`` computes the same maps, because HiResCAM's rule *is* the CAMERAS fusion term.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..engine.accumulate import record_scales
from ..engine.contrast import Contrast
from ..engine.fusion import GENERIC_IMPLS, fuse
from ..engine.layout import Reshape
from ..engine.result import Result
from ..engine.scales import Resolutions, schedule
from .base import explain_in_groups
from .cam import GradientCAM, TopKExplainer

__all__ = ["MultiScale", "MultiScaleCAM"]

_UNSET: Any = object()


class MultiScaleCAM(TopKExplainer):
    r"""A gradient-CAM rule evaluated on the CAMERAS multi-scale averages (base class; build one with
    :func:`MultiScale`).

    Definition. As in CAMERAS (Jalwana et al., CVPR 2021), the input (H×W) is run at every scale :math:`s` of the
    schedule (bicubic resizes); the layer's activations :math:`A_s` and the gradients :math:`G_s` of the target logit
    are upsampled bilinearly (``align_corners=False``) to H×W and averaged over the kept scales:
    :math:`\bar A = \mathrm{mean}_s\,\mathrm{up}(A_s)`, :math:`\bar G = \mathrm{mean}_s\,\mathrm{up}(G_s)` (same
    keep rule as CAMERAS: with no target, a scale enters only if its own top-k contains the class). The base method's
    rule is then applied to :math:`(\bar A, \bar G)` on the H×W grid, channel chunk by channel chunk through
    :func:`cameras.engine.fuse`:

    * Grad-CAM: :math:`\sum_c \mathrm{mean}_{HW}(\bar G_c)\,\bar A_c`;
    * Grad-CAM++: the closed-form α with :math:`\bar A, \bar G`, where :math:`\sum_{ab} A_{c,ab}` is the sum over the
      base scale's layer grid (:math:`h_0 w_0` cells), estimated as :math:`\frac{h_0 w_0}{HW}\sum_{H\times W}\bar A_c`
      so that α keeps the magnitude it has at one scale;
    * HiResCAM: :math:`\sum_c \bar G_c \odot \bar A_c` — exactly CAMERAS;
    * LayerCAM: :math:`\sum_c \mathrm{ReLU}(\bar G_c) \odot \bar A_c`;
    * XGrad-CAM: :math:`w_c = \sum_{H\times W} \bar A_c \bar G_c / \sum_{H\times W} \bar A_c`;

    followed by ReLU and min–max normalisation. Every rule is a sum of per-channel terms, so chunking over channels is
    exact and memory stays bounded by ``chunk_size``.

    Args:
        model: classifier returning logits (B, num_classes).
        layer: dotted name or module; ``None`` uses ``model.cameras_default_layer``.
        resolutions: the schedule (as for :class:`cameras.CAMERAS`: ints are shorter sides, aspect kept; default:
            the one given to :func:`MultiScale`, else the paper's factors).
        square: every scale a square (as for :class:`cameras.CAMERAS`).
        chunk_size: channels upsampled at once (default ≈16 MB buffers).
        fusion: fusion path for the rule, one of :data:`cameras.engine.fusion.GENERIC_IMPLS`: ``"auto"`` (default:
            ``"matmul"`` on the CPU, ``"interpolate"`` on CUDA, the faster of the two measured on each, see
            :mod:`cameras.engine.fusion`), ``"matmul"`` (resize-matrix products) or ``"interpolate"`` (the literal
            definition, ``F.interpolate`` per scale). They agree within float rounding. (The faster ``"tiles"`` and
            ``"gram"`` paths exist for the CAMERAS rule only, i.e. :class:`cameras.CAMERAS`.)
        max_batch: largest number of images explained at once; ``None`` (default): as for
            :class:`cameras.CAMERAS` (on the CPU, groups whose largest scale fits
            :data:`~cameras.methods.base.CPU_PIXELS_PER_PASS` pixels; the whole batch elsewhere). Results do not
            depend on it.
        progress: progress bar over scales.
        reshape: the layer output's layout (as for :class:`~cameras.methods.cam.GradCAM`).

    Call: ``explainer(images, targets=None, top_k=1, *, contrast=None, gamma=1.0, contrast_k=1)`` →
    :class:`~cameras.engine.result.Result` as CAMERAS returns; with ``contrast`` the gradients are those of
    :math:`y_c - \gamma\,\mathrm{mean}_j\,y_{d_j}` at every scale, and the keep rule is CAMERAS's (see
    :class:`cameras.CAMERAS`).
    """

    base: ClassVar[type[GradientCAM]]
    supports_contrast = True
    default_resolutions: ClassVar[Resolutions] = None
    label: ClassVar[str] = ""

    def __init__(
        self,
        model: nn.Module,
        layer: str | nn.Module | None = None,
        resolutions: Resolutions = _UNSET,
        *,
        square: bool = False,
        chunk_size: int | None = None,
        fusion: str = "auto",
        max_batch: int | None = None,
        progress: bool = False,
        reshape: Reshape = None,
    ) -> None:
        if not hasattr(type(self), "base"):
            raise TypeError(
                "Build a multi-scale method with cameras.MultiScale(<CAM class>), e.g. MultiScale(GradCAM)."
            )
        super().__init__(model, layer, reshape=reshape)
        self.resolutions = self.default_resolutions if resolutions is _UNSET else resolutions
        self.square = bool(square)
        schedule(self.resolutions, (224, 224), square=self.square)  # validate early
        if chunk_size is not None and (
            isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
        ):
            raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}.")
        if max_batch is not None and (isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1):
            raise ValueError(f"max_batch must be a positive int or None, got {max_batch!r}.")
        if fusion not in GENERIC_IMPLS:
            raise ValueError(f"fusion must be one of {', '.join(map(repr, GENERIC_IMPLS))}, got {fusion!r}.")
        self.chunk_size = chunk_size
        self.fusion = fusion
        self.max_batch = max_batch
        self.progress = progress

    def explain(
        self,
        images: Tensor,
        targets: Tensor | None,
        top_k: int = 1,
        contrast: Contrast | None = None,
        **kwargs: Any,
    ) -> Result:
        if kwargs:
            raise TypeError(f"Unexpected arguments for {type(self).__name__}: {', '.join(kwargs)}.")
        batch = functools.partial(self._explain_batch, top_k=top_k)
        return explain_in_groups(images, targets, self.resolutions, self.max_batch, batch, contrast, self.square)

    def _explain_batch(
        self,
        images: Tensor,
        targets: Tensor | None,
        sizes: list[tuple[int, int]],
        contrast: Contrast | None,
        top_k: int,
    ) -> Result:
        assert self.layer_name is not None
        out_size = (int(images.shape[-2]), int(images.shape[-1]))
        recording = record_scales(
            self.model,
            self.layer_name,
            images,
            sizes,
            targets,
            top_k=top_k,
            progress=self.progress,
            reshape=self.reshape,
            contrast=contrast,
        )
        h0, w0 = recording.scales[0].activations.shape[-2:]
        rule = functools.partial(self.base.rule, cell_area=h0 * w0 / (out_size[0] * out_size[1]))
        raw = torch.relu(fuse(recording, out_size, rule, chunk_size=self.chunk_size, impl=self.fusion))
        return Result.from_recording(raw, recording, self.name)


@functools.cache
def _multiscale_class(base: type[GradientCAM]) -> type[MultiScaleCAM]:
    cls = type(
        f"MultiScale{base.__name__}",
        (MultiScaleCAM,),
        {
            "base": base,
            "name": f"ms-{base.name}",
            "label": f"MS {base.label or base.__name__}",
            "__doc__": f"{base.__name__}'s rule on the CAMERAS multi-scale averages (see MultiScaleCAM).",
            "__module__": __name__,
        },
    )
    return cls


def MultiScale(method: type[GradientCAM], resolutions: Resolutions = None) -> type[MultiScaleCAM]:
    """A method class that runs ``method``'s rule with the CAMERAS multi-scale accumulation.

    Args:
        method: a gradient-based CAM class: :class:`~cameras.methods.cam.GradCAM`,
            :class:`~cameras.methods.cam.GradCAMPlusPlus`, :class:`~cameras.methods.cam.HiResCAM`,
            :class:`~cameras.methods.cam.LayerCAM`, :class:`~cameras.methods.cam.XGradCAM` (or any
            :class:`~cameras.methods.cam.GradientCAM` subclass whose rule is a sum of per-channel terms).
        resolutions: default schedule of the returned class (``None``: the paper's factors 1, 324/224, …, 924/224).

    Returns:
        A subclass of :class:`MultiScaleCAM`, used like any method: ``cls(model, layer=...)(images, targets)``. Its
        ``name`` is ``"ms-<method name>"`` (e.g. ``"ms-gradcam++"``, registered in :mod:`cameras.methods`).

    Raises:
        TypeError: ``method`` is not a gradient-based CAM class (CAM, Score-CAM and the pixel methods have no
            per-channel gradient rule).

    Example:
        >>> import torch, torchvision, cameras
        >>> net = torchvision.models.resnet18().eval()
        >>> ms = cameras.MultiScale(cameras.GradCAMPlusPlus, resolutions=[1.0, 1.5])
        >>> ms.name, ms(net, layer="layer4")(torch.randn(1, 3, 64, 64)).saliency.shape
        ('ms-gradcam++', torch.Size([1, 64, 64]))
    """
    if not (isinstance(method, type) and issubclass(method, GradientCAM)) or method is GradientCAM:
        raise TypeError(
            "MultiScale takes a gradient-based CAM class (GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM), "
            f"got {getattr(method, '__name__', repr(method))}."
        )
    cls = _multiscale_class(method)
    if resolutions is None:
        return cls
    schedule(resolutions, (224, 224))  # validate early
    return type(
        cls.__name__, (cls,), {"default_resolutions": resolutions, "__module__": __name__, "__doc__": cls.__doc__}
    )
