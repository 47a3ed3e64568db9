"""Pictures: overlays, grids and plots (matplotlib / PIL); :func:`show` draws maps side by side in a notebook;
:mod:`cameras.viz.compare` draws the comparison views of :mod:`cameras.compare`, which are re-exported here, where
they lived before (``from cameras.viz import compare_methods`` still works; imported on first use, so that
``cameras.viz`` stays light)."""

from typing import Any

from .overlay import colorize, label_banner, overlay, save_overlay
from .show import show

_COMPARE = (
    "DEFAULT_METHODS",
    "Comparison",
    "Panel",
    "compare_class_grid",
    "compare_classes",
    "compare_methods",
    "compare_models",
    "method_label",
    "spearman",
)

__all__ = ["colorize", "label_banner", "overlay", "save_overlay", "show", *_COMPARE]


def __getattr__(name: str) -> Any:
    if name in _COMPARE:
        from .. import compare

        return getattr(compare, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
