"""``cameras report RUN_DIR``: the HTML page of a run folder, ``RUN_DIR/report.html`` (see :mod:`cameras.report`).

Every other command writes its page itself when it ends (unless ``--no-report``; see :func:`cameras.cli.main.main`);
this command (re)writes it for any folder a command wrote — after a run that was stopped, on a copied folder, or
after an upgrade. It reads files only: no model is loaded.
"""

from __future__ import annotations

import argparse

from .common import add_progress_option, print_error
from .options import run_folder

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "report",
        help="write RUN_DIR/report.html: one offline page with the figures, numbers and settings of a run",
        description=(
            "Write RUN_DIR/report.html for the output folder of any cameras command (explain, compare, evaluate, "
            "sanity, attack). The page is one self-contained file (no server, no network); a data-set run's "
            "thumbnails go to RUN_DIR/report_files/. Open it in a browser: e.g. xdg-open RUN_DIR/report.html."
        ),
    )
    p.add_argument("run_dir", type=run_folder, metavar="RUN_DIR", help="a run folder (the --out of a command)")
    add_progress_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io import RunRecordError
    from ..report import write_report

    try:
        page = write_report(args.run_dir, progress=not args.no_progress)
    except (RunRecordError, ValueError, OSError) as err:
        print_error("report", str(err))
        return 2
    print(f"wrote {page}")
    return 0
