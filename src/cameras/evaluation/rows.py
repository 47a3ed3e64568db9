"""What an evaluation computes: the metric keys (:data:`METRICS`), a user's own metric (:class:`MetricFn`) and one
result row (:class:`Row`: one method on one (photo, class))."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from torch import Tensor, nn

__all__ = ["ALL", "DEFAULT_METRICS", "METRICS", "MetricFn", "Row", "Skipped", "with_contrastive"]

METRICS: dict[str, tuple[str, bool]] = {
    "pointing": ("pointing game", True),
    "energy": ("energy in box", True),
    "energy_mask": ("energy in mask", True),
    "insertion": ("insertion AUC", True),
    "deletion": ("deletion AUC", False),
    "avg_drop": ("average drop %", False),
    "increase": ("increase in conf. %", True),
    "discrimination": ("discrimination (plain)", True),
    "discrimination_contrastive": ("discrimination (contrastive)", True),
    "rho_pos": ("positive density ρ⁺", True),
    "rho_neg": ("negative density ρ⁻", False),
}
"""metric key → (display name, higher is better)."""

DEFAULT_METRICS: tuple[str, ...] = ("pointing", "energy")
"""The metrics of a run without ``--metrics``: the cheap, most-used localisation pair (one explanation per
(photo, class, method), no extra forward pass). The others (100-step insertion/deletion, confidence, densities,
discrimination) cost many forward passes each: ``--metrics all`` / ``metrics="all"`` adds them."""

ALL = "all"
"""The metric name that stands for every built-in metric that applies to the data set (``energy_mask`` only where it
has instance masks)."""


class MetricFn(Protocol):
    """A metric of the user's own, passed in ``metrics=`` of :func:`cameras.evaluate` beside the names.

    It is called once per batch of (photo, class) inputs of one size and method::

        scores = metric(model, x, saliency, targets, boxes)

    Args:
        model: the evaluated network (eval mode, on the run's device).
        x: (B, 3, h, w) the preprocessed model inputs.
        saliency: (B, h, w) the method's maps of ``targets`` on ``x``, in [0, 1], in the model input's frame.
        targets: (B,) the explained class indices.
        boxes: B tensors (n_i, 4) of the class's boxes ``(x0, y0, x1, y1)`` in ``x``'s pixels (half-open).

    Returns:
        B scores (a tensor or a sequence of floats); NaN for an undefined score.

    Its column in the rows is its ``__name__`` (or a ``name`` attribute); an attribute ``higher_is_better``
    (default ``True``) says which way is better in the summary.
    """

    __name__: str

    def __call__(self, model: nn.Module, x: Tensor, saliency: Tensor, targets: Tensor, boxes: list[Tensor]) -> Any: ...


@dataclass
class Row:
    """Metrics of one method on one (photo, class)."""

    image: str
    cls: int
    name: str
    method: str
    values: dict[str, float]
    degenerate: bool = False
    warnings: list[str] = field(default_factory=list)
    difficult: bool | None = None
    """In the pointing game's "difficult" subset (:func:`cameras.metrics.is_difficult`, through
    :func:`cameras.datasets.ebp_difficult`); ``None``: not computed (no Table 1 for the run, or the photo explained
    for its top-1 class)."""


@dataclass(frozen=True)
class Skipped:
    """A photo (or one of its boxes, or one method on it) left out of the rows, and why."""

    image: str
    reason: str


def with_contrastive(metrics: Sequence[str]) -> list[str]:
    """``discrimination`` stands for both of its columns: the plain and the contrastive maps'.

    Example:
        >>> with_contrastive(["pointing", "discrimination"])
        ['pointing', 'discrimination', 'discrimination_contrastive']
    """
    out: list[str] = []
    for k in metrics:
        out.append(k)
        if k == "discrimination" and "discrimination_contrastive" not in metrics:
            out.append("discrimination_contrastive")
    return out
