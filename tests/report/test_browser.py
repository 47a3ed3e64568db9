"""The report pages in a real headless Chromium (Debian's, driven by Playwright; see :mod:`tests.report.browser`).

Every test opens a page from ``file://``, checks what it shows, then checks that no request left the machine (only
``file://`` URLs were asked for) and that the console holds no error, and saves a full-page screenshot in its
temporary folder. One browser serves the whole module. Without Chromium these tests fail with the install command.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cameras.cli.main import main
from cameras.report import write_report

from ..cli.fakes import Registry
from .browser import Visit, launch
from .conftest import photo
from .fixtures import METHODS, DatasetRun, dataset_run

N_IMAGES = 45  # three pages of 20 items


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launch() as b:
        yield b


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> DatasetRun:
    made = dataset_run(tmp_path_factory.mktemp("dataset"), N_IMAGES)
    write_report(made.path, progress=False)
    return made


@pytest.fixture
def visit(browser: Any, run: DatasetRun, tmp_path: Path) -> Iterator[Visit]:
    """The data-set page; after the test: nothing left the machine, no console error, a screenshot."""
    v = Visit(browser, (run.path / "report.html").as_uri())
    yield v
    v.close(tmp_path / "screenshot.png")
    assert (tmp_path / "screenshot.png").stat().st_size > 0
    assert v.blocked == [], f"requests left the machine: {v.blocked}"
    assert all(u.startswith("file://") for u in v.requests)
    assert v.errors == []


def shown_items(v: Visit) -> list[str]:
    return list(v.page.eval_on_selector_all("#gallery article", "els => els.map(e => e.dataset.image)"))


def images_loaded(v: Visit) -> list[dict[str, Any]]:
    v.page.wait_for_function(
        "() => [...document.querySelectorAll('#gallery img')].every(i => i.complete)", timeout=10_000
    )
    return list(
        v.page.eval_on_selector_all(
            "#gallery img", "els => els.map(i => ({src: i.getAttribute('src'), w: i.naturalWidth, h: i.naturalHeight}))"
        )
    )


def value(run: DatasetRun, image: str, method: str, metric: str) -> float:
    row = next(r for r in run.rows if r["image"] == image and r["method"] == method)
    return float(row[metric])


def test_first_page_images_all_load_and_only_them(visit: Visit, run: DatasetRun) -> None:
    items = shown_items(visit)
    assert items == [r["image"] for r in run.rows[:: len(METHODS)]][:20]
    imgs = images_loaded(visit)
    assert len(imgs) == 20 * (1 + 2 * len(METHODS))  # the photo, and under each method the photo and its map
    assert all(i["w"] > 0 and i["h"] > 0 for i in imgs), [i for i in imgs if i["w"] == 0]
    # the other pages' thumbnails were never asked for
    thumbs = [u for u in visit.requests if "/report_files/" in u]
    assert len(set(thumbs)) == 20 * (1 + len(METHODS))
    assert "Items 1–20 of 45" in visit.page.inner_text("#status")


def test_sorting_by_a_metric_reorders_the_items(visit: Visit, run: DatasetRun) -> None:
    before = shown_items(visit)
    visit.page.select_option("#sort-key", "energy")
    visit.page.select_option("#sort-method", "gradcam")
    visit.page.select_option("#page-size", "50")
    items = shown_items(visit)
    assert items != before
    energies = [value(run, i, "gradcam", "energy") for i in items]
    assert energies == sorted(energies, reverse=True)  # higher is better: best first
    visit.page.click("#sort-dir")
    visit.page.select_option("#sort-method", "cameras")
    items = shown_items(visit)
    energies = [value(run, i, "cameras", "energy") for i in items]
    defined = [e for e in energies if not math.isnan(e)]
    assert defined == sorted(defined) and math.isnan(energies[-1])  # ascending, the undefined one last


def test_table_view_sorts_by_a_column_header(visit: Visit, run: DatasetRun) -> None:
    visit.page.click("#view-table")
    visit.page.select_option("#page-size", "100")
    visit.page.click("th button.sort[data-key='deletion']")
    rows = visit.page.eval_on_selector_all(
        "#gallery tbody tr", "els => els.map(e => [e.children[2].textContent, e.dataset.method])"
    )
    assert len(rows) == 90
    deletions = [value(run, image, method, "deletion") for image, method in rows]
    assert deletions == sorted(deletions)  # lower is better: best first
    assert visit.page.get_attribute("th:has(button[data-key='deletion'])", "aria-sort") == "ascending"
    visit.page.click("th button.sort[data-key='deletion']")
    rows = visit.page.eval_on_selector_all(
        "#gallery tbody tr", "els => els.map(e => [e.children[2].textContent, e.dataset.method])"
    )
    deletions = [value(run, image, method, "deletion") for image, method in rows]
    assert deletions == sorted(deletions, reverse=True)
    assert len(images_loaded(visit)) > 0 and all(i["w"] > 0 for i in images_loaded(visit))


def test_misses_filter_and_method_toggle_change_what_is_shown(visit: Visit, run: DatasetRun) -> None:
    visit.page.select_option("#page-size", "100")
    visit.page.check("#misses")
    items = shown_items(visit)
    missed_any = [
        r["image"]
        for r in run.rows[:: len(METHODS)]
        if any(value(run, r["image"], m, "pointing") == 0 for m in METHODS)
    ]
    assert items == missed_any and 0 < len(items) < N_IMAGES
    visit.page.uncheck("input[name='method'][value='gradcam']")
    items = shown_items(visit)
    assert items == [r["image"] for r in run.rows if r["method"] == "cameras" and r["pointing"] == "0"]
    assert visit.page.locator("#gallery [data-method='gradcam']").count() == 0
    assert visit.page.locator("#gallery [data-method='cameras']").count() == len(items)
    assert visit.page.locator("#gallery .miss").count() == len(items)
    visit.page.uncheck("#misses")
    assert len(shown_items(visit)) == N_IMAGES


def test_search_by_file_or_class(visit: Visit, run: DatasetRun) -> None:
    visit.page.fill("#search", "img_007")
    assert shown_items(visit) == ["sub/img_007 #x.png"]
    images_loaded(visit)  # the file name with a space and '#' still loads (relative, encoded thumbnails)
    visit.page.fill("#search", "class <103>")
    visit.page.select_option("#page-size", "100")
    expected = [r["image"] for r in run.rows[:: len(METHODS)] if r["class_name"] == "class <103>"]
    assert shown_items(visit) == expected and expected
    visit.page.fill("#search", "no such thing")
    assert shown_items(visit) == [] and "No item matches" in visit.page.inner_text("#status")


def test_pages_opacity_and_keyboard(visit: Visit, run: DatasetRun) -> None:
    visit.page.click(".pager >> nth=0 >> text=Next ›")
    assert shown_items(visit)[0] == run.rows[20 * len(METHODS)]["image"]
    visit.page.click(".pager >> nth=0 >> text=Last »")
    assert len(shown_items(visit)) == 5 and visit.page.is_disabled(".pager >> nth=0 >> text=Next ›")
    assert all(i["w"] > 0 for i in images_loaded(visit))
    visit.page.fill("#opacity", "0.2")
    opacity = visit.page.eval_on_selector("#gallery img.map", "i => getComputedStyle(i).opacity")
    assert float(opacity) == pytest.approx(0.2)
    # keyboard: focus moves to real buttons, shows a visible outline, and Enter acts
    visit.page.focus("#search")
    visit.page.keyboard.press("Shift+Tab")
    focused = visit.page.evaluate("() => document.activeElement.id")
    assert focused == "view-table"
    outline = visit.page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    visit.page.keyboard.press("Enter")
    assert visit.page.get_attribute("#view-table", "aria-pressed") == "true"
    assert visit.page.locator("#gallery table").count() == 1


def test_the_page_cannot_reach_the_network(visit: Visit) -> None:
    """The page's Content Security Policy stops a request to the network before it is made (and says so in the
    console); the recorder itself sees such requests on a page without that policy."""
    visit.page.evaluate("() => { const i = new Image(); i.src = 'http://192.0.2.1/x.png'; document.body.append(i); }")
    visit.page.wait_for_timeout(200)
    assert not any(u.startswith("http") for u in visit.requests)
    assert any("Content Security Policy" in e for e in visit.errors)
    visit.errors.clear()


def test_an_injected_inline_script_does_not_run(browser: Any, run: DatasetRun, tmp_path: Path) -> None:
    """Issue 21 §8: even if an escape were missed, an inline <script> or event handler in the page's content does not
    run (the policy allows the page's own script by its hash only), while the page's own script still works."""
    html = (run.path / "report.html").read_text()
    injected = (
        "<script>window.pwned = 'script'; document.title = 'pwned';</script>"
        '<img src="report_files/no-such.jpg" alt="" onerror="window.pwned = \'onerror\'">'
        '<button id="evil" onclick="window.pwned = \'onclick\'">x</button>'
        '<p id="styled" style="color: rgb(255, 0, 0)">styled</p>'
    )
    assert html.count('<main id="main">') == 1
    page = run.path / "injected.html"  # beside the real page, so the same relative links work
    page.write_text(html.replace('<main id="main">', '<main id="main">' + injected))
    try:
        v = Visit(browser, page.as_uri())
        v.page.click("#evil")
        v.page.wait_for_timeout(200)
        assert v.page.evaluate("() => window.pwned === undefined")
        assert v.page.title() != "pwned"
        assert v.page.eval_on_selector("#styled", "e => getComputedStyle(e).color") != "rgb(255, 0, 0)"
        # the page's own script ran: the gallery is rendered and reacts to a control
        assert len(shown_items(v)) == 20
        v.page.click("#view-table")
        assert v.page.locator("#gallery table").count() == 1
        v.close(tmp_path / "injected.png")
    finally:
        page.unlink()
    assert v.blocked == []
    assert any("Content Security Policy" in e for e in v.errors)  # the browser refused, and said so
    assert not any("uncaught" in e for e in v.errors)


def test_the_request_recorder_sees_network_requests(browser: Any, tmp_path: Path) -> None:
    page = tmp_path / "plain.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://192.0.2.1/x.png" alt=""></body></html>')
    v = Visit(browser, page.as_uri())
    v.close()
    assert v.blocked == ["http://192.0.2.1/x.png"]


def test_real_evaluate_and_explain_pages(browser: Any, tmp_path: Path, tiny: Registry) -> None:
    photos = tmp_path / "photos"
    photo(photos, "a.png")
    photo(photos, "b.png", (20, 160, 90))
    (photos / "boxes.json").write_text(
        json.dumps({"a.png": [{"class": 1, "box": [2, 2, 20, 20]}], "b.png": [{"class": 3, "box": [0, 0, 40, 32]}]})
    )
    out = tmp_path / "eval"
    argv = ["evaluate", "--images", str(photos), "--boxes", str(photos / "boxes.json"), "--out", str(out)]
    assert (
        main(
            [
                *argv,
                "--methods",
                "gradcam,cameras",
                "--resolutions",
                "32,40",
                "--metrics",
                "pointing,energy",
                "--no-progress",
            ]
        )
        == 0
    )
    v = Visit(browser, (out / "report.html").as_uri())
    assert [a for a in v.page.eval_on_selector_all("#gallery article", "e => e.map(x => x.dataset.image)")] == [
        "a.png",
        "b.png",
    ]
    imgs = images_loaded(v)
    assert len(imgs) == 2 * (1 + 2) and all(i["w"] > 0 for i in imgs)  # no maps saved: the photo under each method
    assert "No maps were saved" in v.page.inner_text("#images")
    plot_ok = v.page.eval_on_selector("#plots img", "i => i.complete && i.naturalWidth > 0")
    assert plot_ok
    v.close(tmp_path / "evaluate.png")
    assert v.blocked == [] and v.errors == []

    out = tmp_path / "explain"
    assert main(["explain", str(photos / "a.png"), "--resolutions", "32,40", "--out", str(out), "--no-progress"]) == 0
    v = Visit(browser, (out / "report.html").as_uri())
    v.page.wait_for_function("() => [...document.images].every(i => i.complete)")
    sizes = v.page.eval_on_selector_all("img", "els => els.map(i => i.naturalWidth)")
    assert sizes and all(w > 0 for w in sizes)
    assert "cameras explain" in v.page.inner_text("#run")
    v.close(tmp_path / "explain.png")
    assert v.blocked == [] and v.errors == []


def test_the_summary_is_in_the_first_viewport(browser: Any, run: DatasetRun) -> None:
    """Issue 22 §5: the answer first — the whole summary table is on the first screen of a 1280 × 800 window, and
    what was run is folded away below it."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto((run.path / "report.html").as_uri(), wait_until="load")
        box = page.eval_on_selector("#summary table", "t => t.getBoundingClientRect().toJSON()")
        assert box["top"] >= 0 and box["bottom"] <= 800 and box["right"] <= 1280
        assert page.eval_on_selector("#summary table", "t => t.querySelectorAll('tbody tr').length") == len(METHODS)
        assert page.eval_on_selector("#run details", "d => d.open") is False
        assert page.evaluate("() => document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    finally:
        context.close()


def test_a_click_opens_the_full_size_view(visit: Visit, run: DatasetRun) -> None:
    first = run.rows[0]["image"]
    visit.page.click(f"#gallery article[data-image='{first}'] [data-method='cameras'] .stack")
    assert visit.page.eval_on_selector("#viewer", "d => d.open")
    visit.page.wait_for_function("() => document.querySelector('#viewer-box img.photo').complete")
    photo = visit.page.eval_on_selector(
        "#viewer-box img.photo",
        "i => ({src: i.src, w: i.naturalWidth, shown: i.getBoundingClientRect().width})",
    )
    assert photo["src"] == (run.photos / first).as_uri()  # the photo itself, not its thumbnail
    assert photo["w"] == 60 and photo["shown"] > 600  # at the window's size
    maps = {
        m: visit.page.evaluate(
            f"() => JSON.parse(document.getElementById('report-data').textContent).items[0].m['{m}']"
        )
        for m in METHODS
    }
    assert visit.page.get_attribute("#viewer-box img.map", "src") == maps["cameras"]
    visit.page.click("#viewer [data-view='gradcam']")
    assert visit.page.get_attribute("#viewer-box img.map", "src") == maps["gradcam"]
    assert visit.page.get_attribute("#viewer [data-view='gradcam']", "aria-pressed") == "true"
    assert visit.page.locator("#viewer-box svg rect.box").count() == 1
    visit.page.click("#viewer [data-view='']")
    assert visit.page.locator("#viewer-box img.map").count() == 0
    visit.page.keyboard.press("Escape")
    assert visit.page.eval_on_selector("#viewer", "d => d.open") is False


def test_thumbnails_draw_the_box_and_the_peak(visit: Visit, run: DatasetRun) -> None:
    """The box (BOX on every photo) and each map's peak (its top-left quarter: the first pixel) are drawn in the
    photo's pixels; the peak is red where the pointing game missed."""
    from .fixtures import BOX

    for article in visit.page.query_selector_all("#gallery article")[:6]:
        image = article.get_attribute("data-image")
        rects = article.eval_on_selector_all(
            "[data-method] svg rect.box", "rs => rs.map(r => ['x','y','width','height'].map(a => +r.getAttribute(a)))"
        )
        x0, y0, x1, y1 = BOX
        assert rects == [[x0, y0, x1 - x0, y1 - y0]] * len(METHODS)
        for method in METHODS:
            peak = article.eval_on_selector(
                f"[data-method='{method}'] svg g.peak",
                "g => [+g.dataset.x, +g.dataset.y, g.classList.contains('peak-miss')]",
            )
            assert peak[0] == pytest.approx(0.5 / 36, abs=1e-4) and peak[1] == pytest.approx(0.5 / 24, abs=1e-4)
            assert peak[2] == (value(run, str(image), method, "pointing") == 0)


def test_the_table_view_scrolls_in_its_own_box(visit: Visit) -> None:
    visit.page.click("#view-table")
    visit.page.select_option("#page-size", "100")
    box = visit.page.eval_on_selector(
        "#gallery .table-wrap",
        "w => ({h: w.clientHeight, sh: w.scrollHeight, overflow: getComputedStyle(w).overflowY})",
    )
    assert box["overflow"] == "auto" and box["sh"] > box["h"] and box["h"] <= 800
    assert visit.page.evaluate("() => document.documentElement.scrollWidth <= document.documentElement.clientWidth")
