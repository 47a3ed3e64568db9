"""The pointing-game protocol of the data-set benchmarks (Zhang et al. 2016; the CAMERAS paper's Table 1).

The score of a method on PASCAL VOC07 test or COCO14 val is not the mean of the hits over images: every (image,
class present in the image) pair is one trial, the hit rate is computed *per class*, and the score is the mean of
the per-class rates. It is reported on all pairs ("All") and on the "difficult" pairs only ("Diff"), those where
the class is small and not alone in the image (:func:`is_difficult`).

Checked against TorchRay's benchmark (``torchray/benchmark/pointing_game.py`` and ``datasets.py``, Fong et al.
2019, which the CAMERAS paper used for the other methods of Table 1):

* **agrees**: one trial per (image, class present); per-class accuracy ``hits / trials``; the score is the mean of
  the per-class accuracies; the mask of a class is the union of its boxes (VOC);
* **differs**: TorchRay averages over *every* class of the data set, a class without trials counting as accuracy
  0 (``hits / max(trials, 1)``), while :func:`pointing_accuracy` averages over the classes that have trials
  (identical on VOC07 test and COCO14 val "All", where every class occurs; on "Diff" a class with no difficult pair
  is left out here instead of counting 0). TorchRay does not compute the difficult criterion: it reads Zhang et
  al.'s precomputed flags (``pointing_game_ebp_voc07_difficult.txt``), and keeps an image missing from that list;
  :func:`is_difficult` recomputes the published rule from the boxes. TorchRay also skips a VOC pair whose boxes are
  all flagged VOC-"difficult" (not read by :func:`~cameras.metrics.load_voc_xml`; drop those pairs yourself to
  match), and on COCO uses the segmentation masks rather than the boxes. Its hit test is a strict
  ``distance < tolerance`` while :func:`~cameras.metrics.pointing_game` accepts ``<=`` (a point at exactly 15 px
  counts here).

>>> import torch
>>> from cameras.metrics import pointing_accuracy
>>> out = pointing_accuracy(torch.tensor([1, 0, 1, 1]), torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 0]))
>>> out["all"], out["difficult"]      # classes 0 and 1: (1/2 + 2/2) / 2; difficult: class 0 only, 0/1
(0.75, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ._checks import check_boxes
from .localization import boxes_to_mask

__all__ = ["DIFFICULT_AREA", "is_difficult", "pointing_accuracy"]

DIFFICULT_AREA = 0.25
"""A class is small when the union of its boxes covers less than this share of the image (Zhang et al. 2016)."""


def _positive_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return value


def is_difficult(class_boxes: Tensor, image_size: Sequence[int], classes_in_image: int) -> bool:
    """Whether an (image, class) pair belongs to the "difficult" split of the pointing game.

    Rule (Zhang, Bargal, Lin, Brandt, Shen, Sclaroff, "Top-down Neural Attention by Excitation Backprop", ECCV
    2016, Sec. 5.1): the class's boxes together cover **less than 1/4 of the image**, and the image holds **at
    least two distinct annotated classes** (this one and a distractor).

    Args:
        class_boxes: (K, 4) boxes of this class, rows ``(x0, y0, x1, y1)`` in the image's pixels, half-open (the
            convention of :mod:`cameras.metrics`); their union is rasterised, parts outside the image are ignored.
            K = 0 covers nothing.
        image_size: ``(H, W)`` of the image the boxes are in.
        classes_in_image: number of distinct classes annotated in the image, this one included (≥ 1).

    Returns:
        ``True`` for a difficult pair.

    Raises:
        TypeError, ValueError: malformed boxes, a non-positive image size or ``classes_in_image < 1``.

    Example:
        >>> import torch
        >>> small = torch.tensor([[0.0, 0.0, 10.0, 10.0]])          # 100 of 40 × 40 = 1600 pixels
        >>> is_difficult(small, (40, 40), 2), is_difficult(small, (40, 40), 1)
        (True, False)
    """
    if isinstance(image_size, Tensor) or not isinstance(image_size, Sequence) or len(image_size) != 2:
        raise TypeError(f"image_size must be a pair (H, W) of ints, got {image_size!r}.")
    h = _positive_int(image_size[0], "image_size[0] (H)", 1)
    w = _positive_int(image_size[1], "image_size[1] (W)", 1)
    classes = _positive_int(classes_in_image, "classes_in_image", 1)
    (boxes,) = check_boxes([class_boxes], 1, torch.device("cpu"))
    covered = int(boxes_to_mask([boxes], (h, w)).sum())
    return covered < DIFFICULT_AREA * h * w and classes >= 2


def _flat(value: Any, name: str, kind: str) -> Tensor:
    t = torch.as_tensor(value)
    if t.numel() == 0 and t.dim() == 1:
        return t.long() if kind == "int" else t.bool()
    if t.dim() != 1:
        raise ValueError(f"{name} must be a 1-D sequence (one entry per (image, class) pair), got {tuple(t.shape)}.")
    if kind == "int":
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"{name} must hold integer class indices, got {t.dtype}.")
        return t.long()
    if t.is_floating_point():
        if not bool(((t == 0) | (t == 1)).all()):
            raise ValueError(f"{name} must hold booleans (or 0/1), got other values.")
    elif t.is_complex():
        raise TypeError(f"{name} must hold booleans, got {t.dtype}.")
    elif t.dtype != torch.bool and not bool(((t == 0) | (t == 1)).all()):
        raise ValueError(f"{name} must hold booleans (or 0/1), got other values.")
    return t.bool()


def pointing_accuracy(hits: Any, classes: Any, difficult: Any) -> dict[str, Any]:
    """Pointing-game score of a data set: the mean over classes of the per-class hit rate (Table 1 protocol).

    Args:
        hits: (N,) bools (or 0/1), one per (image, class present) pair: did the map's maximum hit the class (e.g.
            :func:`~cameras.metrics.pointing_game`).
        classes: (N,) ints, the class of each pair.
        difficult: (N,) bools, whether the pair is difficult (:func:`is_difficult`).

    Returns:
        ``{"all": float, "difficult": float, "per_class": {class: {"all", "difficult", "n_all",
        "n_difficult"}}, "pairs": N, "difficult_pairs": int}``: ``"all"`` the mean over the classes with at
        least one pair of their hit rate; ``"difficult"`` the same over the difficult pairs only (classes without a
        difficult pair left out; NaN when there is none at all). Per class, ``"difficult"`` is NaN without
        difficult pairs. Rates are fractions in [0, 1]; ``"all"`` is NaN for N = 0.

    Raises:
        TypeError, ValueError: inputs of different lengths, non-integer classes, non-boolean hits or flags.

    Example:
        >>> pointing_accuracy([True, False, True], [3, 3, 5], [False, False, True])["per_class"][3]["all"]
        0.5
    """
    h = _flat(hits, "hits", "bool")
    c = _flat(classes, "classes", "int")
    d = _flat(difficult, "difficult", "bool")
    if not h.shape == c.shape == d.shape:
        raise ValueError(
            f"hits, classes and difficult must have the same length, got {h.numel()}, {c.numel()}, {d.numel()}."
        )
    per_class: dict[int, dict[str, float | int]] = {}
    for cls in sorted(set(c.tolist())):
        sel = c == cls
        hard = sel & d
        n_all, n_hard = int(sel.sum()), int(hard.sum())
        per_class[int(cls)] = {
            "all": float(h[sel].double().mean()),
            "difficult": float(h[hard].double().mean()) if n_hard else math.nan,
            "n_all": n_all,
            "n_difficult": n_hard,
        }
    all_rates = [v["all"] for v in per_class.values()]
    hard_rates = [v["difficult"] for v in per_class.values() if v["n_difficult"]]
    return {
        "all": sum(all_rates) / len(all_rates) if all_rates else math.nan,
        "difficult": sum(hard_rates) / len(hard_rates) if hard_rates else math.nan,
        "per_class": per_class,
        "pairs": int(h.numel()),
        "difficult_pairs": int(d.sum()),
    }
