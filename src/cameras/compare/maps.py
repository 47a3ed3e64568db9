"""The computations under the views: the maps of one method for some classes (:func:`_panels`), their contrasts,
Spearman's ρ between maps (:func:`spearman`), the model's top-5 and the method's display name (:func:`method_label`).
"""

from __future__ import annotations

import inspect
import math
import textwrap
import time
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from .result import MethodSpec, ModelLike, Panel

__all__ = ["DEFAULT_METHODS", "method_label", "spearman"]

DEFAULT_METHODS: tuple[str, ...] = ("cameras", "gradcam", "gradcam++", "layercam", "ms-gradcam++")
"""Methods shown by :func:`cameras.compare.compare_methods` when none are named (all run without optional
dependencies)."""

_LABELS = {"cameras": "CAMERAS"}


def method_label(method: MethodSpec) -> str:
    """Display name of a method (``"Grad-CAM++"``) from its registry name, class or instance."""
    cls = _method_class(method) if not isinstance(method, type) and not _is_explainer(method) else method
    if not isinstance(cls, type):
        cls = type(cls)
    label = str(getattr(cls, "label", "") or "")
    name = str(getattr(cls, "name", "") or cls.__name__)
    return label or _LABELS.get(name, name)


def spearman(a: NDArray[np.floating] | Tensor, b: NDArray[np.floating] | Tensor) -> float | None:
    """Spearman rank correlation of two maps of the same shape over all pixels (``None`` if either is constant).

    Example:
        >>> import numpy as np
        >>> spearman(np.array([[0.0, 1.0], [2.0, 3.0]]), np.array([[0.0, 10.0], [20.0, 300.0]]))
        1.0
    """
    from scipy.stats import spearmanr

    x = np.asarray(a.detach().cpu() if isinstance(a, Tensor) else a, dtype=np.float64).ravel()
    y = np.asarray(b.detach().cpu() if isinstance(b, Tensor) else b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"Maps must have the same number of pixels, got {x.size} and {y.size}.")
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(spearmanr(x, y).statistic)


def _bar(total: int, enabled: bool) -> Any:
    """A tqdm bar over ``total`` method calls on standard error (rate, ETA, the call running), or a silent one."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="maps", unit="map", disable=not enabled)


def _is_explainer(method: Any) -> bool:
    from ..methods import Explainer

    return isinstance(method, Explainer)


def _method_class(method: MethodSpec) -> type:
    from ..methods import Explainer, get

    if isinstance(method, str):
        return get(method)
    if isinstance(method, type) and issubclass(method, Explainer):
        return method
    if isinstance(method, Explainer):
        return type(method)
    raise TypeError(f"A method is a registry name, an Explainer class or an explainer, got {type(method).__name__}.")


def _prepare(loaded: ModelLike, image: Any, square: bool) -> Any:
    device = next(iter(loaded.model.parameters()), torch.empty(0)).device
    return loaded.preprocess(image, square=square, device=device)


def _class_index(loaded: ModelLike, cls: int | str) -> int:
    from ..models import class_index, imagenet_labels

    labels = list(loaded.labels)
    return class_index(cls, None if labels == imagenet_labels() else labels)


def _name(loaded: ModelLike, index: int) -> str:
    return loaded.labels[index] if 0 <= index < len(loaded.labels) else str(index)


def _explainer(
    loaded: ModelLike, method: MethodSpec, layer: str | None, method_kwargs: Mapping[str, Mapping[str, Any]] | None
) -> Any:
    if _is_explainer(method):
        return method
    cls = _method_class(method)
    params = inspect.signature(cls).parameters
    kwargs: dict[str, Any] = {}
    for key in ("*", str(getattr(cls, "name", ""))):
        for arg, value in (method_kwargs or {}).get(key, {}).items():
            if key != "*" or arg in params:
                kwargs[arg] = value
    return cls(loaded.model, layer=layer or loaded.layer, **kwargs)


def _panels(
    loaded: ModelLike,
    prepared: Any,
    method: MethodSpec,
    class_ids: list[int] | None,
    layer: str | None,
    method_kwargs: Mapping[str, Mapping[str, Any]] | None,
    title_head: str,
    against: list[list[int]] | None = None,
    gamma: float = 1.0,
    bar: Any = None,
) -> list[Panel]:
    """Maps of one method for the given classes (one call, (1, K) targets) or the top-1 class (``None``); with
    ``against`` (K lists of M rivals) the contrastive maps of the classes against them (``kind="contrastive"``).
    ``bar`` (a tqdm bar or ``None``) names the call while it runs and counts it when done."""
    explainer = _explainer(loaded, method, layer, method_kwargs)
    if bar is not None:
        bar.set_postfix_str(f"{explainer.name} on {loaded.name}" + (" (contrastive)" if against else ""))
    x = prepared.tensor
    start = time.perf_counter()
    if class_ids is None:
        result = explainer(x)
    elif against is None:
        result = explainer(x, torch.tensor([class_ids], dtype=torch.long, device=x.device))
    else:
        rivals = torch.tensor([against], dtype=torch.long, device=x.device)  # (1, K, M)
        result = explainer(
            x, torch.tensor([class_ids], dtype=torch.long, device=x.device), contrast=rivals, gamma=gamma
        )
    seconds = time.perf_counter() - start
    if bar is not None:
        bar.update(1)
    sal = result.saliency[0] if result.saliency.dim() == 4 else result.saliency  # (K, h, w)
    targets = result.targets.reshape(-1)
    probs = result.probabilities.reshape(-1)
    flat = getattr(result, "degenerate", None)
    degenerate = flat.reshape(-1).tolist() if isinstance(flat, Tensor) else [False] * int(targets.numel())
    maps = prepared.to_original(sal).detach().cpu().numpy().astype(np.float32)
    panels = []
    for k in range(maps.shape[0]):
        idx, p = int(targets[k]), float(probs[k])
        name = _name(loaded, idx)
        title = f"{title_head}\n{textwrap.shorten(name, 32)} (p={p:.2f})"
        rivals_k = [] if against is None else against[k]
        if against is not None:
            minus = textwrap.shorten(_name(loaded, rivals_k[0]), 22) if len(rivals_k) == 1 else "mean(others)"
            weight = "" if gamma == 1.0 else f"{gamma:g}·"
            title = f"{title_head} contrastive\n{textwrap.shorten(name, 22)}\n − {weight}{minus}"
        panels.append(
            Panel(
                title=title,
                saliency=maps[k],
                method=str(explainer.name),
                model=loaded.name,
                class_index=idx,
                class_name=name,
                probability=p,
                kind="map" if against is None else "contrastive",
                against=list(rivals_k),
                seconds=seconds / maps.shape[0],
                degenerate=bool(degenerate[k]),
            )
        )
    return panels


def _pairs(named: list[tuple[str, Panel]]) -> list[dict[str, Any]]:
    return [
        {"a": na, "b": nb, "rho": spearman(pa.saliency, pb.saliency)} for (na, pa), (nb, pb) in combinations(named, 2)
    ]


def _class_ids(loaded: ModelLike, classes: Sequence[int | str]) -> list[int]:
    """Two or more distinct class indices from names or indices."""
    if len(classes) < 2:
        raise ValueError("Give at least two classes to compare (e.g. 'tiger cat', 'Egyptian cat').")
    ids = [_class_index(loaded, c) for c in classes]
    if len(set(ids)) != len(ids):
        raise ValueError(f"The classes must differ, got indices {ids}.")
    return ids


def _check_gamma(gamma: float, contrastive: bool) -> None:
    if isinstance(gamma, bool) or not isinstance(gamma, int | float):
        raise TypeError(f"gamma must be a real number, got {type(gamma).__name__}.")
    if not math.isfinite(gamma):
        raise ValueError(f"gamma must be finite, got {gamma}.")
    if gamma != 1.0 and not contrastive:
        raise ValueError("gamma applies to contrastive maps: pass contrastive=True as well.")


def _check_alpha(alpha: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")


def _others(ids: list[int]) -> list[list[int]]:
    """For each class, the other classes (its rivals in a contrastive view)."""
    return [[j for j in ids if j != i] for i in ids]


def _class_rows(
    loaded: ModelLike,
    prepared: Any,
    method: MethodSpec,
    ids: list[int],
    layer: str | None,
    method_kwargs: Mapping[str, Mapping[str, Any]] | None,
    head: str,
    contrastive: bool,
    gamma: float,
    bar: Any = None,
) -> tuple[list[Panel], list[Panel]]:
    """The class maps of one method and model, and their contrasts: the contrastive maps of each class against the
    others (``contrastive``) or the ``ReLU`` differences of the maps."""
    maps = _panels(loaded, prepared, method, ids, layer, method_kwargs, head, bar=bar)
    if contrastive:
        return maps, _panels(loaded, prepared, method, ids, layer, method_kwargs, head, _others(ids), gamma, bar)
    return maps, _relu_contrasts(maps)


def _relu_contrasts(maps: list[Panel]) -> list[Panel]:
    """``ReLU(M_k − max_{j≠k} M_j)`` of each map against the others (not renormalised)."""
    contrasts = []
    for k, panel in enumerate(maps):
        others = [p for j, p in enumerate(maps) if j != k]
        rest = np.max(np.stack([p.saliency for p in others]), axis=0)
        diff = np.maximum(panel.saliency - rest, 0.0).astype(np.float32)
        minus = textwrap.shorten(others[0].class_name, 22) if len(others) == 1 else "max(others)"
        plus = textwrap.shorten(panel.class_name, 22)
        contrasts.append(
            Panel(
                title=f"contrast (max {float(diff.max()):.2f})\nReLU({plus}\n − {minus})",
                saliency=diff,
                method=panel.method,
                model=panel.model,
                class_index=panel.class_index,
                class_name=panel.class_name,
                probability=panel.probability,
                kind="contrast",
                against=[p.class_index for p in others],
            )
        )
    return contrasts


def _class_pairs(maps: list[Panel], second: list[Panel]) -> list[dict[str, Any]]:
    """ρ of every pair of class maps (``"form": "plain"``), then of every pair of contrastive maps."""
    pairs = [{**p, "form": "plain"} for p in _pairs([(m.class_name, m) for m in maps])]
    if second and second[0].kind == "contrastive":
        pairs += [{**p, "form": "contrastive"} for p in _pairs([(m.class_name, m) for m in second])]
    return pairs


@torch.no_grad()
def _top5(loaded: ModelLike, x: Tensor) -> list[dict[str, Any]]:
    from ..engine.tap import extract_logits

    was = loaded.model.training
    loaded.model.eval()
    try:
        probs = extract_logits(loaded.model(x)).float().softmax(dim=1)[0]
    finally:
        loaded.model.train(was)
    top = probs.topk(min(5, probs.numel()))
    return [
        {"class_index": int(i), "class_name": _name(loaded, int(i)), "probability": float(p)}
        for p, i in zip(top.values.tolist(), top.indices.tolist())
    ]


def _info(image_name: str | None, models: Sequence[ModelLike], prepared: Any, layer: str | None) -> dict[str, Any]:
    return {
        "image": image_name or "image",
        "models": [m.name for m in models],
        "layers": {m.name: layer or m.layer for m in models},
        "input_size": list(prepared.tensor.shape[-2:]),
    }
