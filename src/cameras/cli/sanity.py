"""``cameras sanity``: the model-parameter randomisation test (Adebayo et al. 2018) on one photo.

Re-initialises the model block by block from the logits downwards (on a copy), recomputes each method's map after
every step, and writes to ``--out``: ``sanity_curves.png`` (similarity vs randomisation depth, one line per
method), ``sanity_strip.png`` (the maps after each step, on the photo's frame) and ``sanity.json`` (the numbers).
A method that depends on what the model learned loses similarity as layers are randomised.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]

from .common import add_model_options, add_run_options, load_model, print_error, split_list


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "sanity",
        help="cascading model-parameter randomisation test: similarity curves, map strip and JSON",
        description=(
            "Model-parameter randomisation test (Adebayo et al., NeurIPS 2018) on one photo: writes "
            "sanity_curves.png, sanity_strip.png and sanity.json to --out."
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
