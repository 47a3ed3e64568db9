"""The one option validator of the ``cameras`` commands: every option is checked while the command line is parsed.

Each validator is an argparse ``type=`` callable (or an ``action=`` class for lists) that turns the text into a
checked value or raises :class:`argparse.ArgumentTypeError` with the rule that was broken. argparse then prints one
line, ``cameras COMMAND: error: argument --alpha: must be a number in [0, 1], got '2'``, and the command exits
with code 2 before it has loaded a model, read a photo or created a folder. A command adds an option with one of
these as its ``type``::

    p.add_argument("--alpha", type=fraction, default=0.5)
    p.add_argument("--dpi", type=int_range(1, 1200), default=120)
    p.add_argument("--methods", action=ListOption, metavar="A,B,...")         # None when not given
    p.add_argument("--resolutions", type=resolutions_option, default=None)    # None = the paper's schedule
    add_output_option(p, "explain")                  # args.out: a checked OutputDir, default cameras_out/explain
    add_size_options(p)                                                        # → size_limits(args)

Checks that involve several options (``--class`` with ``--top-k``) or the inputs (a schedule on a given photo) are
made by the command itself, still before the model is loaded, with :func:`cameras.cli.common.read_photos`.

The CLI's ``--resolutions`` (:func:`parse_resolutions`):

* ``paper`` (or no option) — the paper's factors 1, 324/224, …, 924/224 of the model input;
* integers ``224,324,424`` — absolute sizes of the **shorter side** of each scale; the aspect ratio is kept, so a
  non-square photo is never squashed. With ``--square`` the input and every scale are square, as in the paper;
* numbers with a decimal point or exponent ``1,1.5,2.0`` — factors of the model input (small integers among them,
  as in ``1,1.5,2``, are factors too);
* refused: an empty list or ``""``, a mix of sizes and factors (``224,1.5``), non-numbers, non-finite or absurd
  values (``inf``, ``nan``, ``1e300``), sizes below 16 px (``1,2``: write ``1.0,2.0`` for factors), factors outside
  [1/16, 64], duplicates.

The parsed list goes to the methods unchanged (``resolutions=``, with ``square=`` for ``--square``): the one
reading of a schedule is :func:`cameras.engine.scales.schedule`, so the same spelling runs the same scales in
Python and on the command line.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine.scales import MAX_GIVEN_SIDE, MIN_SCALE_SIDE, parse_resolutions
from ..runs.distributed import device_problem

if TYPE_CHECKING:
    from ..io import OutputDir, SizeLimits

__all__ = [
    "COMPUTE_DEVICES",
    "MIN_SCALE_SIDE",
    "OUT_ROOT",
    "ListOption",
    "add_output_option",
    "add_size_options",
    "default_out",
    "device_option",
    "device_problem",
    "finite_float",
    "float_range",
    "fraction",
    "int_range",
    "nonempty",
    "nonnegative_int",
    "output_folder",
    "parse_list",
    "parse_resolutions",
    "positive_int",
    "resolutions_option",
    "run_folder",
    "size_limits",
]

MAX_SCALE_SIDE = MAX_GIVEN_SIDE
"""Largest absolute ``--resolutions`` size (px) the parser accepts (:data:`cameras.engine.scales.MAX_GIVEN_SIDE`)."""

_Error = argparse.ArgumentTypeError


def _number(text: str, kind: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise _Error(f"must be {kind}, got {text!r}") from None
    if not math.isfinite(value):
        raise _Error(f"must be a finite number, got {text!r}")
    return value


def int_range(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """A ``type=`` for integers in ``[lo, hi]`` (no upper bound when ``hi`` is ``None``).

    Example:
        >>> int_range(1, 10)("3")
        3
    """

    def parse(text: str) -> int:
        if not isinstance(text, str) or not re.fullmatch(r"\s*[+-]?\d+\s*", text):
            raise _Error(f"must be an integer, got {text!r}")
        value = int(text)
        if value < lo or (hi is not None and value > hi):
            bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
            raise _Error(f"must be an integer {bound}, got {text.strip()}")
        return value

    parse.__name__ = "integer"
    return parse


positive_int = int_range(1)
"""A ``type=`` for integers ≥ 1."""

nonnegative_int = int_range(0)
"""A ``type=`` for integers ≥ 0."""


def finite_float(text: str) -> float:
    """A ``type=`` for finite numbers (``inf``, ``nan`` and overflowing values refused)."""
    return _number(text, "a number")


def float_range(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> Callable[[str], float]:
    """A ``type=`` for finite numbers in the interval from ``lo`` to ``hi`` (each end closed unless ``*_open``).

    Example:
        >>> float_range(0, 1, lo_open=True)("0.25")
        0.25
    """
    interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"

    def parse(text: str) -> float:
        value = _number(text, f"a number in {interval}")
        if value < lo or value > hi or (lo_open and value == lo) or (hi_open and value == hi):
            raise _Error(f"must be a number in {interval}, got {text.strip()}")
        return value

    parse.__name__ = "number"
    return parse


fraction = float_range(0.0, 1.0)
"""A ``type=`` for numbers in [0, 1] (e.g. ``--alpha``)."""


def nonempty(text: str) -> str:
    """A ``type=`` for a non-blank string (stripped): ``--layer ""`` is an error, not the default."""
    if not isinstance(text, str) or not text.strip():
        raise _Error("must not be empty")
    return text.strip()


def parse_list(text: str | Sequence[str], *, what: str = "list", lower: bool = False) -> list[str]:
    """Comma (or, for a sequence, also space) separated items → stripped items, in order.

    Raises:
        ValueError: no item at all (``""``, ``" , "``) or an item given twice.

    Example:
        >>> parse_list(["cameras,gradcam", " ig "])
        ['cameras', 'gradcam', 'ig']
    """
    parts = [text] if isinstance(text, str) else list(text)
    items = [t.strip() for part in parts for t in part.split(",") if t.strip()]
    if lower:
        items = [t.lower() for t in items]
    if not items:
        raise ValueError(f"{what} is empty")
    seen: set[str] = set()
    for item in items:
        key = item.lower()
        if key in seen:
            raise ValueError(f"{what} names {item!r} twice")
        seen.add(key)
    return items


class ListOption(argparse.Action):
    """``action=`` for list options: comma-separated values, the option may be repeated (or take several words with
    ``nargs="+"``); the result is one flat list. An empty list, an empty value or a duplicate is an error.

    Example:
        >>> p = argparse.ArgumentParser()
        >>> _ = p.add_argument("--methods", action=ListOption)
        >>> p.parse_args(["--methods", "cameras,gradcam", "--methods", "ig"]).methods
        ['cameras', 'gradcam', 'ig']
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        given = [values] if isinstance(values, str) else [str(v) for v in values or []]
        before = getattr(namespace, self.dest, None)
        previous = list(before) if isinstance(before, list) and before is not self.default else []
        try:
            if any(not v.strip() or not v.replace(",", "").strip() for v in given):
                raise ValueError("has an empty value")
            items = parse_list([*previous, *given], what="the list")
        except ValueError as err:
            raise argparse.ArgumentError(self, str(err)) from None
        setattr(namespace, self.dest, items)


def resolutions_option(text: str) -> list[int] | list[float] | None:
    """The ``type=`` of ``--resolutions``: :func:`parse_resolutions` with argparse's error."""
    try:
        return parse_resolutions(text)
    except ValueError as err:
        raise _Error(str(err)) from None


COMPUTE_DEVICES = ("cpu", "cuda", "mps", "xpu")
"""The torch device types ``--device`` accepts: those that run a model (``meta``, ``lazy`` … do not)."""


def device_option(text: str) -> str:
    """The ``type=`` of ``--device``: a torch device string (``cpu``, ``cuda``, ``cuda:1``, ``mps``), returned as
    given; a device type that does not compute (``meta``, ``lazy``, ``ipu`` …; see :data:`COMPUTE_DEVICES`) is
    refused. Whether this machine has it is checked by :func:`device_problem` when the command starts."""
    import torch

    name = nonempty(text)
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise _Error(f"{name!r} is not a torch device (e.g. cpu, cuda, cuda:1, mps)") from None
    if device.type not in COMPUTE_DEVICES:
        raise _Error(
            f"{name!r} is a torch device that does not compute ({device.type}: tensors there hold no values); "
            f"use one of {', '.join(COMPUTE_DEVICES)} (e.g. cpu, cuda:1)"
        )
    return name


def output_folder(text: str) -> OutputDir:
    """The ``type=`` of ``--out``: an :class:`~cameras.io.OutputDir`, checked now (not a file, not under a file,
    writable) and created only at the command's first write."""
    from ..io import OutputDir, OutputDirError

    try:
        return OutputDir(text, option="")
    except OutputDirError as err:
        raise _Error(str(err).strip()) from None


def run_folder(text: str) -> Path:
    """The ``type=`` of a run folder to read and write into (``cameras report RUN_DIR``): an existing, writable
    folder."""
    from ..io import OutputDirError, check_output_dir

    folder = Path(nonempty(text)).expanduser()
    if not folder.is_dir():
        raise _Error(f"{text!r} is not a folder" if folder.exists() else f"no such folder: {text!r}")
    try:
        return check_output_dir(folder, option="")
    except OutputDirError as err:
        raise _Error(str(err).strip()) from None


OUT_ROOT = "cameras_out"
"""The folder under which each command's default output folder lies: ``cameras_out/COMMAND``."""

_NOT_CONFIGURATION = frozenset({"func", "command", "out", "default_out", "no_progress", "no_report", "overwrite"})
"""Options that do not change what a run computes: left out of a per-configuration folder's name."""


def add_output_option(parser: argparse.ArgumentParser, command: str, *, per_configuration: bool = False) -> None:
    """``--out FOLDER``, validated by :func:`output_folder`; default ``cameras_out/COMMAND``, so that two commands
    never share a folder (``explain`` and ``compare`` used to both write into ``cameras_out/``).

    With ``per_configuration`` (``evaluate``, whose folder holds one resumable run and refuses another
    configuration) the default is ``cameras_out/COMMAND/NAME``, ``NAME`` made from the options
    (:func:`default_out`): the same command resumes in the same folder, another one gets its own.
    """
    default = f"{OUT_ROOT}/{command}"
    if not per_configuration:
        parser.add_argument(
            "--out", type=output_folder, default=default, metavar="FOLDER", help=f"output folder (default: {default})"
        )
        return
    parser.add_argument(
        "--out",
        type=output_folder,
        default=None,
        metavar="FOLDER",
        help=f"output folder (default: {default}/METHODS_METRICS_HASH, one per configuration: a rerun resumes)",
    )
    parser.set_defaults(default_out=default)


def default_out(args: argparse.Namespace) -> str | None:
    """The per-configuration default ``--out`` of a command that asks for one (``None`` otherwise, or when ``--out``
    is given): ``ROOT/METHODS_METRICS_HASH``, ``HASH`` the first 8 hex digits of a SHA-256 of every option that can
    change the results (not ``--out``, ``--overwrite``, ``--no-progress``, ``--no-report``).

    Example:
        >>> a = argparse.Namespace(out=None, default_out="cameras_out/evaluate", methods=["gradcam"], metrics=None)
        >>> default_out(a)[:37]
        'cameras_out/evaluate/gradcam_default_'
    """
    import hashlib
    import json

    root = getattr(args, "default_out", None)
    if root is None or getattr(args, "out", None) is not None:
        return None
    config = {k: v for k, v in sorted(vars(args).items()) if k not in _NOT_CONFIGURATION}
    digest = hashlib.sha256(json.dumps(config, default=str, sort_keys=True).encode()).hexdigest()[:8]

    def part(values: Any, fallback: str) -> str:
        items = [str(v) for v in values or []]
        text = "-".join("".join(c if c.isalnum() else "-" for c in v.lower()) for v in items)[:40].strip("-")
        return text or fallback

    methods = part(getattr(args, "methods", None), "cameras")
    metrics = part(getattr(args, "metrics", None), "default")
    return f"{root}/{methods}_{metrics}_{digest}"


def add_size_options(parser: argparse.ArgumentParser) -> None:
    """``--max-side``, ``--max-pixels`` and ``--max-photo-pixels`` (:class:`cameras.io.SizeLimits`)."""
    from ..io import DEFAULT_LIMITS as D

    parser.add_argument(
        "--max-side",
        type=int_range(MIN_SCALE_SIDE),
        default=D.max_side,
        metavar="PX",
        help=f"longest side of the model input; longer photos are refused (default {D.max_side})",
    )
    parser.add_argument(
        "--max-pixels",
        type=int_range(MIN_SCALE_SIDE * MIN_SCALE_SIDE),
        default=D.max_pixels,
        metavar="N",
        help=f"pixels of the largest scale an explainer runs (default {D.max_pixels})",
    )
    parser.add_argument(
        "--max-photo-pixels",
        type=positive_int,
        default=D.max_photo_pixels,
        metavar="N",
        help=f"pixels of the largest photo decoded (default {D.max_photo_pixels})",
    )


def size_limits(args: argparse.Namespace) -> SizeLimits:
    """The :class:`~cameras.io.SizeLimits` of :func:`add_size_options`' options (defaults where absent)."""
    from ..io import DEFAULT_LIMITS, SizeLimits

    return SizeLimits(
        max_photo_pixels=getattr(args, "max_photo_pixels", DEFAULT_LIMITS.max_photo_pixels),
        max_side=getattr(args, "max_side", DEFAULT_LIMITS.max_side),
        max_pixels=getattr(args, "max_pixels", DEFAULT_LIMITS.max_pixels),
        min_side=DEFAULT_LIMITS.min_side,
    )
