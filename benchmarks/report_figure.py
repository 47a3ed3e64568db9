"""The README's report screenshot: a real ``cameras evaluate`` run on the bundled photos, its page, a screenshot.

1. writes the four bundled photos (``cameras.data``) and their boxes (``skimage_boxes.json``) to ``WORK/photos``;
2. runs ``cameras evaluate`` on them with the bundled EfficientNet-Lite0 (CAMERAS, Grad-CAM, Grad-CAM++) into
   ``WORK/run`` with ``--save-maps`` (``maps/index.csv`` + ``.npz`` chunks of float16 maps in [0, 1] at the
   model-input resolution), so the gallery shows the overlays;
3. writes ``WORK/run/report.html`` (:func:`cameras.report.write_report`) and saves a screenshot of its gallery with
   the system Chromium (Playwright, nothing downloaded) to ``--out``.

    python benchmarks/report_figure.py [--work /tmp/cameras_report] [--out docs/report.png]
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from cameras import data

METHODS = "cameras,gradcam,gradcam++"
RESOLUTIONS = "224,324,424"


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
    run = work / "run"
    from cameras.cli.main import main as cameras

    argv = ["evaluate", "--images", str(photos), "--boxes", str(boxes_file), "--methods", METHODS]
    argv += ["--resolutions", RESOLUTIONS, "--metrics", "pointing,energy,deletion", "--steps", "20", "--out", str(run)]
    code = cameras([*argv, "--save-maps", "--no-report", "--no-progress"])
    if code != 0:
        raise SystemExit(f"cameras evaluate exited with {code}")


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
