"""One self-contained HTML page per run: ``RUN_DIR/report.html``, to open offline in any browser.

:func:`write_report` reads a run folder (what a ``cameras`` command wrote into ``--out``: ``run.json`` and the
command's files; see :mod:`cameras.report.run`) and writes ``report.html`` beside them:

* a **data-set run** (a folder with ``per_image.csv``, as ``cameras evaluate`` writes it; see
  :mod:`cameras.report.dataset` for the files read) gets what was run, the summary table, the other tables
  (``pointing_table.csv``, ``skipped.csv``), a gallery / table of images × methods × metrics — sortable by a
  metric, filterable (pointing-game misses, search by file or class), a method toggle and an opacity slider, one
  page of rows rendered at a time from embedded JSON — and the run's plots. Its thumbnails (each photo, and each
  saved map colour-mapped at the photo thumbnail's size) go to ``RUN_DIR/report_files/``;
* any other run (``explain``, ``compare``, ``sanity``, ``attack``) gets what was run, its figures and the numbers of
  its JSON and CSV files.

The page makes no request of any kind beyond the images beside it (inline CSS and JS, a Content Security Policy
that forbids everything else), so it works from a copied folder or over SSHFS. The policy allows the page's own
``<style>`` and ``<script>`` by their SHA-256 only: an inline script or event handler that a missed escape let into
the page does not run. Every file is written through
:class:`cameras.io.OutputDir` (atomically).

Example:
    >>> import tempfile, pathlib
    >>> run = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (run / "notes.json").write_text('{"score": 0.5}')
    >>> page = write_report(run, progress=False)
    >>> page.name, "score" in page.read_text()
    ('report.html', True)
"""

from __future__ import annotations

from pathlib import Path

from .run import REPORT_DIR, REPORT_FILE, RunFolder, read_run_folder

__all__ = ["REPORT_DIR", "REPORT_FILE", "RunFolder", "build_report", "read_run_folder", "write_report"]


def build_report(path: str | Path, *, progress: bool = True) -> tuple[str, list[str]]:
    """The HTML of a run folder's page (thumbnails of a data-set run are written on the way) and the problems met
    (photos or maps that could not be read), in words.

    Raises:
        FileNotFoundError: ``path`` is not a folder.
        cameras.io.RunRecordError: its ``run.json`` is not a run record.
        ValueError: its ``per_image.csv`` lacks a required column.
    """
    from .dataset import make_thumbnails, read_tables
    from .html import page
    from .pages import dataset_body, generic_body

    run = read_run_folder(path)
    name = f"cameras {run.command}" if run.command else "cameras run"
    if run.has("per_image.csv"):
        tables = read_tables(run)
        problems = make_thumbnails(run, tables, progress=progress)
        return page(f"{name} — {run.path.name}", dataset_body(run, tables, problems), script=True), problems
    return page(f"{name} — {run.path.name}", generic_body(run)), []


def write_report(path: str | Path, *, progress: bool = True) -> Path:
    """Write ``report.html`` (and a data-set run's thumbnails) into the run folder ``path``; returns the page's path.

    Args:
        path: a run folder (the ``--out`` of a ``cameras`` command).
        progress: a progress bar while the thumbnails are made.

    Raises:
        FileNotFoundError: ``path`` is not a folder.
        cameras.io.RunRecordError: its ``run.json`` is not a run record.
        ValueError: its ``per_image.csv`` lacks a required column.
        OSError: the page cannot be written.
    """
    from ..io import OutputDir

    text, _ = build_report(path, progress=progress)
    return OutputDir(path).write_text(REPORT_FILE, text)
