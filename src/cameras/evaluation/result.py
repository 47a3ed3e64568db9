"""What :func:`cameras.evaluate` returns: :class:`Evaluation`, the rows of a run and what is made of them."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .options import EvaluateOptions, EvaluationError
from .rows import Row, Skipped
from .summary import format_protocol, format_summary, pointing_protocol, pointing_table, summarize

if TYPE_CHECKING:
    from ..datasets import DataSet

__all__ = ["Evaluation"]

POINTING_COLUMNS = ("method", "class", "class_name", "all", "all_n", "diff", "diff_n")


@dataclass
class Evaluation:
    """The result of :func:`cameras.evaluate`: one :class:`Row` per (photo, class, method), in the data set's order
    (then the methods' order), and the photos left out.

    Attributes:
        rows: the rows (``row.values``: metric key → score, NaN when undefined).
        skipped: the photos, boxes or (photo, method) pairs left out, each with its reason.
        methods: the methods' names, in the columns' order.
        metrics: the metric keys, in the columns' order (``discrimination`` brings ``discrimination_contrastive``).
        metric_info: metric key → (display name, higher is better), the user's metrics included.
        labels: the class names in index order.
        table: whether the run has the Table 1 pointing protocol (``pointing``, ``target="label"`` and photos with
            several annotated classes); then each row carries its ``difficult`` flag.
        model: the model's name; ``layer`` the explained layer.
        dataset: the data set evaluated.
        options: the run's options.
        maps: the index rows of the saved maps (``save_maps``).
        out: the run's output folder (``None`` for a run in memory).
        rank, world_size: this process's place in a torchrun run; rank 0 holds every row, another rank its own.
    """

    rows: list[Row]
    skipped: list[Skipped]
    methods: list[str]
    metrics: list[str]
    metric_info: dict[str, tuple[str, bool]]
    labels: list[str]
    table: bool
    model: str
    layer: str
    dataset: DataSet
    options: EvaluateOptions
    maps: list[list[Any]] = field(default_factory=list)
    out: Path | None = None
    rank: int = 0
    world_size: int = 1
    written: list[str] = field(default_factory=list)
    """The files the run wrote into ``out`` (names, ``maps/`` for the map index)."""

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (which holds the merged rows)."""
        return self.rank == 0

    def summary(self) -> dict[str, dict[str, Any]]:
        """``{method: {metric: {"mean", "std", "n", "undefined"}}}`` (:func:`cameras.evaluation.summarize`)."""
        return summarize(self.rows, self.methods, self.metrics)

    def pointing_protocol(self) -> dict[str, dict[str, Any]]:
        """The Table 1 pointing protocol per method (:func:`cameras.evaluation.pointing_protocol`); ``{}`` when the
        run has no Table 1 (:attr:`table`)."""
        return pointing_protocol(self.rows, self.methods) if self.table else {}

    def pointing_table(self) -> list[dict[str, Any]]:
        """The rows of ``pointing_table.csv`` as dicts (``method``, ``class``, ``class_name``, ``all``, ``all_n``,
        ``diff``, ``diff_n``): per method its ``mean`` row, then one row per class; ``[]`` without Table 1."""
        if not self.table:
            return []
        rows = pointing_table(self.pointing_protocol(), self.methods, self.labels)
        return [dict(zip(POINTING_COLUMNS, r)) for r in rows]

    def records(self) -> list[dict[str, Any]]:
        """The rows as the dicts of ``per_image.csv`` (numbers, not text; ``difficult`` only with Table 1)."""
        return [
            {
                "image": r.image,
                "class": r.cls,
                "class_name": r.name,
                "method": r.method,
                **{k: r.values.get(k, math.nan) for k in self.metrics},
                **({"difficult": r.difficult} if self.table else {}),
            }
            for r in self.rows
        ]

    def to_pandas(self) -> Any:
        """The rows as a :class:`pandas.DataFrame` (the columns of ``per_image.csv``).

        Raises:
            ImportError: pandas is not installed (it is not a dependency of cameras).
        """
        try:
            import pandas as pd
        except ImportError as err:
            raise ImportError("Evaluation.to_pandas() needs pandas: pip install pandas") from err
        columns = ["image", "class", "class_name", "method", *self.metrics, *(["difficult"] if self.table else [])]
        return pd.DataFrame(self.records(), columns=columns)

    def save(self, folder: str | os.PathLike[str]) -> list[str]:
        """Write ``per_image.csv``, ``summary.csv``, ``pointing_table.csv`` (with Table 1), ``evaluate.json``,
        ``evaluate.png``, ``skipped.csv`` (and ``maps/index.csv`` with saved maps) into ``folder``: the files
        ``cameras evaluate`` writes, byte for byte. Returns the names written.

        Raises:
            EvaluationError: the folder cannot be written.
        """
        from ..io import OutputDir, OutputDirError
        from .outputs import write_outputs

        try:
            out = OutputDir(folder)
        except OutputDirError as err:
            raise EvaluationError(str(err)) from err
        return write_outputs(self, out)

    def report(self, folder: str | os.PathLike[str] | None = None, *, progress: bool = False) -> Path:
        """Write the run's page, ``report.html`` (:func:`cameras.report.write_report`), into ``folder`` (default: the
        run's ``out``); a folder other than ``out`` first gets the run's files (:meth:`save`) and ``run.json``.
        Returns the page's path.

        Raises:
            EvaluationError: no folder (a run in memory without ``folder``), or it cannot be written.
        """
        from ..io import OutputDir, OutputDirError
        from ..report import write_report

        target = Path(folder) if folder is not None else self.out
        if target is None:
            raise EvaluationError("report() of a run in memory needs a folder: evaluation.report('my_run')")
        if self.out is None or target.resolve() != self.out.resolve():
            from .api import write_record

            try:
                out = OutputDir(target)
            except OutputDirError as err:
                raise EvaluationError(str(err)) from err
            from .outputs import write_outputs

            write_outputs(self, out)
            write_record(self, out, status="done")
        return write_report(target, progress=progress)

    def __str__(self) -> str:
        lines = [format_summary(self.summary(), self.metrics, self.metric_info)] if self.rows else []
        protocol = self.pointing_protocol()
        if protocol:
            lines.append(format_protocol(protocol))
        lines.append(f"{len(self.rows)} row(s), {len(self.skipped)} skipped")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"Evaluation(model={self.model!r}, methods={self.methods}, metrics={self.metrics}, rows={len(self.rows)}, "
            f"skipped={len(self.skipped)})"
        )
