"""``cameras sanity``: sanity checks of saliency methods on one photo.

``--test randomization`` (default): the model-parameter randomisation test (Adebayo et al. 2018). Re-initialises the
model block by block from the logits downwards (on a copy), recomputes each method's map after every step, and
writes to ``--out``: ``sanity_curves.png`` (similarity vs randomisation depth, one line per method),
``sanity_strip.png`` (the maps after each step, on the photo's frame) and ``sanity.json`` (the numbers). A method
that depends on what the model learned loses similarity as layers are randomised.

``--test adversarial``: the adversarial sanity test, our reconstruction of Sec. 6.1 of the CAMERAS paper
(:func:`cameras.sanity.adversarial_sanity`): the rank correlation, over a grid of ``--patch`` cells, between each
method's map and the logit drop an L∞ PGD perturbation (``--eps`` in 0–255 pixel units) causes in each cell alone,
for the trained model and for a fully re-initialised copy. Writes ``adversarial.png`` and ``adversarial.json``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

__all__ = ["add_parser", "run", "run_adversarial"]

from .common import (
    ListOption,
    add_model_options,
    add_progress_option,
    add_run_options,
    load_model,
    method_scales,
    model_spec,
    prepare,
    print_error,
    print_warning,
    read_photos,
    write_failure,
)
from .options import (
    add_output_option,
    float_range,
    int_range,
    nonempty,
    resolutions_option,
    size_limits,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "sanity",
        help="sanity checks: cascading model-parameter randomisation, or the adversarial sanity test",
        description=(
            "On one photo (a file or a bundled photo name: chelsea, coffee, rocket, motorcycle). --test "
            "randomization (default): model-parameter randomisation test (Adebayo et al., NeurIPS 2018); writes "
            "sanity_curves.png, sanity_strip.png and sanity.json to --out. --test adversarial: the adversarial "
            "sanity test (our reconstruction of CAMERAS Sec. 6.1) on the trained model and a fully re-initialised "
            "copy; writes adversarial.png and adversarial.json."
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
    p.add_argument(
        "--test",
        choices=("randomization", "adversarial"),
        default="randomization",
        help="randomization (default) or adversarial",
    )
    g = p.add_argument_group("--test adversarial")
    g.add_argument("--patch", type=int_range(1), default=8, help="cell side in pixels (default 8; 1 = pixel by pixel)")
    g.add_argument(
        "--eps",
        type=float_range(0, 255, lo_open=True),
        default=8.0,
        help="L∞ budget of the PGD in 0–255 pixel units, in (0, 255] (default 8)",
    )
    g.add_argument("--attack-steps", type=int_range(1, 100000), default=10, help="PGD steps (default 10)")
    g.add_argument(
        "--batch-size", type=int_range(1, 65536), default=64, help="cell-masked images per forward pass (default 64)"
    )
    add_output_option(p, "sanity")
    add_progress_option(p)
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
    scales = method_scales(classes, args.resolutions, square=args.square, only=["cameras"])

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
    resolutions = args.resolutions
    scales = method_scales(classes, resolutions, square=args.square, only=["cameras"])
    factories: dict[str, Callable[[nn.Module], Any]] = {}
    for cls, name in zip(classes, names):
        kwargs: dict[str, Any] = {"resolutions": resolutions, "square": args.square} if cls.name == "cameras" else {}

        def factory(model: nn.Module, cls: Any = cls, kwargs: dict[str, Any] = kwargs) -> Any:
            return cls(model, layer=layer, **kwargs)

        factories[cls.name or name] = factory
    try:
        prepared = prepare(loaded, item, square=args.square, limits=limits, scales=scales)
        x = prepared.tensor
        if args.test == "adversarial":
            return run_adversarial(args, loaded, factories, prepared, x)
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
        _error(write_failure(out.path, err))
        return 2  # nothing of the run's results was written: nothing could be done
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


def run_adversarial(
    args: argparse.Namespace, loaded: Any, factories: dict[str, Callable[[Any], Any]], prepared: Any, x: Any
) -> int:
    """``cameras sanity IMAGE --test adversarial``: the adversarial sanity test on the trained model and a fully
    re-initialised copy, for every method; ``adversarial.png``, ``adversarial.json`` and a table."""
    import torch

    from .. import models
    from ..sanity import adversarial_effect, adversarial_sanity, plot_adversarial_sanity, randomized_copy

    prep = loaded.preprocess
    lo = prep.normalize(torch.zeros(3, 1, 1)).flatten()
    hi = prep.normalize(torch.ones(3, 1, 1)).flatten()
    x = torch.minimum(torch.maximum(x, lo.view(1, 3, 1, 1).to(x)), hi.view(1, 3, 1, 1).to(x))
    eps = args.eps / 255 / max(prep.std)  # the pixel budget holds in every channel
    try:
        targets = None if args.cls is None else [models.class_index(args.cls)]
        variants = {"trained": loaded.model, "randomized": randomized_copy(loaded.model, x, seed=args.seed)}
        results: dict[str, dict[str, Any]] = {}
        for variant, model in variants.items():
            effect = adversarial_effect(
                model, x, targets, patch=args.patch, eps=eps, steps=args.attack_steps, bounds=(lo.tolist(),
                hi.tolist()), batch_size=args.batch_size, progress=not args.no_progress,
            )  # fmt: skip
            results[variant] = {
                name: adversarial_sanity(model, factory, x, effect.targets, effect=effect, eps=eps)
                for name, factory in factories.items()
            }
    except (ValueError, TypeError, RuntimeError) as err:
        _error(str(err))
        return 2
    first = results["trained"][next(iter(factories))].effect
    cls_id = int(first.targets[0])
    labels = list(loaded.labels)
    warnings = [
        f"{v}:{m}: the map is degenerate (constant): its correlations are undefined"
        for v, per in results.items()
        for m, r in per.items()
        if math.isnan(float(r.spearman[0]))
    ]
    for w in warnings:
        print_warning("sanity", w)
    report = {
        "test": "adversarial",
        "definition": "our reconstruction of CAMERAS Sec. 6.1 (cameras.sanity.adversarial_sanity)",
        "image": str(args.image),
        "model": loaded.name,
        "layer": args.layer or loaded.layer,
        "class_index": cls_id,
        "class_name": labels[cls_id] if cls_id < len(labels) else str(cls_id),
        "patch": args.patch,
        "eps_pixels": args.eps,
        "attack_steps": args.attack_steps,
        "seed": args.seed,
        "warnings": warnings,
        "results": {v: {m: r.to_dict() for m, r in per.items()} for v, per in results.items()},
    }
    out = args.out
    try:
        figure = plot_adversarial_sanity(results, image=prep.denormalize(x[0]) / 255.0)
        out.write_figure("adversarial.png", figure, dpi=120)
        out.write_json("adversarial.json", report)
    except OSError as err:
        _error(write_failure(out.path, err))
        return 2  # nothing of the run's results was written: nothing could be done
    header = ["method", *(f"{v}:{k}" for v in results for k in ("spearman", "top10"))]
    rows = [
        [m, *(_cell(float(getattr(results[v][m], k)[0]), 0) for v in results for k in ("spearman", "top_overlap"))]
        for m in factories
    ]
    widths = [max(len(r[j]) for r in [header, *rows]) for j in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print(f"wrote adversarial.png, adversarial.json to {out.path}/")
    return 0
