"""timm models (``cameras.models.load("timm:NAME")``): build for every input size, default layer, preprocessing.

Needs the optional extra ``cameras[timm]``. What :func:`build_timm` does with a timm architecture:

* builds it with ``dynamic_img_size=True`` where the architecture takes that argument (timm's ViT, DeiT, EVA, Swin,
  …): position embeddings are then interpolated to each input's patch grid, so the model runs at every scale of the
  CAMERAS schedule; a patch embedding that does not pad is set to pad the input to whole patches
  (``patch_embed.dynamic_img_pad = True``), so sizes that are not multiples of the patch size run too. CNNs take any
  size anyway. An architecture that timm builds only for one size (BEiT in timm 1.0) stays fixed: its preprocessing
  is square and methods that run other sizes raise a ``ValueError`` that says so;
* loads the weights: ``"DEFAULT"`` through timm's own pretrained loading (the Hugging Face Hub: needs the internet),
  a local checkpoint (state_dict file or ``.safetensors``; a classifier of another class count rebuilds the head to
  fit), or none;
* picks the default layer of its family (:func:`default_layer`) and the layout of that layer's output;
* reads the preprocessing from timm's data config of the model (input size, mean, std, interpolation; no crop:
  the maps cover the whole photo).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from torch import Tensor, nn

from ..engine.tap import resolve_layer
from .labels import imagenet_labels
from .preprocess import Preprocess
from .weights import (
    DOWNLOAD_ERRORS,
    Weights,
    WeightsUnavailableError,
    first_line,
    hf_offline,
    reachable,
    read_checkpoint,
    torch_hub_cached,
    unreachable_message,
    weights_kind,
)

__all__ = ["TIMM_PREFIX", "TimmModel", "build_timm", "default_layer", "fixed_input_size", "import_timm"]

TIMM_PREFIX = "timm:"
"""Model names starting with this prefix are timm architectures (``"timm:vit_base_patch16_224"``)."""


def import_timm() -> ModuleType:
    """``import timm``, or an ``ImportError`` that says how to install it."""
    try:
        import timm
    except ImportError as err:
        raise ImportError(
            "timm models need the optional dependency timm: pip install 'cameras[timm]' (or pip install timm)."
        ) from err
    return timm


@dataclass(frozen=True)
class TimmModel:
    """A built timm model and what the registry needs to know about it.

    Attributes:
        model: the network (eval mode, CPU).
        arch: the timm name (``"vit_base_patch16_224"``, possibly with a ``.tag``).
        weights: what was loaded: ``"timm:<hub id or name>"`` for timm's pretrained weights, a file path, or ``None``.
        layer: default layer (dotted name).
        reshape: the default layer's layout (``None``: maps or tokens, detected; ``"nhwc"``: channels-last).
        family: ``"vit"``, ``"swin"`` (channels-last transformer) or ``"cnn"``: which rule chose the layer.
        preprocess: from timm's data config.
        labels: class names.
        fixed_size: the only (h, w) the model takes, or ``None`` when it takes any size.
    """

    model: nn.Module
    arch: str
    weights: str | None
    layer: str
    reshape: str | None
    family: str
    preprocess: Preprocess
    labels: list[str]
    fixed_size: tuple[int, int] | None


def fixed_input_size(model: nn.Module) -> tuple[int, int] | None:
    """The (h, w) a timm model is fixed to (a patch embedding with ``strict_img_size``), or ``None``."""
    for module in model.modules():
        size = getattr(module, "img_size", None)
        if getattr(module, "strict_img_size", False) and size is not None:
            h, w = (size, size) if isinstance(size, int) else size
            return (int(h), int(w))
    return None


def _pad_to_patches(model: nn.Module) -> None:
    """Let every dynamic (non-strict) patch embedding pad its input to whole patches instead of rejecting sizes that
    are not multiples of the patch size (timm's ``dynamic_img_pad``, which Swin's constructor does not expose)."""
    for module in model.modules():
        if hasattr(module, "dynamic_img_pad") and getattr(module, "strict_img_size", True) is False:
            setattr(module, "dynamic_img_pad", True)  # noqa: B010  (a plain bool attribute of timm's PatchEmbed)


def default_layer(model: nn.Module) -> tuple[str, str | None, str]:
    """The default layer of a timm model: ``(dotted name, layout, family)``.

    * ViT, DeiT, BEiT, EVA (a ``blocks`` sequence and ``num_prefix_tokens``): the **last block's first norm**
      (``blocks.<last>.norm1``), as pytorch-grad-cam's and most ViT CAM work do. After the last block only the class
      token (or the pooled tokens) reaches the head, so the block's *output* patch tokens get no gradient through the
      class-token head; ``norm1`` feeds the last attention, through which every patch token reaches the class token.
      Tokens (B, N, C); layout detected.
    * Swin and other channels-last transformers (``output_fmt == "NHWC"``): the **final norm** (``norm``), the
      normalised last-stage map that the head average-pools into its linear classifier, as a CNN's last stage
      (so CAM is exact there). Layout ``"nhwc"``.
    * CNNs (ResNet, ConvNeXt, EfficientNet, … in timm): the **last stage** of the model's ``feature_info``
      (``layer4``, ``stages.3``, …).

    Raises:
        ValueError: none of these rules applies (pass ``layer=`` yourself).
    """
    blocks = getattr(model, "blocks", None)
    if isinstance(getattr(model, "num_prefix_tokens", None), int) and isinstance(blocks, nn.Sequential | nn.ModuleList):
        last = blocks[len(blocks) - 1]
        norm = getattr(last, "norm1", None)
        if isinstance(norm, nn.Module):
            return resolve_layer(model, norm)[0], None, "vit"
    info = getattr(model, "feature_info", None)
    modules = dict(model.named_modules())
    last_stage = info[-1].get("module") if isinstance(info, list) and info and isinstance(info[-1], Mapping) else None
    if getattr(model, "output_fmt", None) == "NHWC":
        norm = getattr(model, "norm", None)
        if isinstance(norm, nn.Module) and not isinstance(norm, nn.Identity):
            return resolve_layer(model, norm)[0], "nhwc", "swin"
        if isinstance(last_stage, str) and last_stage in modules:
            return last_stage, "nhwc", "swin"
    if isinstance(last_stage, str) and last_stage in modules:
        return last_stage, None, "cnn"
    raise ValueError(
        f"No default layer is known for the timm model {type(model).__name__}: pass layer='<dotted name>' (list them "
        "with [n for n, _ in model.named_modules()])."
    )


def _preprocess(timm: ModuleType, model: nn.Module, square: bool) -> Preprocess:
    config = timm.data.resolve_model_data_config(model)
    size = int(min(config["input_size"][-2:]))
    interpolation = str(config.get("interpolation", "bicubic"))
    if interpolation not in ("bilinear", "bicubic", "nearest"):
        interpolation = "bicubic"  # lanczos, hamming, box, random: the closest filter torch resizes with
    mean = tuple(float(v) for v in config["mean"])
    std = tuple(float(v) for v in config["std"])
    return Preprocess(
        size=size,
        mean=(mean[0], mean[1], mean[2]),
        std=(std[0], std[1], std[2]),
        square=square,
        interpolation=interpolation,
    )


def _labels(timm: ModuleType, model: nn.Module) -> list[str]:
    count = int(getattr(model, "num_classes", 0) or 0)
    if count == 1000:
        return imagenet_labels()
    subset = timm.data.infer_imagenet_subset(model)
    if subset:
        info = timm.data.ImageNetInfo(subset)
        if info.num_classes() == count:
            return [str(d) for d in info.label_descriptions()]
    return [str(i) for i in range(count)]


class _BuildError(ValueError):
    """timm could not build the architecture with the given keyword arguments."""


def _create(timm: ModuleType, arch: str, pretrained: bool, kwargs: Mapping[str, Any]) -> nn.Module:
    """``timm.create_model`` with ``dynamic_img_size=True`` where the architecture takes it."""
    tries = [dict(kwargs)] if "dynamic_img_size" in kwargs else [{"dynamic_img_size": True, **kwargs}, dict(kwargs)]
    for i, options in enumerate(tries):
        try:
            model: nn.Module = timm.create_model(arch, pretrained=pretrained, **options)
            return model
        except TypeError as err:
            if i + 1 < len(tries) and "dynamic_img_size" in str(err):
                continue
            raise _BuildError(f"timm cannot build {arch!r} with {dict(kwargs)}: {err}") from err
    raise AssertionError("unreachable")  # pragma: no cover


def _classifier_classes(model: nn.Module, state: Mapping[str, Tensor]) -> int | None:
    """The class count of the checkpoint's classifier (timm's ``pretrained_cfg['classifier']``), if it has one."""
    names = getattr(model, "pretrained_cfg", {}).get("classifier")
    name = names[0] if isinstance(names, tuple | list) and names else names
    weight = state.get(f"{name}.weight") if isinstance(name, str) else None
    return int(weight.shape[0]) if weight is not None and weight.dim() >= 1 else None


def _offline(arch: str, err: BaseException) -> str:
    return (
        f"Could not get timm's pretrained weights of {arch} ({first_line(err)}). timm downloads them from "
        "the Hugging Face Hub, which needs the internet (set HF_HUB_OFFLINE=1 to fail at once instead of retrying). "
        f"Offline, download the checkpoint elsewhere and pass `--weights PATH` (CLI) or "
        f"`cameras.models.load('timm:{arch}', weights=PATH)` (a state_dict or .safetensors file), or use "
        "weights=None for random weights."
    )


def _download_server(timm: ModuleType, arch: str) -> tuple[str, str] | None:
    """Where ``timm.create_model(arch, pretrained=True)`` downloads from, as ``("hf-hub", endpoint URL)`` or
    ``("url", weight URL)``; ``None`` when it needs no download (a local file, a URL already in the torch hub cache,
    the Hub in offline mode already, no pretrained weights) or the source is unknown (timm then reports it)."""
    try:
        cfg = timm.models.get_pretrained_cfg(arch)
    except RuntimeError:  # an unknown pretrained tag: timm.create_model says so
        return None
    if cfg is None or getattr(cfg, "file", None) or getattr(cfg, "state_dict", None):
        return None
    if getattr(cfg, "hf_hub_id", None):
        try:
            from huggingface_hub import constants
        except ImportError:  # timm then falls back to the URL
            pass
        else:
            return None if constants.HF_HUB_OFFLINE else ("hf-hub", str(constants.ENDPOINT))
    url = getattr(cfg, "url", None)
    if isinstance(url, str) and url and not torch_hub_cached(url):
        return ("url", url)
    return None


def build_timm(arch: str, weights: Weights = "DEFAULT", build_kwargs: Mapping[str, Any] | None = None) -> TimmModel:
    """Build a timm architecture for :func:`cameras.models.load` (see the module docstring).

    Args:
        arch: a timm model name (``timm.list_models()``), optionally with a pretrained tag (``"name.tag"``).
        weights: ``"DEFAULT"`` (timm's pretrained weights, downloaded), a checkpoint path (state_dict or
            ``.safetensors``), or ``None`` / ``"none"`` / ``"random"``.
        build_kwargs: extra keyword arguments for ``timm.create_model`` (``{"num_classes": 37}``, ``{"depth": 6}``).

    Raises:
        ImportError: timm is not installed.
        ValueError: unknown architecture, bad keyword arguments, a checkpoint that does not fit.
        FileNotFoundError: no such checkpoint file.
        WeightsUnavailableError: the pretrained weights cannot be downloaded.

    Example:
        >>> built = build_timm("test_vit", weights=None)
        >>> built.layer, built.family, built.preprocess.size, built.fixed_size
        ('blocks.5.norm1', 'vit', 160, None)
    """
    timm = import_timm()
    arch = arch.strip()
    if not timm.is_model(arch):
        names = timm.list_models()
        close = difflib.get_close_matches(arch, names, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"Unknown timm model {arch!r}.{hint} List them with timm.list_models('*pattern*').")
    kwargs = dict(build_kwargs or {})
    kind = weights_kind(weights)
    loaded: str | None = None
    if kind == "default":
        server = _download_server(timm, arch)
        offline = server is not None and not reachable(server[1])
        if offline and server is not None and server[0] == "url":
            raise WeightsUnavailableError(unreachable_message(f"{TIMM_PREFIX}{arch}", server[1]))
        try:
            # offline, the Hub's cache only: a cached file loads, a missing one fails at once (no retries)
            with hf_offline() if offline else nullcontext():
                model = _create(timm, arch, True, kwargs)
        except _BuildError:
            raise
        except DOWNLOAD_ERRORS as err:
            if offline and server is not None:
                raise WeightsUnavailableError(unreachable_message(f"{TIMM_PREFIX}{arch}", server[1])) from err
            raise WeightsUnavailableError(_offline(arch, err)) from err
        cfg = getattr(model, "pretrained_cfg", None) or {}
        source = cfg.get("hf_hub_id") or cfg.get("url") or cfg.get("file")
        if not source:  # timm then keeps the random initialisation with a warning
            raise WeightsUnavailableError(
                f"timm has no pretrained weights for {arch!r}: pass weights=PATH (a checkpoint) or weights=None."
            )
        loaded = f"timm:{source}"
    else:
        model = _create(timm, arch, False, kwargs)
        if kind == "path":
            assert weights is not None
            path = os.fspath(weights)
            state = read_checkpoint(path)
            classes = _classifier_classes(model, state)
            other_head = classes is not None and classes != getattr(model, "num_classes", classes)
            if other_head and "num_classes" not in kwargs:
                model = _create(timm, arch, False, {**kwargs, "num_classes": classes})
            try:
                model.load_state_dict(state, strict=True)
            except RuntimeError as err:
                detail = " ".join(str(err).split())[:400]
                raise ValueError(
                    f"The checkpoint {path!r} does not fit timm:{arch}"
                    f"{f' built with {kwargs}' if kwargs else ''}: {detail}. Save it from the same architecture "
                    "(timm.create_model with the same arguments; pass those as build_kwargs=)."
                ) from err
            loaded = path
    model = model.eval()
    _pad_to_patches(model)
    fixed = fixed_input_size(model)
    layer, reshape, family = default_layer(model)
    return TimmModel(
        model=model,
        arch=arch,
        weights=loaded,
        layer=layer,
        reshape=reshape,
        family=family,
        preprocess=_preprocess(timm, model, square=fixed is not None),
        labels=_labels(timm, model),
        fixed_size=fixed,
    )
