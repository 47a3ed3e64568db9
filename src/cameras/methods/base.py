"""The common call of every saliency method: input validation, targets, device and dtype handling."""

from __future__ import annotations

import abc
import difflib
import functools
import inspect
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..engine.contrast import Contrast, check_distinct
from ..engine.layout import Reshape, resolve_layout
from ..engine.result import Result
from ..engine.scales import Resolutions, schedule
from ..engine.tap import last_spatial_layer, resolve_layer

__all__ = [
    "CPU_PIXELS_PER_PASS",
    "ContrastClasses",
    "Explainer",
    "Targets",
    "call_keywords",
    "check_keywords",
    "explain_in_groups",
    "images_per_pass",
    "model_device_dtype",
    "normalize_contrast",
    "normalize_targets",
    "validate_images",
]

CPU_PIXELS_PER_PASS = 1 << 20
"""On the CPU, images explained together by default by the multi-scale methods: as many as keep the largest scale's
input within this many pixels (≈ one 1024² image; one image at a time for the paper's schedule on 224 px inputs).
On 2 cores this was 1.6–2.3× faster per image than whole batches of 8, whose large-scale activations fall out of
cache (``benchmarks/cpu_batching.py``, BENCHMARKS.md)."""

Targets = int | Sequence[int] | Tensor | None
"""``None`` (model's top class), one int for every image, B ints, a (B,) tensor, or a (B, K) tensor of K classes."""

ContrastClasses = int | Sequence[int] | Tensor | str | None
"""The ``contrast=`` of a call: ``None`` (plain map), ``"auto"`` (each target's ``contrast_k`` most probable other
classes), one int for every image, B ints, a (B,) tensor (one rival per image), a (B, M) tensor (M rivals per image,
shared by its K targets) or a (B, K, M) tensor (M rivals per target)."""


def model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """The device and floating dtype of the model's first parameter (CPU/float32 for a parameter-free model)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.device, p.dtype
    for b in model.buffers():
        if b.is_floating_point():
            return b.device, b.dtype
    return torch.device("cpu"), torch.float32


def images_per_pass(images: Tensor, sizes: Sequence[tuple[int, int]], max_batch: int | None) -> int:
    """How many of ``images`` (B, C, H, W) a multi-scale method explains together at the scales ``sizes``:
    ``max_batch`` if given; else, on the CPU, as many as keep the largest scale within :data:`CPU_PIXELS_PER_PASS`
    pixels (at least one); elsewhere the whole batch."""
    if max_batch is not None:
        return max_batch
    if images.device.type == "cpu":
        return max(1, CPU_PIXELS_PER_PASS // max(h * w for h, w in sizes))
    return max(1, int(images.shape[0]))


def explain_in_groups(
    images: Tensor,
    targets: Tensor | None,
    resolutions: Resolutions,
    max_batch: int | None,
    explain: Callable[[Tensor, Tensor | None, list[tuple[int, int]], Contrast | None], Result],
    contrast: Contrast | None = None,
    square: bool = False,
) -> Result:
    """Run a multi-scale method's ``explain(images, targets, sizes, contrast)`` on consecutive groups of
    :func:`images_per_pass` images (and their targets and contrast classes) at the scales
    ``schedule(resolutions, (H, W), square=square)``; the results are concatenated in order."""
    sizes = schedule(resolutions, (int(images.shape[-2]), int(images.shape[-1])), square=square)
    step = images_per_pass(images, sizes, max_batch)
    parts = [
        explain(
            images[i : i + step],
            None if targets is None else targets[i : i + step],
            sizes,
            None if contrast is None else contrast.rows(i, i + step),
        )
        for i in range(0, images.shape[0], step)
    ]
    return parts[0] if len(parts) == 1 else Result.cat(parts)


def _caller_level() -> int:
    """The ``stacklevel`` of a warning raised in this module that points at the first frame outside ``cameras`` (the
    user's line), however many of the library's constructors lie between."""
    import sys
    from pathlib import Path

    package = str(Path(__file__).resolve().parents[1])
    frame = sys._getframe(1)  # the function that warns
    level = 1
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(package):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def _expected_channels(model: nn.Module) -> int | None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return int(m.in_channels)
    return None


def validate_images(images: Any, model: nn.Module | None = None) -> Tensor:
    """Check a batch of images and return it unchanged.

    Args:
        images: (B, C, H, W) floating tensor, already normalised for the model.
        model: if given, C must equal the ``in_channels`` of its first convolution.

    Raises:
        TypeError: not a tensor, or not floating point.
        ValueError: wrong rank, empty batch, wrong channel count, NaN/inf values, spatial size below 2.
    """
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch.Tensor of shape (B, C, H, W), got {type(images).__name__}.")
    if images.dim() != 4:
        hint = " Add a batch dimension with images.unsqueeze(0)." if images.dim() == 3 else ""
        raise ValueError(f"images must have shape (B, C, H, W), got {tuple(images.shape)} (rank {images.dim()}).{hint}")
    if not images.is_floating_point():
        raise TypeError(f"images must be a floating tensor normalised for the model, got dtype {images.dtype}.")
    if images.shape[0] == 0:
        raise ValueError("images is an empty batch (B = 0).")
    if images.shape[-1] < 2 or images.shape[-2] < 2:
        raise ValueError(f"images are too small: {tuple(images.shape[-2:])}.")
    if model is not None:
        expected = _expected_channels(model)
        if expected is not None and images.shape[1] != expected:
            raise ValueError(
                f"images have {images.shape[1]} channels but the model's first convolution expects {expected}."
            )
    if not bool(torch.isfinite(images).all()):
        raise ValueError("images contain NaN or infinite values.")
    return images


def normalize_targets(targets: Targets, batch: int, device: torch.device) -> Tensor | None:
    """Turn any accepted ``targets`` into a (B, K) int64 tensor on ``device`` (or ``None``).

    Raises:
        TypeError: floats, bools or other types.
        ValueError: a count different from the batch size, negative classes, empty sequences.
    """
    if targets is None:
        return None
    if isinstance(targets, bool):
        raise TypeError("targets must be class indices, not a bool.")
    if isinstance(targets, int):
        t = torch.full((batch, 1), targets, dtype=torch.long)
    elif isinstance(targets, Tensor):
        if targets.is_floating_point() or targets.dtype == torch.bool or targets.is_complex():
            raise TypeError(f"targets must be an integer tensor, got {targets.dtype}.")
        if targets.dim() == 0:
            t = targets.reshape(1, 1).expand(batch, 1).long()
        elif targets.dim() == 1:
            t = targets.long().unsqueeze(1)
        elif targets.dim() == 2:
            t = targets.long()
        else:
            raise ValueError(f"targets must be (B,) or (B, K), got shape {tuple(targets.shape)}.")
    elif isinstance(targets, Sequence) and not isinstance(targets, str):
        items = list(targets)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            raise TypeError("targets must be a sequence of ints.")
        t = torch.tensor(items, dtype=torch.long).unsqueeze(1)
    else:
        raise TypeError(f"targets must be None, an int, a sequence of ints or a LongTensor, got {type(targets)}.")
    if t.shape[0] != batch:
        raise ValueError(f"Got {t.shape[0]} targets for a batch of {batch} images.")
    if t.shape[1] == 0:
        raise ValueError("targets has no classes (K = 0).")
    if bool((t < 0).any()):
        raise ValueError(f"Target classes must be non-negative, got {int(t.min())}.")
    return t.to(device)


def normalize_contrast(
    contrast: ContrastClasses,
    batch: int,
    targets: Tensor | None,
    *,
    gamma: float = 1.0,
    contrast_k: int = 1,
) -> Contrast | None:
    """Check a call's ``contrast=``, ``gamma=`` and ``contrast_k=`` and turn them into a
    :class:`~cameras.engine.contrast.Contrast` (``None`` for a plain call).

    Args:
        contrast: see :data:`ContrastClasses`.
        batch: number of images B.
        targets: the call's (B, K) targets when given (to reject a rival equal to its target before any work).
        gamma: weight of the rivals' mean logit; any finite real number (default 1.0).
        contrast_k: with ``contrast="auto"``, rivals per target (default 1).

    Returns:
        ``Contrast`` with (B, 1 or K, M) int64 classes on ``targets``' device (CPU without targets), or with
        ``classes=None`` for ``"auto"``; ``None`` when ``contrast`` is ``None``.

    Raises:
        TypeError: ``contrast`` of another type (floats, bools), ``gamma`` not a real number, ``contrast_k`` not
            an int.
        ValueError: another string than ``"auto"``, a count that does not match the batch, negative classes, no
            rival (M = 0), a rival equal to its target, a (B, K, M) tensor whose K differs from the targets',
            ``gamma`` not finite, ``contrast_k`` < 1, or ``gamma`` / ``contrast_k`` without the contrast they
            qualify. (Classes beyond the model's are found once its logits are known.)

    Example:
        >>> normalize_contrast(951, 2, None).classes.shape  # one rival for each of 2 images
        torch.Size([2, 1, 1])
        >>> normalize_contrast("auto", 2, None, contrast_k=3).k
        3
    """
    if isinstance(gamma, bool) or not isinstance(gamma, int | float):
        raise TypeError(f"gamma must be a real number, got {type(gamma).__name__}.")
    if not math.isfinite(gamma):
        raise ValueError(f"gamma must be finite, got {gamma}.")
    if isinstance(contrast_k, bool) or not isinstance(contrast_k, int):
        raise TypeError(f"contrast_k must be an int, got {type(contrast_k).__name__}.")
    if contrast_k < 1:
        raise ValueError(f"contrast_k must be ≥ 1, got {contrast_k}.")
    if contrast is None:
        if gamma != 1.0 or contrast_k != 1:
            raise ValueError("gamma and contrast_k apply to contrastive maps: give contrast= as well.")
        return None
    if isinstance(contrast, str):
        if contrast.strip().lower() != "auto":
            raise ValueError(f"contrast must be class indices or 'auto', got {contrast!r}.")
        return Contrast(None, k=contrast_k, gamma=float(gamma))
    if contrast_k != 1:
        raise ValueError("contrast_k applies to contrast='auto' only (given rival classes set their own count).")
    if isinstance(contrast, bool):
        raise TypeError("contrast must be class indices or 'auto', not a bool.")
    if isinstance(contrast, int):
        c = torch.full((batch, 1, 1), contrast, dtype=torch.long)
    elif isinstance(contrast, Tensor):
        if contrast.is_floating_point() or contrast.dtype == torch.bool or contrast.is_complex():
            raise TypeError(f"contrast must be an integer tensor, got {contrast.dtype}.")
        if contrast.dim() == 0:
            c = contrast.reshape(1, 1, 1).expand(batch, 1, 1).long()
        elif contrast.dim() == 1:
            c = contrast.long().reshape(-1, 1, 1)
        elif contrast.dim() == 2:
            c = contrast.long().unsqueeze(1)
        elif contrast.dim() == 3:
            c = contrast.long()
        else:
            raise ValueError(f"contrast must be (B,), (B, M) or (B, K, M), got shape {tuple(contrast.shape)}.")
    elif isinstance(contrast, Sequence):
        items = list(contrast)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            raise TypeError("contrast must be a sequence of ints (one rival class per image).")
        c = torch.tensor(items, dtype=torch.long).reshape(-1, 1, 1)
    else:
        raise TypeError(
            f"contrast must be None, 'auto', an int, a sequence of ints or a LongTensor, got {type(contrast).__name__}."
        )
    if c.shape[0] != batch:
        raise ValueError(
            f"Got contrast classes for {c.shape[0]} images but the batch has {batch}; give one entry per image "
            "(a (B, M) tensor for M rivals per image)."
        )
    if c.shape[2] == 0:
        raise ValueError("contrast has no classes (M = 0).")
    if bool((c < 0).any()):
        raise ValueError(f"contrast classes must be non-negative, got {int(c.min())}.")
    if targets is not None:
        c = c.to(targets.device)
        if c.shape[1] not in (1, targets.shape[1]):
            raise ValueError(
                f"contrast has rivals for {c.shape[1]} classes per image, but {targets.shape[1]} classes are "
                "explained: give (B, M) rivals shared by every target or (B, K, M) rivals per target."
            )
        check_distinct(targets, c)
    return Contrast(c, k=1, gamma=float(gamma))


@functools.cache
def call_keywords(cls: type[Explainer]) -> tuple[str, ...]:
    """The keyword arguments a call of method class ``cls`` accepts: those of :meth:`Explainer.__call__` and of
    every ``__call__`` / ``explain`` of the class and its bases (``top_k``, ``upsample`` …), sorted."""
    names: set[str] = set()
    for klass in cls.__mro__:
        for attr in ("__call__", "explain"):
            fn = klass.__dict__.get(attr)
            if fn is None:
                continue
            for p in inspect.signature(fn).parameters.values():
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in ("self", "images"):
                    names.add(p.name)
    return tuple(sorted(names))


def check_keywords(cls: type[Explainer], kwargs: Mapping[str, Any]) -> None:
    """Refuse a keyword that no part of the call of ``cls`` takes (``targt=5`` would otherwise be ignored and the
    top-1 class explained).

    Raises:
        TypeError: naming the keyword and the closest accepted one (:mod:`difflib`), or every accepted one.

    Example:
        >>> from cameras.methods import GradCAM
        >>> try:
        ...     check_keywords(GradCAM, {"target": 5})
        ... except TypeError as err:
        ...     print(err)
        GradCAM() got an unexpected keyword argument 'target'; did you mean 'targets'?
    """
    accepted = call_keywords(cls)
    for name in kwargs:
        if name in accepted:
            continue
        close = difflib.get_close_matches(name, accepted, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}?" if close else f"it takes {', '.join(accepted)}."
        raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {name!r}; {hint}")


class Explainer(abc.ABC):
    r"""Base class: ``Method(model, layer=...)(images, targets=None, *, contrast=None, gamma=1.0) -> Result``.

    Subclasses implement :meth:`explain` on validated inputs; this class validates images, targets and contrast
    classes, moves the images to the model's device and dtype, and returns results on the images' own device.

    Contrastive maps. With ``contrast=`` a method explains the score
    :math:`y_c - \gamma\cdot\mathrm{mean}_j\,y_{d_j}` instead of the logit :math:`y_c` of each target :math:`c`,
    :math:`d_1 \dots d_M` being the rival classes (Finer-CAM's score, Zhang et al., CVPR 2025; see
    :mod:`cameras.engine.contrast`): what the target shares with its rivals cancels, what tells them apart remains.
    ``contrast`` is an int (one rival for every image), B ints or a (B,) tensor (one per image), a (B, M) tensor (M
    rivals per image, their logits averaged; shared by all K targets of a multi-class call), a (B, K, M) tensor
    (rivals per target), or ``"auto"``: each target's ``contrast_k`` most probable classes other than itself at the
    base scale (so with ``top_k=2`` and ``"auto"``, the top-2 classes are each explained against the other).
    ``gamma=0`` gives the plain map. The result records the rivals (``Result.contrast``) and ``gamma``. Methods that
    cannot take a contrast (``supports_contrast = False``) raise a ``ValueError``.

    A keyword the call does not take (``targt=5``) is a ``TypeError`` naming it and the closest valid one
    (:func:`check_keywords`), before any work.

    Args:
        model: a classifier returning logits (B, num_classes).
        layer: dotted name or module of the layer to explain (for layer-based methods). ``None``: the model's
            ``cameras_default_layer`` (set by :func:`cameras.models.load`), else its last spatial layer found by
            :func:`cameras.engine.last_spatial_layer` (one probe pass; a ``UserWarning`` names it, and
            ``layer_chosen`` is then True). The layer explained is ``explainer.layer_name`` and ``Result.layer``.
        reshape: the layer output's layout (layer-based methods; :mod:`cameras.engine.layout`): ``None`` (the
            model's ``cameras_default_reshape``, set by :func:`cameras.models.load` for timm models; else
            ``"auto"``: (B, C, h, w) maps, Vision Transformer tokens (B, N, C) with the model's prefix tokens and
            patch grid, and channels-last maps on a patch model's grid),
            ``"nchw"``, ``"tokens"``, ``"nhwc"`` (Swin's channels-last maps), a
            :class:`~cameras.engine.layout.TokenLayout`, or a callable ``(output, input_size) -> (B, C, h, w)``.
    """

    name: ClassVar[str] = ""
    needs_layer: ClassVar[bool] = True
    supports_contrast: ClassVar[bool] = False
    """Whether :meth:`explain` takes ``contrast=`` (a :class:`~cameras.engine.contrast.Contrast`)."""

    def __init__(self, model: nn.Module, layer: str | nn.Module | None = None, *, reshape: Reshape = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
        self.model = model
        self.reshape = reshape
        resolve_layout(reshape, model)  # validate early
        self.layer_name: str | None = None
        self.layer_chosen = False
        if self.needs_layer:
            if layer is None:
                layer = getattr(model, "cameras_default_layer", None)
                if layer is None:
                    layer = last_spatial_layer(model)
                    self.layer_chosen = True
                    warnings.warn(
                        f"layer=None: explaining {type(model).__name__}.{layer}, its last spatial layer (the last "
                        "module with a (B, C, h, w) output in a probe pass); pass layer= to choose another.",
                        UserWarning,
                        stacklevel=_caller_level(),
                    )
            self.layer_name, _ = resolve_layer(model, layer)

    def __call__(
        self,
        images: Tensor,
        targets: Targets = None,
        *,
        contrast: ContrastClasses = None,
        gamma: float = 1.0,
        contrast_k: int = 1,
        **kwargs: Any,
    ) -> Result:
        check_keywords(type(self), kwargs)
        validate_images(images, self.model)
        device, dtype = model_device_dtype(self.model)
        x = images.to(device=device, dtype=dtype)
        t = normalize_targets(targets, images.shape[0], device)
        if contrast is not None and not self.supports_contrast:
            raise ValueError(f"contrast does not apply to the method {self.name or type(self).__name__!r}.")
        spec = normalize_contrast(contrast, images.shape[0], t, gamma=gamma, contrast_k=contrast_k)
        if spec is not None:
            kwargs["contrast"] = spec
        result = self.explain(x, t, **kwargs)
        result.layer = self.layer_name or ""
        if t is not None and not (isinstance(targets, Tensor) and targets.dim() == 2):
            result = result.select(0) if result.targets.dim() == 2 else result
        return result.to(images.device)

    @abc.abstractmethod
    def explain(self, images: Tensor, targets: Tensor | None, **kwargs: Any) -> Result:
        """Compute maps for validated ``images`` (B, C, H, W) and ``targets`` (B, K) or ``None``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={type(self.model).__name__}, layer={self.layer_name!r})"
