"""``cameras explain``: saliency maps for photos, written as overlays, arrays and JSON sidecars."""

from __future__ import annotations

import argparse
import inspect
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "parse_resolutions", "run"]

from .common import add_model_options, add_run_options, load_model, print_error, slug


def parse_resolutions(text: str | None) -> list[int | float] | None:
    """``"224,324,424"`` → ints (absolute sizes); ``"1,1.5,2"`` with any decimal point → factors; ``None``/"paper"."""
    if text is None or text.strip().lower() in ("", "paper"):
        return None
    items = [t.strip() for t in text.replace(" ", ",").split(",") if t.strip()]
    if not items:
        raise ValueError("--resolutions is empty.")
    if any("." in t for t in items):
        return [float(t) for t in items]
    return [int(t) for t in items]


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "explain",
        help="explain photos with CAMERAS (or another method) and write overlays, .npy maps and JSON",
        description="Explain photos. With no IMAGE, explains the bundled sample photo (skimage's chelsea).",
    )
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files (default: the bundled chelsea photo)")
    add_model_options(p)
    p.add_argument("--method", default="cameras", help="saliency method (default: cameras)")
    p.add_argument(
        "--class",
        dest="classes",
        action="append",
        default=None,
        metavar="INDEX|NAME",
        help="class to explain (index or ImageNet name); repeat for several (default: the top-1)",
    )
    p.add_argument("--top-k", type=int, default=1, help="explain each of the top K classes (default 1)")
    p.add_argument(
        "--against",
        action="append",
        default=None,
        metavar="INDEX|NAME|auto",
        help="explain each class against this rival class (the map of y_class − γ·y_rival); repeat for several "
        "rivals (their mean logit), or 'auto' for each class's most probable other class",
    )
    p.add_argument(
        "--gamma", type=float, default=None, help="weight γ of the rival classes in y_class − γ·y_rival (default 1)"
    )
    p.add_argument("--contrast-k", type=int, default=None, help="with --against auto: rivals per class (default 1)")
    p.add_argument(
        "--resolutions",
        default=None,
        help="scales: '224,324,424' (absolute), '1,1.5,2.0' (factors), or 'paper' (default)",
    )
    add_run_options(p)
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16"],
        default="fp32",
        help="forward passes in reduced precision under autocast (cameras only; maps still fused in fp32)",
    )
    p.add_argument("--out", default="cameras_out", help="output folder (default: cameras_out)")
    p.add_argument("--alpha", type=float, default=0.5, help="overlay opacity of the colour map (default 0.5)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _slug(text: str) -> str:
    return slug(text, "class")


@dataclass
class _Row:
    image: str
    rank: int
    cls: int
    name: str
    prob: float
    kept: str
    seconds: float


def _error(message: str) -> None:
    print_error("explain", message)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from .. import data, methods, models
    from ..viz.overlay import save_overlay

    try:
        resolutions = parse_resolutions(args.resolutions)
    except ValueError as err:
        _error(f"bad --resolutions {args.resolutions!r}: {err}")
        return 2
    if args.top_k < 1:
        _error("--top-k must be ≥ 1")
        return 2
    if args.classes and args.top_k > 1:
        _error("give either --class or --top-k, not both")
        return 2
    loaded = load_model(args, "explain")
    if loaded is None:
        return 2
    device = torch.device(args.device)  # as given (e.g. "cuda"), for the reports
    try:
        class_ids = [models.class_index(c) for c in (args.classes or [])]
    except ValueError as err:
        _error(str(err))
        return 2
    contrast = _contrast_options(args, class_ids)
    if isinstance(contrast, str):
        _error(contrast)
        return 2
    labels = loaded.labels
    layer = args.layer or loaded.layer
    try:
        method_cls = methods.get(args.method)
        accepts = "resolutions" in inspect.signature(method_cls).parameters
        kwargs: dict[str, Any] = {"resolutions": resolutions} if accepts else {}
        if args.precision != "fp32":
            if "dtype" not in inspect.signature(method_cls).parameters:
                _error(f"--precision does not apply to method {args.method!r}")
                return 2
            kwargs["dtype"] = {"bf16": torch.bfloat16, "fp16": torch.float16}[args.precision]
        if resolutions is not None and not accepts:
            _error(f"--resolutions does not apply to the single-scale method {args.method!r}")
            return 2
        explainer = method_cls(loaded.model, layer=layer, **kwargs)
    except (ValueError, TypeError, ImportError) as err:
        _error(str(err))
        return 2

    sources: list[tuple[str, Any]] = [(p, p) for p in args.images]
    if not sources:
        sources = [("chelsea", data.sample_image("chelsea"))]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[_Row] = []
    failures = 0
    bar = tqdm(sources, desc="images", unit="img", disable=args.no_progress or len(sources) < 2)
    for label, source in bar:
        stem = Path(label).stem
        try:
            prepared = loaded.preprocess(source, square=True if args.square else None)
        except (OSError, ValueError) as err:
            _error(f"{label}: cannot read image: {err}")
            failures += 1
            continue
        x = prepared.tensor.to(device)
        if class_ids:
            targets: torch.Tensor | None = torch.tensor([class_ids], dtype=torch.long, device=device)
        else:
            targets = None
        start = time.perf_counter()
        try:
            if targets is not None:
                result = explainer(x, targets, **contrast)
            elif args.top_k > 1:
                result = explainer(x, top_k=args.top_k, **contrast)
            else:
                result = explainer(x, **contrast)
        except (ValueError, RuntimeError, TypeError) as err:
            _error(f"{label}: {err}")
            failures += 1
            continue
        seconds = time.perf_counter() - start
        if result.saliency.dim() == 3:  # one class: make it (1, K=1, h, w)
            sal = result.saliency.unsqueeze(1)
            tg, pr = result.targets.unsqueeze(1), result.probabilities.unsqueeze(1)
            kept = result.kept.unsqueeze(1) if result.kept.dim() == 2 else result.kept
            rivals = result.contrast.unsqueeze(1) if result.contrast.dim() == 2 else result.contrast
        else:
            sal, tg, pr, kept = result.saliency, result.targets, result.probabilities, result.kept
            rivals = result.contrast
        photo = prepared.original_rgb
        maps = prepared.to_original(sal[0]).cpu().numpy().astype(np.float32)  # (K, H0, W0)
        for k in range(sal.shape[1]):
            cls = int(tg[0, k])
            name = labels[cls] if cls < len(labels) else str(cls)
            prob = float(pr[0, k])
            kept_sizes = [list(s) for s, keep in zip(result.resolutions, kept[0, k].tolist()) if keep]
            base = f"{stem}_{k + 1}_{_slug(name)}" if sal.shape[1] > 1 or class_ids else stem
            against = _rival_names(rivals, k, labels)
            if against:
                base += "_vs_" + "_".join(_slug(n) for _, n in against)
            vs = ""
            if against:
                weight = "" if result.gamma in (None, 1.0) else f" (γ={result.gamma:g})"
                vs = f" vs {', '.join(n for _, n in against)}{weight}"
            png = save_overlay(
                out_dir / f"{base}.png",
                photo,
                maps[k],
                label=f"{name} ({cls}){vs}  p={prob:.1%}  [{explainer.name}]",
                alpha=args.alpha,
            )
            np.save(out_dir / f"{base}.npy", maps[k])
            sidecar = {
                "image": label,
                "model": loaded.name,
                "layer": layer,
                "method": explainer.name,
                "class_index": cls,
                "class_name": name,
                "probability": prob,
                "rank": k + 1,
                **(
                    {"against": [{"class_index": i, "class_name": n} for i, n in against], "gamma": result.gamma}
                    if against
                    else {}
                ),
                "resolutions": [list(s) for s in result.resolutions],
                "kept_scales": kept_sizes,
                "original_size": list(photo.shape[:2]),
                "input_size": list(x.shape[-2:]),
                "seconds": seconds,
                "device": str(device),
                "precision": args.precision,
                "overlay": png.name,
                "map": f"{base}.npy",
            }
            (out_dir / f"{base}.json").write_text(json.dumps(sidecar, indent=2))
            rows.append(_Row(label, k + 1, cls, name, prob, f"{len(kept_sizes)}/{len(result.resolutions)}", seconds))
    _print_summary(rows, out_dir)
    return 1 if failures else 0


def _contrast_options(args: argparse.Namespace, class_ids: list[int]) -> dict[str, Any] | str:
    """The explainer's ``contrast`` / ``gamma`` / ``contrast_k`` keywords from ``--against``, ``--gamma`` and
    ``--contrast-k`` (an empty dict without ``--against``), or the error line."""
    from .. import models

    against = args.against or []
    if not against:
        if args.gamma is not None or args.contrast_k is not None:
            return "--gamma and --contrast-k apply to contrastive maps: give --against as well"
        return {}
    if args.gamma is not None and not math.isfinite(args.gamma):
        return f"--gamma must be a finite number, got {args.gamma}"
    options: dict[str, Any] = {} if args.gamma is None else {"gamma": float(args.gamma)}
    if any(a.strip().lower() == "auto" for a in against):
        if len(against) > 1:
            return "--against auto stands alone (it picks each class's most probable other classes)"
        if args.contrast_k is not None and args.contrast_k < 1:
            return f"--contrast-k must be ≥ 1, got {args.contrast_k}"
        return {"contrast": "auto", "contrast_k": args.contrast_k or 1, **options}
    if args.contrast_k is not None:
        return "--contrast-k applies to --against auto"
    try:
        rivals = [models.class_index(a) for a in against]
    except ValueError as err:
        return f"--against: {err}"
    same = sorted(set(rivals) & set(class_ids))
    if same:
        return f"--against class {same[0]} is also a --class: a class cannot be explained against itself"
    import torch

    return {"contrast": torch.tensor([rivals], dtype=torch.long), **options}  # (1, M): one photo at a time


def _rival_names(rivals: Any, k: int, labels: list[str]) -> list[tuple[int, str]]:
    """(index, name) of the rivals of class k of the first image ((1, K, M) tensor; empty for a plain map)."""
    if rivals.numel() == 0:
        return []
    return [(int(i), labels[int(i)] if int(i) < len(labels) else str(int(i))) for i in rivals[0, k].tolist()]


def _print_summary(rows: list[_Row], out_dir: Path) -> None:
    if not rows:
        return
    header = ("image", "#", "class", "p", "scales kept", "s")
    table = [
        (Path(r.image).name, str(r.rank), f"{r.name} ({r.cls})", f"{r.prob:.3f}", r.kept, f"{r.seconds:.2f}")
        for r in rows
    ]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    print(line)
    print("  ".join("-" * w for w in widths))
    for t in table:
        print("  ".join(c.ljust(w) for c, w in zip(t, widths)))
    print(f"wrote {len(rows)} map(s) to {out_dir}/")
