"""The four comparison views, computed: each returns a :class:`~cameras.compare.Comparison` (maps, numbers; its
figure is drawn on first use by :mod:`cameras.viz.compare`), and :func:`compare` picks the view from what lists
several items, as ``cameras compare`` does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .maps import (
    DEFAULT_METHODS,
    _bar,
    _check_alpha,
    _check_gamma,
    _class_ids,
    _class_index,
    _class_pairs,
    _class_rows,
    _info,
    _is_explainer,
    _name,
    _pairs,
    _panels,
    _prepare,
    _top5,
    method_label,
)
from .result import Comparison, MethodSpec, ModelLike, Panel

__all__ = ["choose_view", "compare", "compare_class_grid", "compare_classes", "compare_methods", "compare_models"]


def choose_view(
    methods: Sequence[Any],
    classes: Sequence[Any],
    models: Sequence[Any],
    *,
    contrastive: bool = False,
    gamma: float | None = None,
    layer: str | None = None,
) -> str:
    """The view :func:`compare` draws for these lists (checked before any model is loaded; the messages name the
    options of ``cameras compare``, spelled as the keywords of :func:`compare`).

    Several ``classes`` and several ``methods`` or ``models`` → ``"class_grid"``; several ``models`` →
    ``"models"``; several ``classes`` → ``"classes"``; otherwise ``"methods"``.

    Args:
        methods, classes, models: what is compared (an empty ``models`` counts as one model).
        contrastive: contrastive maps (needs two or more ``classes``).
        gamma: the weight of the contrastive score; ``None``: not given (``1``), anything else needs ``contrastive``.
        layer: a layer (one model only).

    Raises:
        ValueError: several ``methods`` and several ``models`` (one thing at a time, unless ``classes`` lists
            several too), ``contrastive`` with fewer than two ``classes``, ``gamma`` without ``contrastive``, or
            ``layer`` with several ``models``.

    Example:
        >>> choose_view(["gradcam", "layercam"], ["tiger cat", "Egyptian cat"], ["efficientnet_lite0"])
        'class_grid'
    """
    lists = (("--methods", methods), ("--classes", classes), ("--models", models))
    several = [n for n, v in lists if len(v) > 1]
    grid = len(classes) > 1 and len(several) == 2
    if len(several) > 1 and not grid:
        raise ValueError(
            f"compare one thing at a time: {' and '.join(several)} {'both' if len(several) == 2 else 'all'} list "
            "several items (only --classes combines with --methods or --models)"
        )
    if contrastive and len(classes) < 2:
        raise ValueError("--contrastive needs two or more --classes (each is explained against the others)")
    if gamma is not None and not contrastive:
        raise ValueError("--gamma applies to --contrastive maps")
    if len(models) > 1 and layer:
        raise ValueError("--layer applies to one model; with several --models each uses its default layer")
    return "class_grid" if grid else "models" if len(models) > 1 else "classes" if len(classes) > 1 else "methods"


def compare(
    models: Sequence[ModelLike],
    image: Any,
    *,
    methods: Sequence[MethodSpec] = (),
    classes: Sequence[int | str] = (),
    layer: str | None = None,
    contrastive: bool = False,
    gamma: float | None = None,
    method_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    square: bool = False,
    image_name: str | None = None,
    alpha: float = 0.5,
    progress: bool = False,
) -> Comparison:
    """The comparison ``cameras compare`` makes: the view follows from which list holds several items
    (:func:`choose_view`), then :func:`compare_class_grid`, :func:`compare_models`, :func:`compare_classes` or
    :func:`compare_methods` computes it.

    Args:
        models: one or more models (:class:`cameras.models.LoadedModel` or alike).
        image: a path, PIL image or (H, W, 3) uint8 array.
        methods: registry names, classes or explainers (default: CAMERAS for one class list, else
            :data:`DEFAULT_METHODS` side by side); a view of one method uses the first.
        classes: class indices or names (default: the top-1 class).
        layer, contrastive, gamma: as in :func:`compare_classes` (``gamma=None``: 1).
        method_kwargs, square, image_name, alpha, progress: as in :func:`compare_methods`.

    Returns:
        the :class:`Comparison` of the chosen view.

    Raises:
        ValueError: see :func:`choose_view` and the views.

    Example:
        >>> import torchvision, numpy as np
        >>> from cameras.models import LoadedModel, Preprocess
        >>> net = torchvision.models.resnet18(num_classes=3).eval()
        >>> m = LoadedModel("r18", net, "layer4", Preprocess(64), list("abc"))
        >>> compare([m], np.zeros((64, 64, 3), np.uint8), methods=["gradcam"], classes=["a", "b"]).view
        'classes'
    """
    view = choose_view(methods, classes, models, contrastive=contrastive, gamma=gamma, layer=layer)
    g = 1.0 if gamma is None else float(gamma)
    common: dict[str, Any] = {"method_kwargs": method_kwargs, "square": square, "image_name": image_name}
    common.update(alpha=alpha, progress=progress)
    one = methods[0] if methods else "cameras"
    if view == "class_grid":
        return compare_class_grid(
            models, image, classes, list(methods) or ["cameras"], layer=layer, contrastive=contrastive, gamma=g,
            **common,
        )  # fmt: skip
    if view == "models":
        return compare_models(models, image, one, classes[0] if classes else None, **common)
    if view == "classes":
        return compare_classes(models[0], image, classes, one, layer=layer, contrastive=contrastive, gamma=g, **common)
    chosen = list(methods) or list(DEFAULT_METHODS)
    return compare_methods(models[0], image, chosen, classes[0] if classes else None, layer=layer, **common)


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
    _check_alpha(alpha)
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
    return Comparison("methods", photo, panels, pairs, info, "Methods side by side", alpha)


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
    _check_alpha(alpha)
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
    photo = prepared.original_rgb
    title = f"Similar classes — {label}" + (" — plain (top) and contrastive (bottom) maps" if contrastive else "")
    return Comparison("classes", photo, [*maps, *second], pairs, info, title, alpha)


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
    _check_alpha(alpha)
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
    return Comparison("class_grid", photo, [p for _, ps in rows for p in ps], pairs, info, title, alpha)


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
    _check_alpha(alpha)
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
    return Comparison("models", photo, panels, pairs, info, title, alpha)
