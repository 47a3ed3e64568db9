r"""Pixel-gradient baselines through Captum: vanilla gradient, Guided Backprop, Integrated Gradients, SmoothGrad.

Captum is an optional extra (``pip install 'cameras[captum]'``); it is imported when a method is constructed, and a
clear ``ImportError`` says how to install it when it is missing. These methods explain the input pixels, so they ignore
``layer`` (``needs_layer = False``). Each returns per-pixel maps reduced over the colour channels as stated in its
docstring, min–max normalised to [0, 1] like every other method.

Contrastive maps (``contrast=``, see :class:`~cameras.methods.base.Explainer`): Captum differentiates the score
:math:`y_c - \gamma\,\mathrm{mean}_j\,y_{d_j}` of a wrapped forward (:func:`cameras.engine.contrast.class_scores`)
instead of the logit :math:`y_c`; the rivals travel with Captum's ``additional_forward_args``, so Integrated
Gradients and SmoothGrad expand them with their interpolated or noisy copies.
"""

from __future__ import annotations

import abc
import warnings
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..engine.contrast import Contrast, class_scores
from ..engine.normalize import minmax_normalize
from ..engine.result import Result
from ..engine.tap import extract_logits
from .cam import ModelState, TopKExplainer

__all__ = [
    "Gradient",
    "GuidedBackprop",
    "IntegratedGradients",
    "PixelExplainer",
    "SmoothGrad",
    "captum_target",
    "import_captum",
]


def import_captum() -> Any:
    """Import ``captum.attr`` or raise an ``ImportError`` that says how to install it."""
    try:
        import captum.attr
    except ImportError as err:
        raise ImportError(
            "The pixel-gradient methods (gradient, guided_backprop, integrated_gradients, smoothgrad) use Captum, "
            "an optional dependency. Install it with: pip install 'cameras[captum]'  (or: pip install captum)"
        ) from err
    return captum.attr


class _Logits(nn.Module):
    """Wrap a model so that its output is always the (B, num_classes) logits tensor Captum expects; with
    ``target`` (B,) and ``rivals`` (B, M) the output is instead the (B, 1) contrastive score of each target."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, x: Tensor, target: Tensor | None = None, rivals: Tensor | None = None, gamma: float = 1.0
    ) -> Tensor:
        logits = extract_logits(self.model(x))
        if target is None or rivals is None:
            return logits
        return class_scores(logits, target.unsqueeze(1), rivals.unsqueeze(1), gamma)


def captum_target(target: Tensor, rivals: Tensor | None, gamma: float) -> dict[str, Any]:
    """Captum's ``target`` / ``additional_forward_args`` for the (B,) ``target`` classes, explained against the
    (B, M) ``rivals`` (through :class:`_Logits`' contrastive output, column 0) or plainly when ``rivals`` is None."""
    if rivals is None:
        return {"target": target}
    return {"target": 0, "additional_forward_args": (target, rivals, gamma)}


class PixelExplainer(TopKExplainer):
    r"""Base class of the Captum pixel methods: targets, probabilities, model state and normalisation.

    Subclasses implement :meth:`attribute` ((B, C, H, W) attributions for one class per image, optionally against
    rival classes) and :meth:`reduce` ((B, C, H, W) → (B, H, W), non-negative).

    The model runs in eval mode with its parameters frozen (no parameter gradients are computed); both are restored
    afterwards. Call: ``explainer(images, targets=None, top_k=1, *, contrast=None, gamma=1.0, contrast_k=1)`` →
    :class:`~cameras.engine.result.Result`; with ``contrast`` the gradients are those of
    :math:`y_c - \gamma\,\mathrm{mean}_j\,y_{d_j}` (the rivals chosen on the clean images' logits).
    """

    needs_layer = False
    supports_contrast = True
    label: ClassVar[str] = ""

    def __init__(self, model: nn.Module, layer: str | nn.Module | None = None) -> None:
        super().__init__(model, None)
        self._attr = import_captum()
        self._net = _Logits(model)

    @abc.abstractmethod
    def attribute(self, images: Tensor, target: Tensor, rivals: Tensor | None = None, gamma: float = 1.0) -> Tensor:
        """(B, C, H, W) attributions of class ``target`` (B,) w.r.t. the input pixels; with ``rivals`` (B, M) of
        the score ``y_target − gamma · mean(y_rivals)`` (pass :func:`captum_target`'s arguments to Captum)."""

    @abc.abstractmethod
    def reduce(self, attributions: Tensor) -> Tensor:
        """(B, C, H, W) → (B, H, W) non-negative map."""

    def explain(
        self, images: Tensor, targets: Tensor | None, top_k: int = 1, contrast: Contrast | None = None, **kwargs: Any
    ) -> Result:
        if kwargs:
            raise TypeError(f"Unexpected arguments for {type(self).__name__}: {', '.join(kwargs)}.")
        with ModelState(self.model):
            with torch.no_grad():
                logits = self._net(images).float()
            num_classes = logits.shape[1]
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
            rivals = None if contrast is None else contrast.resolve(logits, targets)  # (B, K, M)
            gamma = 1.0 if contrast is None else contrast.gamma
            maps = []
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", module=r"captum(\.|$)")
                for k in range(targets.shape[1]):
                    attr = self.attribute(
                        images.detach(), targets[:, k], None if rivals is None else rivals[:, k], gamma
                    )
                    maps.append(self.reduce(attr.detach().float()))
        raw = torch.stack(maps, dim=1)  # (B, K, H, W)
        batch, k_classes = targets.shape
        return Result(
            saliency=minmax_normalize(raw),
            targets=targets,
            probabilities=logits.softmax(dim=1).gather(1, targets),
            raw=raw,
            kept=torch.ones(batch, k_classes, 1, dtype=torch.bool, device=targets.device),
            resolutions=[(int(images.shape[-2]), int(images.shape[-1]))],
            scale_top1=logits.argmax(dim=1, keepdim=True),
            method=self.name,
            contrast=torch.empty(0, dtype=torch.long) if rivals is None else rivals,
            gamma=None if contrast is None else contrast.gamma,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={type(self.model).__name__})"


def _abs_max(attributions: Tensor) -> Tensor:
    return attributions.abs().amax(dim=1)


class Gradient(PixelExplainer):
    r"""Vanilla gradient saliency (Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks", 2014).

    :math:`M_{ij} = \max_{ch} |\partial y_c / \partial x_{ch,ij}|` — the paper's reduction (absolute value, maximum
    over colour channels), through Captum's ``Saliency``; then min–max normalised.

    Args:
        model: classifier returning logits (B, num_classes).
        layer: ignored (pixel method).

    Example:
        >>> import torch, torchvision, cameras
        >>> net = torchvision.models.resnet18().eval()
        >>> cameras.Gradient(net)(torch.randn(1, 3, 64, 64)).saliency.shape
        torch.Size([1, 64, 64])
    """

    name = "gradient"
    label = "Gradient"

    def __init__(self, model: nn.Module, layer: str | nn.Module | None = None) -> None:
        super().__init__(model, layer)
        self._method = self._attr.Saliency(self._net)

    def attribute(self, images: Tensor, target: Tensor, rivals: Tensor | None = None, gamma: float = 1.0) -> Tensor:
        out: Tensor = self._method.attribute(images, abs=True, **captum_target(target, rivals, gamma))
        return out

    def reduce(self, attributions: Tensor) -> Tensor:
        return _abs_max(attributions)


class GuidedBackprop(PixelExplainer):
    r"""Guided Backpropagation (Springenberg et al., "Striving for Simplicity", ICLR workshop 2015), via Captum.

    The gradient of the class logit w.r.t. the input where every ``nn.ReLU`` passes back only positive gradients (at
    positive inputs); ``nn.ReLU6`` modules get the same guidance (their own backward, then positive gradients only),
    since Captum guides ``nn.ReLU`` alone. Reduction: absolute value, maximum over colour channels (as for
    :class:`Gradient`; the paper shows RGB images). Captum's hooks are removed after each call, and a ReLU working in
    place (torchvision ResNets) is handled: Captum's forward pre-hook hands it a copy of its input. ReLUs applied
    functionally (``F.relu``) are not modified — a limitation of the method's hook-based implementation.

    Args:
        model: classifier returning logits (B, num_classes), with its ReLUs as ``nn.ReLU`` modules.
        layer: ignored (pixel method).

    Example:
        >>> import torch, torchvision, cameras
        >>> net = torchvision.models.resnet18().eval()
        >>> cameras.GuidedBackprop(net)(torch.randn(1, 3, 64, 64)).saliency.shape
        torch.Size([1, 64, 64])
    """

    name = "guided_backprop"
    label = "Guided Backprop"

    def __init__(self, model: nn.Module, layer: str | nn.Module | None = None) -> None:
        super().__init__(model, layer)
        self._method = self._attr.GuidedBackprop(self._net)

    def attribute(self, images: Tensor, target: Tensor, rivals: Tensor | None = None, gamma: float = 1.0) -> Tensor:
        # Captum guides only ``nn.ReLU``; clipped ReLUs (``nn.ReLU6``, used throughout EfficientNet-Lite and
        # MobileNets) get the same rule here: their ordinary backward, then only positive gradients passed on.
        handles = [
            m.register_full_backward_hook(_positive_grad_input) for m in self.model.modules() if isinstance(m, nn.ReLU6)
        ]
        try:
            out: Tensor = self._method.attribute(images, **captum_target(target, rivals, gamma))
        finally:
            for h in handles:
                h.remove()
        return out

    def reduce(self, attributions: Tensor) -> Tensor:
        return _abs_max(attributions)


def _positive_grad_input(
    module: nn.Module, grad_input: tuple[Tensor | None, ...], grad_output: tuple[Tensor | None, ...]
) -> tuple[Tensor | None, ...]:
    return tuple(None if g is None else g.clamp_min(0) for g in grad_input)


class IntegratedGradients(PixelExplainer):
    r"""Integrated Gradients (Sundararajan, Taly & Yan, ICML 2017), via Captum.

    :math:`\mathrm{IG}_i = (x_i - x'_i)\int_0^1 \partial y_c(x' + \alpha(x - x'))/\partial x_i\,d\alpha`, with
    ``n_steps`` Gauss–Legendre nodes (Captum's default rule). The baseline :math:`x'` is all zeros in the model's
    *normalised* input space (the dataset-mean image for ImageNet normalisation) unless ``baseline`` is given.
    Reduction: sum over colour channels of :math:`|\mathrm{IG}|`; then min–max normalised.

    Args:
        model: classifier returning logits (B, num_classes).
        layer: ignored (pixel method).
        n_steps: integration steps (default 32).
        baseline: a float (constant image) or a tensor broadcastable to the input (default 0.0).
        batch_size: interpolated inputs per forward pass (Captum's ``internal_batch_size``; memory bound), default 16.

    Example:
        >>> import torch, torchvision, cameras
        >>> net = torchvision.models.resnet18().eval()
        >>> cameras.IntegratedGradients(net, n_steps=8)(torch.randn(1, 3, 64, 64)).saliency.shape
        torch.Size([1, 64, 64])
    """

    name = "integrated_gradients"
    label = "Integrated Gradients"

    def __init__(
        self,
        model: nn.Module,
        layer: str | nn.Module | None = None,
        *,
        n_steps: int = 32,
        baseline: float | Tensor = 0.0,
        batch_size: int | None = 16,
    ) -> None:
        super().__init__(model, layer)
        if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
            raise ValueError(f"n_steps must be a positive int, got {n_steps!r}.")
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}.")
        if not isinstance(baseline, float | int | Tensor) or isinstance(baseline, bool):
            raise TypeError(f"baseline must be a float or a tensor, got {type(baseline).__name__}.")
        self.n_steps = n_steps
        self.baseline = baseline
        self.batch_size = batch_size
        self._method = self._attr.IntegratedGradients(self._net)

    def attribute(self, images: Tensor, target: Tensor, rivals: Tensor | None = None, gamma: float = 1.0) -> Tensor:
        if isinstance(self.baseline, Tensor):
            base = self.baseline.to(device=images.device, dtype=images.dtype).expand_as(images).contiguous()
        else:
            base = torch.full_like(images, float(self.baseline))
        internal = None if self.batch_size is None else max(self.batch_size, images.shape[0])
        out: Tensor = self._method.attribute(
            images,
            baselines=base,
            n_steps=self.n_steps,
            internal_batch_size=internal,
            **captum_target(target, rivals, gamma),
        )
        return out

    def reduce(self, attributions: Tensor) -> Tensor:
        return attributions.abs().sum(dim=1)


class SmoothGrad(PixelExplainer):
    r"""SmoothGrad (Smilkov et al., 2017): Captum's ``NoiseTunnel`` over ``Saliency``.

    :math:`M = \max_{ch} \frac{1}{n}\sum_{s=1}^{n} |\nabla_x y_c(x + \varepsilon_s)|`, with
    :math:`\varepsilon_s \sim \mathcal N(0, \sigma^2)` and :math:`\sigma = ` ``noise_level`` × (max − min) of each
    image (the paper's 15 % default), ``n_samples = 16``; the reduction is :class:`Gradient`'s (absolute value, max
    over colour channels). The noise is drawn from a private generator state seeded with ``seed`` so that calls are
    reproducible; the global RNG is left as it was.

    Args:
        model: classifier returning logits (B, num_classes).
        layer: ignored (pixel method).
        n_samples: noisy copies per image (default 16).
        noise_level: σ as a fraction of each image's value range (default 0.15).
        batch_size: noisy copies per forward pass (default: all ``n_samples`` at once).
        seed: seed of the noise (``None``: the global RNG).

    Example:
        >>> import torch, torchvision, cameras
        >>> net = torchvision.models.resnet18().eval()
        >>> cameras.SmoothGrad(net, n_samples=4)(torch.randn(1, 3, 64, 64)).saliency.shape
        torch.Size([1, 64, 64])
    """

    name = "smoothgrad"
    label = "SmoothGrad"

    def __init__(
        self,
        model: nn.Module,
        layer: str | nn.Module | None = None,
        *,
        n_samples: int = 16,
        noise_level: float = 0.15,
        batch_size: int | None = None,
        seed: int | None = 0,
    ) -> None:
        super().__init__(model, layer)
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}.")
        if not isinstance(noise_level, float | int) or isinstance(noise_level, bool) or not noise_level >= 0:
            raise ValueError(f"noise_level must be a non-negative number, got {noise_level!r}.")
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}.")
        self.n_samples = n_samples
        self.noise_level = float(noise_level)
        self.batch_size = batch_size
        self.seed = seed
        self._method = self._attr.NoiseTunnel(self._attr.Saliency(self._net))

    def attribute(self, images: Tensor, target: Tensor, rivals: Tensor | None = None, gamma: float = 1.0) -> Tensor:
        devices = [images.device.index or 0] if images.device.type == "cuda" else []
        out = []
        with torch.random.fork_rng(devices=devices, enabled=self.seed is not None):
            if self.seed is not None:
                torch.manual_seed(self.seed)
            for b in range(images.shape[0]):
                x = images[b : b + 1]
                sigma = self.noise_level * float(x.max() - x.min())
                out.append(
                    self._method.attribute(
                        x,
                        nt_type="smoothgrad",
                        nt_samples=self.n_samples,
                        nt_samples_batch_size=self.batch_size,
                        stdevs=sigma,
                        abs=True,
                        **captum_target(target[b : b + 1], None if rivals is None else rivals[b : b + 1], gamma),
                    )
                )
        return torch.cat(out)

    def reduce(self, attributions: Tensor) -> Tensor:
        return _abs_max(attributions)
