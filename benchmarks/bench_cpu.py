"""CPU benchmark: the cameras engine vs the authors' cost structure, 8 paper scales, same inputs.

Each (model, variant, batch) runs in a fresh subprocess so that its peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``
of that process: model, inputs and the run included) is its own; times are the median of ``--runs`` runs after one
warm-up. With ``--rounds N`` each variant runs in N processes, interleaved with the other variants (so that a busy
spell on a shared machine hits all of them), and the median is over all timed runs; ``--wait-idle`` waits for an idle
machine before each process.

Variants: ``floor`` (the 8 forward passes alone under inference mode), ``engine`` (``cameras.CAMERAS``) and
``authors`` (:mod:`authors_port`). The authors' release explains one image at a time, so its per-image cost does not
depend on the batch: it runs at batch 1 only, and rows of larger batches reuse its per-image time. The maps of the
engine and the port are compared at batch 1. Prints a Markdown table and writes JSON.

Usage: ``python benchmarks/bench_cpu.py [--runs 3] [--rounds 1] [--batches 1,8] [--wait-idle]
[--models efficientnet_lite0,resnet50]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _idle import wait_idle  # noqa: E402


def _inputs(model_name: str, batch: int) -> tuple[torch.nn.Module, str, torch.Tensor]:
    from cameras import data, models

    if model_name == "resnet50":
        import torchvision

        torch.manual_seed(0)
        net = torchvision.models.resnet50(weights=None).eval()
        layer = "layer4"
        pre = models.load("efficientnet_lite0").preprocess  # any preprocessing; inputs only need to be realistic
    else:
        loaded = models.load(model_name)
        net, layer, pre = loaded.model, loaded.layer, loaded.preprocess
    photos = ["chelsea", "coffee", "rocket", "motorcycle"]
    xs = [pre(data.sample_image(photos[i % 4]), square=True).tensor for i in range(batch)]
    return net, layer, torch.cat(xs)


def worker(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(HERE))
    from authors_port import authors_cameras

    import cameras
    from cameras.engine import schedule

    torch.set_num_threads(args.threads)
    net, layer, x = _inputs(args.model, args.batch)
    sizes = schedule(None, (224, 224))
    module = dict(net.named_modules())[layer]

    def run() -> torch.Tensor:
        if args.variant == "engine":
            return cameras.CAMERAS(net, layer=layer)(x).saliency
        if args.variant == "authors":
            return authors_cameras(net, module, x, sizes)
        with torch.inference_mode():  # forward-only floor: the 8 forward passes alone
            for s in sizes:
                net(torch.nn.functional.interpolate(x, size=s, mode="bicubic") if s != (224, 224) else x)
        return torch.zeros(1)

    times = []
    result = run()  # warm-up
    for _ in range(args.runs):
        t = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - t)
    torch.save(result, args.save)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"times": times, "peak_rss_mb": peak_kb / 1024}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=3, help="timed runs per process (after one warm-up)")
    p.add_argument("--rounds", type=int, default=1, help="processes per variant, interleaved across variants")
    p.add_argument("--batches", default="1")
    p.add_argument("--models", default="efficientnet_lite0,resnet50")
    p.add_argument("--variants", default="floor,engine,authors", help="subset of floor,engine,authors")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--json", default=str(HERE / "bench_cpu.json"))
    p.add_argument("--wait-idle", action="store_true", help="wait for an idle machine before each timed process")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    p.add_argument("--save", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    rows = []
    authors_batch1: dict[str, dict[str, float]] = {}
    tmp = Path(tempfile.mkdtemp())
    for model in args.models.split(","):
        for batch in sorted(int(b) for b in args.batches.split(",")):
            res: dict[str, dict] = {}
            variants = [v for v in args.variants.split(",") if not (v == "authors" and batch != 1)]
            # authors: per-image cost independent of the batch, measured at batch 1 only
            for _round in range(args.rounds):  # variants interleaved, so that a busy spell hits all of them
                for variant in variants:
                    save = tmp / f"{model}_{batch}_{variant}.pt"
                    cmd = [
                        sys.executable,
                        __file__,
                        "--worker",
                        "--model",
                        model,
                        "--variant",
                        variant,
                        "--batch",
                        str(batch),
                        "--runs",
                        str(args.runs),
                        "--threads",
                        str(args.threads),
                        "--save",
                        str(save),
                    ]
                    busy = wait_idle() if args.wait_idle else float("nan")
                    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
                    one = json.loads(proc.stdout.strip().splitlines()[-1])
                    acc = res.setdefault(variant, {"times": [], "peak_rss_mb": 0.0, "busy_before": []})
                    acc["times"] += one["times"]
                    acc["peak_rss_mb"] = max(acc["peak_rss_mb"], one["peak_rss_mb"])
                    acc["busy_before"].append(busy)
                    print(f"{model} b={batch} {variant}: {one['times']}", file=sys.stderr, flush=True)
            for acc in res.values():
                acc["median_s"] = statistics.median(acc["times"])
            nan = {"median_s": float("nan"), "peak_rss_mb": float("nan")}
            if "authors" in res:
                authors_batch1[model] = res["authors"]
            auth = authors_batch1.get(model, nan)
            floor = res.get("floor", nan)
            diff = float("nan")
            if "authors" in res and "engine" in res:
                engine_map = torch.load(tmp / f"{model}_{batch}_engine.pt")
                diff = float((engine_map - torch.load(tmp / f"{model}_{batch}_authors.pt")).abs().max())
            rows.append(
                {
                    "model": model,
                    "batch": batch,
                    "floor_ms_per_image": 1000 * floor["median_s"] / batch,
                    "engine_ms_per_image": 1000 * res["engine"]["median_s"] / batch,
                    "authors_ms_per_image": 1000 * auth["median_s"],
                    "speedup": auth["median_s"] * batch / res["engine"]["median_s"],
                    "engine_over_floor": res["engine"]["median_s"] / floor["median_s"],
                    "engine_peak_rss_mb": res["engine"]["peak_rss_mb"],
                    "authors_peak_rss_mb": auth["peak_rss_mb"],
                    "authors_measured_at_batch": 1,
                    "floor_peak_rss_mb": floor["peak_rss_mb"],
                    "max_abs_diff": diff,
                    "runs": args.runs * args.rounds,
                    "engine_times_s": res["engine"]["times"],
                    "authors_times_s": auth.get("times", []),
                    "floor_times_s": floor.get("times", []),
                }
            )
    meta = {
        "date": str(date.today()),
        "machine": platform.platform(),
        "processor": platform.processor(),
        "cpus": torch.get_num_threads(),
        "threads": args.threads,
        "torch": torch.__version__,
    }
    Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"\n{meta}\n")
    print(
        "| model | batch | forward-only floor ms/img | engine ms/img | authors' structure ms/img | speed-up | "
        "engine / floor | peak RSS engine MB | peak RSS authors MB | max abs diff |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['batch']} | {r['floor_ms_per_image']:.0f} | {r['engine_ms_per_image']:.0f} | "
            f"{r['authors_ms_per_image']:.0f} | {r['speedup']:.2f}× | {r['engine_over_floor']:.2f}× | "
            f"{r['engine_peak_rss_mb']:.0f} | {r['authors_peak_rss_mb']:.0f} | {r['max_abs_diff']:.1e} |"
        )


if __name__ == "__main__":
    main()
