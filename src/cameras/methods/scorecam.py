"""Score-CAM (Wang et al., CVPR Workshops 2020): channels weighted by the class score of the input they mask."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..engine.accumulate import record_scales
from ..engine.contrast import Contrast
from ..engine.layout import Reshape
from ..engine.normalize import minmax_normalize
from ..engine.result import Result
from ..engine.tap import extract_logits
from .cam import ModelState, TopKExplainer, upsample_maps

__all__ = ["ScoreCAM"]


class ScoreCAM(TopKExplainer):
    r"""Score-CAM (Wang et al., "Score-CAM: Score-Weighted Visual Explanations for CNNs", CVPRW 2020).

    For every channel :math:`k` of the layer's activations :math:`A` (B, C, h, w):

    1. :math:`H_k` = bilinear upsampling (``align_corners=False``) of :math:`A_k` to the input size, min–max
       normalised to [0, 1] (a constant channel gives an all-zero mask);
    2. the masked input :math:`X \odot H_k` (in the model's normalised input space) is run through the model;
    3. the weight :math:`w_k` is the softmax probability of the target class for that masked input (the paper's
       Algorithm 1 and the authors' code, without baseline subtraction).

    :math:`M = \mathrm{ReLU}(\sum_k w_k A_k)` at the layer's resolution, then upsampled and min–max normalised.
    The C masked passes per image run without autograd, ``batch_size`` at a time (memory is bounded by
    ``batch_size × 3 × H × W`` inputs), with a tqdm progress bar.

    Contrastive Score-CAM (``contrast=``, see :class:`~cameras.methods.base.Explainer`): the weight is the
    difference of the scores Score-CAM uses, the masked input's probabilities,
    :math:`w_k = p_c(X \odot H_k) - \gamma\,\mathrm{mean}_j\,p_{d_j}(X \odot H_k)`. Score-CAM scores a channel
    by a probability, not a logit, so this is *not* the plain map of a model whose logit is the difference (the
    softmax mixes the classes); it is the same comparison made with Score-CAM's own scores.

    Differences from pytorch-grad-cam's ``ScoreCAM``: it upsamples the masks with ``align_corners=True`` and weights
    channels with a softmax *over channels* of the raw target logits; the definitions coincide when its masks use
    ``align_corners=False`` and its target is the log-softmax of the class (its channel softmax of
    :math:`\log p_k` is :math:`p_k / \sum_j p_j`, a positive rescaling that the normalisation removes).

    Args:
        model: classifier returning logits (B, num_classes).
        layer: dotted name or module; ``None`` uses ``model.cameras_default_layer``.
        batch_size: masked inputs per forward pass (default 32).
        progress: show a progress bar over the masked passes (default ``True``).
        reshape: the layer output's layout (as for :class:`~cameras.methods.cam.GradCAM`); on a ViT each patch-token
            channel becomes one mask.

    Example:
        >>> import torch, torchvision, cameras
        >>> net = torchvision.models.resnet18().eval()
        >>> out = cameras.ScoreCAM(net, layer="layer4", batch_size=64, progress=False)(torch.randn(1, 3, 64, 64))
        >>> out.saliency.shape
        torch.Size([1, 64, 64])
    """

    name = "scorecam"
    label = "Score-CAM"
    supports_contrast = True

    def __init__(
        self,
        model: nn.Module,
        layer: str | nn.Module | None = None,
        *,
        batch_size: int = 32,
        progress: bool = True,
        reshape: Reshape = None,
    ) -> None:
        super().__init__(model, layer, reshape=reshape)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
        self.batch_size = batch_size
        self.progress = progress

    def explain(
        self,
        images: Tensor,
        targets: Tensor | None,
        top_k: int = 1,
        upsample: bool = True,
        contrast: Contrast | None = None,
        **kwargs: Any,
    ) -> Result:
        if kwargs:
            raise TypeError(f"Unexpected arguments for ScoreCAM: {', '.join(kwargs)}.")
        assert self.layer_name is not None
        out_size = (int(images.shape[-2]), int(images.shape[-1]))
        recording = record_scales(
            self.model,
            self.layer_name,
            images,
            [out_size],
            targets,
            top_k=top_k,
            need_gradients=False,
            contrast=contrast,
            reshape=self.reshape,
        )
        acts = recording.scales[0].activations  # (B, C, h, w) float32
        chosen = recording.targets  # (B, K)
        rivals = recording.contrast  # (B, K, M) or None
        gamma = recording.gamma or 0.0
        batch, channels = acts.shape[:2]
        weights = torch.empty(batch, chosen.shape[1], channels, device=acts.device, dtype=torch.float32)
        steps = batch * ((channels + self.batch_size - 1) // self.batch_size)
        bar = tqdm(total=steps, desc="Score-CAM", unit="batch", leave=False, disable=not self.progress)
        try:
            with ModelState(self.model), torch.no_grad():
                for b in range(batch):
                    for c0 in range(0, channels, self.batch_size):
                        c1 = min(channels, c0 + self.batch_size)
                        masks = minmax_normalize(upsample_maps(acts[b, c0:c1].unsqueeze(0), out_size))[0]
                        masked = images[b].unsqueeze(0) * masks.unsqueeze(1).to(images.dtype)  # (c, 3, H, W)
                        probs = extract_logits(self.model(masked)).float().softmax(dim=1)  # (c, classes)
                        w = probs[:, chosen[b]].T  # (K, c)
                        if rivals is not None:
                            w = w - gamma * probs[:, rivals[b]].mean(dim=2).T
                        weights[b, :, c0:c1] = w
                        bar.update(1)
        finally:
            bar.close()
        low = torch.relu(torch.einsum("bkc,bchw->bkhw", weights, acts))
        raw = upsample_maps(low, out_size) if upsample else low
        return Result(
            saliency=minmax_normalize(raw),
            targets=chosen,
            probabilities=recording.probabilities,
            raw=raw,
            kept=recording.keep,
            resolutions=recording.sizes,
            scale_top1=recording.scale_top1,
            method=self.name,
            contrast=torch.empty(0, dtype=torch.long) if rivals is None else rivals,
            gamma=recording.gamma,
        )
