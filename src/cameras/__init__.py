"""cameras: enhanced-resolution, sanity-preserving class activation maps (CAMERAS, Jalwana et al., CVPR 2021).

>>> import torch, torchvision, cameras
>>> net = torchvision.models.resnet18().eval()
>>> out = cameras.CAMERAS(net, layer="layer4", resolutions=[64, 96])(torch.randn(1, 3, 64, 64))
>>> out.saliency.shape
torch.Size([1, 64, 64])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import methods
from .engine.result import Result
from .methods import (
    CAM,
    CAMERAS,
    GradCAM,
    GradCAMPlusPlus,
    Gradient,
    GuidedBackprop,
    HiResCAM,
    IntegratedGradients,
    LayerCAM,
    MultiScale,
    ScoreCAM,
    SmoothGrad,
    XGradCAM,
)

if TYPE_CHECKING:
    from .evaluation import Evaluation, evaluate

__version__ = "0.1.0"

_LAZY = ("attacks", "data", "evaluation", "metrics", "models", "sanity", "viz", "engine", "io")

_LAZY_NAMES = {"evaluate": "evaluation", "Evaluation": "evaluation"}
"""Names re-exported from a subpackage imported on first use: ``cameras.evaluate`` is
:func:`cameras.evaluation.evaluate`."""


def __getattr__(name: str) -> Any:
    """Import the heavier subpackages (metrics, attacks, models, evaluation, …) on first use."""
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CAM",
    "CAMERAS",
    "Evaluation",
    "GradCAM",
    "GradCAMPlusPlus",
    "Gradient",
    "GuidedBackprop",
    "HiResCAM",
    "IntegratedGradients",
    "LayerCAM",
    "MultiScale",
    "Result",
    "ScoreCAM",
    "SmoothGrad",
    "XGradCAM",
    "__version__",
    "attacks",
    "data",
    "evaluate",
    "evaluation",
    "io",
    "methods",
    "metrics",
    "models",
    "sanity",
]
