"""``cameras compare``: one labelled grid PNG (and a JSON of what it computed) comparing methods, classes or models.

The view follows from which option lists several items (at most one may):

* several ``--classes`` → similar classes side by side, with contrast maps ``ReLU(A − B)``;
* several ``--models`` → the models side by side, with the Spearman rank correlation of every pair of maps;
* otherwise → methods side by side (``--methods``, default: CAMERAS, Grad-CAM, Grad-CAM++, LayerCAM, MS Grad-CAM++).

Example: ``cameras compare --classes "tiger cat","Egyptian cat"`` (on the bundled chelsea photo).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

from .common import (
    ListOption,
    add_model_options,
    add_run_options,
    load_model,
    method_scales,
    model_spec,
    prepare,
    print_error,
    print_warning,
    read_photos,
    split_list,
)
from .options import add_output_option, fraction, int_range, resolutions_option, schedule_factors, size_limits

__all__ = ["add_parser", "run", "split_list"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "compare",
        help="compare methods, similar classes or models side by side in one labelled grid (PNG + JSON)",
        description=(
            "Compare saliency maps in one labelled grid. Several --classes: similar classes with contrast maps "
            "ReLU(A − B). Several --models: models side by side with the Spearman rank correlation of their maps. "
            "Otherwise: methods side by side. IMAGE is a file or a bundled photo name (chelsea, coffee, rocket, "
            "motorcycle); default chelsea."
        ),
    )
    p.add_argument(
        "image", nargs="?", default=None, metavar="IMAGE", help="image file or bundled photo name (default chelsea)"
    )
    p.add_argument(
        "--methods",
        action=ListOption,
        metavar="A,B,...",
        help="methods (registry names, e.g. cameras,gradcam,gradcam++,scorecam,ig); default: a CAM selection",
    )
    p.add_argument(
        "--classes",
        action=ListOption,
        metavar="C1,C2,...",
        help='classes as indices or ImageNet names, e.g. "tiger cat","Egyptian cat" (default: the top-1)',
    )
    p.add_argument(
        "--models",
        action=ListOption,
        metavar="M1,M2,...",
        help="models, e.g. efficientnet_lite0,efficientnet_lite1,efficientnet_lite2 (default: efficientnet_lite0)",
    )
    add_model_options(p, model=False, layer_help="dotted layer name (default: each model's default layer)")
    p.add_argument(
        "--resolutions",
        type=resolutions_option,
        default=None,
        help="scales for cameras and ms-* methods: '224,324' (shorter side, px), '1,1.5,2' (factors) or 'paper'",
    )
    add_run_options(p)
    add_output_option(p, "cameras_out")
    p.add_argument("--alpha", type=fraction, default=0.5, help="opacity of the maps over the photo, 0..1 (default 0.5)")
    p.add_argument("--dpi", type=int_range(1, 1200), default=120, help="resolution of the PNG, 1..1200 (default 120)")
    p.set_defaults(func=run)


def _error(message: str) -> None:
    print_error("compare", message)


def run(args: argparse.Namespace) -> int:
    from .. import methods, models
    from ..io import ImageError
    from ..viz.compare import DEFAULT_METHODS, compare_classes, compare_methods, compare_models

    method_names = list(args.methods or [])
    class_names = list(args.classes or [])
    model_names = list(args.models or []) or [models.DEFAULT_MODEL]
    several = [
        n for n, v in (("--methods", method_names), ("--classes", class_names), ("--models", model_names)) if len(v) > 1
    ]
    if len(several) > 1:
        _error(f"compare one thing at a time: {' and '.join(several)} both list several items")
        return 2
    if len(model_names) > 1 and args.layer:
        _error("--layer applies to one model; with several --models each uses its default layer")
        return 2
    try:
        classes = [methods.get(name) for name in method_names or DEFAULT_METHODS]
        for c in class_names:
            models.class_index(c)
    except ValueError as err:
        _error(str(err))
        return 2
    specs = []
    for name in model_names:
        spec = model_spec(name, "compare", args.device)
        if spec is None:
            return 2
        specs.append(spec)
    sizes = {s.input_size for s in specs}
    if args.resolutions is not None and isinstance(args.resolutions[0], int) and len(sizes) > 1:
        _error(
            "absolute --resolutions depend on each model's native size, and these models differ "
            f"({', '.join(f'{s.name} {s.input_size}' for s in specs)}): give factors, e.g. 1,1.5,2.0"
        )
        return 2
    limits = size_limits(args)
    photos, _ = read_photos(
        "compare",
        [args.image or "chelsea"],
        native_sizes=[s.input_size for s in specs],
        square=args.square,
        limits=limits,
        scales=method_scales(classes, specs[0].factors(args.resolutions)),
    )
    if not photos:
        return 2
    item = photos[0]
    loaded = []
    for name in model_names:
        one = load_model(args, "compare", name)
        if one is None:
            return 2
        loaded.append(one)
    resolutions = schedule_factors(args.resolutions, loaded[0].preprocess.size)
    kwargs = {"*": {"resolutions": resolutions}} if resolutions is not None else None
    scales = method_scales(classes, resolutions)
    try:
        for i, one in enumerate(loaded):  # the checks with each model's own preprocessing, and its bounds
            prepare(one, item, square=args.square, limits=limits, scales=scales)
            loaded[i] = dataclasses.replace(one, preprocess=dataclasses.replace(one.preprocess, limits=limits))
    except ImageError as err:
        _error(str(err))
        return 2

    start = time.perf_counter()
    common: dict[str, Any] = {"method_kwargs": kwargs, "square": args.square, "image_name": Path(item.label).name}
    common["alpha"] = args.alpha
    image = item.photo.rgb
    try:
        if len(loaded) > 1:
            view = compare_models(
                loaded, image, method_names[0] if method_names else "cameras", class_names[0] if class_names else None,
                **common,
            )  # fmt: skip
        elif len(class_names) > 1:
            method = method_names[0] if method_names else "cameras"
            view = compare_classes(loaded[0], image, class_names, method, layer=args.layer, **common)
        else:
            chosen = method_names or list(DEFAULT_METHODS)
            target = class_names[0] if class_names else None
            view = compare_methods(loaded[0], image, chosen, target, layer=args.layer, **common)
    except (ValueError, TypeError, ImportError) as err:  # bad class name, unsuitable method/model, missing extra
        _error(str(err))
        return 2
    except RuntimeError as err:
        _error(str(err))
        return 1
    for panel in view.panels:
        if panel.degenerate:
            print_warning("compare", f"{panel.method} on {panel.model}: degenerate (constant) map, drawn as zeros")
    try:
        png, sidecar = view.save(args.out.create(), stem=None, dpi=args.dpi)
    except OSError as err:
        _error(f"cannot write to {args.out.path}: {err}")
        return 1
    _print_summary(view, time.perf_counter() - start)
    print(f"wrote {png} and {sidecar}")
    return 0


def _print_summary(view: Any, seconds: float) -> None:
    header = ("panel", "method", "model", "class", "p", "s")
    rows = [
        (
            p.kind,
            p.method,
            p.model,
            f"{p.class_name} ({p.class_index})",
            f"{p.probability:.3f}",
            f"{p.seconds:.2f}" if p.kind == "map" else "",
        )
        for p in view.panels
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    if view.spearman:
        title = "Spearman rank correlation between models' maps" if view.view == "models" else "Spearman ρ"
        print(f"{title}:")
        for pair in view.spearman:
            rho = "undefined (a constant map)" if pair["rho"] is None else f"{pair['rho']:.3f}"
            print(f"  {pair['a']} vs {pair['b']}: {rho}")
    print(f"{view.view} view computed in {seconds:.1f} s")
