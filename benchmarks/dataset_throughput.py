"""Whole data-set pipeline vs the explainer alone: images/s of `cameras evaluate --dataset voc` against the same
explainer on preloaded tensors, same machine, one run.

The pipeline run is the real command (DataLoader workers decoding JPEGs with the one loader and preprocessing,
batched explainers, pointing + energy, shards committed atomically, rank-0 merge and outputs); its time includes
everything from the command line to the written files except the model build, which is timed apart. The
"explainer alone" run explains the same (photo, class) inputs, already decoded, preprocessed and stacked in memory,
in the same batches. Rounds alternate the two (medians reported), so that the shared machine's drift hits both.
The issue's target is pipeline / explainer ≥ 0.9 (on a GPU; this script also reports the CPU).

    python benchmarks/dataset_throughput.py --photos 32 --out benchmarks/dataset_throughput_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _voc(root: Path, n: int) -> Path:
    names = ["dog", "person", "cat", "car", "bus", "bird", "chair", "sofa"]
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "Annotations").mkdir()
    (root / "JPEGImages").mkdir()
    rng = np.random.default_rng(0)
    ids = [f"{k:06d}" for k in range(n)]
    (root / "ImageSets" / "Main" / "test.txt").write_text("".join(f"{i}\n" for i in ids))
    for k, i in enumerate(ids):
        # VOC-sized photos (500×375) with smooth content, so that JPEG decoding costs what it costs on real photos
        base = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        Image.fromarray(base).resize((500, 375), Image.BICUBIC).save(root / "JPEGImages" / f"{i}.jpg", quality=90)
        name = names[k % len(names)]
        (root / "Annotations" / f"{i}.xml").write_text(
            f"<annotation><object><name>{name}</name><difficult>0</difficult><bndbox><xmin>50</xmin><ymin>40</ymin>"
            "<xmax>300</xmax><ymax>330</ymax></bndbox></object></annotation>"
        )
    return root


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--photos", type=int, default=32)
    p.add_argument("--resolutions", default="224,324")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=None)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-wait", action="store_true")
    a = p.parse_args()

    import cameras.methods as M
    from cameras import models
    from cameras.cli.main import main as cli
    from cameras.cli.options import schedule_factors

    work = Path(tempfile.mkdtemp())
    root = _voc(work / "VOC2007", a.photos)
    torch.manual_seed(0)
    ckpt = work / "voc20.pt"
    torch.save(models.load("efficientnet_lite0", None, num_classes=20).model.state_dict(), ckpt)
    if not a.no_wait:
        from _idle import wait_idle

        wait_idle()

    t0 = time.perf_counter()
    loaded = models.load("efficientnet_lite0", str(ckpt), a.device)
    build_s = time.perf_counter() - t0

    # the explainer alone: the same inputs, decoded and preprocessed beforehand, in the same batches
    from cameras.datasets import open_dataset

    ds = open_dataset("voc", root)
    xs = torch.cat([loaded.preprocess(ds.path(r), square=True).tensor for r in ds.records]).to(loaded.device)
    targets = torch.tensor([r.classes[0] for r in ds.records], device=loaded.device)
    factors = schedule_factors([int(v) for v in a.resolutions.split(",")], loaded.preprocess.size)
    cam = M.get("cameras")(loaded.model, layer=loaded.layer, resolutions=factors)

    def alone() -> float:
        if loaded.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for s in range(0, len(xs), a.batch):
            cam(xs[s : s + a.batch], targets[s : s + a.batch])
        if loaded.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    def pipeline(k: int) -> float:
        argv = [
        "evaluate", "--dataset", "voc", "--root", str(root), "--weights", str(ckpt), "--square",
        "--resolutions", a.resolutions, "--metrics", "pointing", "energy", "--explain-batch", str(a.batch),
        "--workers", str(a.workers), "--shard-size", "16", "--device", a.device, "--out", str(work / f"run{k}"),
        "--no-progress",
        ]  # fmt: skip
        t0 = time.perf_counter()
        code = cli(argv)
        assert code == 0, code
        return time.perf_counter() - t0 - build_s  # the command builds the model once too

    cam(xs[: a.batch], targets[: a.batch])  # warm-up at the batch size
    rounds = [(alone(), pipeline(k)) for k in range(a.rounds)]  # interleaved: the machine's drift hits both
    alone_s = float(np.median([r[0] for r in rounds]))
    pipeline_s = float(np.median([r[1] for r in rounds]))
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {a.device}"
        + (f" ({torch.cuda.get_device_name()})" if loaded.device.type == "cuda" else ""),
        "photos": a.photos,
        "photo_size": "500x375 JPEG",
        "model": "efficientnet_lite0 (random 20-class head)",
        "resolutions": a.resolutions,
        "batch": a.batch,
        "workers": a.workers,
        "model_build_s": round(build_s, 3),
        "rounds_s": [[round(x, 2), round(y, 2)] for x, y in rounds],
        "explainer_alone_img_per_s": round(a.photos / alone_s, 3),
        "pipeline_img_per_s": round(a.photos / pipeline_s, 3),
        "ratio": round(alone_s / pipeline_s, 3),
    }
    print(json.dumps(result, indent=2))
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
