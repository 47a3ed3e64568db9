"""Sanity checks for saliency methods: the model-parameter randomisation test (Adebayo et al. 2018) and the
adversarial sanity test (our reconstruction of Sec. 6.1 of the CAMERAS paper).

>>> import torch, torchvision, cameras.sanity as S
>>> net = torchvision.models.resnet18().eval()
>>> res = S.cascading_randomization(net, "cameras", torch.randn(1, 3, 64, 64), layer="layer4", blocks=["fc"])
>>> res.steps
['original', 'fc']
"""

from __future__ import annotations

from .adversarial import (
    AdversarialEffect,
    AdversarialSanity,
    adversarial_effect,
    adversarial_sanity,
    cell_means,
    plot_adversarial_sanity,
)
from .plots import plot_similarity, plot_strip
from .randomization import (
    BnStats,
    MethodSpec,
    SanityResult,
    Variant,
    cascading_randomization,
    default_blocks,
    randomized_copy,
    reinitialize,
)
from .similarity import METRICS, compare_maps, hog_similarity, spearman, ssim

__all__ = [
    "METRICS",
    "AdversarialEffect",
    "AdversarialSanity",
    "BnStats",
    "MethodSpec",
    "SanityResult",
    "Variant",
    "adversarial_effect",
    "adversarial_sanity",
    "cascading_randomization",
    "cell_means",
    "compare_maps",
    "default_blocks",
    "hog_similarity",
    "plot_adversarial_sanity",
    "plot_similarity",
    "plot_strip",
    "randomized_copy",
    "reinitialize",
    "spearman",
    "ssim",
]
