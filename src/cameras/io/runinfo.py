"""The run record: ``run.json`` in every output folder, saying what was run and what it wrote.

Every command of the ``cameras`` CLI that writes files also writes ``run.json`` beside them (see
:func:`cameras.cli.main.main`). The record is what a report page shows under "what was run" and what a resumed
data-set run compares its configuration with. Its fields (schema 1):

============== =================================================================================================
``schema``     1
``command``    the sub-command (``"explain"``, ``"compare"``, ``"evaluate"``, ``"sanity"``, ``"attack"``, …)
``status``     ``"running"`` (written before work starts, by commands that resume) or ``"done"`` / ``"failed"``
``exit_code``  the command's exit code (``null`` while running)
``config``     every parsed option, as JSON (paths as strings, ``--out`` left out)
``argv``       the command line after ``cameras``
``outputs``    the files the command wrote, relative to the folder (``maps/index.csv``), in order
``versions``   ``cameras``, ``torch``, ``python``
``started`` /  ISO 8601 UTC times; ``seconds`` the wall time
``finished``
``earlier``    only in a folder that held other runs before: each one's command, status, exit code, argv, config,
               outputs and times, oldest first (explain twice into one ``--out`` keeps both runs)
============== =================================================================================================

A command adds its own top-level fields with ``extra`` (``cameras evaluate``: ``image_root``, ``dataset``,
``world_size``); :func:`cameras.cli.main.main` passes ``args.run_extra`` (a dict the command sets) as ``extra``.

Example:
    >>> import argparse, tempfile
    >>> from cameras.io import OutputDir
    >>> out = OutputDir(tempfile.mkdtemp())
    >>> args = argparse.Namespace(command="explain", model="efficientnet_lite0", out=out, resolutions=[1.0, 2.0])
    >>> path = write_run_record(out, args, status="done", exit_code=0)
    >>> record = read_run_record(out.path)
    >>> record["command"], record["config"]["resolutions"], record["status"]
    ('explain', [1.0, 2.0], 'done')
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .atomic import PathLike, to_jsonable
from .folders import OutputDir

__all__ = ["RUN_FILE", "RunRecordError", "read_run_record", "run_config", "utc_now", "write_run_record"]

RUN_FILE = "run.json"
SCHEMA = 1
_SKIP = frozenset({"func", "command", "out", "run_extra"})


class RunRecordError(ValueError):
    """``run.json`` exists but cannot be read as a run record."""


def utc_now() -> str:
    """Now, as the ISO 8601 UTC time (seconds) that ``started`` / ``finished`` hold."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _option_value(value: Any) -> Any:
    """An option's value as JSON; objects JSON cannot hold (an :class:`OutputDir`, a limits object) as text."""
    if isinstance(value, OutputDir):
        return str(value.path)
    try:
        return to_jsonable(value)
    except TypeError:
        return str(value)


def run_config(args: argparse.Namespace | Mapping[str, Any]) -> dict[str, Any]:
    """The options of a command as a JSON-ready dict (``func``, ``command`` and ``out`` left out), keys sorted."""
    items = vars(args).items() if isinstance(args, argparse.Namespace) else args.items()
    return {k: _option_value(v) for k, v in sorted(items) if k not in _SKIP}


def write_run_record(
    out: OutputDir,
    args: argparse.Namespace,
    *,
    status: str,
    exit_code: int | None = None,
    started: str | None = None,
    argv: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``run.json`` into ``out`` (atomically) and return its path.

    Args:
        out: the command's output folder; the files it has written so far are listed as ``outputs``.
        args: the parsed command line (``args.command`` names the command).
        status: ``"running"``, ``"done"`` or ``"failed"``.
        exit_code: the command's exit code, ``None`` while running.
        started: when the command started (ISO 8601); now if not given.
        argv: the command line after ``cameras``; ``sys.argv[1:]`` if not given.
        extra: more top-level fields (a command's own, e.g. a resume key); they may not replace the standard ones.
    """
    import torch

    from .. import __version__

    finished = utc_now()
    start = started or finished
    seconds = (_dt.datetime.fromisoformat(finished) - _dt.datetime.fromisoformat(start)).total_seconds()
    run_path = out.file(RUN_FILE)
    outputs = [_relative(p, out.path) for p in out.written if p != run_path]
    record: dict[str, Any] = {
        "schema": SCHEMA,
        "command": str(getattr(args, "command", "") or ""),
        "status": status,
        "exit_code": exit_code,
        "config": run_config(args),
        "argv": list(sys.argv[1:] if argv is None else argv),
        "outputs": list(dict.fromkeys(outputs)),
        "versions": {"cameras": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "started": start,
        "finished": None if status == "running" else finished,
        "seconds": None if status == "running" else seconds,
    }
    for key, value in (extra or {}).items():
        if key in record:
            raise ValueError(f"extra field {key!r} would replace a standard field of run.json")
        record[key] = to_jsonable(value)
    earlier = _earlier_runs(out.path / RUN_FILE, record)
    if earlier:
        record["earlier"] = earlier
    path = out.write_json(RUN_FILE, record)
    out.written.remove(path)  # the record lists the outputs; it is not one of them
    return path


_EARLIER_FIELDS = ("command", "status", "exit_code", "argv", "config", "outputs", "started", "finished", "seconds")


def _earlier_runs(path: Path, record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The runs before this one that wrote into the same folder (``run.json``'s ``earlier``, oldest first): the
    record already there, unless it is this run's own (the same ``started`` and ``argv``, or a ``running`` record of
    the same command and options: this run's first record, or a stopped run this one resumes), with the runs it
    listed.
    A folder shared by several runs (explain twice into one ``--out``) so keeps every run's command, options and
    files, not only the last one's."""
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return []
    if not isinstance(old, dict):
        return []
    before = [r for r in old.get("earlier") or [] if isinstance(r, dict)]
    own = old.get("status") == "running" and [old.get("command"), old.get("config")] == [
        record["command"],
        to_jsonable(record["config"]),
    ]
    # this run's own record: the same start (to the second) and command line, or its running record
    same_start = old.get("started") == record["started"] and old.get("argv") == record["argv"]
    if same_start or own:
        return before
    return [*before, {k: old.get(k) for k in _EARLIER_FIELDS}]


def _relative(path: Path, folder: Path) -> str:
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return path.name


def read_run_record(folder: PathLike) -> dict[str, Any] | None:
    """The run record of ``folder``, or ``None`` when it has none.

    Raises:
        RunRecordError: ``run.json`` is not a JSON object with a ``command`` (names the file).
    """
    path = Path(folder) / RUN_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunRecordError(f"{path}: not a readable run record ({err})") from err
    if not isinstance(record, dict) or not isinstance(record.get("command"), str):
        raise RunRecordError(f"{path}: not a run record (no 'command' field)")
    return record
