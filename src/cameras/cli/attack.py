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
import math
from typing import Any

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
from .options import add_output_option, float_range, int_range, parse_list, size_limits

__all__ = ["add_parser", "beta_list", "parse_focus", "run", "run_penalty"]

BUILTIN = ("random", "full")
MASK_FOCUS = ("cameras", "gradcam", "random", "full")
PENALTY_FOCUS = ("cameras", "gradcam", "shuffled", "constant", "none")
PENALTY_BETAS = (0.01, 0.1, 1.0, 10.0, 50.0)
MAX_BETA = 1e6
""":func:`beta_list` refuses larger β: the penalty would swamp the cross-entropy by many orders of magnitude."""


def parse_focus(text: str) -> list[str]:
    """``"cameras, gradcam,random"`` → ``["cameras", "gradcam", "random"]`` (lower case, order kept).

    Raises:
        ValueError: empty list or duplicates.
    """
    try:
        return parse_list(text, what="--focus", lower=True)
    except ValueError as err:
        raise ValueError(f"{err}; give e.g. cameras,gradcam,random,full.") from None


def beta_list(text: str) -> list[float]:
    """The ``type=`` of ``--betas``: ``"0.1, 1,10"`` → ``[0.1, 1.0, 10.0]``, a β schedule of finite numbers in
    [0, :data:`MAX_BETA`], none twice.

    Raises:
        argparse.ArgumentTypeError: empty, not a number, out of range, not finite, or a duplicate.

    Example:
        >>> beta_list("0.1, 1,10")
        [0.1, 1.0, 10.0]
    """
    check = float_range(0.0, MAX_BETA)
    try:
        items = parse_list(text, what="the β schedule")
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{err}; give e.g. 0.1,1,10,50") from None
    values = [check(item) for item in items]
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"lists a β twice: {text!r}")
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
    p.add_argument(
        "images", nargs="*", metavar="IMAGE", help="image files or bundled photo names (default: the four bundled)"
    )
    p.add_argument(
        "--objective",
        choices=("mask", "penalty"),
        default="mask",
        help="mask (minimal-norm attack inside a focus mask, default) or penalty (the paper's Eq. 4)",
    )
    p.add_argument(
        "--focus",
        action=ListOption,
        default=None,
        help=f"comma-separated focus sources. mask: saliency method names (cameras, gradcam, …), random, full "
        f"(default: {','.join(MASK_FOCUS)}); penalty: method names, shuffled, constant, none "
        f"(default: {','.join(PENALTY_FOCUS)})",
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
    p.add_argument(
        "--steps",
        type=int_range(1, 10000),
        default=None,
        help="attack steps per budget (mask, default 10) or per run (penalty, default 100), 1..10000",
    )
    p.add_argument(
        "--search-steps", type=int_range(0, 64), default=8, help="bisection steps of the budget, 0..64 (default 8)"
    )
    p.add_argument(
        "--seed",
        type=int_range(0, 2**63 - 1),
        default=0,
        help="seed of the random masks / of the shuffled map (default 0)",
    )
    g = p.add_argument_group("--objective penalty")
    g.add_argument(
        "--eps",
        type=float_range(0.0, 255.0, lo_open=True),
        default=12.0,
        help="L∞ budget in 0–255 pixel units, in (0, 255] (default 12, the paper's)",
    )
    g.add_argument(
        "--step-size",
        type=float_range(0.0, 255.0, lo_open=True),
        default=1.0,
        help="PGD step in 0–255 pixel units, in (0, 255] (default 1)",
    )
    g.add_argument(
        "--beta",
        type=float_range(0.0, MAX_BETA),
        default=50.0,
        help="main β of the per-image table, ≥ 0 (default 50, the paper's)",
    )
    g.add_argument(
        "--betas",
        type=beta_list,
        default=None,
        help=f"β schedule of the matched-success figure (default {','.join(f'{b:g}' for b in PENALTY_BETAS)})",
    )
    g.add_argument(
        "--confidence",
        type=float_range(0.0, 1.0, lo_open=True),
        default=0.9999,
        help="target probability a run must reach to count as a success, in (0, 1] (default 0.9999, the paper's)",
    )
    g.add_argument(
        "--batch-size", type=int_range(1, 4096), default=16, help="images per forward pass, 1..4096 (default 16)"
    )
    add_run_options(p)
    add_progress_option(p)
    add_output_option(p, "attack")
    p.add_argument("--no-figures", action="store_true", help="write only the table and the JSON")
    p.set_defaults(func=run)


def _error(message: str) -> None:
    print_error("attack", message)


def _warning(message: str) -> None:
    print_warning("attack", message)


def _bounds(loaded: Any) -> tuple[list[float], list[float]]:
    """The model inputs of the pixel values 0 and 255, per channel: the attacks' ``bounds``."""
    import torch

    prep = loaded.preprocess
    return prep.normalize(torch.zeros(3, 1, 1)).flatten().tolist(), prep.normalize(
        torch.ones(3, 1, 1)
    ).flatten().tolist()


def _start(args: argparse.Namespace, classes: list[type]) -> tuple[Any, list[tuple[str, Any]], int, int] | None:
    """The photos of ``args.images`` (or the bundled ones) read and checked before the model loads
    (:func:`~cameras.cli.common.read_photos`, with the scales of the methods ``classes``), the model, and each photo
    prepared for it and clamped into the valid input range: ``(loaded, [(name, (1, 3, h, w))], values clamped,
    failures)``; ``None`` (after the error lines) when no photo or no model is usable."""
    import torch

    from .. import data

    spec = model_spec(args.model, "attack", args.device)
    if spec is None:
        return None
    limits = size_limits(args)
    scales = method_scales(classes, None)
    photos, failures = read_photos(
        "attack",
        list(args.images) or list(data.SAMPLES),
        native_sizes=[spec.input_size],
        square=args.square,
        limits=limits,
        scales=scales,
    )
    if not photos:  # each failure has had its error line
        return None
    loaded = load_model(args, "attack")
    if loaded is None:
        return None
    lo, hi = (torch.tensor(v) for v in _bounds(loaded))
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
        return None
    return loaded, prepared, clamped, failures


def _attack(
    args: argparse.Namespace, loaded: Any, prepared: list[tuple[str, Any]], objective: str, options: dict[str, Any]
) -> tuple[Any, list[str], int, float] | None:
    """:func:`cameras.attacks.attack_photos` with its error and warning lines printed: ``(merged comparison, figure
    names, failures, seconds)``, or ``None`` when no photo could be attacked."""
    from .. import attacks

    prep = loaded.preprocess
    done = attacks.attack_photos(
        loaded.model,
        prepared,
        objective=objective,  # type: ignore[arg-type]  # "mask" or "penalty", from --objective
        options=options,
        out=None if args.no_figures else args.out,
        to_display=lambda t: prep.denormalize(t) / 255.0,
        progress=not args.no_progress,
    )
    for kind, line in done.messages:
        (_error if kind == "error" else _warning)(line)
    if done.comparison is None:
        return None
    return done.comparison, done.figures, done.failures, done.seconds


def run(args: argparse.Namespace) -> int:
    import torch

    if args.objective == "penalty":
        return run_penalty(args)
    from .. import attacks, methods

    args.steps = 10 if args.steps is None else args.steps
    try:
        sources = parse_focus(",".join(args.focus or MASK_FOCUS))
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
    started = _start(args, [methods.get(s) for s in usable if s not in BUILTIN])
    if started is None:
        return 2
    loaded, prepared, clamped, unread = started
    failures += unread
    device = torch.device(args.device)  # as given (e.g. "cuda"), for the reports
    out = args.out
    done = _attack(
        args,
        loaded,
        prepared,
        "mask",
        dict(
            sources=usable,
            area=args.area,
            norm=args.norm,
            mode=args.mode,
            bounds=_bounds(loaded),
            layer=args.layer or loaded.layer,
            seed=args.seed,
            steps=args.steps,
            search_steps=args.search_steps,
            method=args.method,
            class_names=loaded.labels,
        ),
    )
    if done is None:
        return 2
    merged, figures, failed, total = done
    failures += failed
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
        _error(write_failure(out.path, err))
        return 2  # nothing of the run's results was written: nothing could be done
    print(table)
    rates = ", ".join(
        f"{row['source']} {row['fooled']}/{row['images']}"
        + ("" if math.isnan(row["median_l2"]) else f" (median L2 {row['median_l2']:.3g})")
        for row in merged.summary()
    )
    print(f"fooled: {rates}; {total:.1f} s; wrote {out.path}/attack.json, attack.md and {len(figures)} figure(s)")
    return 1 if failures else 0


def run_penalty(args: argparse.Namespace) -> int:
    """``cameras attack --objective penalty``: the paper's saliency-penalised PGD per map source (see the module
    docstring)."""
    from dataclasses import asdict

    import torch

    from .. import attacks, methods
    from ..attacks.penalty_report import CONTROLS, check_penalty_sources

    steps = 100 if args.steps is None else args.steps
    betas = list(args.betas or PENALTY_BETAS)
    try:
        sources = check_penalty_sources(parse_focus(",".join(args.focus or PENALTY_FOCUS)))
    except ValueError as err:
        _error(str(err))
        return 2
    needs = [s for s in sources if s not in CONTROLS]
    if any(s in ("shuffled", "constant") for s in sources) and "cameras" not in needs:
        needs.append("cameras")  # the controls are made from the CAMERAS map
    started = _start(args, [methods.get(s) for s in needs])
    if started is None:
        return 2
    loaded, prepared, clamped, failures = started
    device = torch.device(args.device)
    std = torch.tensor(loaded.preprocess.std, dtype=torch.float64)
    out = args.out
    done = _attack(
        args,
        loaded,
        prepared,
        "penalty",
        dict(
            sources=sources,
            beta=args.beta,
            betas=betas,
            eps=(args.eps / 255 / std).tolist(),
            step_size=(args.step_size / 255 / std).tolist(),
            steps=steps,
            bounds=_bounds(loaded),
            confidence=args.confidence,
            layer=args.layer or loaded.layer,
            seed=args.seed,
            scale=(255 * std).tolist(),
            class_names=loaded.labels,
            batch_size=args.batch_size,
        ),
    )
    if done is None:
        return 2
    merged, figures, failed, total = done
    failures += failed
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
    header = (
        f"# cameras attack --objective penalty: {loaded.name}, L∞ PGD towards the least-likely class, eps "
        f"{args.eps:g}/255, step {args.step_size:g}/255, {steps} steps, main β {args.beta:g}, schedule "
        f"{', '.join(f'{b:g}' for b in merged.settings['betas'])}, confidence {args.confidence:g}, {total:.1f} s\n\n"
        "L2 / Linf in 0–255 pixel units. Reductions are against `none` (plain PGD); the matched figures take, per "
        "image and source, the smallest L2 over the schedule among the runs that reach the confidence.\n\n"
    )
    records = [asdict(r) for r in merged.records]
    summary = merged.summary()
    try:
        if not args.no_figures:
            out.adopt(
                attacks.plot_penalty_schedule(merged, out.create() / "penalty_beta.png", units="(0–255 pixel units)")
            )
            figures.append("penalty_beta.png")
        report["figures"] = figures
        out.write_json("penalty.json", report)
        out.write_csv("penalty.csv", ([_csv(v) for v in r.values()] for r in records), list(records[0]))
        out.write_csv("penalty_summary.csv", ([_csv(v) for v in r.values()] for r in summary), list(summary[0]))
        out.write_text("penalty.md", header + table + "\n")
    except OSError as err:
        _error(write_failure(out.path, err))
        return 2  # nothing of the run's results was written: nothing could be done
    print(table)
    print(
        f"{total:.1f} s; wrote {out.path}/penalty.json, penalty.csv, penalty_summary.csv, penalty.md and "
        f"{len(figures)} figure(s)"
    )
    return 1 if failures else 0


def _csv(value: Any) -> Any:
    """A CSV cell: NaN (undefined) as an empty cell."""
    return "" if isinstance(value, float) and math.isnan(value) else value
