"""The object every saliency method returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from .normalize import CONSTANT_RTOL_ULPS, constant_maps

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .accumulate import Recording

__all__ = ["CONSTANT_RTOL_ULPS", "Result", "constant_maps"]


@dataclass
class Result:
    r"""Saliency maps and what was explained.

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
        contrast: for a contrastive call (``contrast=``), the rival classes each target was explained against:
            (B, M) or (B, K, M) int64; an empty tensor for a plain call.
        gamma: the weight of the rivals in the explained score :math:`y_c - \gamma\,\mathrm{mean}_j y_{d_j}`
            (``None`` for a plain call).
        layer: dotted name of the layer explained (``""`` for methods without a layer); with ``layer=None`` on a
            plain model, the layer :func:`cameras.engine.last_spatial_layer` chose.
        degenerate: (B,) or (B, K) bool, same shape as ``targets``: the map is constant (:func:`constant_maps` of
            ``raw``: e.g. a 1×1 feature map, a 1×1 photo, or a ReLU that removed everything). Its ``saliency`` is
            all zeros, it shows nothing, and every metric of it is undefined (NaN). Computed from ``raw`` when not
            given.
    """

    saliency: Tensor
    targets: Tensor
    probabilities: Tensor
    raw: Tensor
    kept: Tensor
    resolutions: list[tuple[int, int]] = field(default_factory=list)
    scale_top1: Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))
    method: str = ""
    contrast: Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))
    gamma: float | None = None
    degenerate: Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.bool))
    layer: str = ""

    def __post_init__(self) -> None:
        if tuple(self.degenerate.shape) != tuple(self.targets.shape):
            self.degenerate = constant_maps(self.raw).reshape(self.targets.shape)

    @classmethod
    def from_recording(cls, raw: Tensor, recording: Recording, method: str) -> Result:
        """The result of ``raw`` maps (B, K, H, W), already ReLU'd, computed from ``recording``: min–max normalised
        (constant maps → zeros, flagged ``degenerate``), with the recording's targets, probabilities, keep masks,
        sizes and per-scale top-1 classes."""
        from .normalize import minmax_normalize

        return cls(
            saliency=minmax_normalize(raw),
            degenerate=constant_maps(raw),
            targets=recording.targets,
            probabilities=recording.probabilities,
            raw=raw,
            kept=recording.keep,
            resolutions=recording.sizes,
            scale_top1=recording.scale_top1,
            method=method,
            contrast=recording.contrast if recording.contrast is not None else torch.empty(0, dtype=torch.long),
            gamma=recording.gamma,
        )

    @classmethod
    def cat(cls, parts: Sequence[Result]) -> Result:
        """Concatenate results of consecutive sub-batches of one call (same method and scales) along the batch."""
        return cls(
            saliency=torch.cat([p.saliency for p in parts]),
            targets=torch.cat([p.targets for p in parts]),
            probabilities=torch.cat([p.probabilities for p in parts]),
            raw=torch.cat([p.raw for p in parts]),
            kept=torch.cat([p.kept for p in parts]),
            resolutions=list(parts[0].resolutions),
            scale_top1=torch.cat([p.scale_top1 for p in parts]),
            method=parts[0].method,
            contrast=torch.cat([p.contrast for p in parts]),
            gamma=parts[0].gamma,
            degenerate=torch.cat([p.degenerate for p in parts]),
            layer=parts[0].layer,
        )

    @property
    def batch_size(self) -> int:
        return int(self.saliency.shape[0])

    @property
    def any_degenerate(self) -> bool:
        """Whether any map of the result is constant (see ``degenerate``)."""
        return bool(self.degenerate.any())

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
            contrast=self.contrast.to(device),
            gamma=self.gamma,
            degenerate=self.degenerate.to(device),
            layer=self.layer,
        )

    def plot(self, photo: Any, *, labels: Sequence[str] | None = None, **kwargs: Any) -> Figure:
        """The maps over the photo in a matplotlib figure (for notebooks): :func:`cameras.viz.show` of this result.

        Args:
            photo: the :class:`~cameras.models.PreparedImage` the maps were computed on (or an (H, W, 3) uint8
                array / PIL image).
            labels: class names for the titles (``m.labels``).
            **kwargs: :func:`cameras.viz.show`'s options (``index``, ``alpha``, ``cmap``, ``columns``, ``title`` …).

        Returns:
            ``matplotlib.figure.Figure``: the photo, then one panel per class of image ``index``.

        Example:
            >>> import numpy as np, torchvision, cameras
            >>> from cameras.models import Preprocess
            >>> photo = Preprocess(size=64)(np.zeros((64, 96, 3), np.uint8))
            >>> net = torchvision.models.resnet18(num_classes=3).eval()
            >>> out = cameras.GradCAM(net, layer="layer4")(photo.tensor, top_k=2)
            >>> len(out.plot(photo, labels=["a", "b", "c"]).axes)  # photo, 2 maps, colour bar
            4
        """
        from ..viz.show import show

        return show(photo, self, labels=labels, **kwargs)

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
            contrast=self.contrast[:, k] if self.contrast.dim() == 3 else self.contrast,
            gamma=self.gamma,
            degenerate=self.degenerate[:, k],
            layer=self.layer,
        )
