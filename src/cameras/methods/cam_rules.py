"""Per-channel rules of the gradient-based class activation maps.

Every function here has the :data:`~cameras.engine.fusion.ChannelRule` shape: it takes activations and gradients of a
chunk of channels and returns that chunk's contribution to the map (a sum over the chunk's channels, *before* the
ReLU). The same function serves

* the single-scale methods (:mod:`cameras.methods.cam`): ``A`` (B, 1, C, h, w) and ``G`` (B, K, C, h, w) at the layer's
  own resolution, where ``G = ∂y_c/∂A`` is the gradient of the class *logit* :math:`y_c`;
* the multi-scale variants (:mod:`cameras.methods.multiscale`): ``Ā`` and ``Ḡ`` (B, K, c, H, W), the CAMERAS averages
  over scales of the bilinearly upsampled A and G, fed through :func:`cameras.engine.fuse` chunk by chunk.

Shapes broadcast: ``a`` may have a singleton class axis. Spatial sums and means are over the last two axes.

Rules that weight a channel by a spatial statistic of that same channel (Grad-CAM, Grad-CAM++, XGrad-CAM) stay exact
under channel chunking, because no statistic ever mixes channels.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["gradcam_rule", "gradcampp_rule", "hirescam_rule", "layercam_rule", "xgradcam_rule"]

_SPATIAL = (-2, -1)


def _check(a: Tensor, g: Tensor) -> None:
    if a.dim() != 5 or g.dim() != 5:
        raise ValueError(
            f"CAM rules take (B, K, C, h, w) activations and gradients, got {tuple(a.shape)} and {tuple(g.shape)}."
        )


def gradcam_rule(a: Tensor, g: Tensor, cell_area: float = 1.0) -> Tensor:
    r"""Grad-CAM (Selvaraju et al., ICCV 2017): :math:`\sum_c \big(\tfrac{1}{hw}\sum_{ij} G_{c,ij}\big) A_c`.

    Args:
        a: (B, K or 1, C, h, w) activations.
        g: (B, K, C, h, w) gradients of the class logit.
        cell_area: unused (the weights are spatial means, independent of the grid).

    Returns:
        (B, K, h, w) map before the ReLU.

    Example:
        >>> a, g = torch.ones(1, 1, 2, 3, 3), torch.ones(1, 1, 2, 3, 3)
        >>> gradcam_rule(a, g)[0, 0, 0, 0].item()
        2.0
    """
    _check(a, g)
    return (g.mean(dim=_SPATIAL, keepdim=True) * a).sum(dim=2)


def gradcampp_rule(a: Tensor, g: Tensor, cell_area: float = 1.0) -> Tensor:
    r"""Grad-CAM++ (Chattopadhay et al., WACV 2018), closed form for an exponential class score.

    With :math:`S = \exp(y_c)` the paper's higher derivatives reduce to powers of :math:`G = \partial y_c/\partial A`:

    .. math::
        \alpha_{c,ij} = \frac{G_{c,ij}^2}{2 G_{c,ij}^2 + \big(\sum_{ab} A_{c,ab}\big) G_{c,ij}^3}, \qquad
        w_c = \sum_{ij} \alpha_{c,ij}\, \mathrm{ReLU}(G_{c,ij}), \qquad M = \sum_c w_c A_c

    (:math:`\alpha = 0` where the denominator is 0). This is the form pytorch-grad-cam implements, except that it adds
    ``1e-6`` to the denominator; here the division is exact.

    Args:
        a: (B, K or 1, C, h, w) activations.
        g: (B, K, C, h, w) gradients of the class logit.
        cell_area: how many layer cells one pixel of ``a`` stands for, so that :math:`\sum_{ab} A_{ab}` is the sum
            over the layer's grid: 1 at the layer's resolution; :math:`h_0 w_0 / (HW)` for maps upsampled from an
            :math:`h_0 \times w_0` base grid to :math:`H \times W` (the multi-scale variant).

    Returns:
        (B, K, h, w) map before the ReLU.

    Example:
        >>> a, g = torch.ones(1, 1, 1, 2, 2), torch.ones(1, 1, 1, 2, 2)
        >>> round(gradcampp_rule(a, g)[0, 0, 0, 0].item(), 4)  # α = 1/(2+4) per cell, w = 4/6
        0.6667
    """
    _check(a, g)
    g2 = g * g
    sum_a = a.sum(dim=_SPATIAL, keepdim=True) * cell_area
    denom = 2.0 * g2 + sum_a * g2 * g
    alpha = torch.where(denom != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)), torch.zeros_like(g))
    weights = (alpha * torch.relu(g)).sum(dim=_SPATIAL, keepdim=True)
    return (weights * a).sum(dim=2)


def hirescam_rule(a: Tensor, g: Tensor, cell_area: float = 1.0) -> Tensor:
    r"""HiResCAM (Draelos & Carin, 2020): :math:`\sum_c G_c \odot A_c` (element-wise, no spatial pooling).

    At several scales this is exactly the CAMERAS fusion (Jalwana et al., CVPR 2021).

    Args:
        a: (B, K or 1, C, h, w) activations.
        g: (B, K, C, h, w) gradients of the class logit.
        cell_area: unused.

    Returns:
        (B, K, h, w) map before the ReLU.

    Example:
        >>> hirescam_rule(torch.full((1, 1, 2, 1, 1), 3.0), torch.full((1, 1, 2, 1, 1), -1.0)).item()
        -6.0
    """
    _check(a, g)
    return (a * g).sum(dim=2)


def layercam_rule(a: Tensor, g: Tensor, cell_area: float = 1.0) -> Tensor:
    r"""LayerCAM (Jiang et al., IEEE TIP 2021): :math:`\sum_c \mathrm{ReLU}(G_c) \odot A_c`.

    Args:
        a: (B, K or 1, C, h, w) activations.
        g: (B, K, C, h, w) gradients of the class logit.
        cell_area: unused.

    Returns:
        (B, K, h, w) map before the ReLU.

    Example:
        >>> layercam_rule(torch.ones(1, 1, 2, 1, 1), torch.tensor([1.0, -1.0]).reshape(1, 1, 2, 1, 1)).item()
        1.0
    """
    _check(a, g)
    return (torch.relu(g) * a).sum(dim=2)


def xgradcam_rule(a: Tensor, g: Tensor, cell_area: float = 1.0) -> Tensor:
    r"""XGrad-CAM (Fu et al., BMVC 2020): :math:`w_c = \sum_{ij} \frac{A_{c,ij}}{\sum_{ab} A_{c,ab}} G_{c,ij}`.

    A channel whose activations sum to 0 gets weight 0.

    Args:
        a: (B, K or 1, C, h, w) activations.
        g: (B, K, C, h, w) gradients of the class logit.
        cell_area: unused (the weights are ratios, independent of the grid).

    Returns:
        (B, K, h, w) map before the ReLU.

    Example:
        >>> a = torch.tensor([[1.0, 3.0]]).reshape(1, 1, 1, 1, 2)
        >>> g = torch.tensor([[2.0, 6.0]]).reshape(1, 1, 1, 1, 2)
        >>> xgradcam_rule(a, g).flatten().tolist()  # w = (1·2 + 3·6)/4 = 5
        [5.0, 15.0]
    """
    _check(a, g)
    sum_a = a.sum(dim=_SPATIAL, keepdim=True)
    safe = torch.where(sum_a != 0, sum_a, torch.ones_like(sum_a))
    weights = torch.where(sum_a != 0, (a * g).sum(dim=_SPATIAL, keepdim=True) / safe, torch.zeros_like(sum_a))
    return (weights * a).sum(dim=2)
