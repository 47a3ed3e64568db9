"""``cameras sanity``: the model-parameter randomisation test (Adebayo et al. 2018) on one photo.

Re-initialises the model block by block from the logits downwards (on a copy), recomputes each method's map after
every step, and writes to ``--out``: ``sanity_curves.png`` (similarity vs randomisation depth, one line per
method), ``sanity_strip.png`` (the maps after each step, on the photo's frame) and ``sanity.json`` (the numbers).
A method that depends on what the model learned loses similarity as layers are randomised.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

__all__ = ["add_parser", "run"]

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
)
from .options import (
    add_output_option,
    int_range,
    nonempty,
    resolutions_option,
    schedule_factors,
    size_limits,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "sanity",
        help="cascading model-parameter randomisation test: similarity curves, map strip and JSON",
        description=(
            "Model-parameter randomisation test (Adebayo et al., NeurIPS 2018) on one photo (a file or a bundled "
            "photo name: chelsea, coffee, rocket, motorcycle): writes sanity_curves.png, sanity_strip.png and "
            "sanity.json to --out."
        ),
    )
    p.add_argument("image", metavar="IMAGE", help="photo to explain: a file or a bundled photo name")
    p.add_argument(
        "--methods",
        nargs="+",
        action=ListOption,
        default=None,
        help="methods (space or comma separated; default: cameras)",
    )
    add_model_options(p)
    p.add_argument(
        "--resolutions",
        type=resolutions_option,
        default=None,
        help="CAMERAS scales: '224,324' (shorter side, px), '1,1.5' (factors) or 'paper' (default)",
    )
    add_run_options(p)
    p.add_argument(
        "--class",
        dest="cls",
        type=nonempty,
        default=None,
        metavar="INDEX|NAME",
        help="class to explain (default top-1)",
    )
    p.add_argument("--variant", choices=("cascading", "independent"), default="cascading", help="randomisation variant")
    p.add_argument(
        "--blocks",
        action=ListOption,
        default=None,
        help="comma-separated dotted block names, from the logits down (default: all)",
    )
    p.add_argument("--max-steps", type=int_range(1), default=None, help="randomise only the first N blocks")
    p.add_argument(
        "--bn-stats",
        choices=("recalibrate", "reset", "keep"),
        default="recalibrate",
        help="BatchNorm running stats of randomised blocks (default: re-estimated on the photo)",
    )
    p.add_argument("--seed", type=int_range(0, 2**63 - 1), default=0, help="base random seed (default 0)")
    add_output_option(p, "cameras_sanity")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _error(message: str) -> None:
    print_error("sanity", message)


def _cell(value: float, undefined: int) -> str:
    if math.isnan(value):
        return "undefined"
    return f"{value:+.3f}" + (f" ({undefined} undef.)" if undefined else "")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from torch import nn

    from .. import methods as methods_mod
    from .. import models
    from ..sanity import SanityResult, cascading_randomization, default_blocks, plot_similarity, plot_strip

    names = list(args.methods or ["cameras"])
    try:
        classes = [methods_mod.get(name) for name in names]
        target = None if args.cls is None else models.class_index(args.cls)
    except ValueError as err:
        _error(str(err))
        return 2
    spec = model_spec(args.model, "sanity", args.device)
    if spec is None:
        return 2
    limits = size_limits(args)
    scales = method_scales(classes, spec.factors(args.resolutions), only=["cameras"])

    photos, _ = read_photos(
        "sanity", [args.image], native_sizes=[spec.input_size], square=args.square, limits=limits, scales=scales
    )
    if not photos:
        return 2
    item = photos[0]

    loaded = load_model(args, "sanity")
    if loaded is None:
        return 2
    layer = args.layer or loaded.layer
    resolutions = schedule_factors(args.resolutions, loaded.preprocess.size)
    scales = method_scales(classes, resolutions, only=["cameras"])
    factories: dict[str, Callable[[nn.Module], Any]] = {}
    for cls, name in zip(classes, names):
        kwargs: dict[str, Any] = {"resolutions": resolutions} if cls.name == "cameras" else {}

        def factory(model: nn.Module, cls: Any = cls, kwargs: dict[str, Any] = kwargs) -> Any:
            return cls(model, layer=layer, **kwargs)

        factories[cls.name or name] = factory
    try:
        prepared = prepare(loaded, item, square=args.square, limits=limits, scales=scales)
        x = prepared.tensor
        blocks = list(args.blocks) if args.blocks else default_blocks(loaded.model, x)
        if args.max_steps is not None:
            blocks = blocks[: args.max_steps]
        result = cascading_randomization(
            loaded.model,
            factories,
            x,
            None if target is None else [target],
            blocks=blocks,
            variant=args.variant,
            seed=args.seed,
            bn_stats=args.bn_stats,
            progress=not args.no_progress,
        )
    except (ValueError, TypeError, RuntimeError) as err:
        _error(str(err))
        return 2

    out = args.out
    on_photo = SanityResult(
        variant=result.variant,
        blocks=result.blocks,
        methods=result.methods,
        targets=result.targets,
        similarity=result.similarity,
        maps={m: prepared.to_original(v[:, 0])[:, None] for m, v in result.maps.items()},
        seed=result.seed,
        bn_stats=result.bn_stats,
    )
    cls_id = int(result.targets[0])
    labels = list(loaded.labels)
    warnings = []
    for m in result.methods:
        if bool(np.isnan(result.similarity[m]["spearman_abs"][0]).all()):
            warnings.append(f"{m}: the original map is degenerate (constant): every similarity is undefined")
            print_warning("sanity", f"{m}: the original map is degenerate (constant), every similarity is undefined")
    report = {
        "image": item.label,
        "model": loaded.name,
        "layer": layer,
        "class_index": cls_id,
        "class_name": labels[cls_id] if cls_id < len(labels) else str(cls_id),
        "warnings": warnings,
        **result.to_dict(),
    }
    try:
        out.write_figure("sanity_curves.png", plot_similarity(result), dpi=120)
        strip = plot_strip(on_photo, image=prepared.original_rgb / 255.0)
        out.write_figure("sanity_strip.png", strip, dpi=120)
        out.write_json("sanity.json", report)
    except OSError as err:
        _error(f"cannot write to {out.path}: {err}")
        return 1
    metrics = ("spearman_abs", "ssim", "hog")
    header = ["step", *(f"{m}:{k}" for m in result.methods for k in metrics)]
    rows = [
        [
            step,
            *(
                _cell(float(result.mean(m, k)[i]), int(result.undefined(m, k)[i]))
                for m in result.methods
                for k in metrics
            ),
        ]
        for i, step in enumerate(result.steps)
    ]
    widths = [max(len(r[j]) for r in [header, *rows]) for j in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print(f"wrote sanity_curves.png, sanity_strip.png, sanity.json to {out.path}/")
    return 0
