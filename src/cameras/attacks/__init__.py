"""Saliency-focused adversarial attacks and the minimal-norm report.

* :func:`pgd_attack` — PGD (L∞ / L2) and iterative FGSM with a fixed budget, an exact per-pixel mask and valid-pixel
  clipping, batched, seeded, on any device.
* :func:`minimal_norm_attack` — per image, the smallest budget at which the (focused) attack fools the model.
* :func:`focus_masks`, :func:`top_area_mask`, :func:`soft_weight`, :func:`random_area_mask`, :func:`full_mask` —
  where the attack may act.
* :func:`compare_focus`, :func:`format_table`, :func:`plot_focus_figure` — the norm report per focus source.

>>> import torch, torch.nn as nn
>>> from cameras import attacks
>>> net = nn.Sequential(nn.Flatten(), nn.Linear(12, 2)).eval()
>>> x = torch.zeros(1, 3, 2, 2)
>>> res = attacks.minimal_norm_attack(net, x, net(x).argmax(1), mask=torch.zeros(1, 2, 2))
>>> bool(res.fooled), float(res.l2)
(False, 0.0)
"""

from __future__ import annotations

from .focus import focus_masks, full_mask, random_area_mask, saliency_maps, soft_weight, top_area_mask
from .minimal import MinimalNormResult, minimal_norm_attack
from .pgd import AttackResult, perturbation_norms, pgd_attack
from .report import FocusComparison, FocusRecord, compare_focus, format_table, plot_focus_figure

__all__ = [
    "AttackResult",
    "FocusComparison",
    "FocusRecord",
    "MinimalNormResult",
    "compare_focus",
    "focus_masks",
    "format_table",
    "full_mask",
    "minimal_norm_attack",
    "perturbation_norms",
    "pgd_attack",
    "plot_focus_figure",
    "random_area_mask",
    "saliency_maps",
    "soft_weight",
    "top_area_mask",
]
