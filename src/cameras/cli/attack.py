"""``cameras attack``: adversarial attacks focused by saliency maps, with a norm report.

Two objectives:

* ``--objective mask`` (default): for every photo and focus source (a saliency method such as CAMERAS or Grad-CAM,
  a random mask of the same area, the full image) the smallest perturbation that changes the model's top-1 class is
  searched (:func:`cameras.attacks.minimal_norm_attack`). Writes a table (``attack.md``, also printed), a JSON of
  everything (``attack.json``) and one figure per photo (photo, focus mask, magnified perturbation, adversarial image
  with its new class).
* ``--objective penalty``: the CAMERAS paper's attack (Sec. 6, Eq. 4; :func:`cameras.attacks.saliency_pgd`),
  targeted L∞ PGD towards the least-likely class with β‖p ⊙ (1 − Ψ)‖₂ added to the loss, for every map source
  (saliency methods, the ``shuffled`` and ``constant`` controls, ``none`` = plain PGD) over a β schedule
  (:func:`cameras.attacks.compare_penalty`). ``--eps`` and ``--step-size`` are in 0–255 pixel units, converted
  per channel with the model's normalisation; the reported L2 / L∞ are in pixel units too. Writes ``penalty.md``
  (also printed), ``penalty.csv`` (per image and source), ``penalty_summary.csv``, ``penalty.json`` (``summary``,
  ``schedule``, ``records``, ``runs``, ``settings``), ``penalty_beta.png`` (L2 and success over β) and one figure
  per photo.

Example::

    cameras attack chelsea coffee --focus cameras,random,full --area 0.1 --norm l2 --out attack_out
    cameras attack --objective penalty --eps 12 --step-size 1 --steps 100 --betas 0.01,0.1,1,10,50
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

from .common import add_model_options, add_run_options, load_model, print_error, slug

__all__ = ["add_parser", "parse_betas", "parse_focus", "run"]

BUILTIN = ("random", "full")
MASK_FOCUS = "cameras,gradcam,random,full"
PENALTY_FOCUS = "cameras,gradcam,shuffled,constant,none"
PENALTY_BETAS = "0.01,0.1,1,10,50"


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


def parse_betas(text: str) -> list[float]:
    """``"0.1, 1,10"`` → ``[0.1, 1.0, 10.0]``: a β schedule of finite numbers ≥ 0.

    Raises:
        ValueError: empty, not a number, negative or not finite.
    """
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError("--betas is empty; give e.g. 0.1,1,10,50.")
    values = []
    for item in items:
        try:
            v = float(item)
        except ValueError:
            raise ValueError(f"--betas: {item!r} is not a number.") from None
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"--betas: every β must be a finite number >= 0, got {item}.")
        values.append(v)
    return values


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "attack",
        help="adversarial attacks focused by saliency maps: minimal-norm masks, or the paper's penalised PGD",
        description=(
            "--objective mask (default): for each photo and focus source, search the smallest perturbation (binary "
            "search over the budget of a PGD attack restricted to the focus) that changes the model's top-1 class. "
            "--objective penalty: the CAMERAS paper's saliency-penalised PGD towards the least-likely class (Eq. 4) "
            "per map source over a beta schedule, with shuffled / constant / plain-PGD controls. With no IMAGE, "
            "attacks the bundled photos (chelsea, coffee, rocket, motorcycle)."
        ),
    )
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files or bundled photo names")
    p.add_argument(
        "--objective",
        default="mask",
        help="mask (minimal-norm attack inside a focus mask, default) or penalty (the paper's Eq. 4)",
    )
    p.add_argument(
        "--focus",
        default=None,
        help=f"comma-separated focus sources. mask: saliency method names (cameras, gradcam, …), random, full "
        f"(default: {MASK_FOCUS}); penalty: method names, shuffled, constant, none (default: {PENALTY_FOCUS})",
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
    p.add_argument(
        "--steps", type=int, default=None, help="attack steps per budget (mask, default 10) or per run (penalty, 100)"
    )
    p.add_argument("--search-steps", type=int, default=8, help="bisection steps of the budget (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random masks / the shuffled map (default 0)")
    g = p.add_argument_group("--objective penalty")
    g.add_argument("--eps", type=float, default=12.0, help="L∞ budget in 0–255 pixel units (default 12, the paper's)")
    g.add_argument("--step-size", type=float, default=1.0, help="PGD step in 0–255 pixel units (default 1)")
    g.add_argument("--beta", type=float, default=50.0, help="main β of the per-image table (default 50, the paper's)")
    g.add_argument(
        "--betas", default=PENALTY_BETAS, help=f"β schedule of the matched-success figure (default {PENALTY_BETAS})"
    )
    g.add_argument(
        "--confidence",
        type=float,
        default=0.9999,
        help="target probability a run must reach to count as a success (default 0.9999, the paper's)",
    )
    g.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default 16)")
    add_run_options(p)
    p.add_argument("--out", default="attack_out", help="output folder (default: attack_out)")
    p.add_argument("--no-figures", action="store_true", help="write only the table and the JSON")
    p.set_defaults(func=run)


def _error(message: str) -> None:
    print_error("attack", message)


def _slug(text: str) -> str:
    return slug(text, "image")


def _read_images(args: argparse.Namespace, loaded: Any, device: Any) -> tuple[list[tuple[str, Any]], int, int]:
    """The photos of ``args.images`` (or the bundled ones) prepared for the model and clamped into the valid input
    range: ``([(name, (1, 3, h, w) tensor)], values clamped, failures)``; unreadable ones get an error line."""
    import torch

    from .. import data

    lo, hi = _input_box(loaded)
    names = list(args.images) or list(data.SAMPLES)
    prepared: list[tuple[str, Any]] = []
    clamped = failures = 0
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
    return prepared, clamped, failures


def _input_box(loaded: Any) -> tuple[Any, Any]:
    """The model inputs of the pixel values 0 and 255: (3,) tensors ``lo``, ``hi``."""
    import torch

    prep = loaded.preprocess
    return prep.normalize(torch.zeros(3, 1, 1)).flatten(), prep.normalize(torch.ones(3, 1, 1)).flatten()


def _start(
    args: argparse.Namespace, loaded: Any, device: Any
) -> tuple[Any, list[tuple[str, Any]], int, int, Path] | None:
    """The valid input range as ``bounds``, the readable photos (:func:`_read_images`) and the output folder
    (created); ``None`` after an error line when no photo is readable."""
    lo, hi = _input_box(loaded)
    prepared, clamped, failures = _read_images(args, loaded, device)
    if not prepared:
        _error("no readable image.")
        return None
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    return (lo.tolist(), hi.tolist()), prepared, clamped, failures, out_dir


def _groups(prepared: list[tuple[str, Any]]) -> list[list[tuple[str, Any]]]:
    """Images of one input size together (they are attacked as one batch)."""
    groups: dict[tuple[int, ...], list[tuple[str, Any]]] = {}
    for name, x in prepared:
        groups.setdefault(tuple(x.shape[-2:]), []).append((name, x))
    return list(groups.values())


def _stem(name: str) -> str:
    return Path(name).stem if Path(name).exists() else name


def run(args: argparse.Namespace) -> int:
    if args.objective == "penalty":
        return run_penalty(args)
    if args.objective != "mask":
        _error(f"--objective must be mask or penalty, got {args.objective!r}.")
        return 2
    import torch

    from .. import attacks, methods

    args.steps = 10 if args.steps is None else args.steps
    try:
        sources = parse_focus(args.focus or MASK_FOCUS)
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
    started = _start(args, loaded, device)
    if started is None:
        return 2
    bounds, prepared, clamped, unread, out_dir = started
    failures += unread
    parts = []
    figures: list[str] = []
    start = time.perf_counter()
    for items in _groups(prepared):
        batch = torch.cat([x for _, x in items])
        with torch.no_grad():
            labels = loaded.model(batch).argmax(dim=1)
        group_names = [_stem(n) for n, _ in items]
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


def _check_penalty_options(args: argparse.Namespace) -> str | None:
    """The first invalid ``--objective penalty`` option as an error message, or ``None``."""
    for name, value in (("--eps", args.eps), ("--step-size", args.step_size)):
        if not math.isfinite(value) or value <= 0:
            return f"{name} must be a number > 0 (0–255 pixel units), got {value}."
    if args.steps < 1:
        return f"--steps must be >= 1, got {args.steps}."
    if not math.isfinite(args.beta) or args.beta < 0:
        return f"--beta must be a finite number >= 0, got {args.beta}."
    if not 0 < args.confidence <= 1:
        return f"--confidence must be a probability in (0, 1], got {args.confidence}."
    if args.batch_size < 1:
        return f"--batch-size must be >= 1, got {args.batch_size}."
    return None


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    import csv

    with open(path, "w", newline="") as f:
        if not rows:
            return
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})


def run_penalty(args: argparse.Namespace) -> int:
    """``cameras attack --objective penalty``: the paper's saliency-penalised PGD per map source (see the module
    docstring)."""
    from dataclasses import asdict

    import torch

    from .. import attacks
    from ..attacks.penalty_report import check_penalty_sources

    args.steps = 100 if args.steps is None else args.steps
    try:
        sources = check_penalty_sources(parse_focus(args.focus or PENALTY_FOCUS))
        betas = parse_betas(args.betas)
    except ValueError as err:
        _error(str(err))
        return 2
    problem = _check_penalty_options(args)
    if problem:
        _error(problem)
        return 2
    loaded = load_model(args, "attack")
    if loaded is None:
        return 2
    device = torch.device(args.device)
    prep = loaded.preprocess
    std = torch.tensor(prep.std, dtype=torch.float64)
    started = _start(args, loaded, device)
    if started is None:
        return 2
    bounds, prepared, clamped, failures, out_dir = started
    parts = []
    figures: list[str] = []
    start = time.perf_counter()
    for items in _groups(prepared):
        batch = torch.cat([x for _, x in items])
        group_names = [_stem(n) for n, _ in items]
        try:
            cmp = attacks.compare_penalty(
                loaded.model,
                batch,
                sources=sources,
                beta=args.beta,
                betas=betas,
                eps=(args.eps / 255 / std).tolist(),
                step_size=(args.step_size / 255 / std).tolist(),
                steps=args.steps,
                bounds=bounds,
                confidence=args.confidence,
                layer=args.layer or loaded.layer,
                seed=args.seed,
                scale=(255 * std).tolist(),
                names=group_names,
                class_names=loaded.labels,
                batch_size=args.batch_size,
                progress=True,
            )
        except (ValueError, RuntimeError, TypeError) as err:
            _error(f"{', '.join(group_names)}: {err}")
            failures += len(items)
            continue
        parts.append(cmp)
        if not args.no_figures:
            for i, stem in enumerate(group_names):
                path = attacks.plot_penalty_figure(
                    cmp, i, batch, lambda t: prep.denormalize(t) / 255.0, out_dir / f"{_slug(stem)}_penalty.png"
                )
                figures.append(path.name)
    if not parts:
        return 2
    total = time.perf_counter() - start
    merged = attacks.PenaltyComparison.merge(parts)
    if not args.no_figures:
        attacks.plot_penalty_schedule(merged, out_dir / "penalty_beta.png", units="(0–255 pixel units)")
        figures.append("penalty_beta.png")
    table = attacks.format_penalty_table(merged)
    report = merged.to_dict()
    report["settings"].update(
        {
            "objective": "penalty",
            "model": loaded.name,
            "layer": args.layer or loaded.layer,
            "device": str(device),
            "square": bool(args.square),
            "eps_pixels": args.eps,
            "step_size_pixels": args.step_size,
            "units": "0-255 pixels",
            "values_clamped_into_bounds": clamped,
            "total_seconds": total,
            "torch_threads": torch.get_num_threads(),
        }
    )
    report["figures"] = figures
    (out_dir / "penalty.json").write_text(json.dumps(report, indent=2, allow_nan=False))
    _write_csv(out_dir / "penalty.csv", [asdict(r) for r in merged.records])
    _write_csv(out_dir / "penalty_summary.csv", merged.summary())
    header = (
        f"# cameras attack --objective penalty: {loaded.name}, L∞ PGD towards the least-likely class, eps "
        f"{args.eps:g}/255, step {args.step_size:g}/255, {args.steps} steps, main β {args.beta:g}, schedule "
        f"{', '.join(f'{b:g}' for b in merged.settings['betas'])}, confidence {args.confidence:g}, {total:.1f} s\n\n"
        "L2 / Linf in 0–255 pixel units. Reductions are against `none` (plain PGD); the matched figures take, per "
        "image and source, the smallest L2 over the schedule among the runs that reach the confidence.\n\n"
    )
    (out_dir / "penalty.md").write_text(header + table + "\n")
    print(table)
    print(
        f"{total:.1f} s; wrote {out_dir}/penalty.json, penalty.csv, penalty_summary.csv, penalty.md and "
        f"{len(figures)} figure(s)"
    )
    return 1 if failures else 0
