"""The report page without a browser: embedded rows, thumbnails, relative links, the command and the central hook.

The data-set folders are written file by file (:mod:`tests.report.fixtures`, the data-set issue's layout) or by a
real ``cameras evaluate`` on a tiny random CNN; the expected values are read back from the CSV files with the
:mod:`csv` module, independently of the page's own reader.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cameras.cli.main import main
from cameras.report import REPORT_DIR, REPORT_FILE, build_report, write_report
from cameras.report.pages import DATA_ID, PAGE_SIZE

from ..cli.fakes import Registry
from .conftest import photo
from .fixtures import METHODS, METRICS, dataset_run


def embedded(html: str) -> dict[str, Any]:
    """The JSON a data-set page embeds, parsed as the page's script parses it."""
    m = re.search(rf'<script type="application/json" id="{DATA_ID}">(.*?)</script>', html, re.S)
    assert m is not None, "no embedded data"
    data: dict[str, Any] = json.loads(m.group(1))
    return data


def expected_cell(text: str) -> Any:
    """A CSV cell as the page should hold it: numbers as numbers, nan / empty as null, text as text."""
    if text in ("", "nan"):
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        v = float(text)
        return None if not math.isfinite(v) else v
    except ValueError:
        return text


def read(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def links(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*)"', html)


def test_embedded_rows_equal_per_image_csv(tmp_path: Path) -> None:
    run = dataset_run(tmp_path, 12)
    html, problems = build_report(run.path, progress=False)
    assert problems == []
    data = embedded(html)
    header, rows = read(run.path / "per_image.csv")
    assert data["columns"] == header
    assert data["rows"] == [[expected_cell(c) for c in r] for r in rows]
    assert [m["key"] for m in data["metrics"]] == list(METRICS)  # 'note' is text, not a metric
    assert {m["key"]: m["higher"] for m in data["metrics"]} == {"pointing": True, "energy": True, "deletion": False}
    assert [header[m["col"]] for m in data["metrics"]] == list(METRICS)
    assert data["methods"] == list(METHODS) and data["pointing"] == "pointing" and data["hasMaps"] is True
    # one item per (photo, class), its rows those of that pair, every row in exactly one item
    seen = sorted(i for it in data["items"] for i in it["r"])
    assert seen == list(range(len(rows)))
    for it in data["items"]:
        assert {(rows[i][0], rows[i][1]) for i in it["r"]} == {(it["i"], it["c"])}
        assert sorted(rows[i][3] for i in it["r"]) == sorted(METHODS)


def test_pagination_data_and_every_item_once(tmp_path: Path) -> None:
    run = dataset_run(tmp_path, 9, classes_per_image=2)
    data = embedded(build_report(run.path, progress=False)[0])
    assert data["pageSize"] == PAGE_SIZE
    assert len(data["items"]) == 18 and len({(it["i"], it["c"]) for it in data["items"]}) == 18
    # the page renders the images from the JS: no <img> of the gallery is in the HTML itself
    html = build_report(run.path, progress=False)[0]
    assert not any(REPORT_DIR in link for link in links(html))


def test_thumbnails_photo_and_maps_same_size_relative_and_right(tmp_path: Path) -> None:
    run = dataset_run(tmp_path, 4)
    page = write_report(run.path, progress=False)
    data = embedded(page.read_text())
    for n, it in enumerate(data["items"]):
        assert it["p"].startswith(f"{REPORT_DIR}/") and not os.path.isabs(it["p"])
        with Image.open(run.path / it["p"]) as im:
            size = im.size
            rgb = np.asarray(im.convert("RGB"), dtype=float)
        colour = np.array([(n * 40) % 256, (n * 90) % 256, (n * 150) % 256], dtype=float)
        assert np.abs(rgb - colour).mean() < 4  # the photo's flat colour (JPEG)
        assert size == (60, 40)  # never upscaled
        assert sorted(it["m"]) == sorted(METHODS)
        for rel in it["m"].values():
            with Image.open(run.path / rel) as im:
                assert im.size == size
                heat = np.asarray(im.convert("RGB"), dtype=float)
            # the map's top-left quarter is 1 (jet: dark red), the rest 0 (jet: dark blue)
            assert heat[3, 3, 0] > 100 and heat[3, 3, 2] < 60
            assert heat[-3, -3, 2] > 100 and heat[-3, -3, 0] < 60


def test_page_links_are_relative_and_point_at_files(tmp_path: Path) -> None:
    run = dataset_run(tmp_path, 3)
    html = write_report(run.path, progress=False).read_text()
    text = html.replace('"http://www.w3.org/2000/svg"', "")  # the SVG namespace of the script: a name, not a link
    assert "http://" not in text and "https://" not in text and "//" not in "".join(links(html))
    for link in links(html):
        if link.startswith("#"):
            assert f'id="{link[1:]}"' in html
            continue
        assert not link.startswith("/")
        from urllib.parse import unquote

        assert (run.path / unquote(link)).is_file(), link
    assert "Content-Security-Policy" in html and "default-src &#x27;none&#x27;" in html


def test_text_cannot_close_the_data_element(tmp_path: Path) -> None:
    run = dataset_run(tmp_path, 2)
    # a class name that tries to end the <script> element
    text = (run.path / "per_image.csv").read_text().replace("class <101>", "</script><b>x</b>")
    (run.path / "per_image.csv").write_text(text)
    html = build_report(run.path, progress=False)[0]
    data = embedded(html)
    assert "</script><b>x</b>" in [r[2] for r in data["rows"]]
    assert html.count("</script>") == 2  # the data and the page's script


def test_no_maps_shows_photos_and_says_so(tmp_path: Path) -> None:
    run = dataset_run(tmp_path, 3, maps=False)
    html = write_report(run.path, progress=False).read_text()
    data = embedded(html)
    assert data["hasMaps"] is False and all(it["m"] == {} for it in data["items"])
    assert all((run.path / it["p"]).is_file() for it in data["items"])
    assert "No maps were saved" in html


def test_unreachable_photos_are_reported_not_fatal(tmp_path: Path) -> None:
    run = dataset_run(tmp_path, 3)
    record = json.loads((run.path / "run.json").read_text())
    record["image_root"] = str(tmp_path / "elsewhere")
    (run.path / "run.json").write_text(json.dumps(record))
    html, problems = build_report(run.path, progress=False)
    assert any("not reachable" in p for p in problems)
    data = embedded(html)
    assert all(it["p"] is None for it in data["items"])
    assert all(len(it["m"]) == 2 for it in data["items"])  # the maps are still shown, at their own aspect
    assert "thumbnail problem" in html


def test_second_report_reuses_fresh_thumbnails_and_remakes_stale_ones(tmp_path: Path) -> None:
    run = dataset_run(tmp_path, 2)
    data = embedded(write_report(run.path, progress=False).read_text())
    thumb = run.path / data["items"][0]["p"]
    first = thumb.stat().st_mtime_ns
    os.utime(thumb, ns=(first, first))
    write_report(run.path, progress=False)
    assert thumb.stat().st_mtime_ns == first
    source = run.photos / data["items"][0]["i"]
    Image.new("RGB", (60, 40), (255, 0, 0)).save(source)
    os.utime(source, ns=(first + 10**9, first + 10**9))
    write_report(run.path, progress=False)
    with Image.open(thumb) as im:
        assert np.asarray(im.convert("RGB"))[5, 5, 0] > 240


def test_summary_table_from_summary_csv(tmp_path: Path) -> None:
    run = dataset_run(tmp_path, 6)
    html = build_report(run.path, progress=False)[0]
    _, rows = read(run.path / "summary.csv")
    for method, metric, mean, std, *_ in rows:
        cell = f"{float(mean):.3f} ± {float(std):.3f}"
        assert cell in html, (method, metric)
    assert "(n=5)" in html  # cameras' energy has one undefined row
    assert "pointing_table.csv" in html and "1 skipped image(s)" in html
    assert "world size" in html and "kind: folder" in html


def test_report_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = dataset_run(tmp_path, 2)
    assert main(["report", str(run.path), "--no-progress"]) == 0
    assert (run.path / REPORT_FILE).is_file()
    assert json.loads((run.path / "run.json").read_text())["command"] == "evaluate"  # the run's record is kept
    capsys.readouterr()
    assert main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cameras report: error:") and "no such folder" in err[0]
    (run.path / "per_image.csv").write_text("image,method\na.png,cameras\n")
    assert main(["report", str(run.path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "per_image.csv has no column class" in err[0]


def test_every_command_writes_its_page_unless_told_not_to(
    tmp_path: Path, tiny: Registry, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    image = photo(tmp_path / "in")
    fast = ["--resolutions", "32,40"]
    out = tmp_path / "explain"
    assert main(["explain", str(image), *fast, "--out", str(out), "--no-progress"]) == 0
    html = (out / REPORT_FILE).read_text()
    assert 'src="a.png"' in html and "cameras explain" in html and "class_name" in html
    assert REPORT_FILE not in json.loads((out / "run.json").read_text())["outputs"]
    assert f"report: {out / REPORT_FILE}" in capsys.readouterr().out
    out = tmp_path / "off"
    assert main(["explain", str(image), *fast, "--out", str(out), "--no-report", "--no-progress"]) == 0
    assert (out / "a.png").is_file() and not (out / REPORT_FILE).exists()
    monkeypatch.setenv("RANK", "1")  # not rank 0 of a distributed run: rank 0 writes the page
    out = tmp_path / "rank1"
    assert main(["explain", str(image), *fast, "--out", str(out), "--no-progress"]) == 0
    assert not (out / REPORT_FILE).exists()
    monkeypatch.setenv("RANK", "0")
    out = tmp_path / "compare"
    assert main(["compare", str(image), "--methods", "gradcam,layercam", *fast, "--out", str(out)]) == 0
    html = (out / REPORT_FILE).read_text()
    assert "compare_methods_a.png" in html and "spearman" in html and "layercam" in html


def test_sanity_page_has_its_curves_table(tmp_path: Path, tiny: Registry) -> None:
    image = photo(tmp_path / "in")
    out = tmp_path / "sanity"
    args = ["sanity", str(image), "--methods", "gradcam", "--max-steps", "2", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    html = (out / REPORT_FILE).read_text()
    report = json.loads((out / "sanity.json").read_text())
    assert "sanity_curves.png" in html and "mean similarity to the original map" in html
    for step in report["steps"]:
        assert f"<td>{step}</td>" in html


def test_real_evaluate_folder_run_page(tmp_path: Path, tiny: Registry) -> None:
    photos = tmp_path / "photos"
    photo(photos, "a.png")
    photo(photos, "b b.png", (20, 160, 90))
    boxes = {"a.png": [{"class": 1, "box": [2, 2, 20, 20]}], "b b.png": [{"class": 3, "box": [0, 0, 40, 32]}]}
    (photos / "boxes.json").write_text(json.dumps(boxes))
    out = tmp_path / "eval"
    argv = ["evaluate", "--images", str(photos), "--boxes", str(photos / "boxes.json"), "--out", str(out)]
    fast = ["--resolutions", "32,40", "--metrics", "pointing,energy", "--no-progress"]
    assert main([*argv, "--methods", "gradcam,cameras", *fast]) == 0
    html = (out / REPORT_FILE).read_text()
    data = embedded(html)
    header, rows = read(out / "per_image.csv")
    assert data["columns"] == header and data["rows"] == [[expected_cell(c) for c in r] for r in rows]
    assert [it["i"] for it in data["items"]] == ["a.png", "b b.png"]
    for it in data["items"]:
        with Image.open(out / it["p"]) as im:
            assert im.size == (40, 32)
    assert "evaluate.png" in html and "pointing game" in html and data["pointing"] == "pointing"


def test_template_slots_in_a_folder_name_stay_text(tmp_path: Path) -> None:
    """The page shell is filled in one pass: a run folder named ``{{body}}`` puts that text in the title, not the
    page body (issue 21 §7)."""
    run = dataset_run(tmp_path, 2)
    named = run.path.rename(tmp_path / "x{{body}}{{css}}{{script}}")
    html = build_report(named, progress=False)[0]
    title = re.search(r"<title>(.*?)</title>", html, re.S)
    assert title is not None and title.group(1) == "cameras evaluate — x{{body}}{{css}}{{script}}"
    assert html.count('<main id="main">') == 1 and html.count("<style>") == 1
    assert html.count("<script>") == 1  # the page's own script, once (the data element has a type)
    assert '<p class="where">' + str(named).replace("&", "&amp;") in html  # the folder's name, as text
    generic = tmp_path / "{{body}}"
    generic.mkdir()
    (generic / "notes.json").write_text('{"score": 0.5}')
    html = build_report(generic, progress=False)[0]
    title = re.search(r"<title>(.*?)</title>", html, re.S)
    assert title is not None and title.group(1) == "cameras run — {{body}}" and html.count('<main id="main">') == 1


def test_per_image_csv_not_utf8_names_the_file(tmp_path: Path) -> None:
    run = dataset_run(tmp_path, 2)
    (run.path / "per_image.csv").write_bytes(b"image,class,class_name,method\n\xe9t\xe9.png,1,x,cameras\n")
    with pytest.raises(ValueError, match=r"per_image\.csv is not UTF-8 text \(byte 0xe9") as err:
        build_report(run.path, progress=False)
    assert str(run.path / "per_image.csv") in str(err.value)


def _csp(html: str) -> dict[str, list[str]]:
    """The page's Content-Security-Policy as {directive: sources}."""
    import html as html_mod

    m = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', html)
    assert m is not None, "no CSP"
    policy = html_mod.unescape(m.group(1))
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in policy.split(";")) if d}


def _hash(text: str) -> str:
    import base64
    import hashlib

    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@pytest.mark.parametrize("kind", ["dataset", "generic"])
def test_csp_allows_only_the_page_own_style_and_script_by_hash(tmp_path: Path, kind: str) -> None:
    """No 'unsafe-inline': the policy lists the hash of the page's one <style> and one <script> (issue 21 §8)."""
    if kind == "dataset":
        html = build_report(dataset_run(tmp_path, 2).path, progress=False)[0]
    else:
        (tmp_path / "notes.json").write_text('{"score": 0.5}')
        html = build_report(tmp_path, progress=False)[0]
    policy = _csp(html)
    assert "unsafe" not in " ".join(s for sources in policy.values() for s in sources)
    assert policy["default-src"] == ["'none'"] and policy["img-src"] == ["'self'"]
    assert policy["base-uri"] == ["'none'"] and policy["object-src"] == ["'none'"]
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)  # executable ones: no type attribute
    assert len(styles) == 1 and policy["style-src"] == [_hash(styles[0])]
    assert policy["script-src"] == ([_hash(scripts[0])] if kind == "dataset" else ["'none'"])
    assert len(scripts) == (1 if kind == "dataset" else 0)
    assert not re.search(r"<[^>]+\son\w+\s*=", html)  # no inline event handler of our own
    assert not re.search(r"<[^>]+\sstyle\s*=", html)  # no style attribute (the policy would block it)


def test_a_metric_with_no_value_is_hidden_and_says_why(tmp_path: Path) -> None:
    run = dataset_run(tmp_path, 3)
    header, rows = read(run.path / "per_image.csv")
    with open(run.path / "per_image.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*header, "discrimination"])
        w.writerows([*r, "nan"] for r in rows)
    with open(run.path / "summary.csv", "a", newline="") as f:
        for method in METHODS:
            csv.writer(f).writerow([method, "discrimination", "nan", "nan", 0, len(rows) // 2, True])
    html = build_report(run.path, progress=False)[0]
    data = embedded(html)
    assert [m["key"] for m in data["metrics"]] == list(METRICS)  # not in the gallery or the table view
    summary = html[html.index('id="summary"') : html.index('id="run"')]
    assert "<th" in summary and "discrimination" not in summary.split('id="undefined-metrics"')[0]
    assert "Not shown: discrimination (discrimination) — undefined for every row" in summary


def test_the_bar_plot_keeps_a_page_aspect() -> None:
    from cameras.cli.evaluate import METRICS as ALL
    from cameras.evaluation.outputs import bar_plot as _bar_plot

    keys = list(ALL)
    summary = {m: {k: {"mean": 0.5, "std": 0.1} for k in keys} for m in METHODS}
    for n in (1, 3, len(keys)):
        fig = _bar_plot(summary, keys[:n])
        w, h = fig.get_size_inches()
        assert w / h <= 4.5 and w <= 13, (n, w, h)  # 10 metrics were 30 × 3.4 in (3600 × 408 px)
        assert sum(ax.get_visible() and ax.axison for ax in fig.axes) == n
