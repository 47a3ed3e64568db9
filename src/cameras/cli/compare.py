"""``cameras compare``: one labelled grid PNG (and a JSON of what it computed) comparing methods, classes or models.

The view follows from which option lists several items:

* several ``--classes`` → similar classes side by side, with contrast maps ``ReLU(A − B)``, or with
  ``--contrastive`` each class's contrastive map (the map of ``y_A − γ·y_B``) and the Spearman ρ of the two classes'
  maps in both forms;
* several ``--classes`` and several ``--methods`` (or ``--models``) → a grid (the CAMERAS paper's Fig. 5): one row
  per method (or model), one column per class, then the row's contrast (or, with ``--contrastive``, contrastive)
  maps, all on one colour scale;
* several ``--models`` → the models side by side, with the Spearman rank correlation of every pair of maps;
* otherwise → methods side by side (``--methods``, default: CAMERAS, Grad-CAM, Grad-CAM++, LayerCAM, MS Grad-CAM++).

Several ``--methods`` and several ``--models`` at once are refused.

Example: ``cameras compare --classes "tiger cat","Egyptian cat" --contrastive`` (on the bundled chelsea photo).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import time
from pathlib import Path
from typing import Any

from .common import (
    ListOption,
    add_compile_option,
    add_model_options,
    add_progress_option,
    add_run_options,
    compile_setting,
    load_model,
    method_scales,
    model_spec,
    prepare,
    print_error,
    print_warning,
    read_photos,
    split_list,
    write_failure,
)
from .options import (
    add_output_option,
    finite_float,
    fraction,
    int_range,
    resolutions_option,
    size_limits,
)

__all__ = ["add_parser", "run", "split_list"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "compare",
        help="compare methods, similar classes or models side by side in one labelled grid (PNG + JSON)",
        description=(
            "Compare saliency maps in one labelled grid. Several --classes: similar classes with contrast maps "
            "ReLU(A − B), or with --contrastive their contrastive maps (y_A − γ·y_B). Several --classes with several "
            "--methods or --models: one row per method or model, one column per class. Several --models: models "
            "side by side with the Spearman rank correlation of their maps. Otherwise: methods side by side. IMAGE "
            "is a file or a bundled photo name (chelsea, coffee, rocket, motorcycle); default chelsea."
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
    p.add_argument(
        "--contrastive",
        action="store_true",
        help="with several --classes: each class's contrastive map against the others (y_A − γ·mean y_others) "
        "instead of ReLU(A − B), and the Spearman ρ of the classes' maps in both forms",
    )
    p.add_argument(
        "--gamma", type=finite_float, default=None, help="weight γ of the other classes with --contrastive (default 1)"
    )
    add_model_options(p, model=False, layer_help="dotted layer name (default: each model's default layer)")
    p.add_argument(
        "--resolutions",
        type=resolutions_option,
        default=None,
        help="scales for cameras and ms-* methods: '224,324' (shorter side, px), '1,1.5,2' (factors) or 'paper'",
    )
    add_run_options(p)
    add_compile_option(p)
    add_progress_option(p)
    add_output_option(p, "compare")
    p.add_argument("--alpha", type=fraction, default=0.5, help="opacity of the maps over the photo, 0..1 (default 0.5)")
    p.add_argument("--dpi", type=int_range(1, 1200), default=120, help="resolution of the PNG, 1..1200 (default 120)")
    p.set_defaults(func=run)


def _error(message: str) -> None:
    print_error("compare", message)


def run(args: argparse.Namespace) -> int:
    from .. import methods, models
    from ..compare import DEFAULT_METHODS, choose_view, compare
    from ..io import ImageError
    from ..methods.compiling import resolve_compile

    method_names = list(args.methods or [])
    class_names = list(args.classes or [])
    model_names = list(args.models or []) or [models.DEFAULT_MODEL]
    try:  # which view, before any model is loaded
        choose_view(method_names, class_names, model_names, contrastive=args.contrastive, gamma=args.gamma,
                    layer=args.layer)  # fmt: skip
    except ValueError as err:
        _error(str(err))
        return 2
    try:  # (class names are checked against each model's own labels, once it is loaded)
        classes = [methods.get(name) for name in method_names or DEFAULT_METHODS]
    except ValueError as err:
        _error(str(err))
        return 2
    if args.compile == "on" and not any("compile" in inspect.signature(c).parameters for c in classes):
        _error("--compile on applies to none of the methods compared (only cameras compiles)")
        return 2
    specs = []
    for name in model_names:
        spec = model_spec(name, "compare", args.device)
        if spec is None:
            return 2
        specs.append(spec)
    limits = size_limits(args)
    photos, _ = read_photos(
        "compare",
        [args.image or "chelsea"],
        native_sizes=[s.input_size for s in specs],
        square=args.square,
        limits=limits,
        scales=method_scales(classes, args.resolutions, square=args.square),
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
    resolutions = args.resolutions
    shared: dict[str, Any] = {"progress": not args.no_progress}  # per scale (or masked batch) inside a method
    shared["compile"] = resolve_compile(compile_setting(args), len(photos))  # one photo: "auto" is off
    if resolutions is not None:
        shared.update(resolutions=resolutions, square=args.square)
    kwargs = {"*": shared}
    scales = method_scales(classes, resolutions, square=args.square)
    try:
        for i, one in enumerate(loaded):  # the checks with each model's own preprocessing, and its bounds
            prepare(one, item, square=args.square, limits=limits, scales=scales)
            loaded[i] = dataclasses.replace(one, preprocess=dataclasses.replace(one.preprocess, limits=limits))
    except ImageError as err:
        _error(str(err))
        return 2

    start = time.perf_counter()
    try:
        view = compare(
            loaded, item.photo.rgb, methods=method_names, classes=class_names, layer=args.layer,
            contrastive=args.contrastive, gamma=args.gamma, method_kwargs=kwargs, square=args.square,
            image_name=Path(item.label).name, alpha=args.alpha, progress=not args.no_progress,
        )  # fmt: skip
        view.figure  # drawn here, so that a drawing error is the view's error  # noqa: B018
    except (ValueError, TypeError, ImportError) as err:  # bad class name, unsuitable method/model, missing extra
        _error(str(err))
        return 2
    except RuntimeError as err:
        _error(str(err))
        return 1
    for panel in view.panels:
        if panel.degenerate:
            print_warning("compare", f"{panel.method} on {panel.model}: degenerate (constant) map, drawn as zeros")
    existed = args.out.path.exists()
    try:
        png, sidecar = view.save(args.out.create(), stem=None, dpi=args.dpi)
        args.out.adopt(png, sidecar)
    except OSError as err:
        if not existed:  # leave no empty folder behind
            with contextlib.suppress(OSError):
                args.out.path.rmdir()
        _error(write_failure(args.out.path, err))
        return 2  # nothing of the run's results was written: nothing could be done
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
            f"{p.class_name} ({p.class_index})" + (f" vs {', '.join(map(str, p.against))}" if p.against else ""),
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
            where = "".join(f"[{pair[k]}] " for k in ("row", "form") if k in pair)
            print(f"  {where}{pair['a']} vs {pair['b']}: {rho}")
    print(f"{view.view} view computed in {seconds:.1f} s")
