"""Sanity checks for saliency methods: the model-parameter randomisation test (Adebayo et al. 2018).

>>> import torch, torchvision, cameras.sanity as S
>>> net = torchvision.models.resnet18().eval()
>>> res = S.cascading_randomization(net, "cameras", torch.randn(1, 3, 64, 64), layer="layer4", blocks=["fc"])
>>> res.steps
['original', 'fc']
"""

from __future__ import annotations

from .plots import plot_similarity, plot_strip
from .randomization import (
    BnStats,
    MethodSpec,
    SanityResult,
    Variant,
    cascading_randomization,
    default_blocks,
    reinitialize,
)
from .similarity import METRICS, compare_maps, hog_similarity, spearman, ssim

__all__ = [
    "METRICS",
    "BnStats",
    "MethodSpec",
    "SanityResult",
    "Variant",
    "cascading_randomization",
    "compare_maps",
    "default_blocks",
    "hog_similarity",
    "plot_similarity",
    "plot_strip",
    "reinitialize",
    "spearman",
    "ssim",
]
