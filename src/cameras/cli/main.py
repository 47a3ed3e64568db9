"""The ``cameras`` command: one sub-command per module in :mod:`cameras.cli`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from ..io import FolderLock, OutputDir
from .common import FULL_DISK, Parser, print_error, print_warning, write_failure

__all__ = ["build_parser", "main"]

COMMANDS = ("explain", "compare", "evaluate", "sanity", "attack", "report")

RESUMABLE = ("evaluate",)
"""Commands that resume from what they committed when rerun with the same options."""

NO_REPORT = ("report",)
"""Commands that get no ``--no-report`` option and write no page at their end (``report`` is the page)."""


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
        if name not in NO_REPORT:
            sub.choices[name].add_argument(
                "--no-report",
                action="store_true",
                help="do not write report.html (the run's page; `cameras report FOLDER` writes it later)",
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 = success, 1 = some items failed, 2 = nothing could be done).

    Holds the lock of the command's ``--out`` folder (:func:`cameras.io.lock_folder`) from before any work until
    ``run.json`` and the page are written: a second run on the same folder is refused with one line naming the
    holder (exit 2).

    Never lets a traceback reach the user: a usage error, a failed input or an unexpected exception is one line
    ``cameras COMMAND: error: …`` on standard error. Set ``CAMERAS_DEBUG=1`` to get the traceback of an unexpected
    exception instead.
    """
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # named by the command's own parser: "cameras COMMAND: error: unrecognized arguments: …"
            command_parser = _command_parser(parser, getattr(args, "command", None))
            (command_parser or parser).error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as stop:  # usage errors (already printed), --help, --version
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if getattr(args, "default_out", None) is not None:  # evaluate: one default folder per configuration
        code = _default_out(parser, args)
        if code:
            return code
    command = str(args.command)
    lock = _lock(args, command)
    if isinstance(lock, str):  # another run holds --out
        print_error(command, lock)
        return 2
    from ..io.runinfo import utc_now

    started = utc_now()
    code = 1
    status = "failed"
    returned = False
    disk_full = False
    try:
        code = int(args.func(args))
        status = "done" if code == 0 else "failed"
        returned = True
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
        out = getattr(args, "out", None)
        if isinstance(err, OSError) and err.errno in FULL_DISK and isinstance(out, OutputDir):
            # a write into --out hit a full disk: one line naming the folder (run.json cannot be written either)
            print_error(command, write_failure(out.path, err, resumable=command in RESUMABLE))
            code, disk_full = (2 if not out.written else 1), True
            return code
        text = str(err).splitlines()[0] if str(err) else ""
        print_error(
            command, f"unexpected {type(err).__name__}: {text} (set CAMERAS_DEBUG=1 to see the traceback)".strip()
        )
        return 1
    finally:
        try:
            if not disk_full and _record(args, status=status, code=code, started=started, argv=argv) and returned:
                _report(args)
        finally:
            if lock is not None:
                lock.release()


def _default_out(parser: Parser, args: argparse.Namespace) -> int:
    """Set ``args.out`` to the command's per-configuration default folder when ``--out`` is not given
    (:func:`cameras.cli.options.default_out`); 2 after one error line when that folder cannot be used."""
    from .options import default_out, output_folder

    folder = default_out(args)
    del args.default_out  # not an option of the run: run.json records the folder as out
    if folder is None:
        return 0
    try:
        args.out = output_folder(folder)
    except argparse.ArgumentTypeError as err:
        command_parser = _command_parser(parser, str(args.command)) or parser
        try:
            command_parser.error(f"argument --out: {err}")
        except SystemExit as stop:
            return stop.code if isinstance(stop.code, int) else 2
    return 0


def _lock(args: argparse.Namespace, command: str) -> FolderLock | str | None:
    """Take the lock of the command's ``--out`` (:func:`cameras.io.lock_folder`) before any work, so that a second
    run on the same folder stops at once and says who holds it; the error line when it cannot. ``None`` for a
    command without ``--out`` and for the ranks other than 0 of a torchrun (they share rank 0's folder)."""
    from ..io import OutputDirError
    from ..runs.distributed import current_rank

    out = getattr(args, "out", None)
    if not isinstance(out, OutputDir) or current_rank() != 0:
        return None
    try:
        return out.lock(f"cameras {command}")
    except OutputDirError as err:
        return str(err)
    except OSError as err:
        return f"cannot take the lock of --out {out.path}: {err}"


def _command_parser(parser: Parser, command: str | None) -> argparse.ArgumentParser | None:
    """The sub-parser of ``command`` (``None`` when there is none)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            found: argparse.ArgumentParser = action.choices[command]
            return found
    return None


def _record(args: argparse.Namespace, *, status: str, code: int, started: str, argv: Sequence[str] | None) -> bool:
    """Write ``run.json`` into the command's output folder when the command wrote anything there (or wrote a
    ``"running"`` record first: it sets ``args.run_extra``, the extra fields of its record); whether the folder holds
    files of this run. Under torchrun only rank 0 writes it (and returns ``True``): the other ranks share rank 0's
    folder and wrote only their shards."""
    from ..io import OutputDir
    from ..io.runinfo import write_run_record
    from ..runs.distributed import current_rank

    out = getattr(args, "out", None)
    extra = getattr(args, "run_extra", None)
    if not isinstance(out, OutputDir) or not (out.written or extra is not None) or current_rank() != 0:
        return False
    try:
        write_run_record(
            out,
            args,
            status=status,
            exit_code=code,
            started=started,
            argv=argv,
            extra=extra,
        )
    except OSError as err:
        print_error(str(args.command), f"cannot write {out.path / 'run.json'}: {err}")
    return True


def _report(args: argparse.Namespace) -> None:
    """Write ``report.html`` into the output folder of a command that returned (exit code 0, or 1 when some inputs
    failed and the others were written), unless ``--no-report`` was given. Called only after :func:`_record` wrote
    ``run.json``, so only on rank 0 of a distributed run. A failure to write the page is a warning: the run's own
    files are complete."""
    from ..io import OutputDir, RunRecordError

    out = getattr(args, "out", None)
    if getattr(args, "no_report", False) or not isinstance(out, OutputDir):
        return
    from ..report import write_report

    try:
        page = write_report(out.path, progress=not getattr(args, "no_progress", False))
    except (RunRecordError, ValueError, OSError) as err:
        print_warning(str(args.command), f"cannot write the run's report.html: {err}")
        return
    except Exception as err:  # the run's files are written: a bug in the page must not turn into a traceback
        if os.environ.get("CAMERAS_DEBUG"):
            raise
        print_warning(str(args.command), f"cannot write the run's report.html: unexpected {type(err).__name__}: {err}")
        return
    print(f"report: {page}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
