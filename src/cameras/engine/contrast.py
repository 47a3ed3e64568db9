r"""Contrastive class scores: explain why the model prefers a class over its rivals.

A plain map explains the logit :math:`y_c` of the target class. A contrastive map explains

.. math:: s = y_c - \gamma \cdot \frac{1}{M}\sum_{j=1}^{M} y_{d_j}

where :math:`d_1 \dots d_M` are the rival classes ("explain *c* against *d*") and :math:`\gamma \ge 0` weighs them
(:math:`\gamma = 0` is the plain map). What the target and its rivals share cancels in the difference, so the map
shows the evidence that tells them apart. This is the score of Finer-CAM (Zhang et al., "Finer-CAM: Spotting the
Difference Reveals Finer Details for Visual Explanation", CVPR 2025), which pytorch-grad-cam and TorchCAM offer at one
scale; here it is a property of the engine, so every gradient method (CAMERAS and its scales included) takes it.

The score is used where the gradient is taken (:meth:`cameras.engine.tap.LayerTap.gradient`, hence
:func:`cameras.engine.record_scales`) and by the pixel methods (through a wrapped forward); the rivals are chosen once,
at the base scale, and stay the same at every scale.

Shapes: ``targets`` (B, K), rivals (B, K, M): K classes explained per image, each against its own M rivals.

Example:
    >>> import torch
    >>> logits = torch.tensor([[1.0, 4.0, 2.0, 0.5]])
    >>> class_scores(logits, torch.tensor([[1]]), torch.tensor([[[2, 3]]]), gamma=1.0)  # 4 − (2 + 0.5)/2
    tensor([[2.7500]])
    >>> Contrast(None, k=2).resolve(logits, torch.tensor([[1]])).tolist()  # the two most probable others
    [[[2, 0]]]
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

__all__ = ["Contrast", "check_distinct", "class_scores", "rival_classes"]


def class_scores(logits: Tensor, targets: Tensor, rivals: Tensor | None = None, gamma: float = 1.0) -> Tensor:
    r"""The explained score of each target: :math:`y_c` or :math:`y_c - \gamma\,\mathrm{mean}_j\,y_{d_j}`.

    Args:
        logits: (B, N) class scores (part of a graph when gradients are wanted).
        targets: (B, K) int64 classes explained.
        rivals: (B, K, M) int64 rival classes of each target, or ``None`` for the plain logits.
        gamma: weight of the rivals' mean logit.

    Returns:
        (B, K) scores in the logits' dtype, differentiable w.r.t. ``logits``.
    """
    scores = logits.gather(1, targets)
    if rivals is None:
        return scores
    batch, k_classes, m = rivals.shape
    rival_logits = logits.gather(1, rivals.reshape(batch, k_classes * m)).reshape(batch, k_classes, m)
    return scores - gamma * rival_logits.mean(dim=2)


def rival_classes(logits: Tensor, targets: Tensor, k: int) -> Tensor:
    """Each target's ``k`` most probable classes other than itself (``contrast="auto"``).

    Args:
        logits: (B, N) class scores.
        targets: (B, K) int64 classes.
        k: rivals per target, ``1 ≤ k < N``.

    Returns:
        (B, K, k) int64, most probable first.

    Raises:
        ValueError: ``k`` not below the number of classes.
    """
    num_classes = logits.shape[1]
    if k >= num_classes:
        raise ValueError(
            f"contrast_k={k} needs more classes than the model's {num_classes} (at most {num_classes - 1} rivals)."
        )
    scores = logits.detach().float().unsqueeze(1).repeat(1, targets.shape[1], 1)  # (B, K, N)
    scores.scatter_(2, targets.unsqueeze(2), float("-inf"))
    return scores.topk(k, dim=2).indices


def check_distinct(targets: Tensor, rivals: Tensor) -> None:
    """Raise a ``ValueError`` naming ``contrast`` when a rival class equals its own target.

    Args:
        targets: (B, K) classes.
        rivals: (B, K or 1, M) rival classes (a singleton K axis applies to every target).
    """
    same = rivals == targets.unsqueeze(2)  # (B, K, M)
    if bool(same.any()):
        b, k, _ = (int(i) for i in same.nonzero()[0])
        raise ValueError(
            f"contrast class {int(targets[b, k])} equals the target of image {b}: a class cannot be explained "
            "against itself (choose other rival classes, or contrast='auto')."
        )


@dataclass(frozen=True)
class Contrast:
    """What a method explains its targets against: given rival classes or ``"auto"``, and the weight ``gamma``.

    Built by the common call (:class:`cameras.methods.base.Explainer`) from ``contrast=``, ``contrast_k=`` and
    ``gamma=``; the engine turns it into (B, K, M) rival classes with :meth:`resolve` once the targets and the base
    scale's logits are known.

    Attributes:
        classes: (B, K or 1, M) int64 rival classes (a singleton K axis: the same rivals for every target), or
            ``None`` for ``"auto"``.
        k: with ``classes=None``, the number of rivals per target (its ``k`` most probable other classes).
        gamma: weight of the rivals' mean logit (finite).
    """

    classes: Tensor | None
    k: int = 1
    gamma: float = 1.0

    def rows(self, start: int, stop: int) -> Contrast:
        """The same contrast for images ``start:stop`` of the batch (``"auto"`` is the same for every image)."""
        if self.classes is None:
            return self
        return Contrast(self.classes[start:stop], self.k, self.gamma)

    def resolve(self, logits: Tensor, targets: Tensor) -> Tensor:
        """The (B, K, M) rival classes for ``targets`` (B, K), on the logits' device.

        Args:
            logits: (B, N) class scores at the base scale (they choose the rivals for ``"auto"``).
            targets: (B, K) classes explained.

        Raises:
            ValueError: a rival out of ``[0, N)``, equal to its target, a K axis that matches neither 1 nor the
                number of targets, or ``k ≥ N``.
        """
        num_classes = logits.shape[1]
        if self.classes is None:
            return rival_classes(logits, targets, self.k).to(targets.device)
        rivals = self.classes.to(targets.device)
        if rivals.shape[0] != targets.shape[0]:
            raise ValueError(f"Got contrast classes for {rivals.shape[0]} images, but {targets.shape[0]} targets.")
        if rivals.shape[1] not in (1, targets.shape[1]):
            raise ValueError(
                f"contrast has rivals for {rivals.shape[1]} classes per image, but {targets.shape[1]} classes are "
                "explained: give (B, M) rivals shared by every target or (B, K, M) rivals per target."
            )
        bad = rivals >= num_classes
        if bool(bad.any()):
            raise ValueError(
                f"contrast class {int(rivals[bad][0])} is out of range for a model with {num_classes} classes "
                f"(valid: 0..{num_classes - 1})."
            )
        check_distinct(targets, rivals)
        return rivals.expand(-1, targets.shape[1], -1).contiguous()
