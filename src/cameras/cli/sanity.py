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
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run", "run_adversarial"]

from .common import add_model_options, add_run_options, load_model, print_error, split_list


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "sanity",
        help="sanity checks: cascading model-parameter randomisation, or the adversarial sanity test",
        description=(
            "--test randomization (default): model-parameter randomisation test (Adebayo et al., NeurIPS 2018) on "
            "one photo: writes sanity_curves.png, sanity_strip.png and sanity.json to --out. --test adversarial: "
            "the adversarial sanity test (our reconstruction of CAMERAS Sec. 6.1) on the trained model and a fully "
            "re-initialised copy: writes adversarial.png and adversarial.json."
        ),
    )
    p.add_argument("image", metavar="IMAGE", help="photo to explain")
    p.add_argument(
        "--methods", nargs="+", default=["cameras"], help="methods (space or comma separated; default: cameras)"
    )
    add_model_options(p)
    p.add_argument("--resolutions", default=None, help="CAMERAS scales: '224,324', '1,1.5' or 'paper' (default)")
    add_run_options(p)
    p.add_argument("--class", dest="cls", default=None, metavar="INDEX|NAME", help="class to explain (default top-1)")
    p.add_argument("--variant", choices=("cascading", "independent"), default="cascading", help="randomisation variant")
    p.add_argument(
        "--blocks", default=None, help="comma-separated dotted block names, from the logits down (default: all)"
    )
    p.add_argument("--max-steps", type=int, default=None, help="randomise only the first N blocks")
    p.add_argument(
        "--bn-stats",
        choices=("recalibrate", "reset", "keep"),
        default="recalibrate",
        help="BatchNorm running stats of randomised blocks (default: re-estimated on the photo)",
    )
    p.add_argument("--seed", type=int, default=0, help="base random seed (default 0)")
    p.add_argument("--test", default="randomization", help="randomization (default) or adversarial")
    g = p.add_argument_group("--test adversarial")
    g.add_argument("--patch", type=int, default=8, help="cell side in pixels (default 8; 1 = pixel by pixel)")
    g.add_argument("--eps", type=float, default=8.0, help="L∞ budget of the PGD in 0–255 pixel units (default 8)")
    g.add_argument("--attack-steps", type=int, default=10, help="PGD steps (default 10)")
    g.add_argument("--batch-size", type=int, default=64, help="cell-masked images per forward pass (default 64)")
    p.add_argument("--out", default="cameras_sanity", help="output folder (default: cameras_sanity)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _error(message: str) -> None:
    print_error("sanity", message)


def run(args: argparse.Namespace) -> int:
    import torch
    from torch import nn

    from .. import methods as methods_mod
    from .. import models
    from ..sanity import SanityResult, cascading_randomization, default_blocks, plot_similarity, plot_strip
    from .explain import parse_resolutions

    names = split_list(args.methods)
    if not names:
        _error("no method given")
        return 2
    if args.test not in ("randomization", "adversarial"):
        _error(f"--test must be randomization or adversarial, got {args.test!r}")
        return 2
    problem = _check_adversarial_options(args) if args.test == "adversarial" else None
    if problem:
        _error(problem)
        return 2
    if args.max_steps is not None and args.max_steps < 1:
        _error("--max-steps must be ≥ 1")
        return 2
    try:
        resolutions = parse_resolutions(args.resolutions)
    except ValueError as err:
        _error(str(err))
        return 2
    loaded = load_model(args, "sanity")
    if loaded is None:
        return 2
    device = torch.device(args.device)  # as given (e.g. "cuda"), for the reports
    layer = args.layer or loaded.layer
    factories: dict[str, Callable[[nn.Module], Any]] = {}
    for name in names:
        try:
            cls = methods_mod.get(name)
        except ValueError as err:
            _error(str(err))
            return 2
        kwargs: dict[str, Any] = {"resolutions": resolutions} if cls.name == "cameras" else {}

        def factory(model: nn.Module, cls: Any = cls, kwargs: dict[str, Any] = kwargs) -> Any:
            return cls(model, layer=layer, **kwargs)

        factories[cls.name or name] = factory
    try:
        prepared = loaded.preprocess(args.image, square=args.square)
    except (OSError, ValueError, TypeError) as err:
        _error(f"{args.image}: cannot read image: {err}")
        return 2
    x = prepared.tensor.to(device)
    if args.test == "adversarial":
        return run_adversarial(args, loaded, factories, prepared, x)
    try:
        targets = None if args.cls is None else [models.class_index(args.cls)]
        blocks = split_list([args.blocks]) if args.blocks else default_blocks(loaded.model, x)
        if args.max_steps is not None:
            blocks = blocks[: args.max_steps]
        result = cascading_randomization(
            loaded.model,
            factories,
            x,
            targets,
            blocks=blocks,
            variant=args.variant,
            seed=args.seed,
            bn_stats=args.bn_stats,
            progress=not args.no_progress,
        )
    except (ValueError, TypeError, RuntimeError) as err:
        _error(str(err))
        return 2

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_similarity(result, out_dir / "sanity_curves.png")
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
    plot_strip(on_photo, image=prepared.original_rgb / 255.0, path=out_dir / "sanity_strip.png")
    cls_id = int(result.targets[0])
    labels = list(loaded.labels)
    report = {
        "image": str(args.image),
        "model": loaded.name,
        "layer": layer,
        "class_index": cls_id,
        "class_name": labels[cls_id] if cls_id < len(labels) else str(cls_id),
        **result.to_dict(),
    }
    (out_dir / "sanity.json").write_text(json.dumps(report, indent=2))
    header = ["step", *(f"{m}:{k}" for m in result.methods for k in ("spearman_abs", "ssim", "hog"))]
    rows = [
        [step, *(f"{result.mean(m, k)[i]:+.3f}" for m in result.methods for k in ("spearman_abs", "ssim", "hog"))]
        for i, step in enumerate(result.steps)
    ]
    widths = [max(len(r[j]) for r in [header, *rows]) for j in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print(f"wrote sanity_curves.png, sanity_strip.png, sanity.json to {out_dir}/")
    return 0


def _check_adversarial_options(args: argparse.Namespace) -> str | None:
    """The first invalid ``--test adversarial`` option as an error message, or ``None``."""
    import math

    if args.patch < 1:
        return f"--patch must be >= 1, got {args.patch}"
    if not math.isfinite(args.eps) or args.eps <= 0:
        return f"--eps must be a number > 0 (0–255 pixel units), got {args.eps}"
    if args.attack_steps < 1:
        return f"--attack-steps must be >= 1, got {args.attack_steps}"
    if args.batch_size < 1:
        return f"--batch-size must be >= 1, got {args.batch_size}"
    return None


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
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_adversarial_sanity(results, image=prep.denormalize(x[0]) / 255.0, path=out_dir / "adversarial.png")
    first = results["trained"][next(iter(factories))].effect
    cls_id = int(first.targets[0])
    labels = list(loaded.labels)
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
        "results": {v: {m: r.to_dict() for m, r in per.items()} for v, per in results.items()},
    }
    (out_dir / "adversarial.json").write_text(json.dumps(report, indent=2, allow_nan=False))
    header = ["method", *(f"{v}:{k}" for v in results for k in ("spearman", "top10"))]
    rows = [
        [m, *(f"{float(getattr(results[v][m], k)[0]):+.3f}" for v in results for k in ("spearman", "top_overlap"))]
        for m in factories
    ]
    widths = [max(len(r[j]) for r in [header, *rows]) for j in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print(f"wrote adversarial.png, adversarial.json to {out_dir}/")
    return 0
