"""Eager vs compiled CAMERAS on the CPU: first-call (compile) time and warm per-image time, EfficientNet-Lite0 at the
paper's schedule on ``cameras.data.sample_image("chelsea")``.

Each variant runs in a fresh process (a cold dynamo state) with its own inductor cache folder; ``*-warm-cache``
reruns a variant on the folder its cold run filled (a rerun or a second rank). Prints one JSON line per variant and
writes them to ``benchmarks/compile_cpu.json``. Usage::

    PYTHONPATH=src python benchmarks/compile_cpu.py [variant ...]   # eager dynamic dynamic-warm-cache static
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {  # name: (compile, dynamic, cache folder key)
    "eager": (False, False, ""),
    "dynamic": (True, True, "dynamic"),
    "dynamic-warm-cache": (True, True, "dynamic"),
    "static": (True, False, "static"),
    "static-warm-cache": (True, False, "static"),
}


def child(name: str, warm_calls: int = 3) -> dict[str, object]:
    import torch

    import cameras

    torch.manual_seed(0)
    compile_, dynamic, _ = VARIANTS[name]
    m = cameras.models.load("efficientnet_lite0")
    x = m.preprocess(cameras.data.sample_image("chelsea")).tensor  # (1, 3, 224, 337), the paper schedule 224 … 924
    model = m.model
    explainer = cameras.CAMERAS(model, layer=m.layer, compile=compile_)
    explainer.compile_dynamic = dynamic
    t0 = time.perf_counter()
    first = explainer(x)
    first_s = time.perf_counter() - t0
    times = []
    for _ in range(warm_calls):
        t0 = time.perf_counter()
        out = explainer(x)
        times.append(time.perf_counter() - t0)
    eager = cameras.CAMERAS(model, layer=m.layer)(x)
    return {
        "variant": name,
        "first_call_s": round(first_s, 2),
        "warm_s_per_image": round(sorted(times)[len(times) // 2], 3),
        "max_abs_diff_vs_eager": float((out.saliency - eager.saliency).abs().max()),
        "first_equals_warm": float((first.saliency - out.saliency).abs().max()),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def main(names: list[str]) -> None:
    root = Path(tempfile.mkdtemp(prefix="cameras-compile-bench-"))
    out = Path(__file__).with_name("compile_cpu.json")
    rows = []
    for name in names:
        env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(root / (VARIANTS[name][2] or "none")))
        proc = subprocess.run(
            [sys.executable, __file__, "--child", name], env=env, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        print(json.dumps(row), flush=True)
        rows.append(row)
        out.write_text(json.dumps({"date": "2026-12-05", "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2])))
    else:
        main(sys.argv[1:] or list(VARIANTS))
