"""Metrics for saliency maps: localisation (pointing game, energy in box or in instance masks, the data-set pointing
protocol with its "difficult" split, discrimination between annotated classes), faithfulness (insertion/deletion,
confidence change, positive/negative map density; all of them for several methods' maps in shared forward passes),
plus bounding-box I/O and lazily decoded instance masks.

Conventions: ``saliency`` is (B, H, W); ``boxes`` is a list of B float tensors (K_i, 4) with half-open rows
``(x0, y0, x1, y1)`` in the map's pixels (pixel (x, y) inside when x0 <= x < x1 and y0 <= y < y1); several boxes
of one image count as their union. A score that is undefined — a constant map, no box on the map — is ``nan``
(never a made-up number): average with ``torch.nanmean`` and count ``torch.isnan``.

>>> import torch, cameras.metrics as M
>>> sal = torch.zeros(1, 8, 8); sal[0, 2, 3] = 1.0
>>> M.pointing_game(sal, [torch.tensor([[2.0, 1.0, 5.0, 4.0]])]).tolist()
[1.0]
"""

from __future__ import annotations

from .batched import FaithfulnessSet, faithfulness_set
from .boxes import (
    Annotation,
    boxes_tensor,
    boxes_to_input,
    load_boxes,
    load_boxes_json,
    load_voc_xml,
    save_boxes_json,
)
from .density import MapDensity, black_baseline, map_density
from .discrimination import discrimination
from .faithfulness import Baseline, ConfidenceChange, InsertionDeletion, confidence_change, insertion_deletion
from .localization import boxes_to_mask, energy_in_box, energy_in_mask, pointing_game
from .masks import Segmentation, decode_segmentation, instance_mask, require_pycocotools
from .pointing import is_difficult, pointing_accuracy

__all__ = [
    "Annotation",
    "Baseline",
    "ConfidenceChange",
    "FaithfulnessSet",
    "InsertionDeletion",
    "MapDensity",
    "Segmentation",
    "black_baseline",
    "boxes_tensor",
    "boxes_to_input",
    "boxes_to_mask",
    "confidence_change",
    "decode_segmentation",
    "discrimination",
    "energy_in_box",
    "energy_in_mask",
    "faithfulness_set",
    "insertion_deletion",
    "instance_mask",
    "is_difficult",
    "load_boxes",
    "load_boxes_json",
    "load_voc_xml",
    "map_density",
    "pointing_accuracy",
    "pointing_game",
    "require_pycocotools",
    "save_boxes_json",
]
