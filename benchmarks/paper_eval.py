"""The CAMERAS paper's own evaluation on the bundled model (EfficientNet-Lite0) and photos, on the CPU.

Three parts, each writing a JSON (settings, machine, date, per-image rows, summaries) and printing a table:

* ``density``  — positive / negative map density ρ⁺ / ρ⁻ (Sec. 4.2, Table 2) per method, with the paper's black
  baseline (``I ⊙ Ψ``) and, for comparison, the mean-colour baseline (zero in the normalised input space); a
  centred Gaussian map that knows nothing of the model is the control.
* ``attack``   — the saliency-penalised PGD of Eq. 4 (Sec. 6) towards the least-likely class, per map source
  (CAMERAS, Grad-CAM, the shuffled and constant controls, plain PGD) over a β schedule, with the matched-success
  L2 reduction at the paper's 99.99 % confidence.
* ``sanity``   — the adversarial sanity test (our reconstruction of Sec. 6.1) for CAMERAS, Grad-CAM and Guided
  Backprop on the trained model and on a fully re-initialised copy, explaining each model's top-1 class.

Photos: the four bundled ones (``cameras.data``) and, for more images, other photos that ship with scikit-image
(``astronaut``, ``camera``, ``coins``, ``clock``, …; grey ones repeated over the three channels). The inputs are
224 × 224 (the paper's square setting).

Usage::

    python benchmarks/paper_eval.py density --json benchmarks/paper_density.json
    python benchmarks/paper_eval.py attack --steps 100 --betas 1e-4,1e-3,1e-2 --json benchmarks/paper_attack.json
    python benchmarks/paper_eval.py sanity --patch 8 --json benchmarks/paper_sanity.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from typing import Any

import numpy as np
import torch

from cameras import attacks, data, methods, metrics, models, sanity
from cameras.io.atomic import write_json

BUNDLED = list(data.SAMPLES)
EXTRA = ["astronaut", "camera", "coins", "clock"]
#: the annotated classes of the bundled photos (src/cameras/data/skimage_boxes.json)
LABELS = {"chelsea": 281, "coffee": 967, "rocket": 657, "motorcycle": 665}


def photo(name: str) -> np.ndarray:
    """An RGB uint8 photo: a bundled one, or a scikit-image sample (grey → 3 channels, alpha dropped)."""
    if name in data.SAMPLES:
        return data.sample_image(name)
    import skimage.data as skd

    arr = np.asarray(getattr(skd, name)())
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr[:, :, :3]).astype(np.uint8)


def machine() -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d"),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_average_at_start": os.getloadavg(),
    }


def prepare(loaded: models.LoadedModel, names: list[str]) -> torch.Tensor:
    prep = loaded.preprocess
    lo = prep.normalize(torch.zeros(3, 1, 1))
    hi = prep.normalize(torch.ones(3, 1, 1))
    x = torch.cat([loaded.prepare(photo(n), square=True).tensor for n in names])
    return torch.maximum(torch.minimum(x, hi[None]), lo[None])


def _mean(values: list[float]) -> float:
    ok = [v for v in values if math.isfinite(v)]
    return statistics.fmean(ok) if ok else math.nan


def center_map(size: tuple[int, int]) -> torch.Tensor:
    """A centred Gaussian (σ = a quarter of each side) scaled to [0, 1]: a map that ignores the model."""
    h, w = size
    ys = (torch.arange(h) - (h - 1) / 2) / (h / 4)
    xs = (torch.arange(w) - (w - 1) / 2) / (w / 4)
    g = torch.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2))
    return (g - g.min()) / (g.max() - g.min())


def run_density(args: argparse.Namespace) -> dict[str, Any]:
    loaded = models.load()
    names = args.images
    x = prepare(loaded, names)
    with torch.no_grad():
        top1 = loaded.model(x).argmax(1)
    targets = torch.tensor([LABELS.get(n, int(t)) for n, t in zip(names, top1)])
    baselines = {"black": metrics.black_baseline(loaded.preprocess.mean, loaded.preprocess.std), "mean colour": "zero"}
    rows = []
    for method in [*args.methods, "center (control)"]:
        if method == "center (control)":
            sal = center_map(tuple(x.shape[-2:])).expand(len(names), -1, -1).clone()
        else:
            explainer = methods.get(method)(loaded.model, layer=loaded.layer)
            sal = torch.cat([explainer(x[i : i + 1], targets[i : i + 1]).saliency for i in range(len(names))])
        for bname, base in baselines.items():
            d = metrics.map_density(loaded.model, x, sal.clamp(0, 1), targets, baseline=base)  # type: ignore[arg-type]
            for i, n in enumerate(names):
                rows.append(
                    {
                        "image": n,
                        "class": int(targets[i]),
                        "method": method,
                        "baseline": bname,
                        "rho_pos": float(d.positive[i]),
                        "rho_neg": float(d.negative[i]),
                        "p_kept": float(d.positive_probability[i]),
                        "p_removed": float(d.negative_probability[i]),
                        "p_image": float(d.original_probability[i]),
                        "map_mean": float(d.map_mean[i]),
                    }
                )
    summary = []
    for method in dict.fromkeys(r["method"] for r in rows):
        for bname in baselines:
            mine = [r for r in rows if r["method"] == method and r["baseline"] == bname]
            summary.append(
                {
                    "method": method,
                    "baseline": bname,
                    "rho_pos": _mean([r["rho_pos"] for r in mine]),
                    "rho_neg": _mean([r["rho_neg"] for r in mine]),
                    "map_mean": _mean([r["map_mean"] for r in mine]),
                    "undefined_pos": sum(not math.isfinite(r["rho_pos"]) for r in mine),
                    "undefined_neg": sum(not math.isfinite(r["rho_neg"]) for r in mine),
                    "images": len(mine),
                }
            )
    print("| method | baseline | ρ⁺ ↑ | ρ⁻ ↓ | mean Ψ |")
    print("|---|---|---|---|---|")
    for s in summary:
        print(f"| {s['method']} | {s['baseline']} | {s['rho_pos']:.3f} | {s['rho_neg']:.3f} | {s['map_mean']:.3f} |")
    return {"part": "density", "images": names, "methods": args.methods, "summary": summary, "rows": rows}


def run_attack(args: argparse.Namespace) -> dict[str, Any]:
    loaded = models.load()
    names = args.images
    x = prepare(loaded, names)
    std = torch.tensor(loaded.preprocess.std, dtype=torch.float64)
    lo = loaded.preprocess.normalize(torch.zeros(3, 1, 1)).flatten().tolist()
    hi = loaded.preprocess.normalize(torch.ones(3, 1, 1)).flatten().tolist()
    betas = [float(b) for b in args.betas.split(",")]
    start = time.perf_counter()
    parts = []
    for i in range(0, len(names), args.images_per_run):
        sl = slice(i, i + args.images_per_run)
        cmp = attacks.compare_penalty(
            loaded.model, x[sl], sources=args.sources.split(","), beta=args.beta, betas=betas,
            eps=(args.eps / 255 / std).tolist(), step_size=(args.step_size / 255 / std).tolist(), steps=args.steps,
            bounds=(lo, hi), confidence=args.confidence, layer=loaded.layer, seed=0, scale=(255 * std).tolist(),
            names=names[sl], class_names=loaded.labels, batch_size=args.batch_size, progress=True,
        )  # fmt: skip
        parts.append(cmp)
        print(f"{names[sl]} done after {time.perf_counter() - start:.0f} s", flush=True)
        if args.json:  # partial results, in case a long run is stopped
            write_json(args.json + ".partial", attacks.PenaltyComparison.merge(parts).to_dict())
    merged = attacks.PenaltyComparison.merge(parts)
    print(attacks.format_penalty_table(merged))
    print("| source | β | fooled | p ≥ confidence | mean L2 | L2 reduction % |")
    print("|---|---|---|---|---|---|")
    for r in merged.schedule():
        print(
            f"| {r['source']} | {r['beta']:g} | {r['fooled_rate']:.2f} | {r['confident_rate']:.2f} | "
            f"{r['mean_l2']:.1f} | {r['l2_reduction_percent']:.1f} |"
        )
    out = merged.to_dict()
    out["settings"].update(
        {
            "eps_pixels": args.eps,
            "step_size_pixels": args.step_size,
            "units": "0-255 pixels",
            "seconds": time.perf_counter() - start,
        }
    )
    return {"part": "attack", "images": names, **out}


def run_sanity(args: argparse.Namespace) -> dict[str, Any]:
    loaded = models.load()
    names = args.images
    x = prepare(loaded, names)
    prep = loaded.preprocess
    lo = prep.normalize(torch.zeros(3, 1, 1)).flatten().tolist()
    hi = prep.normalize(torch.ones(3, 1, 1)).flatten().tolist()
    eps = args.eps / 255 / max(prep.std)
    variants = {"trained": loaded.model, "randomized": sanity.randomized_copy(loaded.model, x, seed=0)}
    rows = []
    start = time.perf_counter()
    for i, n in enumerate(names):
        xi = x[i : i + 1]
        target = None  # the explained class is the model's top-1 (what a user would explain)
        for variant, model in variants.items():
            effect = sanity.adversarial_effect(
                model, xi, target, patch=args.patch, eps=eps, steps=args.attack_steps, bounds=(lo, hi),
                loss=args.loss, batch_size=args.batch_size,
            )  # fmt: skip
            for method in args.methods:
                res = sanity.adversarial_sanity(model, method, xi, effect.targets, effect=effect, eps=eps,
                                                layer=loaded.layer)  # fmt: skip
                rows.append(
                    {
                        "image": n,
                        "variant": variant,
                        "method": method,
                        "class": int(effect.targets[0]),
                        "spearman": float(res.spearman[0]),
                        "top_overlap": float(res.top_overlap[0]),
                        "fooled": bool(effect.fooled[0]),
                    }
                )
                print(json.dumps(rows[-1]), f"{time.perf_counter() - start:.0f} s", flush=True)
    summary = []
    for variant in variants:
        for method in args.methods:
            mine = [r for r in rows if r["variant"] == variant and r["method"] == method]
            summary.append(
                {
                    "variant": variant,
                    "method": method,
                    "spearman": _mean([r["spearman"] for r in mine]),
                    "spearman_min": min(r["spearman"] for r in mine),
                    "spearman_max": max(r["spearman"] for r in mine),
                    "top_overlap": _mean([r["top_overlap"] for r in mine]),
                    "images": len(mine),
                }
            )
    print("| model | method | Spearman (mean, min–max) | top-10 % overlap |")
    print("|---|---|---|---|")
    for s in summary:
        print(
            f"| {s['variant']} | {s['method']} | {s['spearman']:+.3f} ({s['spearman_min']:+.2f}…"
            f"{s['spearman_max']:+.2f}) | {s['top_overlap']:.3f} |"
        )
    return {
        "part": "sanity",
        "images": names,
        "settings": {"patch": args.patch, "eps_pixels": args.eps, "attack_steps": args.attack_steps,
                     "loss": args.loss, "target": "top-1", "seconds": time.perf_counter() - start},
        "summary": summary,
        "rows": rows,
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("part", choices=["density", "attack", "sanity"])
    p.add_argument("--images", default=",".join(BUNDLED), help="photos (bundled names or scikit-image samples)")
    p.add_argument("--methods", default="cameras,gradcam,gradcam++,guided_backprop")
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    a = p.add_argument_group("attack")
    a.add_argument("--sources", default="cameras,gradcam,shuffled,constant,none")
    a.add_argument("--eps", type=float, default=None, help="L∞ budget in pixels (attack 12, sanity 8)")
    a.add_argument("--step-size", type=float, default=1.0)
    a.add_argument("--steps", type=int, default=100)
    a.add_argument("--beta", type=float, default=50.0)
    a.add_argument("--betas", default="0.0001,0.001,0.01,0.1,1,10,50")
    a.add_argument("--confidence", type=float, default=0.9999)
    a.add_argument("--batch-size", type=int, default=16)
    a.add_argument("--loss", default="margin", help="sanity: the PGD's loss, margin or ce")
    a.add_argument("--images-per-run", type=int, default=2, help="images attacked together (memory)")
    s = p.add_argument_group("sanity")
    s.add_argument("--patch", type=int, default=8)
    s.add_argument("--attack-steps", type=int, default=10)
    args = p.parse_args()
    args.images = [n.strip() for n in args.images.split(",") if n.strip()]
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.eps is None:
        args.eps = 12.0 if args.part == "attack" else 8.0
    if args.part == "sanity" and args.batch_size == 16:
        args.batch_size = 64
    info = machine()
    result = {"density": run_density, "attack": run_attack, "sanity": run_sanity}[args.part](args)
    result["machine"] = info
    result["model"] = "efficientnet_lite0"
    if args.json:
        write_json(args.json, result)
        if os.path.exists(args.json + ".partial"):
            os.remove(args.json + ".partial")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
