"""The object every saliency method returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = ["Result"]


@dataclass
class Result:
    """Saliency maps and what was explained.

    For a single class per image (the usual call) the leading shape is (B,); for several classes per image
    (``targets`` of shape (B, K) or ``top_k=K``) it is (B, K).

    Attributes:
        saliency: (B, H, W) or (B, K, H, W) float32 maps in [0, 1] at the input's resolution, on the images' device.
        targets: (B,) or (B, K) int64 class explained.
        probabilities: (B,) or (B, K) softmax probability of the target at the base scale (``nan`` if unknown).
        raw: same shape as ``saliency``, the map before min–max normalisation (after the method's ReLU).
        kept: (B, S) or (B, K, S) bool, which of the S scales entered the averages (all True for one-scale methods).
        resolutions: the S input sizes (h, w) that were run; ``resolutions[0]`` is the base scale.
        scale_top1: (B, S) int64 top-1 class at each scale (empty when the method does not run the model).
        method: name of the method that produced the maps.
    """

    saliency: Tensor
    targets: Tensor
    probabilities: Tensor
    raw: Tensor
    kept: Tensor
    resolutions: list[tuple[int, int]] = field(default_factory=list)
    scale_top1: Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))
    method: str = ""

    @property
    def batch_size(self) -> int:
        return int(self.saliency.shape[0])

    def to(self, device: torch.device | str) -> Result:
        """Move every tensor to ``device``."""
        return Result(
            saliency=self.saliency.to(device),
            targets=self.targets.to(device),
            probabilities=self.probabilities.to(device),
            raw=self.raw.to(device),
            kept=self.kept.to(device),
            resolutions=list(self.resolutions),
            scale_top1=self.scale_top1.to(device),
            method=self.method,
        )

    def select(self, k: int) -> Result:
        """For a multi-class result (B, K, ...), the single-class result of the k-th class of each image."""
        if self.targets.dim() != 2:
            raise ValueError("select() is for multi-class results with targets of shape (B, K).")
        return Result(
            saliency=self.saliency[:, k],
            targets=self.targets[:, k],
            probabilities=self.probabilities[:, k],
            raw=self.raw[:, k],
            kept=self.kept[:, k] if self.kept.dim() == 3 else self.kept,
            resolutions=list(self.resolutions),
            scale_top1=self.scale_top1,
            method=self.method,
        )
