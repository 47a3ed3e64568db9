"""The options of an evaluation (:class:`EvaluateOptions`, one typed record instead of a command line) and its one
error type (:class:`EvaluationError`)."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..io.folders import FolderLockedError

if TYPE_CHECKING:
    import argparse

    from ..io import OutputDir, SizeLimits

__all__ = ["EvaluateOptions", "EvaluationError", "EvaluationFileError", "EvaluationLockedError", "Log", "stderr_log"]

Log = Callable[[str, str], None]
"""``log(level, text)``: ``level`` is ``"error"`` (a photo, box or method left out; the run goes on),
``"warning"`` (a degenerate map) or ``"info"`` (a resumed run)."""


class EvaluationError(ValueError):
    """An evaluation that cannot run (bad options, data set, model, methods or output folder), raised before any
    heavy work; or one whose outputs cannot be merged or written. The message is the one line ``cameras evaluate``
    prints after ``cameras evaluate: error:``.

    Attributes:
        code: the exit code the CLI returns for it (2: nothing could be done; 1: a run whose outputs failed).
    """

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


class EvaluationFileError(EvaluationError, FileNotFoundError):
    """An :class:`EvaluationError` about a file or folder that does not exist (a data set's folder or file)."""


class EvaluationLockedError(EvaluationError, FolderLockedError):
    """An :class:`EvaluationError` raised when the output folder is in use by another run (its lock file, see
    :func:`cameras.io.lock_folder`, names it).

    Attributes:
        holder: what the lock file says: ``pid``, ``host``, ``command``, ``started`` (``{}`` when unreadable).
        lock: the lock file.
    """

    def __init__(self, message: str, *, holder: dict[str, Any] | None = None, lock: Path | None = None) -> None:
        EvaluationError.__init__(self, message)
        self.holder = dict(holder or {})
        self.lock = lock


def stderr_log(level: str, text: str) -> None:
    """The default :data:`Log`: errors and warnings as the CLI's lines (``cameras evaluate: error: …``) on standard
    error, information on standard output."""
    line = " ".join(str(text).split())
    if level == "info":
        print(line)
    else:
        print(f"cameras evaluate: {level}: {line}", file=sys.stderr)


@dataclass
class EvaluateOptions:
    """Everything that shapes an evaluation besides the model, data set, methods and metrics (the CLI's options of
    the same names; :func:`cameras.evaluate` documents them).

    Attributes:
        target: ``"label"`` (explain each annotated class) or ``"predicted"`` (the model's top-1 class).
        tolerance: pointing-game tolerance in pixels, ≥ 0.
        steps: insertion/deletion steps, 1 … 10000.
        frame: pixel frame of the localisation metrics, ``"original"`` (the photo's) or ``"input"``.
        batch_size: images per forward pass of insertion/deletion, confidence and densities.
        gamma: weight of the other annotated classes in the contrastive maps of ``discrimination``.
        explain_batch: (photo, class) inputs of one size explained together.
        workers: DataLoader processes decoding photos (0: in this process).
        shard_size: photos per committed shard (the unit of resume and of the split over ranks).
        save_maps: save every map under ``out/maps/`` (needs ``out``).
        overwrite: start over when ``out`` holds a run with another configuration (``resume=False``).
        square: square model inputs (the paper's setting) instead of the aspect-keeping resize.
        limits: the size bounds (:class:`cameras.io.SizeLimits`).
        resolutions: the CAMERAS scales as given (sizes, factors, or ``None`` for the paper's).
        weights: what the model was loaded with (``--weights``); part of the resume key and of messages.
        num_classes: outputs of the checkpoint's head (``--num-classes``).
        device: the torch device the run asks for.
        progress: a tqdm progress bar.
        out: the output folder, ``None`` for a run in memory.
        boxes: the box file of a folder data set (for messages).
        log: where the per-photo error lines, warnings and the resume line go.
        record: the parsed command line when the CLI runs the evaluation (``run.json`` records it, and the CLI
            writes the final record); ``None``: :func:`cameras.evaluate` writes ``run.json`` itself.
    """

    target: str = "label"
    tolerance: float = 15.0
    steps: int = 100
    frame: str = "original"
    batch_size: int = 64
    gamma: float = 1.0
    explain_batch: int = 8
    workers: int = 2
    shard_size: int = 32
    save_maps: bool = False
    overwrite: bool = False
    square: bool = False
    limits: SizeLimits | None = None
    resolutions: list[int] | list[float] | None = None
    weights: Any = "DEFAULT"
    num_classes: int | None = None
    device: str = "cpu"
    progress: bool = True
    out: OutputDir | None = None
    boxes: Any = None
    log: Log = field(default=stderr_log)
    record: argparse.Namespace | None = None

    def check(self) -> None:
        """Check every value as the CLI's parser does.

        Raises:
            EvaluationError: the first bad value (the message names the option).
        """
        _choice("target", self.target, ("label", "predicted"))
        _choice("frame", self.frame, ("original", "input"))
        _number("tolerance", self.tolerance, 0.0, 1e6)
        _number("gamma", self.gamma, -math.inf, math.inf)
        _integer("steps", self.steps, 1, 10000)
        _integer("batch_size", self.batch_size, 1, 4096)
        _integer("explain_batch", self.explain_batch, 1, 4096)
        _integer("workers", self.workers, 0, 256)
        _integer("shard_size", self.shard_size, 1, 100000)
        if self.num_classes is not None:
            _integer("num_classes", self.num_classes, 1, None)
        for name in ("save_maps", "overwrite", "square", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise EvaluationError(f"{name} must be True or False, got {getattr(self, name)!r}")


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise EvaluationError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def _number(name: str, value: Any, lo: float, hi: float) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not lo <= value <= hi:
        where = f" in [{lo:g}, {hi:g}]" if math.isfinite(lo) else ""
        raise EvaluationError(f"{name} must be a finite number{where}, got {value!r}")


def _integer(name: str, value: Any, lo: int, hi: int | None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise EvaluationError(f"{name} must be an integer {bound}, got {value!r}")
