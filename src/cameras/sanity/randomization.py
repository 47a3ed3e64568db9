"""Model-parameter randomisation test (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018).

A saliency method that explains the *model* must change its maps when the model's learned weights are replaced by
random ones. The test re-initialises the network block by block, from the logits downwards ("cascading"), or one
block at a time ("independent"), recomputes the maps after each step, and measures how similar they still are to
the maps of the trained model (:mod:`cameras.sanity.similarity`).

What is randomised, exactly (see :func:`reinitialize`):

* every submodule of a block that has ``reset_parameters()`` calls it (PyTorch's default initialisers: Kaiming-
  uniform convolutions and linears, BatchNorm γ = 1 and β = 0), under ``torch.manual_seed(seed + step)`` inside a
  forked RNG so the caller's random state is untouched;
* a submodule that owns parameters but has no ``reset_parameters()`` gets them drawn from a normal distribution
  with mean 0 and the original tensor's standard deviation (0.02 when that is 0);
* BatchNorm running statistics (``bn_stats``): ``"recalibrate"`` (default) re-estimates the mean and variance of
  every *randomised* BatchNorm layer from the explained images (one forward pass, cumulative average), so the
  random layers pass on activations of a sensible scale instead of letting them explode or vanish;
  ``"reset"`` uses mean 0 and variance 1; ``"keep"`` keeps the trained statistics.

The original model is never modified: everything happens on a deep copy, and the saliency method is rebuilt on
that copy (a method name or a layer given as a module is re-resolved by its dotted name).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from tqdm.auto import tqdm

from ..engine.tap import extract_logits, resolve_layer
from ..methods import get as get_method
from ..methods.base import Explainer, model_device_dtype, normalize_targets, validate_images
from .similarity import METRICS, compare_maps

__all__ = [
    "BnStats",
    "MethodSpec",
    "SanityResult",
    "Variant",
    "cascading_randomization",
    "default_blocks",
    "randomized_copy",
    "reinitialize",
]

Variant = Literal["cascading", "independent"]
BnStats = Literal["recalibrate", "reset", "keep"]


MethodFactory = Callable[[nn.Module], Callable[..., Any]]
MethodSpec = str | Explainer | MethodFactory
"""A method name for :func:`cameras.methods.get` (built with ``layer``), an explainer instance (rebuilt on the
copy), or a factory ``model -> explainer`` whose result is called as ``explainer(images, targets)`` and returns an
object with ``saliency`` (B, H, W) in [0, 1] and, optionally, ``raw`` (B, H, W)."""


@dataclass
class SanityResult:
    """Similarity of each method's maps to its original maps, per randomisation step.

    Attributes:
        variant: ``"cascading"`` or ``"independent"``.
        blocks: the randomised blocks, in order (step ``i`` randomised ``blocks[i - 1]``, plus, in the cascading
            variant, every earlier block).
        methods: method names, in order.
        targets: (B,) class explained at every step (the original model's top-1 unless given).
        similarity: ``similarity[method][metric]`` is a (S + 1, B) array; row 0 compares the original maps with
            themselves, row ``i`` the maps after step ``i``. Metrics: ``spearman_abs``, ``spearman``, ``ssim``,
            ``hog`` (1 = identical; a method passing the check drops). ``nan`` = undefined: the original or the new
            map is constant (:func:`~cameras.sanity.similarity.compare_maps`).
        maps: ``maps[method]`` is a (S + 1, B, H, W) float32 CPU tensor of the maps in [0, 1] at every step
            (empty when ``keep_maps=False``).
        seed: base seed (step ``i`` uses ``seed + i``).
        bn_stats: how BatchNorm running statistics were handled.
    """

    variant: str
    blocks: list[str]
    methods: list[str]
    targets: Tensor
    similarity: dict[str, dict[str, NDArray[np.float64]]]
    maps: dict[str, Tensor] = field(default_factory=dict)
    seed: int = 0
    bn_stats: str = "recalibrate"

    @property
    def steps(self) -> list[str]:
        """Labels of the S + 1 steps: ``"original"`` then the block randomised at each step."""
        return ["original", *self.blocks]

    def mean(self, method: str, metric: str) -> NDArray[np.float64]:
        """(S + 1,) mean over images of one method's similarity curve, over the defined values (``nan`` where
        every image is undefined; see :meth:`undefined`)."""
        values = self.similarity[method][metric]
        defined = ~np.isnan(values)
        n = defined.sum(axis=1)
        total = np.where(defined, values, 0.0).sum(axis=1)
        return np.asarray(np.where(n > 0, total / np.maximum(n, 1), np.nan), dtype=np.float64)

    def undefined(self, method: str, metric: str) -> NDArray[np.int64]:
        """(S + 1,) number of images whose similarity is undefined (``nan``: a constant map) at each step."""
        return np.asarray(np.isnan(self.similarity[method][metric]).sum(axis=1), dtype=np.int64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: settings, steps, and per method and metric the mean, the count of undefined images
        and the per-image values per step (undefined values are ``nan``: write with :func:`cameras.io.write_json`,
        which turns them into ``null``)."""
        return {
            "variant": self.variant,
            "seed": self.seed,
            "bn_stats": self.bn_stats,
            "steps": self.steps,
            "targets": [int(t) for t in self.targets.tolist()],
            "methods": {
                m: {
                    k: {
                        "mean": self.mean(m, k).tolist(),
                        "undefined": self.undefined(m, k).tolist(),
                        "per_image": v.T.tolist(),
                    }
                    for k, v in self.similarity[m].items()
                }
                for m in self.methods
            },
        }


def _has_state(m: nn.Module) -> bool:
    return any(True for _ in m.parameters()) or any(True for _ in m.buffers())


_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def _is_unit(seq: nn.Module) -> bool:
    """A conv–norm–activation unit: a normalisation layer among its children and no nested parameterised blocks."""
    children = list(seq.children())
    nested = any(_has_state(c) and any(True for _ in c.children()) for c in children)
    return not nested and any(isinstance(c, _NORMS) for c in children)


def default_blocks(model: nn.Module, images: Tensor | None = None) -> list[str]:
    """Dotted names of the blocks to randomise, ordered from the logits downwards.

    The blocks are the model's top-level children that hold parameters or buffers. A child that is an
    ``nn.ModuleList``, or an ``nn.Sequential`` of several parameterised modules, is split into its parameterised
    items, except a Sequential that is one conv–norm–activation unit (it holds a normalisation layer and no nested
    blocks), which stays whole. So a torchvision ResNet gives ``fc, layer4.1, layer4.0, …, bn1, conv1``, a VGG
    ``classifier.6, classifier.3, classifier.0, features.28, …, features.0``, and :mod:`cameras.models`'
    EfficientNet-Lite ``classifier, head, blocks.15, …, blocks.0, stem``.

    With ``images`` the order is the order in which the blocks run during a forward pass (reversed), and blocks
    that do not run are left out; without, it is the reversed definition order.

    Args:
        model: the network (not modified; hooks are added to a copy).
        images: optional (B, C, H, W) batch to trace the execution order (only the first image is used).

    Returns:
        list of dotted module names.

    Example:
        >>> import torchvision
        >>> default_blocks(torchvision.models.resnet18())[:3]
        ['fc', 'layer4.1', 'layer4.0']
    """
    names: list[str] = []
    for name, child in model.named_children():
        if not _has_state(child):
            continue
        split = isinstance(child, nn.ModuleList) or (
            isinstance(child, nn.Sequential)
            and sum(_has_state(c) for c in child.children()) > 1
            and not _is_unit(child)
        )
        if split:
            names.extend(f"{name}.{sub}" for sub, c in child.named_children() if _has_state(c))
        else:
            names.append(name)
    if images is None:
        return names[::-1]
    traced = copy.deepcopy(model).eval()
    order: list[str] = []
    handles = []
    for n in names:

        def hook(_m: nn.Module, _inp: Any, n: str = n) -> None:
            if n not in order:
                order.append(n)

        handles.append(traced.get_submodule(n).register_forward_pre_hook(hook))
    device, dtype = model_device_dtype(traced)
    with torch.no_grad():
        traced(images[:1].to(device=device, dtype=dtype))
    for h in handles:
        h.remove()
    return order[::-1]


def reinitialize(module: nn.Module, seed: int) -> None:
    """Re-initialise every parameter of ``module`` in place (see the module docstring for the rule).

    Uses ``torch.manual_seed(seed)`` inside :func:`torch.random.fork_rng`, so the global RNG state of the caller is
    unchanged and the same seed gives the same weights.
    """
    devices = sorted({p.device.index or 0 for p in module.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        for m in module.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                reset()
                continue
            for p in m.parameters(recurse=False):
                std = float(p.float().std()) if p.numel() > 1 else 0.0
                p.normal_(0.0, std if std > 0 and math.isfinite(std) else 0.02)


def _batchnorms(module: nn.Module) -> list[_BatchNorm]:
    return [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


def _recalibrate(model: nn.Module, bns: Sequence[_BatchNorm], images: Tensor) -> None:
    """Re-estimate the running statistics of ``bns`` from ``images`` (others untouched)."""
    saved = [(m.momentum, m.training) for m in bns]
    try:
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: after one pass the stats are the batch's
            m.train()
        with torch.no_grad():
            model(images)
    except ValueError as e:  # e.g. BatchNorm1d on a batch of one: fall back to mean 0 / variance 1
        warnings.warn(f"Could not re-estimate BatchNorm statistics ({e}); using mean 0, variance 1.", stacklevel=3)
        for m in bns:
            m.reset_running_stats()
    finally:
        for m, (momentum, training) in zip(bns, saved):
            m.momentum = momentum
            m.train(training)


def _layer_name(model: nn.Module, layer: str | nn.Module | None) -> str | None:
    if layer is None or isinstance(layer, str):
        return layer
    return resolve_layer(model, layer)[0]


def _build(spec: MethodSpec, work: nn.Module, layer: str | None) -> Callable[..., Any]:
    if isinstance(spec, str):
        cls = get_method(spec)
        return cls(work, layer=layer)
    if isinstance(spec, Explainer):
        # Rebuild the explainer on the copy: every submodule and parameter of the original maps to the copy's.
        memo: dict[int, Any] = {}
        work_modules = dict(work.named_modules())
        for name, m in spec.model.named_modules():
            if name in work_modules:
                memo[id(m)] = work_modules[name]
        work_params = dict(work.named_parameters())
        for name, p in spec.model.named_parameters():
            if name in work_params:
                memo[id(p)] = work_params[name]
        rebuilt: Explainer = copy.deepcopy(spec, memo)
        return rebuilt
    if callable(spec):
        return spec(work)
    raise TypeError(f"method must be a name, an Explainer or a factory model -> explainer, got {type(spec).__name__}.")


def _spec_name(spec: MethodSpec) -> str:
    if isinstance(spec, str):
        return get_method(spec).name or spec
    if isinstance(spec, Explainer):
        return type(spec).name or type(spec).__name__
    return str(getattr(spec, "__name__", type(spec).__name__))


def _maps(explainer: Callable[..., Any], images: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    out = explainer(images, targets)
    sal = getattr(out, "saliency", None)
    if not isinstance(sal, Tensor) or sal.dim() != 3 or sal.shape[0] != images.shape[0]:
        raise TypeError("The explainer must return an object with `saliency` of shape (B, H, W).")
    raw = getattr(out, "raw", None)
    if not isinstance(raw, Tensor) or raw.shape != sal.shape:
        raw = sal
    return sal.detach().float().cpu(), raw.detach().float().cpu()


def cascading_randomization(
    model: nn.Module,
    method: MethodSpec | Sequence[MethodSpec] | Mapping[str, MethodSpec],
    images: Tensor,
    targets: int | Sequence[int] | Tensor | None = None,
    *,
    layer: str | nn.Module | None = None,
    blocks: Sequence[str] | None = None,
    variant: Variant = "cascading",
    seed: int = 0,
    bn_stats: BnStats = "recalibrate",
    keep_maps: bool = True,
    progress: bool = False,
) -> SanityResult:
    """Cascading (or independent) model-parameter randomisation test for one or several saliency methods.

    On a deep copy of ``model``, the blocks are re-initialised one after the other, from the logits downwards.
    In the ``"cascading"`` variant the randomisation accumulates (step i: blocks 1..i random); in the
    ``"independent"`` variant only block i is random at step i (the others are restored to the trained weights).
    After each step every method's maps are recomputed for the same images and classes and compared with the
    original maps by Spearman rank correlation of the absolute and of the signed maps, SSIM and HOG similarity.

    Source: Adebayo, Gilmer, Muelly, Goodfellow, Hardt, Kim, "Sanity Checks for Saliency Maps" (NeurIPS 2018),
    Sec. 3 (cascading and independent randomisation, the four similarity measures).

    Better: a method that is sensitive to the model's parameters (passes the check) shows similarities that
    **drop** well below 1 as more blocks are randomised; curves that stay near 1 mean the map does not depend
    on what the model learned.

    Args:
        model: classifier returning logits; never modified.
        method: a :data:`MethodSpec` or several (a sequence, or a mapping name → spec to choose the names).
        images: (B, C, H, W) images normalised for the model.
        targets: classes to explain (int, B ints, (B,) tensor); ``None`` = the original model's top-1.
        layer: layer for methods given by name (dotted name, or a module of ``model`` that is re-resolved by
            name on the copy); ``None`` = the method's default (``model.cameras_default_layer``).
        blocks: dotted names of the blocks to randomise, in the order given (first = randomised first, so list
            them from the logits downwards); default :func:`default_blocks` traced on ``images``.
        variant: ``"cascading"`` or ``"independent"``.
        seed: step ``i`` re-initialises with ``torch.manual_seed(seed + i)``.
        bn_stats: BatchNorm running statistics of randomised blocks: ``"recalibrate"``, ``"reset"`` or ``"keep"``
            (see the module docstring).
        keep_maps: keep every step's maps in the result (for the strip figure).
        progress: a progress bar on standard error (tqdm, rate and ETA): one tick per method and step, the original
            model first, then each randomised block, named while it runs.

    Returns:
        :class:`SanityResult`.

    Raises:
        ValueError: unknown block names, unknown variant/bn_stats, bad images or targets.
        TypeError: bad method spec or model.

    Example:
        >>> import torch, torchvision
        >>> net = torchvision.models.resnet18().eval()
        >>> res = cascading_randomization(net, "cameras", torch.randn(1, 3, 64, 64), layer="layer4",
        ...                               blocks=["fc", "layer4"], bn_stats="reset")
        >>> res.steps, res.similarity["cameras"]["ssim"].shape
        (['original', 'fc', 'layer4'], (3, 1))
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    if variant not in ("cascading", "independent"):
        raise ValueError(f"variant must be 'cascading' or 'independent', got {variant!r}.")
    if bn_stats not in ("recalibrate", "reset", "keep"):
        raise ValueError(f"bn_stats must be 'recalibrate', 'reset' or 'keep', got {bn_stats!r}.")
    validate_images(images, model)
    specs: list[tuple[str, MethodSpec]]
    if isinstance(method, Mapping):
        specs = [(str(k), v) for k, v in method.items()]
    elif isinstance(method, str | Explainer) or (callable(method) and not isinstance(method, Sequence)):
        specs = [(_spec_name(method), method)]
    elif isinstance(method, Sequence):
        specs = [(_spec_name(s), s) for s in method]
    else:
        raise TypeError(f"method must be a name, an explainer, a factory or a list of them, got {type(method)}.")
    if not specs:
        raise ValueError("No method given.")
    if len({n for n, _ in specs}) != len(specs):
        raise ValueError(f"Method names must be unique, got {[n for n, _ in specs]}; pass a mapping to rename.")

    layer_name = _layer_name(model, layer)
    work = copy.deepcopy(model).eval()
    device, dtype = model_device_dtype(work)
    x = images.to(device=device, dtype=dtype)
    t = normalize_targets(targets, x.shape[0], device) if targets is not None else None
    if t is not None and t.shape[1] != 1:
        raise ValueError("Give one target class per image for the sanity check.")
    if t is None:
        with torch.no_grad():
            t_flat = extract_logits(work(x)).argmax(dim=1)
    else:
        t_flat = t[:, 0]

    if blocks is None:
        block_names = default_blocks(work, x)
    else:
        if isinstance(blocks, str) or not all(isinstance(b, str) for b in blocks):
            raise TypeError("blocks must be a list of dotted module names.")
        block_names = list(blocks)
        known = dict(work.named_modules())
        unknown = [b for b in block_names if b not in known or b == ""]
        if unknown:
            raise ValueError(
                f"Unknown block name(s) {unknown}; use names from model.named_modules(), e.g. "
                f"{default_blocks(work)[:4]}."
            )
    if not block_names:
        raise ValueError("No block to randomise: the model has no parameterised children.")

    explainers = {name: _build(spec, work, layer_name) for name, spec in specs}
    # one tick per method and step (the original model, then each randomised block), with the step running
    bar = tqdm(total=(1 + len(block_names)) * len(explainers), desc="sanity", unit="map", disable=not progress)

    def step_maps(step_name: str, name: str, explainer: Any) -> tuple[Tensor, Tensor]:
        bar.set_postfix_str(f"{step_name} · {name}")
        out = _maps(explainer, x, t_flat)
        bar.update(1)
        return out

    originals = {name: step_maps("original", name, e) for name, e in explainers.items()}
    sims: dict[str, dict[str, list[list[float]]]] = {n: {k: [] for k in METRICS} for n in explainers}
    maps: dict[str, list[Tensor]] = {n: [originals[n][0]] for n in explainers}

    def record(name: str, sal: Tensor, raw: Tensor) -> None:
        o_sal, o_raw = originals[name]
        rows = [
            compare_maps(o_raw[i].numpy(), raw[i].numpy(), o_sal[i].numpy(), sal[i].numpy()) for i in range(len(sal))
        ]
        for k in METRICS:
            sims[name][k].append([r[k] for r in rows])

    for name in explainers:
        record(name, *originals[name])

    randomised_bns: list[_BatchNorm] = []
    for step, block in enumerate(block_names, start=1):
        module = work.get_submodule(block)
        saved = {k: v.detach().clone() for k, v in module.state_dict().items()}
        bns = _batchnorms(module)
        kept_stats = [
            (m, m.running_mean.clone(), m.running_var.clone())
            for m in bns
            if m.running_mean is not None and m.running_var is not None
        ]
        reinitialize(module, seed + step)
        if bn_stats == "keep":
            with torch.no_grad():
                for m, mean, var in kept_stats:
                    assert m.running_mean is not None and m.running_var is not None
                    m.running_mean.copy_(mean)
                    m.running_var.copy_(var)
        elif bn_stats == "reset":
            for m in bns:
                m.reset_running_stats()
        current_bns = bns if variant == "independent" else [*randomised_bns, *bns]
        if bn_stats == "recalibrate" and current_bns:
            _recalibrate(work, current_bns, x)
        randomised_bns = current_bns
        for name, e in explainers.items():
            sal, raw = step_maps(block, name, e)
            record(name, sal, raw)
            if keep_maps:
                maps[name].append(sal)
        if variant == "independent":
            module.load_state_dict(saved)
            randomised_bns = []
    bar.close()

    return SanityResult(
        variant=variant,
        blocks=block_names,
        methods=list(explainers),
        targets=t_flat.cpu(),
        similarity={n: {k: np.asarray(v, dtype=np.float64) for k, v in d.items()} for n, d in sims.items()},
        maps={n: torch.stack(v) for n, v in maps.items()} if keep_maps else {},
        seed=seed,
        bn_stats=bn_stats,
    )


def randomized_copy(
    model: nn.Module,
    images: Tensor | None = None,
    *,
    seed: int = 0,
    blocks: Sequence[str] | None = None,
    bn_stats: BnStats = "recalibrate",
) -> nn.Module:
    """A deep copy of ``model`` with every block re-initialised: the last state of the cascading test.

    Block i of ``blocks`` (default :func:`default_blocks`, from the logits down) is re-initialised with
    :func:`reinitialize` under ``seed + i`` (i from 1), as step i of :func:`cascading_randomization`; BatchNorm
    running statistics are then re-estimated from ``images`` (``"recalibrate"``, needs ``images``), reset to mean 0
    and variance 1 (``"reset"``) or kept (``"keep"``).

    Args:
        model: the network; never modified.
        images: (B, C, H, W) images normalised for the model (for the execution order and the recalibration).
        seed: base seed.
        blocks: dotted names of the blocks to randomise.
        bn_stats: ``"recalibrate"``, ``"reset"`` or ``"keep"``.

    Returns:
        the randomised copy, in eval mode.

    Example:
        >>> import torch, torchvision
        >>> net = torchvision.models.resnet18().eval()
        >>> rnd = randomized_copy(net, torch.randn(2, 3, 32, 32))
        >>> bool((rnd.fc.weight != net.fc.weight).any()), net.training
        (True, False)
    """
    if bn_stats not in ("recalibrate", "reset", "keep"):
        raise ValueError(f"bn_stats must be 'recalibrate', 'reset' or 'keep', got {bn_stats!r}.")
    if bn_stats == "recalibrate" and images is None:
        raise ValueError("bn_stats='recalibrate' needs images to re-estimate the BatchNorm statistics.")
    work = copy.deepcopy(model).eval()
    device, dtype = model_device_dtype(work)
    x = None if images is None else validate_images(images).to(device=device, dtype=dtype)
    names = default_blocks(work, x) if blocks is None else list(blocks)
    known = dict(work.named_modules())
    unknown = [b for b in names if b not in known or b == ""]
    if unknown:
        raise ValueError(f"Unknown block name(s) {unknown}; use names from model.named_modules().")
    bns: list[_BatchNorm] = []
    for step, block in enumerate(names, start=1):
        module = work.get_submodule(block)
        saved = {k: v.clone() for k, v in module.state_dict().items() if "running_" in k}
        reinitialize(module, seed + step)  # BatchNorm's reset_parameters also resets its statistics
        if bn_stats == "keep":
            module.load_state_dict(saved, strict=False)
        bns.extend(_batchnorms(module))
    if bn_stats == "recalibrate" and bns and x is not None:
        _recalibrate(work, bns, x)
    return work
