"""GPU benchmark, one prepared script (< 5 min on an H100/H200): ResNet-50, seeded random weights, 8 paper scales.

Measured in one run, on the same inputs and device:

* the authors' cost structure (:mod:`authors_port`: module hooks, full backward with parameter gradients, every
  scale's full-resolution tensors kept, all-channel fusion), fp32, batch 1;
* for each mode — fp32 batch 1 (contiguous), fp32 batch 32 channels-last, bf16 batch 1/8/32 channels-last — the
  engine (``cameras.CAMERAS``) with each of the CAMERAS fusions ``gram`` and ``tiles``, timed
  round-robin with its forward-only floor (the 8 forward passes alone under inference mode, same batch, dtype and
  memory format, resizes included); the table row shows the fastest fusion, the JSON all of them;
* the fusion step alone (2048 channels, 224 px output) for each kept path (interpolate, matmul, gram, tiles, and
  ``tiles`` at fixed tile sides to check its cost model), batch 1 and 32, and the two paths for any rule (matmul,
  interpolate) with Grad-CAM++'s rule, which decide ``"auto"`` for the ``MultiScale(...)`` methods on CUDA;
* exactness: fp32 engine vs the authors' structure (max |Δ| of the [0, 1] maps, should be ≤ 1e-4), bf16 vs fp32
  (max |Δ| and top-1 agreement; random weights, so only a smoke figure), every fusion vs the literal definition.

Reports ms/image, images/s and the peak ``torch.cuda.max_memory_allocated`` (reset before each measured block, so it
includes the model's weights), prints a Markdown table and writes JSON (``--json``). Every block is guarded: an error
or out-of-memory is recorded in the JSON and the script goes on. ``--device cpu --quick`` is a smoke test of the
script itself (tiny sizes, no figures worth reporting).

Usage on the GPU machine: ``python benchmarks/gpu_bench.py --json gpu_bench.json`` (add ``--compile`` to also time
``torch.compile``, which costs minutes of compilation).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torchvision

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from authors_port import authors_cameras  # noqa: E402

import cameras  # noqa: E402
from cameras.engine import fuse, record_scales, schedule  # noqa: E402
from cameras.engine.fusion import auto_impl, cameras_rule, fuse_tiles, scale_weights  # noqa: E402
from cameras.engine.fusion.tiles import auto_tile  # noqa: E402
from cameras.methods.cam_rules import gradcampp_rule  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _measure(fn: Callable[[], Any], device: torch.device, reps: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds of ``reps`` calls after ``warmup`` calls, and the peak memory (MiB) over the measured calls."""
    for _ in range(warmup):
        fn()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
    return {"s": statistics.median(times), "peak_mib": peak}


def _interleaved(fns: dict[str, Callable[[], Any]], device: torch.device, reps: int, warmup: int) -> dict[str, Any]:
    """Time several callables round-robin (A B C A B C …) so that drifts of the machine (clocks, a noisy host CPU that
    issues the kernels) hit all of them alike; median seconds of each, plus each one's peak memory over one extra call
    (MiB, peak counter reset before it, so it includes the model's weights)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            _sync(device)
            t = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t)
    out: dict[str, Any] = {name: {"s": statistics.median(ts), "all_s": ts} for name, ts in times.items()}
    for name, fn in fns.items():
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        fn()
        _sync(device)
        cuda = device.type == "cuda"
        out[name]["peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else float("nan")
    return out


def _guard(results: dict[str, Any], key: str, fn: Callable[[], Any]) -> None:
    try:
        results[key] = fn()
    except Exception as err:  # a benchmark block must not stop the others
        results[key] = {"error": repr(err), "trace": traceback.format_exc(limit=3)}
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    print(f"{key}: {json.dumps(results[key])[:400]}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="tiny smoke run (for checking the script on a CPU)")
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--compile", action="store_true", help="also time torch.compile (bf16 batch 32; minutes)")
    p.add_argument("--json", default="gpu_bench.json")
    p.add_argument("--modes", default=None, help="comma list of modes to run (e.g. bf16_b32,fp32_b1); default all")
    p.add_argument("--skip-fusion", action="store_true", help="skip the fusion-alone block")
    p.add_argument("--profile", default=None, help="write a torch.profiler table (top CUDA-time ops) to this file")
    p.add_argument("--budget-s", type=float, default=270.0, help="skip remaining blocks after this many seconds")
    args = p.parse_args()
    start = time.perf_counter()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available; use --device cpu --quick for a smoke test.")
    base = 48 if args.quick else 224
    sizes = schedule(None, (base, base))[: 3 if args.quick else 8]
    resolutions = [s[0] for s in sizes]
    reps = 1 if args.quick else args.reps
    warmup = 1 if args.quick else 2
    big = 3 if args.quick else 32
    mid = 2 if args.quick else 8
    torch.manual_seed(0)
    net = torchvision.models.resnet50(weights=None).eval().to(device)
    layer = dict(net.named_modules())["layer4"]
    gen = torch.Generator().manual_seed(1)
    pool = torch.randn(big, 3, base, base, generator=gen).to(device)
    results: dict[str, Any] = {}

    def floor(x: torch.Tensor, dtype: torch.dtype | None) -> None:
        autocast = torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)
        with torch.inference_mode(), autocast:
            for s in sizes:
                xs = x if s == (base, base) else torch.nn.functional.interpolate(x, size=s, mode="bicubic")
                net(xs)

    modes: list[tuple[str, torch.dtype | None, int, bool]] = [
        ("fp32", None, 1, False),
        ("fp32", None, big, True),
        ("bf16", torch.bfloat16, 1, True),
        ("bf16", torch.bfloat16, mid, True),
        ("bf16", torch.bfloat16, big, True),
    ]
    exact_maps: dict[int, torch.Tensor] = {}
    fusions = ["gram", "tiles"]  # the CAMERAS paths: the measured CUDA default and the candidate
    wanted = None if args.modes is None else set(args.modes.split(","))
    for name, dtype, batch, cl in modes:
        if wanted is not None and f"{name}_b{batch}" not in wanted:
            continue
        if time.perf_counter() - start > args.budget_s:
            results[f"{name}_b{batch}"] = {"skipped": "time budget"}
            continue

        def block(name: str = name, dtype: torch.dtype | None = dtype, batch: int = batch, cl: bool = cl) -> dict:
            fmt = torch.channels_last if cl else torch.contiguous_format
            net.to(memory_format=fmt)
            x = pool[:batch].contiguous(memory_format=fmt)
            explainers = {
                fusion: cameras.CAMERAS(
                    net, layer="layer4", resolutions=resolutions, dtype=dtype, channels_last=cl, fusion=fusion
                )
                for fusion in fusions
            }
            fns: dict[str, Callable[[], Any]] = {"floor": lambda: floor(x, dtype)}
            fns.update({f: (lambda e=e: e(x)) for f, e in explainers.items()})
            if dtype is None and batch == 1:
                fns["authors"] = lambda: authors_cameras(net, layer, x, sizes)
            timed = _interleaved(fns, device, reps, warmup)
            flo = timed["floor"]
            row: dict[str, Any] = {
                "mode": name,
                "batch": batch,
                "channels_last": cl,
                "floor_ms_per_image": 1000 * flo["s"] / batch,
                "floor_peak_mib": flo["peak_mib"],
            }
            for fusion in fusions:
                row[f"engine_{fusion}_ms_per_image"] = 1000 * timed[fusion]["s"] / batch
                row[f"engine_{fusion}_peak_mib"] = timed[fusion]["peak_mib"]
                row[f"engine_{fusion}_over_floor"] = timed[fusion]["s"] / flo["s"]
                # per-round ratios: robust to drifts between rounds
                rounds = [e / f for e, f in zip(timed[fusion]["all_s"], flo["all_s"])]
                row[f"engine_{fusion}_over_floor_median_of_rounds"] = statistics.median(rounds)
            fusion = min(fusions, key=lambda f: timed[f]["s"])
            eng, explainer = timed[fusion], explainers[fusion]
            row.update(
                fusion=fusion,
                engine_ms_per_image=1000 * eng["s"] / batch,
                engine_images_per_s=batch / eng["s"],
                engine_peak_mib=eng["peak_mib"],
                engine_over_floor=eng["s"] / flo["s"],
            )
            maps = explainer(x)
            if dtype is None:
                exact_maps[batch] = maps.saliency
                if batch == 1:
                    auth = timed["authors"]
                    ref = authors_cameras(net, layer, x, sizes)
                    row.update(
                        authors_ms_per_image=1000 * auth["s"],
                        authors_peak_mib=auth["peak_mib"],
                        speedup_vs_authors=auth["s"] / eng["s"],
                        speedup_vs_authors_median_of_rounds=statistics.median(
                            a / e for a, e in zip(auth["all_s"], eng["all_s"])
                        ),
                        peak_ratio_vs_authors=eng["peak_mib"] / auth["peak_mib"],
                        max_abs_diff_vs_authors=float((maps.saliency - ref).abs().max()),
                    )
                    for other, exp in explainers.items():
                        row[f"max_abs_diff_vs_authors_{other}"] = float((exp(x).saliency - ref).abs().max())
            else:
                exact = cameras.CAMERAS(net, layer="layer4", resolutions=resolutions, channels_last=cl)(x)
                row.update(
                    bf16_max_abs_diff_vs_fp32=float((maps.saliency - exact.saliency).abs().max()),
                    bf16_top1_agreement=float((maps.targets == exact.targets).float().mean()),
                )
            net.to(memory_format=torch.contiguous_format)
            return row

        _guard(results, f"{name}_b{batch}", block)

    # authors' per-image time is the reference for every batched mode's speed-up
    auth_ms = results.get("fp32_b1", {}).get("authors_ms_per_image")
    if auth_ms:
        for row in results.values():
            if isinstance(row, dict) and "engine_ms_per_image" in row:
                row["speedup_vs_authors_per_image"] = auth_ms / row["engine_ms_per_image"]

    def fusion_block() -> dict:
        out: dict[str, Any] = {}
        for batch in (1, big):
            with torch.no_grad():
                top1 = net(pool[:batch]).argmax(dim=1, keepdim=True)
            rec = record_scales(net, "layer4", pool[:batch], sizes, top1)  # given targets: all scales fused
            ref = fuse(rec, (base, base), impl="interpolate")
            fused = [(int(s.activations.shape[-2]), int(s.activations.shape[-1])) for s in rec.scales]
            channels = int(rec.scales[0].activations.shape[1])
            out[f"auto_b{batch}"] = auto_impl(cameras_rule, device, fused, (base, base), channels)[0]  # the default
            for impl in ["interpolate", "matmul", "gram", "tiles"]:
                m = _measure(lambda impl=impl, rec=rec: fuse(rec, (base, base), impl=impl), device, reps, warmup)
                got = fuse(rec, (base, base), impl=impl)
                out[f"{impl}_b{batch}"] = {
                    "ms_per_image": 1000 * m["s"] / batch,
                    "peak_mib": m["peak_mib"],
                    "max_rel_diff_vs_interpolate": float((got - ref).abs().max() / ref.abs().max()),
                }
            # the paths for any rule, with Grad-CAM++'s (what "auto" picks for the MultiScale methods on this device)
            ref_pp = fuse(rec, (base, base), gradcampp_rule, impl="interpolate")
            for impl in ["interpolate", "matmul"]:
                m = _measure(
                    lambda impl=impl, rec=rec: fuse(rec, (base, base), gradcampp_rule, impl=impl), device, reps, warmup
                )
                got = fuse(rec, (base, base), gradcampp_rule, impl=impl)
                out[f"gradcam++_{impl}_b{batch}"] = {
                    "ms_per_image": 1000 * m["s"] / batch,
                    "peak_mib": m["peak_mib"],
                    "max_rel_diff_vs_interpolate": float((got - ref_pp).abs().max() / ref_pp.abs().max()),
                }
            # tile sizes of the tiled Gram fusion (to calibrate its cost model on this GPU; "tiles" uses auto_tile)
            acts = [s.activations for s in rec.scales]
            grads = [s.gradients for s in rec.scales]
            w = scale_weights(rec.keep).to(device)
            out[f"tiles_auto_tile_b{batch}"] = auto_tile(fused, (base, base), channels)
            for tile in (12, 16, 20, 24, 28, 32, 40):

                def run(tile: int = tile, acts: list = acts, grads: list = grads, w: torch.Tensor = w) -> torch.Tensor:
                    return fuse_tiles(acts, grads, w, (base, base), tile=tile)

                m = _measure(run, device, reps, warmup)
                out[f"tiles{tile}_b{batch}"] = {
                    "ms_per_image": 1000 * m["s"] / batch,
                    "peak_mib": m["peak_mib"],
                    "max_rel_diff_vs_interpolate": float((run() - ref).abs().max() / ref.abs().max()),
                }
        return out

    if not args.skip_fusion and time.perf_counter() - start < args.budget_s:
        _guard(results, "fusion_2048ch", fusion_block)

    if args.compile and time.perf_counter() - start < args.budget_s:

        def compile_block() -> dict:
            """torch.compile: bf16 batch 32 (inductor's default mode) and fp32 batch 1 with CUDA graphs
            (mode="reduce-overhead", for the launch-bound batch 1), each timed round-robin with the eager engine
            and the floor; maps compared with the eager engine's."""
            out: dict[str, Any] = {}
            configs = [
                (f"bf16_b{big}", torch.bfloat16, big, True, None),
                ("fp32_b1_reduce_overhead", None, 1, False, "reduce-overhead"),
            ]
            for label, dtype, batch, cl, mode in configs:
                if wanted is not None and not any(label.startswith(m) for m in wanted):
                    continue  # --modes also selects the compiled configurations (compiling costs minutes each)
                fmt = torch.channels_last if cl else torch.contiguous_format
                net.to(memory_format=fmt)
                x = pool[:batch].contiguous(memory_format=fmt)
                kw: dict[str, Any] = dict(layer="layer4", resolutions=resolutions, dtype=dtype, channels_last=cl)
                compiled = cameras.CAMERAS(net, compile=True, compile_mode=mode, **kw)
                eager = cameras.CAMERAS(net, **kw)
                t = time.perf_counter()
                first_map = compiled(x).saliency
                _sync(device)
                first = time.perf_counter() - t
                fns: dict[str, Callable[[], Any]] = {
                    "compiled": lambda c=compiled, x=x: c(x),
                    "eager": lambda e=eager, x=x: e(x),
                    "floor": lambda x=x, d=dtype: floor(x, d),
                }
                timed = _interleaved(fns, device, reps, 1)
                out[label] = {
                    "first_call_s": first,
                    "compiled_ms_per_image": 1000 * timed["compiled"]["s"] / batch,
                    "eager_ms_per_image": 1000 * timed["eager"]["s"] / batch,
                    "floor_ms_per_image": 1000 * timed["floor"]["s"] / batch,
                    "compiled_over_floor": timed["compiled"]["s"] / timed["floor"]["s"],
                    "compiled_peak_mib": timed["compiled"]["peak_mib"],
                    "max_abs_diff_vs_eager": float((first_map - eager(x).saliency).abs().max()),
                }
            net.to(memory_format=torch.contiguous_format)
            return out

        _guard(results, "compiled", compile_block)

    if args.profile and time.perf_counter() - start < args.budget_s + 60:

        def profile_block() -> dict:
            from torch.profiler import ProfilerActivity, profile

            lines = []
            x1 = pool[:1]
            for label, fn in [
                ("engine fp32 b1, default fusion", lambda: cameras.CAMERAS(net, "layer4", resolutions)(x1)),
                ("floor fp32 b1", lambda: floor(x1, None)),
            ]:
                fn()
                _sync(device)
                acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
                with profile(activities=acts) as prof:
                    fn()
                    _sync(device)
                sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
                lines += [f"== {label}", prof.key_averages().table(sort_by=sort, row_limit=25)]
            with torch.no_grad():
                top1 = net(pool).argmax(dim=1, keepdim=True)
            rec = record_scales(net, "layer4", pool, sizes, top1)
            for impl in ["gram", "tiles"]:
                fuse(rec, (base, base), impl=impl)
                _sync(device)
                with profile(activities=acts) as prof:
                    fuse(rec, (base, base), impl=impl)
                    _sync(device)
                lines += [f"== fusion {impl} b{big}", prof.key_averages().table(sort_by=sort, row_limit=15)]
            Path(args.profile).write_text("\n".join(lines))
            return {"written": args.profile}

        _guard(results, "profile", profile_block)

    meta = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "resolutions": resolutions,
        "reps": reps,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "wall_s": time.perf_counter() - start,
        "quick": args.quick,
    }
    Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"\n{json.dumps(meta)}\n")
    print(
        "| mode | batch | channels-last | fusion | engine ms/img | img/s | floor ms/img | engine/floor | peak MiB | "
        "vs authors (per img) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in results.values():
        if isinstance(row, dict) and "engine_ms_per_image" in row:
            print(
                f"| {row['mode']} | {row['batch']} | {row['channels_last']} | {row['fusion']} | "
                f"{row['engine_ms_per_image']:.2f} | "
                f"{row['engine_images_per_s']:.1f} | {row['floor_ms_per_image']:.2f} | {row['engine_over_floor']:.2f}× "
                f"| {row['engine_peak_mib']:.0f} | {row.get('speedup_vs_authors_per_image', float('nan')):.1f}× |"
            )
    b1 = results.get("fp32_b1", {})
    if "authors_ms_per_image" in b1:
        print(
            f"\nauthors' structure fp32 b1: {b1['authors_ms_per_image']:.1f} ms/img, peak {b1['authors_peak_mib']:.0f} "
            f"MiB; engine/authors peak {b1['peak_ratio_vs_authors']:.2f}; max |Δ| {b1['max_abs_diff_vs_authors']:.1e}"
        )
    fusion = results.get("fusion_2048ch", {})
    for key, val in fusion.items():
        if isinstance(val, str):
            print(f"fusion {key}: {val}")
        if isinstance(val, dict):
            rel = val["max_rel_diff_vs_interpolate"]
            print(f"fusion {key}: {val['ms_per_image']:.2f} ms/img (rel. diff {rel:.1e})")
    print(f"\nwall time {meta['wall_s']:.0f} s; JSON: {args.json}")


if __name__ == "__main__":
    main()
