"""Positive and negative map density (Jalwana et al., CVPR 2021, Sec. 4.2).

How much of the model's confidence a map packs per unit of area it keeps:

.. math:: \\rho^+ = \\frac{P(K(I \\odot \\Psi))}{\\mathrm{mean}(\\Psi)}, \\qquad
          \\rho^- = \\frac{P(K(I \\odot (1 - \\Psi)))}{\\mathrm{mean}(1 - \\Psi)}

with ``P`` the softmax probability of the image's class, ``Ψ ∈ [0, 1]^{h×w}`` the normalised map and the mean
taken over the h·w pixels (the paper writes ``Σ Ψ / (h·w)``). **Higher ρ⁺ and lower ρ⁻ are better**; a map of all
ones gives ρ⁺ = the model's confidence on the image. The paper's Table 2 (ImageNet val, ρ⁺ / ρ⁻ for CAMERAS):
3.20 / 0.81 (ResNet-50), 3.23 / 0.83 (DenseNet-121), 3.15 / 0.93 (Inception-v3).

>>> import torch
>>> from cameras.metrics import map_density
>>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
>>> d = map_density(net, torch.randn(2, 3, 8, 8), torch.zeros(2, 8, 8), [0, 1])
>>> d.positive.isnan().all().item(), d.undefined_positive    # an all-zero map has no positive density
(True, 2)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..engine.state import ModelState
from ..models.preprocess import IMAGENET_MEAN, IMAGENET_STD
from .faithfulness import Baseline, _check_int, _probabilities, masking_inputs

__all__ = ["MapDensity", "black_baseline", "map_density"]


@dataclass(frozen=True)
class MapDensity:
    """Densities of B maps.

    Attributes:
        positive: (B,) float64 ρ⁺ (float64 so that a map of tiny mean gives a large finite value, not inf); NaN
            where the map's mean is 0 (nothing kept: no density). **Higher is better.**
        negative: (B,) float64 ρ⁻; NaN where the map's mean is 1 (nothing removed). **Lower is better.**
        positive_probability: (B,) probability of the class on the image kept by the map, ``P(K(I ⊙ Ψ))``.
        negative_probability: (B,) probability on the image kept by the complement, ``P(K(I ⊙ (1 − Ψ)))``.
        map_mean: (B,) float64 ``mean(Ψ)`` over the pixels.
        original_probability: (B,) probability of the class on the unmasked image.
    """

    positive: Tensor
    negative: Tensor
    positive_probability: Tensor
    negative_probability: Tensor
    map_mean: Tensor
    original_probability: Tensor

    @property
    def undefined_positive(self) -> int:
        """Number of maps without a positive density (mean 0)."""
        return int(self.positive.isnan().sum())

    @property
    def undefined_negative(self) -> int:
        """Number of maps without a negative density (mean 1)."""
        return int(self.negative.isnan().sum())

    def summary(self) -> dict[str, dict[str, float | int]]:
        """``{"rho_pos": {...}, "rho_neg": {...}}``, each with the ``mean`` and ``std`` (population) over the
        defined entries, their count ``n`` and the count ``undefined`` of NaN entries (``mean``/``std`` are NaN when
        ``n`` is 0)."""
        return {"rho_pos": _aggregate(self.positive), "rho_neg": _aggregate(self.negative)}


def _aggregate(values: Tensor) -> dict[str, float | int]:
    v = values.double()
    ok = v[~v.isnan()]
    n = int(ok.numel())
    mean = float(ok.mean()) if n else math.nan
    std = float(ok.std(unbiased=False)) if n else math.nan
    return {"mean": mean, "std": std, "n": n, "undefined": int(v.numel()) - n}


def black_baseline(
    mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD, pixel_max: float = 1.0
) -> Tensor:
    """The black image (pixel value 0) in the input space of a model that takes ``(pixels / pixel_max − mean) / std``:
    a (C, 1, 1) tensor ``−mean / std``, for the ``baseline`` of :func:`map_density` and
    :func:`~cameras.metrics.confidence_change`.

    With it, ``baseline + Ψ·(images − baseline)`` is exactly the normalisation of the photo multiplied by Ψ, the
    paper's ``I ⊙ Ψ``. For :func:`cameras.models.load` models use
    ``black_baseline(loaded.preprocess.mean, loaded.preprocess.std)``.

    Example:
        >>> black_baseline((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)).flatten().tolist()
        [-2.0, -2.0, -2.0]
    """
    m = torch.as_tensor(list(mean), dtype=torch.float64)
    s = torch.as_tensor(list(std), dtype=torch.float64)
    if m.dim() != 1 or m.shape != s.shape or m.numel() == 0:
        raise ValueError(f"mean and std must be two equally long lists of per-channel values, got {mean!r}, {std!r}.")
    if not bool(torch.isfinite(m).all() and torch.isfinite(s).all()) or bool((s <= 0).any()):
        raise ValueError(f"mean must be finite and std finite and positive, got {mean!r}, {std!r}.")
    return (-m / s).float().view(-1, 1, 1)


def map_density(
    model: nn.Module,
    images: Tensor,
    saliency: Tensor,
    targets: int | list[int] | Tensor,
    baseline: Baseline = "zero",
    batch_size: int = 64,
) -> MapDensity:
    """Positive and negative map density ρ⁺ and ρ⁻ of each map (see the module docstring).

    The image kept by a map ``Ψ`` is ``baseline + Ψ·(images − baseline)`` (per pixel, into every channel) and the
    image kept by its complement ``baseline + (1 − Ψ)·(images − baseline)``, the convention of
    :func:`~cameras.metrics.confidence_change`. **Which baseline is the paper's:** the paper multiplies the photo
    itself, ``I ⊙ Ψ``, so removed pixels turn black. For a model whose input is the raw photo that is
    ``baseline="zero"`` (the default, zero in the model's input space). For a model that normalises its input
    with a per-channel mean and std (every ImageNet model here), zero in the input space is the *mean colour*,
    and the paper's product is ``baseline=black_baseline(mean, std)`` (−mean/std, the normalised black pixel);
    ``cameras evaluate`` uses that one.

    A map whose mean is 0 has no positive density and a map whose mean is 1 (all ones) no negative density: those
    entries are NaN, never an exception or inf; :attr:`MapDensity.undefined_positive` /
    :attr:`MapDensity.undefined_negative` and :meth:`MapDensity.summary` count them.

    Source: Jalwana, Akhtar, Bennamoun, Mian, "CAMERAS: Enhanced Resolution And Sanity preserving Class
    Activation Mapping for image saliency" (CVPR 2021), Sec. 4.2 and Table 2.

    Better: ρ⁺ **higher**, ρ⁻ **lower**.

    Args:
        model: classifier returning logits (B, num_classes); run in eval mode on its own device, without autograd
            (its training flags and ``requires_grad`` are restored afterwards, also on errors).
        images: (B, C, H, W) images as the model takes them.
        saliency: (B, H, W) maps in [0, 1] at the images' size.
        targets: the class of each image: an int, B ints, or a (B,) LongTensor.
        baseline: ``"zero"``, ``"blur"``, a number, or a tensor broadcastable to the images (e.g.
            :func:`black_baseline`), as in :data:`~cameras.metrics.Baseline`.
        batch_size: images per forward pass.

    Returns:
        :class:`MapDensity` of (B,) tensors on the images' device.

    Raises:
        TypeError, ValueError: maps outside [0, 1] or of another shape than the images, targets out of the model's
            range, a bad baseline or batch size.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        >>> x = torch.randn(1, 3, 8, 8)
        >>> d = map_density(net, x, torch.ones(1, 8, 8), [2])
        >>> bool(torch.isclose(d.positive.float(), net(x).softmax(1)[:, 2]).all())   # all ones: ρ⁺ = confidence
        True
    """
    x, base, psi, t = masking_inputs(model, images, saliency, targets, baseline)
    batch_size = _check_int("batch_size", batch_size, 1)
    device, b = x.device, x.shape[0]

    probs = torch.empty(3, b, device=device, dtype=torch.float64)
    with ModelState(model), torch.no_grad():
        for s in range(0, b, batch_size):
            sl = slice(s, s + batch_size)
            xs, bs, ps, ts = x[sl], base[sl], psi[sl], t[sl]
            kept = bs + ps * (xs - bs)
            removed = bs + (1 - ps) * (xs - bs)
            n = xs.shape[0]
            p = _probabilities(model, torch.cat([xs, kept, removed]), torch.cat([ts, ts, ts]))
            probs[:, sl] = p.double().reshape(3, n)
    area = saliency.detach().to(device=device, dtype=torch.float64).mean(dim=(1, 2))
    rest = (1 - saliency.detach().to(device=device, dtype=torch.float64)).mean(dim=(1, 2))
    nan = torch.full_like(area, math.nan)
    positive = torch.where(area > 0, probs[1] / area.clamp_min(torch.finfo(torch.float64).tiny), nan)
    negative = torch.where(rest > 0, probs[2] / rest.clamp_min(torch.finfo(torch.float64).tiny), nan)
    out = images.device

    return MapDensity(
        positive=positive.to(out),
        negative=negative.to(out),
        positive_probability=probs[1].float().to(out),
        negative_probability=probs[2].float().to(out),
        map_mean=area.to(out),
        original_probability=probs[0].float().to(out),
    )
