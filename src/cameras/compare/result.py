"""The typed results of a comparison (:class:`Comparison`, its :class:`Panel` maps) and what a view needs from a
model (:class:`ModelLike`). Computing them is :mod:`cameras.compare.views`; drawing them, :mod:`cameras.viz.compare`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray
from torch import nn

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Comparison", "MethodSpec", "ModelLike", "Panel"]

MethodSpec = Any
"""A registry name (``"gradcam++"``), a method class, or a constructed explainer."""


class ModelLike(Protocol):
    """What the views need from a model: :class:`cameras.models.LoadedModel` has all of it."""

    @property
    def name(self) -> str: ...
    @property
    def model(self) -> nn.Module: ...
    @property
    def layer(self) -> str: ...
    @property
    def preprocess(self) -> Any: ...
    @property
    def labels(self) -> list[str]: ...


@dataclass
class Panel:
    """One map of a comparison.

    Attributes:
        title: the panel's title as drawn.
        saliency: (H0, W0) float32 map in [0, 1] on the photo's pixels.
        method: method registry name (``"gradcam++"``).
        model: model name.
        class_index: class explained (for a contrast, the class whose specific evidence is shown).
        class_name: its name.
        probability: softmax probability of the class for this model and photo.
        kind: ``"map"``, ``"contrast"`` (``ReLU(M_k − max_j M_j)`` of two normalised maps) or ``"contrastive"``
            (the normalised map of the score :math:`y_k - \\gamma\\,\\mathrm{mean}_j\\, y_{d_j}`).
        against: for a contrast or a contrastive map, the class indices it is against.
        seconds: time to compute the map.
        degenerate: the method's map is constant (:attr:`cameras.Result.degenerate`): it shows nothing (drawn as
            zeros) and its correlations are undefined.
        row: in a grid (:func:`compare_class_grid`), the label of the panel's row (method or model).
    """

    title: str
    saliency: NDArray[np.float32]
    method: str
    model: str
    class_index: int
    class_name: str
    probability: float
    kind: str = "map"
    against: list[int] = field(default_factory=list)
    seconds: float = 0.0
    degenerate: bool = False
    row: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready description (the map itself is summarised by its mean and maximum)."""
        return {
            "title": self.title,
            "kind": self.kind,
            "method": self.method,
            "model": self.model,
            "class_index": self.class_index,
            "class_name": self.class_name,
            "probability": self.probability,
            "against": self.against,
            "seconds": round(self.seconds, 4),
            "degenerate": self.degenerate,
            **({"row": self.row} if self.row else {}),
            "map_mean": float(self.saliency.mean()),
            "map_max": float(self.saliency.max()),
        }


@dataclass
class Comparison:
    """A comparison view: the photo, the panels and the numbers; its figure is drawn on first use.

    Attributes:
        view: ``"methods"``, ``"classes"``, ``"models"`` or ``"class_grid"``.
        photo: (H0, W0, 3) uint8 photo.
        panels: the maps, in drawing order (contrasts after the maps; in the grid, row by row).
        spearman: one entry per pair of map panels: ``{"a": name, "b": name, "rho": ρ or None}``; in the classes and
            grid views also ``"form"`` (``"plain"`` or ``"contrastive"``), and in the grid ``"row"``.
        info: what was computed (image, models, layer, input sizes, top predictions …).
        title: the figure's heading (``"Methods side by side"``, …).
        alpha: opacity of the maps over the photo in the figure, in [0, 1].
    """

    view: str
    photo: NDArray[np.uint8]
    panels: list[Panel]
    spearman: list[dict[str, Any]]
    info: dict[str, Any]
    title: str = ""
    alpha: float = 0.5
    _figure: Figure | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def figure(self) -> Figure:
        """The labelled grid (a matplotlib figure on an Agg canvas, :func:`cameras.viz.compare.draw`), drawn once."""
        if self._figure is None:
            from ..viz.compare import draw

            self._figure = draw(self)
        return self._figure

    def to_json(self) -> dict[str, Any]:
        """Everything but the pixels, ready for :func:`json.dumps`."""
        return {
            "view": self.view,
            **self.info,
            "photo_size": [int(self.photo.shape[0]), int(self.photo.shape[1])],
            "panels": [p.to_json() for p in self.panels],
            "spearman": self.spearman,
        }

    def content(self) -> list[Any]:
        """What the comparison shows (the view, the photo, and each panel's kind, method, model, class and rivals):
        two comparisons with the same content are the same figure, whatever their numbers."""
        panels = [[p.kind, p.method, p.model, p.class_index, list(p.against), p.row] for p in self.panels]
        return [self.view, str(self.info.get("image", "")), panels]

    def save(self, out_dir: str | Path, stem: str | None = None, dpi: int = 120) -> tuple[Path, Path]:
        """Write ``<stem>.png`` (the grid) and ``<stem>.json`` (:meth:`to_json`) into ``out_dir`` (created), each
        atomically (:mod:`cameras.io.atomic`); the default stem is ``compare_<view>_<photo's name>``. When the folder
        already holds a figure of that name showing another comparison (other methods, models or classes:
        :meth:`content`), this one is numbered ``_2``, ``_3`` … instead of replacing it; the same comparison again
        replaces its own files.

        Returns:
            (png path, json path).
        """
        from ..io.atomic import write_figure, write_json
        from ..io.folders import slug

        out = Path(out_dir)
        if stem is None:
            base = f"compare_{self.view}_{slug(Path(str(self.info.get('image', 'image'))).stem, 'image')}"
            stem = _free_stem(out, base, self)
        png = write_figure(out / f"{stem}.png", self.figure, dpi=dpi, facecolor="white")
        path = write_json(out / f"{stem}.json", {**self.to_json(), "png": png.name})
        return png, path


def _free_stem(out: Path, base: str, view: Comparison) -> str:
    """``base``, or ``base_N`` (the first N ≥ 2) when ``out`` holds a figure of that name of another comparison."""
    import json

    for n in range(1, 10_000):
        stem = base if n == 1 else f"{base}_{n}"
        sidecar = out / f"{stem}.json"
        if not sidecar.exists() and not (out / f"{stem}.png").exists():
            return stem
        try:
            old = json.loads(sidecar.read_text(encoding="utf-8"))
            panels = [
                [p["kind"], p["method"], p["model"], p["class_index"], list(p["against"]), p.get("row", "")]
                for p in old["panels"]
            ]
            same = [old["view"], str(old.get("image", "")), panels] == view.content()
        except (OSError, ValueError, KeyError, TypeError):
            same = False  # a figure without a readable sidecar is not ours to replace
        if same:
            return stem
    raise OSError(f"{out}: 10,000 comparisons of one photo and view; use another folder")
