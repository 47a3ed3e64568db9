"""Saliency methods evaluated on data sets: :func:`evaluate` (``cameras.evaluate``) and its :class:`Evaluation`.

``cameras evaluate`` (:mod:`cameras.cli.evaluate`) parses its options and calls :func:`evaluate`; everything else
lives here:

* :mod:`~cameras.evaluation.api` — :func:`evaluate`: the checks before any work, the model, the explainers, the
  resume store, the ranks, rank 0's merge;
* :mod:`~cameras.evaluation.run` — :class:`~cameras.evaluation.run.Evaluator`: the rows of one chunk of photos;
* :mod:`~cameras.evaluation.rows` — :data:`METRICS`, :class:`Row`, :class:`MetricFn` (a metric of one's own);
* :mod:`~cameras.evaluation.summary` — :func:`summarize`, :func:`pointing_protocol` (Table 1), :func:`pointing_table`;
* :mod:`~cameras.evaluation.outputs` — the files (``per_image.csv``, ``summary.csv``, …);
* :mod:`~cameras.evaluation.options` — :class:`EvaluateOptions`, :class:`EvaluationError` (and
  :class:`EvaluationLockedError`: ``out`` is in use by another run).

Example:
    >>> import tempfile, torch, torchvision, cameras
    >>> from cameras.datasets import open_dataset
    >>> import json, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = cameras.data.sample_path("chelsea", folder)
    >>> _ = (folder / "boxes.json").write_text(json.dumps({"chelsea.png": [{"class": 3, "box": [0, 0, 300, 300]}]}))
    >>> net = torchvision.models.resnet18(num_classes=5).eval()
    >>> ev = cameras.evaluate(net, ("folder", folder), ["gradcam"], ["pointing", "energy"], layer="layer4",
    ...                       boxes=folder / "boxes.json", workers=0, progress=False)
    >>> [(r.image, r.cls, r.method) for r in ev.rows]
    [('chelsea.png', 3, 'gradcam')]
"""

from __future__ import annotations

from .api import evaluate
from .options import EvaluateOptions, EvaluationError, EvaluationFileError, EvaluationLockedError
from .result import Evaluation
from .rows import DEFAULT_METRICS, METRICS, MetricFn, Row, Skipped
from .summary import pointing_protocol, pointing_table, summarize

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "EvaluateOptions",
    "Evaluation",
    "EvaluationError",
    "EvaluationFileError",
    "EvaluationLockedError",
    "MetricFn",
    "Row",
    "Skipped",
    "evaluate",
    "pointing_protocol",
    "pointing_table",
    "summarize",
]
