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
import json
import math
import time
from pathlib import Path
from typing import Any

from .common import add_model_options, add_run_options, load_model, print_error, slug

__all__ = ["add_parser", "parse_focus", "run"]

BUILTIN = ("random", "full")


def parse_focus(text: str) -> list[str]:
    """``"cameras, gradcam,random"`` → ``["cameras", "gradcam", "random"]`` (lower case, order kept).

    Raises:
        ValueError: empty list or duplicates.
    """
    items = [t.strip().lower() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError("--focus is empty; give e.g. cameras,gradcam,random,full.")
    if len(set(items)) != len(items):
        raise ValueError(f"--focus lists a source twice: {text!r}.")
    return items


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
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files or bundled photo names")
    p.add_argument(
        "--focus",
        default="cameras,gradcam,random,full",
        help="comma-separated focus sources: saliency method names (cameras, gradcam, …), random, full "
        "(default: cameras,gradcam,random,full)",
    )
    p.add_argument("--area", type=float, default=0.1, help="fraction of pixels of each focus mask (default 0.1)")
    p.add_argument("--norm", choices=("l2", "linf"), default="l2", help="attack norm (default l2)")
    p.add_argument(
        "--mode",
        choices=("hard", "soft"),
        default="hard",
        help="hard: top-AREA pixels of the map; soft: the map as a per-pixel step weight (default hard)",
    )
    add_model_options(p, layer_help="layer of the saliency methods (default: the model's)")
    p.add_argument("--method", choices=("pgd", "ifgsm"), default="pgd", help="attack (default pgd)")
    p.add_argument("--steps", type=int, default=10, help="attack steps per budget (default 10)")
    p.add_argument("--search-steps", type=int, default=8, help="bisection steps of the budget (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random masks (default 0)")
    add_run_options(p)
    p.add_argument("--out", default="attack_out", help="output folder (default: attack_out)")
    p.add_argument("--no-figures", action="store_true", help="write only the table and the JSON")
    p.set_defaults(func=run)


def _error(message: str) -> None:
    print_error("attack", message)


def _slug(text: str) -> str:
    return slug(text, "image")


def run(args: argparse.Namespace) -> int:
    import torch

    from .. import attacks, data, methods

    try:
        sources = parse_focus(args.focus)
    except ValueError as err:
        _error(str(err))
        return 2
    if not (isinstance(args.area, float) and 0 < args.area <= 1):
        _error(f"--area must be in (0, 1], got {args.area}.")
        return 2
    if args.steps < 1 or args.search_steps < 0:
        _error("--steps must be >= 1 and --search-steps >= 0.")
        return 2
    loaded = load_model(args, "attack")
    if loaded is None:
        return 2
    device = torch.device(args.device)  # as given (e.g. "cuda"), for the reports
    failures = 0
    usable = []
    for s in sources:
        if s in BUILTIN:
            usable.append(s)
            continue
        try:
            methods.get(s)
            usable.append(s)
        except ValueError as err:
            _error(f"focus {s!r}: {err}")
            failures += 1
    if not usable:
        _error("no usable focus source.")
        return 2

    prep = loaded.preprocess
    lo = prep.normalize(torch.zeros(3, 1, 1)).flatten()
    hi = prep.normalize(torch.ones(3, 1, 1)).flatten()
    bounds = (lo.tolist(), hi.tolist())

    names = list(args.images) or list(data.SAMPLES)
    prepared: list[tuple[str, Any]] = []
    clamped = 0
    for name in names:
        try:
            if Path(name).exists():
                item = loaded.prepare(name, square=args.square or None)
            elif name.strip().lower() in data.SAMPLES:
                item = loaded.prepare(data.sample_image(name), square=args.square or None)
            else:
                raise FileNotFoundError(f"no such file, and not a bundled photo ({', '.join(data.SAMPLES)})")
        except (OSError, ValueError, TypeError) as err:
            _error(f"{name}: cannot read image: {err}")
            failures += 1
            continue
        x = item.tensor.to(device)
        inside = torch.minimum(torch.maximum(x, lo.view(1, 3, 1, 1).to(x)), hi.view(1, 3, 1, 1).to(x))
        clamped += int((inside != x).sum())
        prepared.append((name, inside))
    if not prepared:
        _error("no readable image.")
        return 2

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    groups: dict[tuple[int, ...], list[tuple[str, Any]]] = {}
    for name, x in prepared:
        groups.setdefault(tuple(x.shape[-2:]), []).append((name, x))
    parts = []
    figures: list[str] = []
    start = time.perf_counter()
    for items in groups.values():
        batch = torch.cat([x for _, x in items])
        with torch.no_grad():
            labels = loaded.model(batch).argmax(dim=1)
        group_names = [Path(n).stem if Path(n).exists() else n for n, _ in items]
        try:
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
        parts.append(cmp)
        if not args.no_figures:
            for i, stem in enumerate(group_names):
                path = attacks.plot_focus_figure(
                    cmp,
                    i,
                    batch,
                    lambda t: prep.denormalize(t) / 255.0,
                    out_dir / f"{_slug(stem)}_attack.png",
                )
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
    (out_dir / "attack.json").write_text(json.dumps(report, indent=2, allow_nan=False))
    header = (
        f"# cameras attack: {loaded.name}, norm {args.norm}, area {args.area}, mode {args.mode}, "
        f"{args.method} {args.steps} steps × (bracket + {args.search_steps} bisections), {total:.1f} s\n\n"
        "Untargeted: the class to leave is the model's top-1 on the clean photo. Norms are of the smallest fooling "
        "perturbation in the model's input space; medians over fooled images; L0 counts pixels.\n\n"
    )
    (out_dir / "attack.md").write_text(header + table + "\n")
    print(table)
    rates = ", ".join(
        f"{row['source']} {row['fooled']}/{row['images']}"
        + ("" if math.isnan(row["median_l2"]) else f" (median L2 {row['median_l2']:.3g})")
        for row in merged.summary()
    )
    print(f"fooled: {rates}; {total:.1f} s; wrote {out_dir}/attack.json, attack.md and {len(figures)} figure(s)")
    return 1 if failures else 0
