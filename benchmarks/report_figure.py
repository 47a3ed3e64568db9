"""The README's report screenshot: a real ``cameras evaluate`` run on the bundled photos, its page, a screenshot.

1. writes the four bundled photos (``cameras.data``) and their boxes (``skimage_boxes.json``) to ``WORK/photos``;
2. runs ``cameras evaluate`` on them with the bundled EfficientNet-Lite0 (CAMERAS, Grad-CAM, Grad-CAM++) into
   ``WORK/run``; with ``--save-maps`` when the command has it, otherwise this script saves the maps itself in the
   same layout (``maps/index.csv`` + an ``.npz`` chunk of float16 maps in [0, 1] at the model-input resolution,
   computed by the same methods on the same inputs), so the gallery shows the overlays;
3. writes ``WORK/run/report.html`` (:func:`cameras.report.write_report`) and saves a screenshot of its gallery with
   the system Chromium (Playwright, nothing downloaded) to ``--out``.

    python benchmarks/report_figure.py [--work /tmp/cameras_report] [--out docs/report.png]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np

from cameras import data

METHODS = "cameras,gradcam,gradcam++"
RESOLUTIONS = "224,324,424"


def _has_save_maps() -> bool:
    from cameras.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return "--save-maps" in sub.choices["evaluate"]._option_string_actions  # type: ignore[attr-defined]


def _save_maps(run: Path, photos: Path, boxes: dict[str, list[dict[str, object]]]) -> None:
    """The ``--save-maps`` layout, computed here with the methods and inputs ``evaluate`` used."""
    import torch

    from cameras import methods, models
    from cameras.cli.options import parse_resolutions, schedule_factors

    loaded = models.load("efficientnet_lite0")
    factors = schedule_factors(parse_resolutions(RESOLUTIONS), loaded.preprocess.size)
    explainers = {
        name: methods.get(name)(
            loaded.model, layer=loaded.layer, **({"resolutions": factors} if name == "cameras" else {})
        )
        for name in METHODS.split(",")
    }
    arrays, index = {}, []
    for image, anns in boxes.items():
        x = loaded.preprocess(photos / image).tensor
        for cls in dict.fromkeys(int(a["class"]) for a in anns):  # type: ignore[call-overload]
            for name, explainer in explainers.items():
                sal = explainer(x, torch.tensor([cls])).saliency[0].detach().float().clamp(0, 1).numpy()
                key = f"m{len(arrays)}"
                arrays[key] = sal.astype(np.float16)
                index.append([image, cls, name, "chunk_0000.npz", key, sal.shape[0], sal.shape[1]])
    (run / "maps").mkdir(exist_ok=True)
    np.savez(run / "maps" / "chunk_0000.npz", **arrays)
    with open(run / "maps" / "index.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "class", "method", "file", "key", "height", "width"])
        w.writerows(index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/cameras_report", help="scratch folder (replaced)")
    parser.add_argument("--out", default="docs/report.png", help="the screenshot")
    parser.add_argument(
        "--shot-only", action="store_true", help="reuse the run in --work: only the page and screenshot"
    )
    args = parser.parse_args()
    work = Path(args.work)
    run = work / "run"
    if not args.shot_only:
        _run(work)
    from cameras.report import write_report

    page = write_report(run, progress=False)
    _screenshot(page, args.out)
    print(f"wrote {args.out} from {page}")


def _run(work: Path) -> None:
    """Steps 1 and 2 of the module docstring."""
    shutil.rmtree(work, ignore_errors=True)
    photos = work / "photos"
    for name in data.SAMPLES:
        data.sample_path(name, photos)
    boxes_file = Path(data.__file__).parent / "skimage_boxes.json"
    boxes = json.loads(boxes_file.read_text())
    run = work / "run"
    from cameras.cli.main import main as cameras

    argv = ["evaluate", "--images", str(photos), "--boxes", str(boxes_file), "--methods", METHODS]
    argv += ["--resolutions", RESOLUTIONS, "--metrics", "pointing,energy,deletion", "--steps", "20", "--out", str(run)]
    saving = _has_save_maps()
    code = cameras([*argv, *(["--save-maps"] if saving else []), "--no-report", "--no-progress"])
    if code != 0:
        raise SystemExit(f"cameras evaluate exited with {code}")
    if not saving:
        _save_maps(run, photos, boxes)


def _screenshot(page: Path, out: str) -> None:
    """The gallery (sorted by CAMERAS' energy in box) on a 1366 px wide screen, from its heading down."""
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium") or "chromium", args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1366, "height": 900})
        tab.goto(page.as_uri(), wait_until="load")
        tab.select_option("#sort-key", "energy")
        tab.select_option("#sort-method", "cameras")
        tab.wait_for_function("() => [...document.querySelectorAll('#gallery img')].every(i => i.complete)")
        top = tab.evaluate("() => document.getElementById('images').getBoundingClientRect().top + window.scrollY")
        tab.screenshot(path=out, full_page=True, clip={"x": 0, "y": float(top) - 10, "width": 1366, "height": 860})
        browser.close()


if __name__ == "__main__":
    main()
