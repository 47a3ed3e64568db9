"""Mixed precision vs the exact float32 engine on the bundled Lite0 and the four bundled photos (paper schedule).

Prints, per photo: the class chosen by each path, max |Δ| and Pearson correlation of the maps, and the time of each.
Usage: ``python benchmarks/bf16_accuracy.py [--dtype bfloat16|float16] [--device cpu|cuda] [--json F]``.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import cameras
from cameras import data, models


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = p.parse_args()
    dtype = getattr(torch, args.dtype)
    loaded = models.load("efficientnet_lite0", device=args.device)
    exact = cameras.CAMERAS(loaded.model, layer=loaded.layer)
    fast = cameras.CAMERAS(loaded.model, layer=loaded.layer, dtype=dtype)
    rows = []
    for name in data.SAMPLES:
        x = loaded.prepare(data.sample_image(name)).tensor
        t0 = time.perf_counter()
        a = exact(x)
        t1 = time.perf_counter()
        b = fast(x)
        t2 = time.perf_counter()
        sa, sb = a.saliency.flatten(), b.saliency.flatten()
        corr = float(torch.corrcoef(torch.stack([sa, sb]))[0, 1])
        rows.append(
            {
                "photo": name,
                "class_fp32": int(a.targets),
                "class_reduced": int(b.targets),
                "top1_agrees": bool(a.targets == b.targets),
                "max_abs_diff": float((sa - sb).abs().max()),
                "mean_abs_diff": float((sa - sb).abs().mean()),
                "pearson": corr,
                "fp32_s": t1 - t0,
                "reduced_s": t2 - t1,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    agree = sum(r["top1_agrees"] for r in rows)
    print(
        f"top-1 agreement {agree}/{len(rows)}; max |Δ| {max(r['max_abs_diff'] for r in rows):.3f}; "
        f"min Pearson {min(r['pearson'] for r in rows):.4f}"
    )
    if args.json:
        meta = {"date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "device": args.device}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "dtype": args.dtype, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
