"""The ``cameras`` command: one sub-command per module in :mod:`cameras.cli`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from .common import Parser, print_error

__all__ = ["build_parser", "main"]

COMMANDS = ("explain", "compare", "evaluate", "sanity", "attack")


def build_parser() -> Parser:
    from .. import __version__

    parser = Parser(
        prog="cameras",
        description="High-resolution, sanity-preserving saliency maps (CAMERAS, CVPR 2021) and the tools to test them.",
    )
    parser.add_argument("--version", action="version", version=f"cameras {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as err:  # a command whose module is not part of this build
            if err.name != f"{__package__}.{name}":
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 = success, 1 = some items failed, 2 = nothing could be done).

    Never lets a traceback reach the user: a usage error, a failed input or an unexpected exception is one line
    ``cameras COMMAND: error: …`` on standard error. Set ``CAMERAS_DEBUG=1`` to get the traceback of an unexpected
    exception instead.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # usage errors (already printed), --help, --version
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    command = str(args.command)
    started = _now()
    code = 1
    status = "failed"
    try:
        code = int(args.func(args))
        status = "done" if code == 0 else "failed"
        return code
    except KeyboardInterrupt:
        print_error(command, "interrupted; files already written are complete, nothing is half-written")
        code, status = 130, "interrupted"
        return code
    except MemoryError:
        print_error(command, "out of memory: use smaller --resolutions or a lower --max-pixels / --max-side")
        return 1
    except Exception as err:
        if os.environ.get("CAMERAS_DEBUG"):
            raise
        text = str(err).splitlines()[0] if str(err) else ""
        print_error(
            command, f"unexpected {type(err).__name__}: {text} (set CAMERAS_DEBUG=1 to see the traceback)".strip()
        )
        return 1
    finally:
        _record(args, status=status, code=code, started=started, argv=argv)


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _record(args: argparse.Namespace, *, status: str, code: int, started: str, argv: Sequence[str] | None) -> None:
    """Write ``run.json`` into the command's output folder when the command wrote anything there (or wrote a
    ``"running"`` record first: it sets ``args.run_extra``, the extra fields of its record). Under torchrun only rank
    0 writes it: the other ranks share rank 0's folder and wrote only their shards."""
    from ..io import OutputDir
    from ..io.runinfo import write_run_record
    from ..runs.distributed import current_rank

    out = getattr(args, "out", None)
    extra = getattr(args, "run_extra", None)
    if not isinstance(out, OutputDir) or not (out.written or extra is not None) or current_rank() != 0:
        return
    try:
        write_run_record(
            out,
            args,
            status=status,
            exit_code=code,
            started=started,
            argv=sys.argv[1:] if argv is None else argv,
            extra=extra,
        )
    except OSError as err:
        print_error(str(args.command), f"cannot write {out.path / 'run.json'}: {err}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
