"""Saliency-focused adversarial attacks and the minimal-norm report.

* :func:`pgd_attack` — PGD (L∞ / L2) and iterative FGSM with a fixed budget, an exact per-pixel mask and valid-pixel
  clipping, batched, seeded, on any device.
* :func:`minimal_norm_attack` — per image, the smallest budget at which the (focused) attack fools the model.
* :func:`focus_masks`, :func:`top_area_mask`, :func:`soft_weight`, :func:`random_area_mask`, :func:`full_mask` —
  where the attack may act.
* :func:`compare_focus`, :func:`format_table`, :func:`plot_focus_figure` — the norm report per focus source.
* :func:`saliency_pgd` — the CAMERAS paper's saliency-penalised targeted PGD (Eq. 4); :func:`compare_penalty`,
  :func:`format_penalty_table`, :func:`plot_penalty_figure`, :func:`plot_penalty_schedule` — its report per map
  source with the shuffled / constant / plain-PGD controls and the matched-success figure.
* :func:`attack_photos` — either report over photos of any sizes (batched by size, merged, one figure per photo,
  progress per photo): what ``cameras attack`` runs.

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
from .penalty import PenaltyAttackResult, least_likely, saliency_pgd
from .penalty_report import (
    PenaltyComparison,
    PenaltyRecord,
    PenaltyRun,
    compare_penalty,
    constant_map,
    format_penalty_table,
    penalty_maps,
    plot_penalty_figure,
    plot_penalty_schedule,
    shuffled_map,
)
from .pgd import AttackResult, perturbation_norms, pgd_attack
from .photos import PhotoAttack, attack_photos
from .report import FocusComparison, FocusRecord, compare_focus, format_table, plot_focus_figure

__all__ = [
    "AttackResult",
    "FocusComparison",
    "FocusRecord",
    "MinimalNormResult",
    "PenaltyAttackResult",
    "PenaltyComparison",
    "PenaltyRecord",
    "PenaltyRun",
    "PhotoAttack",
    "attack_photos",
    "compare_focus",
    "compare_penalty",
    "constant_map",
    "focus_masks",
    "format_penalty_table",
    "format_table",
    "full_mask",
    "least_likely",
    "minimal_norm_attack",
    "penalty_maps",
    "perturbation_norms",
    "pgd_attack",
    "plot_focus_figure",
    "plot_penalty_figure",
    "plot_penalty_schedule",
    "random_area_mask",
    "saliency_maps",
    "saliency_pgd",
    "shuffled_map",
    "soft_weight",
    "top_area_mask",
]
