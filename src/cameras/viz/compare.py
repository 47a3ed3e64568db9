"""Comparison views (the CAMERAS paper's "insights", Jalwana et al., CVPR 2021): labelled grids of saliency maps.

Four views, each returning a :class:`Comparison` (a matplotlib figure plus the maps and numbers it shows):

* :func:`compare_methods` — several methods, one model, one class;
* :func:`compare_classes` — several classes of one photo, one method, plus contrast maps
  :math:`\\mathrm{ReLU}(M_k - \\max_{j \\ne k} M_j)` (for two classes: ``ReLU(A − B)`` and ``ReLU(B − A)``): what is
  specific to each class; or, with ``contrastive=True``, each class's *contrastive* map, the map of the score
  :math:`y_k - \\gamma\\,\\mathrm{mean}_{j \\ne k}\\, y_j` (``contrast=`` of every method, Finer-CAM's score): what
  the model uses to prefer that class over the others, rather than a difference of two pictures;
* :func:`compare_models` — several models, one method, one class, with the Spearman rank correlation between every
  pair of models' maps ("relative importance of input features for different models");
* :func:`compare_class_grid` — the CAMERAS paper's Fig. 5: similar classes across methods or models, one row per
  method (or model), one column per class, then the row's contrast (or contrastive) maps, all on one colour scale.

Every map is computed on the model's input, brought back onto the photo's pixels (bilinear) and drawn over the photo
with one colour scale [0, 1] shared by all map panels (one colour bar). Contrast maps are differences of normalised
maps and are *not* renormalised: they share a second colour bar running from 0 to the largest contrast value, so
their colours compare with each other and the number in their title tells their size against the maps' [0, 1].
Spearman's ρ is computed with :func:`scipy.stats.spearmanr` over all pixels of two maps at the photo's resolution
(1 = same ranking of pixels; higher means more similar; ``None`` when a map is constant).

Models are passed as :class:`cameras.models.LoadedModel` objects (or anything with ``name``, ``model``, ``layer``,
``preprocess`` and ``labels``). Figures use matplotlib's object API (``matplotlib.figure.Figure``, Agg canvas), never
pyplot, so nothing is shown and no global state changes.
"""

from __future__ import annotations

import inspect
import math
import re
import textwrap
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from matplotlib.figure import Figure
from numpy.typing import NDArray
from torch import Tensor, nn

__all__ = [
    "DEFAULT_METHODS",
    "Comparison",
    "ModelLike",
    "Panel",
    "compare_class_grid",
    "compare_classes",
    "compare_methods",
    "compare_models",
    "method_label",
    "spearman",
]

DEFAULT_METHODS: tuple[str, ...] = ("cameras", "gradcam", "gradcam++", "layercam", "ms-gradcam++")
"""Methods shown by :func:`compare_methods` when none are named (all run without optional dependencies)."""

MethodSpec = Any
"""A registry name (``"gradcam++"``), a method class, or a constructed explainer."""

_LABELS = {"cameras": "CAMERAS"}


class ModelLike(Protocol):
    """What the views need from a model: :class:`cameras.models.LoadedModel` has all of it."""

    @property
    def name(self) -> str: ...
    @property
    def model(self) -> nn.Module: ...
    @property
    def layer(self) -> str: ...
    @property
    def preprocess(self) -> Any: ...
    @property
    def labels(self) -> list[str]: ...


@dataclass
class Panel:
    """One map of a comparison.

    Attributes:
        title: the panel's title as drawn.
        saliency: (H0, W0) float32 map in [0, 1] on the photo's pixels.
        method: method registry name (``"gradcam++"``).
        model: model name.
        class_index: class explained (for a contrast, the class whose specific evidence is shown).
        class_name: its name.
        probability: softmax probability of the class for this model and photo.
        kind: ``"map"``, ``"contrast"`` (``ReLU(M_k − max_j M_j)`` of two normalised maps) or ``"contrastive"``
            (the normalised map of the score :math:`y_k - \\gamma\\,\\mathrm{mean}_j\\, y_{d_j}`).
        against: for a contrast or a contrastive map, the class indices it is against.
        seconds: time to compute the map.
        degenerate: the method's map is constant (:attr:`cameras.Result.degenerate`): it shows nothing (drawn as
            zeros) and its correlations are undefined.
        row: in a grid (:func:`compare_class_grid`), the label of the panel's row (method or model).
    """

    title: str
    saliency: NDArray[np.float32]
    method: str
    model: str
    class_index: int
    class_name: str
    probability: float
    kind: str = "map"
    against: list[int] = field(default_factory=list)
    seconds: float = 0.0
    degenerate: bool = False
    row: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready description (the map itself is summarised by its mean and maximum)."""
        return {
            "title": self.title,
            "kind": self.kind,
            "method": self.method,
            "model": self.model,
            "class_index": self.class_index,
            "class_name": self.class_name,
            "probability": self.probability,
            "against": self.against,
            "seconds": round(self.seconds, 4),
            "degenerate": self.degenerate,
            **({"row": self.row} if self.row else {}),
            "map_mean": float(self.saliency.mean()),
            "map_max": float(self.saliency.max()),
        }


@dataclass
class Comparison:
    """A comparison view: the figure, the photo, the panels and the numbers.

    Attributes:
        view: ``"methods"``, ``"classes"``, ``"models"`` or ``"class_grid"``.
        figure: the matplotlib figure (Agg canvas).
        photo: (H0, W0, 3) uint8 photo.
        panels: the maps, in drawing order (contrasts after the maps).
        spearman: one entry per pair of map panels: ``{"a": name, "b": name, "rho": ρ or None}``; in the classes and
            grid views also ``"form"`` (``"plain"`` or ``"contrastive"``), and in the grid ``"row"``.
        info: what was computed (image, models, layer, input sizes, top predictions …).
    """

    view: str
    figure: Figure
    photo: NDArray[np.uint8]
    panels: list[Panel]
    spearman: list[dict[str, Any]]
    info: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """Everything but the pixels, ready for :func:`json.dumps`."""
        return {
            "view": self.view,
            **self.info,
            "photo_size": [int(self.photo.shape[0]), int(self.photo.shape[1])],
            "panels": [p.to_json() for p in self.panels],
            "spearman": self.spearman,
        }

    def content(self) -> list[Any]:
        """What the comparison shows (the view, the photo, and each panel's kind, method, model, class and rivals):
        two comparisons with the same content are the same figure, whatever their numbers."""
        panels = [[p.kind, p.method, p.model, p.class_index, list(p.against), p.row] for p in self.panels]
        return [self.view, str(self.info.get("image", "")), panels]

    def save(self, out_dir: str | Path, stem: str | None = None, dpi: int = 120) -> tuple[Path, Path]:
        """Write ``<stem>.png`` (the grid) and ``<stem>.json`` (:meth:`to_json`) into ``out_dir`` (created), each
        atomically (:mod:`cameras.io.atomic`).

        Without ``stem`` the name is ``compare_VIEW_PHOTO``; when the folder already holds a figure of that name
        showing another comparison (other methods, models or classes: :meth:`content`), this one is numbered
        ``compare_VIEW_PHOTO_2``, ``_3`` … instead of replacing it; the same comparison again replaces its own files.

        Returns:
            (png path, json path).
        """
        from ..io.atomic import write_figure, write_json

        out = Path(out_dir)
        if stem is None:
            stem = _free_stem(out, f"compare_{self.view}_{_slug(str(self.info.get('image', 'image')))}", self)
        png = write_figure(out / f"{stem}.png", self.figure, dpi=dpi, facecolor="white")
        path = write_json(out / f"{stem}.json", {**self.to_json(), "png": png.name})
        return png, path


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


# -- the three views -----------------------------------------------------------------------------------------------


def compare_methods(
    loaded: ModelLike,
    image: Any,
    methods: Sequence[MethodSpec] = DEFAULT_METHODS,
    target: int | str | None = None,
    *,
    layer: str | None = None,
    method_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    square: bool = False,
    image_name: str | None = None,
    alpha: float = 0.5,
    progress: bool = False,
) -> Comparison:
    """Several methods side by side for one model and one class.

    Args:
        loaded: the model (:class:`cameras.models.LoadedModel` or alike).
        image: a path, PIL image or (H, W, 3) uint8 array.
        methods: registry names, method classes or explainers (default :data:`DEFAULT_METHODS`).
        target: class index or name; ``None``: every method explains the model's top-1 class.
        layer: layer for the layer-based methods (default ``loaded.layer``).
        method_kwargs: extra constructor arguments per registry name, e.g. ``{"cameras": {"resolutions": [1.0, 2.0]}}``
            (a ``"*"`` entry applies to every method that accepts the argument).
        square: resize the photo to a square input (the paper's setting) instead of keeping its aspect ratio.
        image_name: name of the photo in titles and the JSON.
        alpha: opacity of the maps over the photo.
        progress: a progress bar on standard error over the method calls (one per method here), with rate and ETA.

    Returns:
        :class:`Comparison` with one panel per method; ``spearman`` compares every pair of methods.

    Example:
        >>> import torch, torchvision, numpy as np
        >>> from cameras.models import LoadedModel, Preprocess
        >>> net = torchvision.models.resnet18(num_classes=3).eval()
        >>> m = LoadedModel("r18", net, "layer4", Preprocess(size=64), ["a", "b", "c"])
        >>> view = compare_methods(m, np.zeros((64, 96, 3), np.uint8), ["gradcam", "layercam"], target="b")
        >>> [p.method for p in view.panels], view.panels[0].saliency.shape
        (['gradcam', 'layercam'], (64, 96))
    """
    if len(methods) == 0:
        raise ValueError("Give at least one method to compare.")
    prepared = _prepare(loaded, image, square)
    class_id = None if target is None else _class_index(loaded, target)
    with _bar(len(methods), progress) as bar:
        panels = [
            _panels(loaded, prepared, m, None if class_id is None else [class_id], layer, method_kwargs, head, bar=bar)[
                0
            ]
            for m in methods
            for head in [f"{method_label(m)}\n{loaded.name}"]
        ]
    pairs = _pairs([(p.method, p) for p in panels])
    info = _info(image_name, [loaded], prepared, layer)
    photo = prepared.original_rgb
    figure = _draw(photo, panels, None, image_name, "Methods side by side", _footer(pairs), alpha)
    return Comparison("methods", figure, photo, panels, pairs, info)


def compare_classes(
    loaded: ModelLike,
    image: Any,
    classes: Sequence[int | str],
    method: MethodSpec = "cameras",
    *,
    layer: str | None = None,
    method_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    square: bool = False,
    image_name: str | None = None,
    alpha: float = 0.5,
    contrastive: bool = False,
    gamma: float = 1.0,
    progress: bool = False,
) -> Comparison:
    """Maps of several classes of one photo side by side, with the contrast of each class against the others.

    Contrast of class k: :math:`\\mathrm{ReLU}(M_k - \\max_{j \\ne k} M_j)` on the photo's pixels (for two classes
    A, B: ``ReLU(A − B)`` and ``ReLU(B − A)``), not renormalised; the contrasts share their own colour bar (0 to the
    largest contrast) and each title gives its maximum. The K maps come from one call with (1, K) targets.

    With ``contrastive=True`` the second row holds instead each class's contrastive map: the method's map of the
    score :math:`y_k - \\gamma\\,\\mathrm{mean}_{j \\ne k}\\, y_j` (``contrast=``, one call with (1, K, K−1) rivals),
    normalised to [0, 1] like the maps and drawn on their colour scale. ``spearman`` then holds the rank correlation
    of every pair of classes in both forms (``"form"``: ``"plain"`` and ``"contrastive"``). A plain ρ near 1 says
    that the method shows the same pixels for both classes. Read the contrastive ρ with care: for two classes,
    γ = 1 and a method linear in the gradient (CAMERAS, Grad-CAM, HiResCAM, XGrad-CAM), the two contrastive scores
    are exact opposites, so the maps before the ReLU are too, their supports are disjoint and ρ is negative by
    construction. The pictures and the peaks (and ``cameras evaluate``'s ``discrimination``) say more than the sign.

    Args:
        loaded: the model.
        image: a path, PIL image or (H, W, 3) uint8 array.
        classes: two or more class indices or names (``["tiger cat", "Egyptian cat"]``).
        method: registry name, class or explainer (default CAMERAS).
        layer, method_kwargs, square, image_name, alpha, progress: as in :func:`compare_methods`.
        contrastive: second row of contrastive maps instead of ``ReLU`` differences.
        gamma: weight of the other classes in the contrastive score (with ``contrastive``).

    Returns:
        :class:`Comparison`: K map panels then K contrast (or contrastive) panels; ``info["top5"]`` lists the model's
        top-5 classes.

    Example:
        >>> import torch, torchvision, numpy as np
        >>> from cameras.models import LoadedModel, Preprocess
        >>> net = torchvision.models.resnet18(num_classes=3).eval()
        >>> m = LoadedModel("r18", net, "layer4", Preprocess(size=64), ["a", "b", "c"])
        >>> view = compare_classes(m, np.zeros((64, 64, 3), np.uint8), ["a", 2], method="gradcam")
        >>> [(p.kind, p.class_index) for p in view.panels]
        [('map', 0), ('map', 2), ('contrast', 0), ('contrast', 2)]
        >>> view = compare_classes(m, np.zeros((64, 64, 3), np.uint8), ["a", 2], "gradcam", contrastive=True)
        >>> [(p.kind, p.against) for p in view.panels[2:]], [s["form"] for s in view.spearman]
        ([('contrastive', [2]), ('contrastive', [0])], ['plain', 'contrastive'])
    """
    ids = _class_ids(loaded, classes)
    _check_gamma(gamma, contrastive)
    prepared = _prepare(loaded, image, square)
    label = method_label(method)
    head = f"{label}\n{loaded.name}"
    with _bar(2 if contrastive else 1, progress) as bar:
        maps, second = _class_rows(loaded, prepared, method, ids, layer, method_kwargs, head, contrastive, gamma, bar)
    pairs = _class_pairs(maps, second)
    info = _info(image_name, [loaded], prepared, layer)
    info["method"] = maps[0].method
    info["top5"] = _top5(loaded, prepared.tensor)
    if contrastive:
        info["gamma"] = gamma
    side = "top-5:\n" + "\n".join(
        textwrap.shorten(f"{t['probability']:.2f}  {t['class_name']}", 30) for t in info["top5"]
    )
    photo = prepared.original_rgb
    title = f"Similar classes — {label}" + (" — plain (top) and contrastive (bottom) maps" if contrastive else "")
    figure = _draw(photo, maps, second, image_name, title, _footer(pairs), alpha, side_text=side)
    return Comparison("classes", figure, photo, [*maps, *second], pairs, info)


def compare_class_grid(
    models: Sequence[ModelLike],
    image: Any,
    classes: Sequence[int | str],
    methods: Sequence[MethodSpec] = ("cameras",),
    *,
    layer: str | None = None,
    method_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    square: bool = False,
    image_name: str | None = None,
    alpha: float = 0.5,
    contrastive: bool = False,
    gamma: float = 1.0,
    progress: bool = False,
) -> Comparison:
    """Similar classes across methods or models (the CAMERAS paper's Fig. 5): one row per (model, method), one
    column per class, then the row's contrast maps, every panel on one colour scale [0, 1].

    Row r holds the K class maps of one method on one model, then the K contrasts of that row: ``ReLU(M_k − max_j
    M_j)`` of the row's own maps (in [0, 1], since the maps are), or with ``contrastive=True`` the contrastive maps
    of the scores :math:`y_k - \\gamma\\,\\mathrm{mean}_{j \\ne k}\\, y_j`. One colour bar serves every panel, so
    that rows compare with each other. ``spearman`` holds, per row, the rank correlation of every pair of classes
    (``"row"``, ``"form"``), both forms when ``contrastive``.

    Args:
        models: one or more models (:class:`cameras.models.LoadedModel` or alike; classes are resolved with the
            first one's labels).
        image: a path, PIL image or (H, W, 3) uint8 array.
        classes: two or more class indices or names.
        methods: one or more registry names or method classes (an explainer instance only with one model).
        layer: layer for the layer-based methods with one model (default: each model's ``layer``).
        method_kwargs, square, image_name, alpha, progress: as in :func:`compare_methods`.
        contrastive: contrastive maps instead of ``ReLU`` differences.
        gamma: weight of the other classes in the contrastive score.

    Returns:
        :class:`Comparison` (view ``"class_grid"``), panels row by row (K maps, then K contrasts), each with ``row``.

    Raises:
        ValueError: fewer than two classes, repeated classes, no model or method, a ``layer`` with several models,
            repeated rows.

    Example:
        >>> import torch, torchvision, numpy as np
        >>> from cameras.models import LoadedModel, Preprocess
        >>> net = torchvision.models.resnet18(num_classes=3).eval()
        >>> m = LoadedModel("r18", net, "layer4", Preprocess(size=64), ["a", "b", "c"])
        >>> grid = compare_class_grid([m], np.zeros((64, 64, 3), np.uint8), ["a", "b"], ["gradcam", "layercam"])
        >>> [(p.row, p.kind, p.class_name) for p in grid.panels][:3]
        [('Grad-CAM', 'map', 'a'), ('Grad-CAM', 'map', 'b'), ('Grad-CAM', 'contrast', 'a')]
    """
    if len(models) == 0 or len(methods) == 0:
        raise ValueError("Give at least one model and one method for the grid.")
    if layer is not None and len(models) > 1:
        raise ValueError("layer applies to one model; with several models each uses its default layer.")
    if len(models) > 1 and any(_is_explainer(m) for m in methods):
        raise TypeError("With several models a method is a name or class: an explainer instance is bound to one model.")
    ids = _class_ids(models[0], classes)
    _check_gamma(gamma, contrastive)
    rows: list[tuple[str, list[Panel]]] = []
    prepared_all = [_prepare(m, image, square) for m in models]
    with _bar(len(models) * len(methods) * (2 if contrastive else 1), progress) as bar:
        for loaded, prepared in zip(models, prepared_all):
            for method in methods:
                label = method_label(method)
                row = label if len(models) == 1 else loaded.name if len(methods) == 1 else f"{label} · {loaded.name}"
                head = row
                maps, second = _class_rows(
                    loaded, prepared, method, ids, layer, method_kwargs, head, contrastive, gamma, bar
                )
                for p in (*maps, *second):
                    p.row = row
                rows.append((row, [*maps, *second]))
    labels = [r for r, _ in rows]
    if len(set(labels)) != len(labels):
        raise ValueError(f"The rows must differ, got {labels}.")
    pairs = [
        {"row": row, **pair} for row, panels in rows for pair in _class_pairs(panels[: len(ids)], panels[len(ids) :])
    ]
    info = _info(image_name, models, prepared_all[0], layer)
    info["methods"] = [method_label(m) for m in methods]
    info["classes"] = [{"class_index": i, "class_name": _name(models[0], i)} for i in ids]
    info["rows"] = labels
    if contrastive:
        info["gamma"] = gamma
    photo = prepared_all[0].original_rgb
    kind = "contrastive maps" if contrastive else "contrasts ReLU(A − B)"
    title = f"Similar classes across {'models' if len(models) > 1 else 'methods'} — maps, then {kind}"
    figure = _draw_grid(photo, rows, image_name, title, _grid_footer(pairs), alpha)
    return Comparison("class_grid", figure, photo, [p for _, ps in rows for p in ps], pairs, info)


def compare_models(
    models: Sequence[ModelLike],
    image: Any,
    method: MethodSpec = "cameras",
    target: int | str | None = None,
    *,
    method_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    square: bool = False,
    image_name: str | None = None,
    alpha: float = 0.5,
    progress: bool = False,
) -> Comparison:
    """One method on several models side by side, with the Spearman rank correlation of every pair of maps.

    Each model gets the photo through its own preprocessing (native resolution) and explains at its default layer;
    maps are compared on the photo's pixels. The class is ``target`` or, if ``None``, the first model's top-1 class,
    explained by every model (so that the maps answer the same question).

    Args:
        models: two or more models (:class:`cameras.models.LoadedModel` or alike).
        image: a path, PIL image or (H, W, 3) uint8 array.
        method: registry name, class or explainer *class* (an explainer instance is bound to one model).
        target: class index or name (default: the first model's top-1).
        method_kwargs, square, image_name, alpha, progress: as in :func:`compare_methods`.

    Returns:
        :class:`Comparison` with one panel per model; ``spearman`` holds ρ for every pair of models.

    Example:
        >>> import torch, torchvision, numpy as np
        >>> from cameras.models import LoadedModel, Preprocess
        >>> def net():
        ...     return torchvision.models.resnet18(num_classes=3).eval()
        >>> a = LoadedModel("a", net(), "layer4", Preprocess(64), list("xyz"))
        >>> b = LoadedModel("b", net(), "layer4", Preprocess(96), list("xyz"))
        >>> view = compare_models([a, b], np.zeros((64, 64, 3), np.uint8), "gradcam", target=1)
        >>> [(s["a"], s["b"]) for s in view.spearman]
        [('a', 'b')]
    """
    if len(models) < 2:
        raise ValueError("Give at least two models to compare.")
    if _is_explainer(method):
        raise TypeError("compare_models needs a method name or class: an explainer instance is bound to one model.")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"The models must differ, got {names}.")
    prepared_all = [_prepare(m, image, square) for m in models]
    if target is None:
        class_id = int(_top5(models[0], prepared_all[0].tensor)[0]["class_index"])
    else:
        class_id = _class_index(models[0], target)
    label = method_label(method)
    with _bar(len(models), progress) as bar:
        panels = [
            _panels(m, p, method, [class_id], None, method_kwargs, f"{label}\n{m.name}", bar=bar)[0]
            for m, p in zip(models, prepared_all)
        ]
    pairs = _pairs([(p.model, p) for p in panels])
    info = _info(image_name, models, prepared_all[0], None)
    info["method"] = panels[0].method
    info["class_index"] = class_id
    info["class_name"] = panels[0].class_name
    info["input_sizes"] = {m.name: list(p.tensor.shape[-2:]) for m, p in zip(models, prepared_all)}
    photo = prepared_all[0].original_rgb
    title = f"Models side by side — {label}, class {panels[0].class_name!r}"
    figure = _draw(photo, panels, None, image_name, title, _footer(pairs, "Spearman ρ between models' maps"), alpha)
    return Comparison("models", figure, photo, panels, pairs, info)


# -- helpers -------------------------------------------------------------------------------------------------------


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


def _grid_footer(pairs: list[dict[str, Any]]) -> str:
    """One line per row: the ρ of its classes' maps in each form (pairs named when a row has several)."""
    rows = list(dict.fromkeys(p["row"] for p in pairs))
    several = len(pairs) > len(rows) * len({p["form"] for p in pairs})
    lines = []
    for row in rows:
        items = []
        for p in pairs:
            if p["row"] != row:
                continue
            rho = "n/a" if p["rho"] is None else format(p["rho"], ".2f")
            names = f" {p['a']} – {p['b']}" if several else ""
            items.append(f"{p['form']}{names} {rho}")
        lines.append(f"{row}: " + ", ".join(items))
    return "Spearman ρ between the classes' maps:\n" + "\n".join(lines)


def _footer(pairs: list[dict[str, Any]], head: str = "Spearman ρ") -> str:
    """Pairs as text lines; beyond 6 pairs only those with the first panel (all of them are in the JSON)."""
    if not pairs:
        return ""
    if len(pairs) > 6:
        first = pairs[0]["a"]
        pairs = [p for p in pairs if p["a"] == first]
        head = f"{head} with {first} (all pairs in the JSON)"
    forms = len({p.get("form") for p in pairs}) > 1  # plain and contrastive pairs: say which is which
    items = [
        (f"{p['form']} " if forms else "")
        + f"{p['a']} – {p['b']}: {'n/a' if p['rho'] is None else format(p['rho'], '.2f')}"
        for p in pairs
    ]
    lines, line = [], ""
    for item in items:
        candidate = f"{line}   ·   {item}" if line else item
        if len(candidate) > 110 and line:
            lines.append(line)
            candidate = item
        line = candidate
    lines.append(line)
    return f"{head}:  " + "\n".join(lines)


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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", Path(text).stem).strip("_").lower() or "image"


def _draw(
    photo: NDArray[np.uint8],
    row1: list[Panel],
    row2: list[Panel] | None,
    image_name: str | None,
    title: str,
    footer: str,
    alpha: float,
    side_text: str | None = None,
) -> Figure:
    """Photo + panels on a grid, maps over the photo in 'jet' on [0, 1], one shared colour bar."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    h0, w0 = photo.shape[:2]
    if row2 is not None:
        ncols, nrows = 1 + len(row1), 2
        cells: list[Panel | str | None] = ["photo", *row1, "text" if side_text else None, *row2]
    else:
        n = 1 + len(row1)
        ncols = n if n <= 4 else math.ceil(n / 2) if n <= 8 else 4
        nrows = math.ceil(n / ncols)
        cells = ["photo", *row1, *([None] * (ncols * nrows - n))]
    panel_w = 3.3
    panel_h = panel_w * h0 / w0 + 0.75
    footer_lines = footer.count("\n") + 1 if footer else 0
    fig = Figure(figsize=(ncols * panel_w + 1.1, nrows * panel_h + 0.6 + 0.22 * footer_lines), layout="constrained")
    FigureCanvasAgg(fig)  # the Agg canvas: renders off-screen, whatever pyplot's backend is
    axes = fig.subplots(nrows, ncols, squeeze=False)
    cmap = colormaps["jet"]
    contrast_max = max([float(p.saliency.max()) for p in row2 or []] + [1e-6])
    for ax, cell in zip(axes.flat, cells):
        ax.set_xticks([])
        ax.set_yticks([])
        if cell is None:
            ax.set_axis_off()
        elif cell == "text":
            ax.set_axis_off()
            ax.text(
                0.02, 0.95, side_text or "", va="top", ha="left", fontsize=9, family="monospace", transform=ax.transAxes
            )
        elif cell == "photo":
            ax.imshow(photo)
            ax.set_title(f"input\n{image_name or 'image'}\n{h0}×{w0} px", fontsize=9)
        else:
            assert isinstance(cell, Panel)
            vmax = contrast_max if cell.kind == "contrast" else 1.0
            ax.imshow(photo)
            ax.imshow(cell.saliency, cmap=cmap, vmin=0.0, vmax=vmax, alpha=alpha, interpolation="bilinear")
            ax.set_title(cell.title, fontsize=9)
    fig.suptitle(title, fontsize=11, fontweight="bold")
    mappable = ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap)
    if row2 is None or all(p.kind != "contrast" for p in row2):  # maps (and contrastive maps): one scale [0, 1]
        fig.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.8, aspect=30, pad=0.01, label="saliency (0–1)")
    else:
        fig.colorbar(mappable, ax=axes[0].tolist(), shrink=0.9, aspect=20, pad=0.01, label="saliency (0–1)")
        contrast = ScalarMappable(norm=Normalize(0.0, contrast_max), cmap=cmap)
        fig.colorbar(contrast, ax=axes[1].tolist(), shrink=0.9, aspect=20, pad=0.01, label="contrast")
    if footer:
        fig.supxlabel(footer, fontsize=9)
    return fig


def _draw_grid(
    photo: NDArray[np.uint8],
    rows: list[tuple[str, list[Panel]]],
    image_name: str | None,
    title: str,
    footer: str,
    alpha: float,
) -> Figure:
    """One row per (model, method): the photo, then the row's panels; every map on 'jet' over [0, 1], one colour
    bar for the whole grid."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    h0, w0 = photo.shape[:2]
    ncols = 1 + max(len(panels) for _, panels in rows)
    panel_w = 2.8
    panel_h = panel_w * h0 / w0 + 0.85
    footer_lines = footer.count("\n") + 1 if footer else 0
    fig = Figure(figsize=(ncols * panel_w + 1.1, len(rows) * panel_h + 0.6 + 0.22 * footer_lines), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    cmap = colormaps["jet"]
    for r, (label, panels) in enumerate(rows):
        cells: list[Panel | None] = [*panels, *([None] * (ncols - 1 - len(panels)))]
        photo_ax = axes[r, 0]
        photo_ax.imshow(photo)
        photo_ax.set_title(f"{label}\n{image_name or 'image'}", fontsize=9)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
        for ax, cell in zip(axes[r, 1:], cells):
            if cell is None:
                ax.set_axis_off()
                continue
            ax.imshow(photo)
            ax.imshow(cell.saliency, cmap=cmap, vmin=0.0, vmax=1.0, alpha=alpha, interpolation="bilinear")
            ax.set_title(cell.title, fontsize=8)
    fig.suptitle(title, fontsize=11, fontweight="bold")
    fig.colorbar(
        ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap),
        ax=axes.ravel().tolist(),
        shrink=0.8,
        aspect=30,
        pad=0.01,
        label="saliency / contrast (0–1, one scale)",
    )
    if footer:
        fig.supxlabel(footer, fontsize=9)
    return fig


def _free_stem(out: Path, base: str, view: Comparison) -> str:
    """``base``, or ``base_N`` (the first N ≥ 2) when ``out`` holds a figure of that name of another comparison."""
    import json

    for n in range(1, 10_000):
        stem = base if n == 1 else f"{base}_{n}"
        sidecar = out / f"{stem}.json"
        if not sidecar.exists() and not (out / f"{stem}.png").exists():
            return stem
        try:
            old = json.loads(sidecar.read_text(encoding="utf-8"))
            panels = [
                [p["kind"], p["method"], p["model"], p["class_index"], list(p["against"]), p.get("row", "")]
                for p in old["panels"]
            ]
            same = [old["view"], str(old.get("image", "")), panels] == view.content()
        except (OSError, ValueError, KeyError, TypeError):
            same = False  # a figure without a readable sidecar is not ours to replace
        if same:
            return stem
    raise OSError(f"{out}: 10,000 comparisons of one photo and view; use another folder")
