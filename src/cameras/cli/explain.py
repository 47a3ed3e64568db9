"""``cameras explain``: saliency maps for photos, written as overlays, arrays and JSON sidecars.

Per photo and class, three files in ``--out`` (each written atomically):

* ``STEM.png`` — the map over the photo at the photo's own size, with a banner naming the class and probability;
* ``STEM.npy`` — the map, float32, the photo's H×W, values in [0, 1];
* ``STEM.json`` — model, layer, method, class, probability, scales run and kept, sizes, seconds, and whether the
  map is degenerate (constant: nothing to show).

``STEM`` is the photo's file stem (or bundled name); with ``--class`` or ``--top-k`` above 1 it becomes
``STEM_RANK_CLASS`` (``chelsea_1_tiger_cat``): the rank of the class in the given order and its name in lower case
with ``_`` for anything that is not a letter or digit; a contrastive map (``--against``) adds ``_vs_RIVAL``
(``chelsea_1_tiger_cat_vs_egyptian_cat``). Two photos with the same stem get ``_2``, ``_3`` ….
"""

from __future__ import annotations

import argparse
import inspect
import time
from dataclasses import dataclass
from typing import Any

from .common import (
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
    slug,
    write_failure,
)
from .options import (
    add_output_option,
    finite_float,
    fraction,
    int_range,
    nonempty,
    parse_resolutions,
    resolutions_option,
    size_limits,
)

__all__ = ["add_parser", "parse_resolutions", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "explain",
        help="explain photos with CAMERAS (or another method) and write overlays, .npy maps and JSON",
        description=(
            "Explain photos. IMAGE is a file in any format Pillow reads or a bundled photo name (chelsea, coffee, "
            "rocket, motorcycle); with no IMAGE, the bundled chelsea photo."
        ),
    )
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files or bundled photo names (default: chelsea)")
    add_model_options(p)
    p.add_argument("--method", type=nonempty, default="cameras", help="saliency method (default: cameras)")
    p.add_argument(
        "--class",
        dest="classes",
        action="append",
        type=nonempty,
        default=None,
        metavar="INDEX|NAME",
        help="class to explain (index or ImageNet name); repeat for several (default: the top-1)",
    )
    p.add_argument("--top-k", type=int_range(1, 1000), default=1, help="explain each of the top K classes (default 1)")
    p.add_argument(
        "--against",
        action="append",
        type=nonempty,
        default=None,
        metavar="INDEX|NAME|auto",
        help="explain each class against this rival class (the map of y_class − γ·y_rival); repeat for several "
        "rivals (their mean logit), or 'auto' for each class's most probable other class",
    )
    p.add_argument(
        "--gamma",
        type=finite_float,
        default=None,
        help="weight γ of the rival classes in y_class − γ·y_rival (default 1)",
    )
    p.add_argument(
        "--contrast-k",
        type=int_range(1, 1000),
        default=None,
        help="with --against auto: rivals per class (default 1)",
    )
    p.add_argument(
        "--resolutions",
        type=resolutions_option,
        default=None,
        help="scales: '224,324,424' (shorter side in px, aspect kept), '1,1.5,2.0' (factors of the input), or "
        "'paper' (default: 224…924 as factors)",
    )
    add_run_options(p)
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16"],
        default="fp32",
        help="forward passes in reduced precision under autocast (cameras only; maps still fused in fp32)",
    )
    add_output_option(p, "explain")
    p.add_argument("--alpha", type=fraction, default=0.5, help="overlay opacity of the colour map, 0..1 (default 0.5)")
    add_compile_option(p)
    add_progress_option(p)
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
    degenerate: bool


def _error(message: str) -> None:
    print_error("explain", message)


IMPROBABLE = 0.01
"""A ``--class`` explained on several photos is called improbable for a photo below this probability when it is
also outside the model's top 5 there (a warning line per photo: the map explains a class the photo hardly shows)."""


def _improbable(model: Any, x: Any, cls: int, prob: float, labels: list[str]) -> str | None:
    """The warning for class ``cls`` at probability ``prob`` on the (1, 3, h, w) input ``x`` when it is not in the
    model's top 5 there (one forward pass, only for a class below :data:`IMPROBABLE`); ``None`` otherwise."""
    import torch

    from ..engine.state import ModelState
    from ..engine.tap import extract_logits

    with torch.no_grad(), ModelState(model):
        p = torch.softmax(extract_logits(model(x)).float(), dim=1)[0]
    top = p.topk(min(5, p.numel())).indices.tolist()
    if cls in top:
        return None
    best = int(top[0])
    name = labels[cls] if cls < len(labels) else str(cls)
    best_name = labels[best] if best < len(labels) else str(best)
    return (
        f"--class {name!r} is improbable for this photo (p = {prob:.3f}, not in the top 5; top-1: {best_name!r} "
        f"at p = {float(p[best]):.3f}): its map explains a class the model hardly sees there"
    )


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from .. import methods, models
    from ..engine.normalize import constant_maps
    from ..io import ImageError
    from ..methods.compiling import resolve_compile
    from ..viz.overlay import label_banner, overlay

    if args.classes and args.top_k > 1:
        _error("give either --class or --top-k, not both")
        return 2
    try:
        class_ids = [models.class_index(c) for c in (args.classes or [])]
        method_cls = methods.get(args.method)
    except ValueError as err:
        _error(str(err))
        return 2
    contrast = _contrast_options(args, class_ids)
    if isinstance(contrast, str):
        _error(contrast)
        return 2
    params = inspect.signature(method_cls).parameters
    accepts = "resolutions" in params
    if args.resolutions is not None and not accepts:
        _error(f"--resolutions does not apply to the single-scale method {args.method!r}")
        return 2
    if args.precision != "fp32" and "dtype" not in params:
        _error(f"--precision does not apply to method {args.method!r}")
        return 2
    if args.compile == "on" and "compile" not in params:
        _error(f"--compile on does not apply to method {args.method!r}")
        return 2
    spec = model_spec(args.model, "explain", args.device)
    if spec is None:
        return 2
    limits = size_limits(args)
    photos, failures = read_photos(
        "explain",
        list(args.images) or ["chelsea"],
        native_sizes=[spec.input_size],
        square=args.square,
        limits=limits,
        scales=method_scales([method_cls], args.resolutions, square=args.square),
    )
    if not photos:  # each failure has had its error line
        return 2

    loaded = load_model(args, "explain")
    if loaded is None:
        return 2
    device = torch.device(args.device)  # as given (e.g. "cuda"), for the reports
    labels = loaded.labels
    layer = args.layer or loaded.layer
    scales = method_scales([method_cls], args.resolutions, square=args.square)
    kwargs: dict[str, Any] = {"resolutions": args.resolutions, "square": args.square} if accepts else {}
    if "progress" in params:  # per scale (multi-scale methods) or per masked batch (Score-CAM)
        kwargs["progress"] = not args.no_progress
    if "compile" in params:  # "auto": on for a run of many photos, off for one
        kwargs["compile"] = resolve_compile(compile_setting(args), len(photos))
    if args.precision != "fp32":
        kwargs["dtype"] = {"bf16": torch.bfloat16, "fp16": torch.float16}[args.precision]
    try:
        explainer = method_cls(loaded.model, layer=layer, **kwargs)
    except (ValueError, TypeError, ImportError) as err:
        _error(str(err))
        return 2

    out = args.out
    rows: list[_Row] = []
    bar = tqdm(photos, desc="images", unit="img", disable=args.no_progress or len(photos) < 2)
    for item in bar:
        try:
            prepared = prepare(loaded, item, square=args.square, limits=limits, scales=scales)
            x = prepared.tensor
            targets = torch.tensor([class_ids], dtype=torch.long, device=x.device) if class_ids else None
            start = time.perf_counter()
            if targets is not None:
                result = explainer(x, targets, **contrast)
            elif args.top_k > 1:
                result = explainer(x, top_k=args.top_k, **contrast)
            else:
                result = explainer(x, **contrast)
            seconds = time.perf_counter() - start
        except ImageError as err:  # over a size bound with the loaded model's own preprocessing
            _error(str(err))
            failures += 1
            continue
        except (ValueError, RuntimeError, TypeError) as err:
            _error(f"{item.label}: {err}")
            failures += 1
            continue
        if result.saliency.dim() == 3:  # one class: make it (1, K=1, h, w)
            sal = result.saliency.unsqueeze(1)
            tg, pr = result.targets.unsqueeze(1), result.probabilities.unsqueeze(1)
            kept = result.kept.unsqueeze(1) if result.kept.dim() == 2 else result.kept
            rivals = result.contrast.unsqueeze(1) if result.contrast.dim() == 2 else result.contrast
        else:
            sal, tg, pr, kept = result.saliency, result.targets, result.probabilities, result.kept
            rivals = result.contrast
        flat = result.degenerate.reshape(tg.shape)
        photo = prepared.original_rgb
        maps = prepared.to_original(sal[0]).cpu().numpy().astype(np.float32)  # (K, H0, W0)
        for k in range(sal.shape[1]):
            cls = int(tg[0, k])
            name = labels[cls] if cls < len(labels) else str(cls)
            prob = float(pr[0, k])
            # constant at the model's resolution, or on the photo's pixels (a 1×1 photo shows nothing either)
            degenerate = bool(flat[0, k]) or bool(constant_maps(torch.from_numpy(maps[k])))
            if degenerate:
                maps[k] = 0.0
            kept_sizes = [list(s) for s, keep in zip(result.resolutions, kept[0, k].tolist()) if keep]
            base = f"{item.name}_{k + 1}_{_slug(name)}" if sal.shape[1] > 1 or class_ids else item.name
            against = _rival_names(rivals, k, labels)
            vs = ""
            if against:
                base += "_vs_" + "_".join(_slug(n) for _, n in against)
                weight = "" if result.gamma in (None, 1.0) else f" (γ={result.gamma:g})"
                vs = f" vs {', '.join(n for _, n in against)}{weight}"
            warnings = [f"photo: {n}" for n in item.photo.notes]
            if class_ids and len(photos) > 1 and prob < IMPROBABLE:  # one --class for photos of other things
                doubt = _improbable(loaded.model, x, cls, prob, labels)
                if doubt:
                    warnings.append(doubt)
                    print_warning("explain", f"{item.label}: {doubt}")
            if degenerate:
                warnings.insert(
                    0,
                    "degenerate map: the method's map is constant (e.g. a 1×1 feature map or a tiny photo), so it "
                    "shows nothing; the saved map is all zeros",
                )
                print_warning("explain", f"{item.label}: {name}: degenerate (constant) map, saved as zeros")
            banner = f"{name} ({cls}){vs}  p={prob:.1%}  [{explainer.name}]" + ("  DEGENERATE" if degenerate else "")
            try:
                png = out.write_image(f"{base}.png", label_banner(overlay(photo, maps[k], alpha=args.alpha), banner))
                out.write_npy(f"{base}.npy", maps[k])
                sidecar = {
                    "image": item.label,
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
                    "degenerate": degenerate,
                    "warnings": warnings,
                    "overlay": png.name,
                    "map": f"{base}.npy",
                }
                out.write_json(f"{base}.json", sidecar)
            except OSError as err:
                _error(f"{item.label}: {base}.*: {write_failure(out.path, err)}")
                failures += 1
                continue
            rows.append(
                _Row(
                    item.label,
                    k + 1,
                    cls,
                    name,
                    prob,
                    f"{len(kept_sizes)}/{len(result.resolutions)}",
                    seconds,
                    degenerate,
                )
            )
    if not rows:  # every photo failed (each said why): nothing could be done
        return 2
    _print_summary(rows, str(out.path))
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
    options: dict[str, Any] = {} if args.gamma is None else {"gamma": float(args.gamma)}
    if any(a.strip().lower() == "auto" for a in against):
        if len(against) > 1:
            return "--against auto stands alone (it picks each class's most probable other classes)"
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


def _print_summary(rows: list[_Row], out_dir: str) -> None:
    if not rows:
        return
    from pathlib import Path

    header = ("image", "#", "class", "p", "scales kept", "s")
    table = [
        (
            Path(r.image).name,
            str(r.rank),
            f"{r.name} ({r.cls})" + ("  [degenerate]" if r.degenerate else ""),
            f"{r.prob:.3f}",
            r.kept,
            f"{r.seconds:.2f}",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    print(line)
    print("  ".join("-" * w for w in widths))
    for t in table:
        print("  ".join(c.ljust(w) for c, w in zip(t, widths)))
    print(f"wrote {len(rows)} map(s) to {out_dir}/")
