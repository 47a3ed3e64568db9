"""``cameras attack``: minimal-norm adversarial attacks focused by saliency maps, with a norm report.

For every photo and focus source (a saliency method such as CAMERAS or Grad-CAM, a random mask of the same area, the
full image) the smallest perturbation that changes the model's top-1 class is searched
(:func:`cameras.attacks.minimal_norm_attack`). Writes a table (``attack.md``, also printed), a JSON of everything
(``attack.json``) and one figure per photo (photo, focus mask, magnified perturbation, adversarial image with its
new class).

Example::

    cameras attack chelsea coffee --focus cameras,random,full --area 0.1 --norm l2 --out attack_out
"""

from __future__ import annotations

import argparse
import math
import time
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
    slug,
)
from .options import add_output_option, float_range, int_range, parse_list, size_limits

__all__ = ["add_parser", "parse_focus", "run"]

BUILTIN = ("random", "full")


def parse_focus(text: str) -> list[str]:
    """``"cameras, gradcam,random"`` → ``["cameras", "gradcam", "random"]`` (lower case, order kept).

    Raises:
        ValueError: empty list or duplicates.
    """
    try:
        return parse_list(text, what="--focus", lower=True)
    except ValueError as err:
        raise ValueError(f"{err}; give e.g. cameras,gradcam,random,full.") from None


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "attack",
        help="minimal-norm adversarial attacks focused by saliency maps: norms and fooling rate per focus",
        description=(
            "For each photo and focus source, search the smallest perturbation (binary search over the budget of "
            "a PGD attack restricted to the focus) that changes the model's top-1 class. With no IMAGE, attacks the "
            "bundled photos (chelsea, coffee, rocket, motorcycle)."
        ),
    )
    p.add_argument(
        "images", nargs="*", metavar="IMAGE", help="image files or bundled photo names (default: the four bundled)"
    )
    p.add_argument(
        "--focus",
        action=ListOption,
        default=None,
        help="comma-separated focus sources: saliency method names (cameras, gradcam, …), random, full "
        "(default: cameras,gradcam,random,full)",
    )
    p.add_argument(
        "--area",
        type=float_range(0.0, 1.0, lo_open=True),
        default=0.1,
        help="fraction of pixels of each focus mask, in (0, 1] (default 0.1)",
    )
    p.add_argument("--norm", choices=("l2", "linf"), default="l2", help="attack norm (default l2)")
    p.add_argument(
        "--mode",
        choices=("hard", "soft"),
        default="hard",
        help="hard: top-AREA pixels of the map; soft: the map as a per-pixel step weight (default hard)",
    )
    add_model_options(p, layer_help="layer of the saliency methods (default: the model's)")
    p.add_argument("--method", choices=("pgd", "ifgsm"), default="pgd", help="attack (default pgd)")
    p.add_argument("--steps", type=int_range(1, 10000), default=10, help="attack steps per budget (default 10)")
    p.add_argument(
        "--search-steps", type=int_range(0, 64), default=8, help="bisection steps of the budget, 0..64 (default 8)"
    )
    p.add_argument("--seed", type=int_range(0, 2**63 - 1), default=0, help="seed of the random masks (default 0)")
    add_run_options(p)
    add_output_option(p, "attack_out")
    p.add_argument("--no-figures", action="store_true", help="write only the table and the JSON")
    p.set_defaults(func=run)


def _error(message: str) -> None:
    print_error("attack", message)


def _slug(text: str) -> str:
    return slug(text, "image")


def run(args: argparse.Namespace) -> int:
    import torch

    from .. import attacks, data, methods
    from ..engine.state import ModelState

    try:
        sources = parse_focus(",".join(args.focus)) if args.focus else ["cameras", "gradcam", "random", "full"]
    except ValueError as err:
        _error(str(err))
        return 2
    failures = 0
    usable = []
    unknown: list[str] = []
    for s in sources:
        if s in BUILTIN:
            usable.append(s)
            continue
        try:
            methods.get(s)
            usable.append(s)
        except ValueError as err:
            unknown.append(f"focus {s!r}: {err}")
    if not usable:
        _error(f"no usable focus source ({'; '.join(unknown)})")
        return 2
    for message in unknown:
        _error(message)
        failures += 1
    spec = model_spec(args.model, "attack", args.device)
    if spec is None:
        return 2
    limits = size_limits(args)
    scales = method_scales([methods.get(s) for s in usable if s not in BUILTIN], None)
    photos, bad = read_photos(
        "attack",
        list(args.images) or list(data.SAMPLES),
        native_sizes=[spec.input_size],
        square=args.square,
        limits=limits,
        scales=scales,
    )
    failures += bad
    if not photos:  # each failure has had its error line
        return 2

    loaded = load_model(args, "attack")
    if loaded is None:
        return 2
    device = torch.device(args.device)  # as given (e.g. "cuda"), for the reports
    prep = loaded.preprocess
    lo = prep.normalize(torch.zeros(3, 1, 1)).flatten()
    hi = prep.normalize(torch.ones(3, 1, 1)).flatten()
    bounds = (lo.tolist(), hi.tolist())

    prepared: list[tuple[str, Any]] = []
    clamped = 0
    for item in photos:
        try:
            x = prepare(loaded, item, square=args.square, limits=limits, scales=scales).tensor
        except ValueError as err:
            _error(str(err))
            failures += 1
            continue
        inside = torch.minimum(torch.maximum(x, lo.view(1, 3, 1, 1).to(x)), hi.view(1, 3, 1, 1).to(x))
        clamped += int((inside != x).sum())
        prepared.append((item.name, inside))
    if not prepared:
        _error("no readable image.")
        return 2

    out = args.out
    groups: dict[tuple[int, ...], list[tuple[str, Any]]] = {}
    for name, x in prepared:
        groups.setdefault(tuple(x.shape[-2:]), []).append((name, x))
    parts = []
    figures: list[str] = []
    start = time.perf_counter()
    for items in groups.values():
        batch = torch.cat([x for _, x in items])
        group_names = [n for n, _ in items]
        try:
            with torch.no_grad(), ModelState(loaded.model):
                labels = loaded.model(batch).argmax(dim=1)
            cmp = attacks.compare_focus(
                loaded.model,
                batch,
                labels,
                sources=usable,
                area=args.area,
                norm=args.norm,
                mode=args.mode,
                bounds=bounds,
                layer=args.layer or loaded.layer,
                seed=args.seed,
                steps=args.steps,
                search_steps=args.search_steps,
                method=args.method,
                names=group_names,
                class_names=loaded.labels,
            )
        except (ValueError, RuntimeError, TypeError) as err:
            _error(f"{', '.join(group_names)}: {err}")
            failures += len(items)
            continue
        for source, sal in cmp.maps.items():
            for i, name in enumerate(group_names):
                if sal.dim() == 3 and _constant(sal[i : i + 1]):
                    print_warning("attack", f"{name}: {source}: degenerate (constant) map, its focus is arbitrary")
        parts.append(cmp)
        if not args.no_figures:
            for i, stem in enumerate(group_names):
                try:
                    path = attacks.plot_focus_figure(
                        cmp,
                        i,
                        batch,
                        lambda t: prep.denormalize(t) / 255.0,
                        out.create() / f"{_slug(stem)}_attack.png",
                    )
                except OSError as err:
                    _error(f"{stem}: cannot write its figure: {err}")
                    failures += 1
                    continue
                figures.append(path.name)
    if not parts:
        return 2
    total = time.perf_counter() - start
    merged = attacks.FocusComparison.merge(parts)
    table = attacks.format_table(merged)
    report = merged.to_dict()
    report["settings"].update(
        {
            "model": loaded.name,
            "layer": args.layer or loaded.layer,
            "device": str(device),
            "square": bool(args.square),
            "values_clamped_into_bounds": clamped,
            "total_seconds": total,
            "torch_threads": torch.get_num_threads(),
        }
    )
    report["figures"] = figures
    header = (
        f"# cameras attack: {loaded.name}, norm {args.norm}, area {args.area}, mode {args.mode}, "
        f"{args.method} {args.steps} steps × (bracket + {args.search_steps} bisections), {total:.1f} s\n\n"
        "Untargeted: the class to leave is the model's top-1 on the clean photo. Norms are of the smallest fooling "
        "perturbation in the model's input space; medians over fooled images; L0 counts pixels.\n\n"
    )
    try:
        out.write_json("attack.json", report)
        out.write_text("attack.md", header + table + "\n")
    except OSError as err:
        _error(f"cannot write to {out.path}: {err}")
        return 1
    print(table)
    rates = ", ".join(
        f"{row['source']} {row['fooled']}/{row['images']}"
        + ("" if math.isnan(row["median_l2"]) else f" (median L2 {row['median_l2']:.3g})")
        for row in merged.summary()
    )
    print(f"fooled: {rates}; {total:.1f} s; wrote {out.path}/attack.json, attack.md and {len(figures)} figure(s)")
    return 1 if failures else 0


def _constant(maps: Any) -> bool:
    from ..engine.normalize import constant_maps

    return bool(constant_maps(maps).all())
