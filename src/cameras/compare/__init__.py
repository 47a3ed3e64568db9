"""Comparison views, computed (the CAMERAS paper's "insights", Jalwana et al., CVPR 2021): maps of methods,
classes or models side by side, with their contrasts and rank correlations.

Four views, each returning a :class:`Comparison` (the maps and numbers; its figure, drawn on first use by
:mod:`cameras.viz.compare`, shows them), and :func:`compare`, which picks the view as ``cameras compare`` does:

* :func:`compare_methods` — several methods, one model, one class;
* :func:`compare_classes` — several classes of one photo, one method, plus contrast maps
  :math:`\\mathrm{ReLU}(M_k - \\max_{j \\ne k} M_j)` (for two classes: ``ReLU(A − B)`` and ``ReLU(B − A)``): what is
  specific to each class; or, with ``contrastive=True``, each class's *contrastive* map, the map of the score
  :math:`y_k - \\gamma\\,\\mathrm{mean}_{j \\ne k}\\, y_j` (``contrast=`` of every method, Finer-CAM's score): what
  the model uses to prefer that class over the others, rather than a difference of two pictures;
* :func:`compare_models` — several models, one method, one class, with the Spearman rank correlation between every
  pair of models' maps ("relative importance of input features for different models");
* :func:`compare_class_grid` — the CAMERAS paper's Fig. 5: similar classes across methods or models, one row per
  method (or model), one column per class, then the row's contrast (or contrastive) maps, all on one colour scale.

Every map is computed on the model's input, brought back onto the photo's pixels (bilinear) and drawn over the photo
with one colour scale [0, 1] shared by all map panels (one colour bar). Contrast maps are differences of normalised
maps and are *not* renormalised: they share a second colour bar running from 0 to the largest contrast value, so
their colours compare with each other and the number in their title tells their size against the maps' [0, 1].
Spearman's ρ is computed with :func:`scipy.stats.spearmanr` over all pixels of two maps at the photo's resolution
(1 = same ranking of pixels; higher means more similar; ``None`` when a map is constant).

Models are passed as :class:`cameras.models.LoadedModel` objects (or anything with ``name``, ``model``, ``layer``,
``preprocess`` and ``labels``).

* :mod:`~cameras.compare.views` — the views and :func:`compare`;
* :mod:`~cameras.compare.maps` — the maps of a method for some classes, contrasts, :func:`spearman`, top-5;
* :mod:`~cameras.compare.result` — :class:`Comparison`, :class:`Panel`, :class:`ModelLike`.

Drawing is :mod:`cameras.viz.compare` (matplotlib's object API, Agg canvas, never pyplot: nothing is shown and no
global state changes); this package imports no matplotlib until a figure is asked for.
"""

from .maps import DEFAULT_METHODS, method_label, spearman
from .result import Comparison, MethodSpec, ModelLike, Panel
from .views import choose_view, compare, compare_class_grid, compare_classes, compare_methods, compare_models

__all__ = [
    "DEFAULT_METHODS",
    "Comparison",
    "MethodSpec",
    "ModelLike",
    "Panel",
    "choose_view",
    "compare",
    "compare_class_grid",
    "compare_classes",
    "compare_methods",
    "compare_models",
    "method_label",
    "spearman",
]
