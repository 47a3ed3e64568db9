"""Similar classes told apart, on the bundled photos with the bundled EfficientNet-Lite0: for pairs of classes, the
Spearman ρ between the two classes' maps, plain and contrastive (each class's map of ``y_A − γ·y_B``), and where each
map peaks; then the discrimination figure on the photos annotated with two or more classes
(``src/cameras/data/skimage_boxes_multiclass.json``): for each annotated class, does the map's peak fall in its own
boxes and in none of the other classes' (plain and contrastive maps).

Usage: ``python benchmarks/contrast_photos.py [--methods cameras,gradcam,...] [--gamma 1] [--json out.json]``.
The README's "Telling similar classes apart" figures come from this script (paper schedule, 2 CPU cores).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

import cameras
from cameras import data, models
from cameras.metrics import boxes_tensor, discrimination, load_boxes
from cameras.viz.compare import spearman

PAIRS = [
    ("chelsea", "tiger cat", "Egyptian cat"),
    ("chelsea", "tabby", "Egyptian cat"),
    ("chelsea", "tabby", "tiger cat"),
    ("coffee", "espresso", "cup"),
    ("motorcycle", "moped", "motor scooter"),
    ("motorcycle", "moped", "mountain bike"),
]
"""(photo, class A, class B): similar classes the model hesitates between, and one pair of two-wheelers."""


def _rho(value: float | None) -> str:
    return "n/a (a constant map)" if value is None else f"{value:+.3f}"


def _peak(m: np.ndarray) -> tuple[int, int]:
    y, x = np.unravel_index(int(m.argmax()), m.shape)
    return int(x), int(y)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default="cameras,gradcam,gradcam++,layercam")
    p.add_argument("--gamma", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    lite0 = models.load("efficientnet_lite0")
    explainers = {n: cameras.methods.get(n)(lite0.model, layer=lite0.layer) for n in args.methods.split(",")}
    start = time.perf_counter()
    pairs = []
    print("Spearman ρ between the two classes' maps (photo pixels), plain vs contrastive; peaks as (x, y)")
    for photo_name, a, b in PAIRS:
        prepared = lite0.preprocess(data.sample_image(photo_name))
        ids = [models.class_index(a), models.class_index(b)]
        targets = torch.tensor([ids])
        with torch.no_grad():
            probs = lite0.model(prepared.tensor).softmax(dim=1)[0]
        for name, explainer in explainers.items():
            plain = prepared.to_original(explainer(prepared.tensor, targets).saliency[0]).numpy()
            rivals = torch.tensor([[[ids[1]], [ids[0]]]])
            contra = explainer(prepared.tensor, targets, contrast=rivals, gamma=args.gamma).saliency[0]
            contra = prepared.to_original(contra).numpy()
            row = {
                "photo": photo_name,
                "a": a,
                "b": b,
                "p_a": float(probs[ids[0]]),
                "p_b": float(probs[ids[1]]),
                "method": name,
                "rho_plain": spearman(plain[0], plain[1]),
                "rho_contrastive": spearman(contra[0], contra[1]),
                "peaks_plain": [_peak(plain[0]), _peak(plain[1])],
                "peaks_contrastive": [_peak(contra[0]), _peak(contra[1])],
            }
            pairs.append(row)
            rho_p, rho_c = (_rho(row[k]) for k in ("rho_plain", "rho_contrastive"))
            print(
                f"  {photo_name:10s} {a} ({row['p_a']:.3f}) / {b} ({row['p_b']:.3f})  {name:10s} "
                f"ρ plain {rho_p}  contrastive {rho_c}  peaks {row['peaks_plain']} → {row['peaks_contrastive']}"
            )
    boxes = load_boxes(Path(data.__file__).with_name("skimage_boxes_multiclass.json"))
    hits = []
    print("Discrimination: peak in the class's own boxes and in none of the other annotated classes' boxes")
    for fname, anns in boxes.items():
        prepared = lite0.preprocess(data.sample_image(fname[:-4]))
        annotated = [c for c in dict.fromkeys(a.label for a in anns) if c is not None]
        for c in annotated:
            others = [o for o in annotated if o != c]
            own, other = [boxes_tensor(anns, label=c)], [boxes_tensor([a for a in anns if a.label in others])]
            for name, explainer in explainers.items():
                plain = prepared.to_original(explainer(prepared.tensor, c).saliency)
                contra = explainer(prepared.tensor, c, contrast=torch.tensor([others]), gamma=args.gamma).saliency
                contra = prepared.to_original(contra)
                row = {
                    "image": fname,
                    "class": lite0.labels[c],
                    "method": name,
                    "plain": bool(discrimination(plain, own, other)[0]),
                    "contrastive": bool(discrimination(contra, own, other)[0]),
                    "peak_plain": _peak(plain[0].numpy()),
                    "peak_contrastive": _peak(contra[0].numpy()),
                }
                hits.append(row)
                print(
                    f"  {fname} {row['class']:14s} {name:10s} plain {int(row['plain'])} {row['peak_plain']}  "
                    f"contrastive {int(row['contrastive'])} {row['peak_contrastive']}"
                )
    print("Totals (classes told apart / annotated classes):")
    for name in explainers:
        mine = [h for h in hits if h["method"] == name]
        print(
            f"  {name:10s} plain {sum(h['plain'] for h in mine)}/{len(mine)}  "
            f"contrastive {sum(h['contrastive'] for h in mine)}/{len(mine)}"
        )
    seconds = time.perf_counter() - start
    print(f"{seconds:.0f} s on {torch.get_num_threads()} threads")
    if args.json:
        meta = {"date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or platform.machine()}
        report = {**meta, "gamma": args.gamma, "seconds": seconds, "pairs": pairs, "discrimination": hits}
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
