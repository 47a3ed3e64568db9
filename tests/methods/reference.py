"""Slow, definition-level references for the CAM methods (tests only; nothing shared with the library).

Each reference runs the *whole* model with an ordinary forward hook, calls ``backward()`` on one class logit of one
image at a time (parameter gradients included), and evaluates the method's formula channel by channel in float64.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# ---- per-channel formulas, written from the papers (a: (h, w), g: (h, w) float64, one channel) -----------------


def w_gradcam(a: Tensor, g: Tensor, cell: float) -> Tensor:  # Selvaraju et al. 2017
    return g.mean() * a


def w_gradcampp(a: Tensor, g: Tensor, cell: float) -> Tensor:  # Chattopadhay et al. 2018, exp closed form
    total = a.sum() * cell
    denom = 2 * g**2 + total * g**3
    alpha = torch.zeros_like(g)
    nz = denom != 0
    alpha[nz] = g[nz] ** 2 / denom[nz]
    return (alpha * torch.clamp(g, min=0)).sum() * a


def w_hirescam(a: Tensor, g: Tensor, cell: float) -> Tensor:  # Draelos & Carin 2020
    return g * a


def w_layercam(a: Tensor, g: Tensor, cell: float) -> Tensor:  # Jiang et al. 2021
    return torch.clamp(g, min=0) * a


def w_xgradcam(a: Tensor, g: Tensor, cell: float) -> Tensor:  # Fu et al. 2020
    s = a.sum()
    return ((a * g).sum() / s if s != 0 else torch.zeros((), dtype=torch.float64)) * a


FORMULAS: dict[str, Callable[[Tensor, Tensor, float], Tensor]] = {
    "gradcam": w_gradcam,
    "gradcam++": w_gradcampp,
    "hirescam": w_hirescam,
    "layercam": w_layercam,
    "xgradcam": w_xgradcam,
}


def minmax(m: Tensor) -> Tensor:
    lo, hi = m.min(), m.max()
    return (m - lo) / (hi - lo) if hi > lo else torch.zeros_like(m)


def up(x: Tensor, size: tuple[int, int]) -> Tensor:
    """(C, h, w) → (C, H, W) bilinear, align_corners=False."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x[None], size=size, mode="bilinear", align_corners=False)[0]


Reshape = Callable[[Tensor, tuple[int, int]], Tensor]
"""Token / channels-last references: ``reshape(tensor, (H, W))`` maps the hooked output of a (1, 3, H, W) input, and
its gradient, to (1, C, h, w) after an ordinary backward()."""


def activations_and_gradients(
    model: nn.Module, layer: nn.Module, x: Tensor, target: int | None, reshape: Reshape | None = None
) -> tuple[Tensor, Tensor, int, Tensor]:
    """One image (1, 3, H, W) → A (C, h, w), G (C, h, w) of the target logit, target, logits (float64 copies)."""
    store: dict[str, Tensor] = {}

    def hook(_m: nn.Module, _i: object, out: Tensor) -> None:
        out.retain_grad()
        store["a"] = out

    handle = layer.register_forward_hook(hook)
    try:
        model.eval()
        model.zero_grad(set_to_none=True)
        with torch.enable_grad():
            logits = model(x)
            t = int(logits.argmax(1)) if target is None else target
            logits[0, t].backward()
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
    grad = store["a"].grad
    assert grad is not None
    act = store["a"].detach()
    if reshape is not None:
        act, grad = reshape(act, tuple(x.shape[-2:])), reshape(grad, tuple(x.shape[-2:]))
    return act[0].double(), grad[0].double(), t, logits.detach()[0].double()


def reference_cam(
    method: str,
    model: nn.Module,
    layer: nn.Module,
    images: Tensor,
    targets: list[int] | None,
    upsample: bool = True,
    reshape: Reshape | None = None,
) -> tuple[Tensor, list[int]]:
    """Single-scale CAM: formula at the layer's resolution, ReLU, (upsample), min–max. Returns (B, h|H, w|W)."""
    out, chosen = [], []
    for b in range(images.shape[0]):
        t_b = None if targets is None else targets[b]
        a, g, t, _ = activations_and_gradients(model, layer, images[b : b + 1], t_b, reshape)
        m = sum(FORMULAS[method](a[c], g[c], 1.0) for c in range(a.shape[0]))
        m = torch.clamp(torch.as_tensor(m), min=0)
        if upsample:
            m = up(m[None], tuple(images.shape[-2:]))[0]
        out.append(minmax(m))
        chosen.append(t)
    return torch.stack(out).float(), chosen


def reference_multiscale(
    method: str,
    model: nn.Module,
    layer: nn.Module,
    images: Tensor,
    sizes: list[tuple[int, int]],
    targets: list[int] | None,
    reshape: Reshape | None = None,
) -> tuple[Tensor, list[int], list[list[bool]]]:
    """Multi-scale: per scale resize (bicubic), full backward, upsample A and G to H×W, average kept scales, then the
    formula on the H×W grid (Grad-CAM++'s Σ A rescaled to the base layer grid), ReLU, min–max."""
    height, width = images.shape[-2:]
    maps, chosen, kept_all = [], [], []
    for b in range(images.shape[0]):
        x0 = images[b : b + 1]
        target = None if targets is None else targets[b]
        sum_a: Tensor | None = None
        sum_g: Tensor | None = None
        kept: list[bool] = []
        base_cells = 1.0
        for s, size in enumerate(sizes):
            x = (
                x0
                if tuple(size) == (height, width)
                else F.interpolate(x0, size=size, mode="bicubic", align_corners=False)
            )
            a, g, t, logits = activations_and_gradients(model, layer, x, target, reshape)
            if s == 0:
                target = t
                base_cells = a.shape[-2] * a.shape[-1] / (height * width)
            keep = targets is not None or int(logits.argmax()) == target
            kept.append(keep)
            if not keep:
                continue
            ua, ug = up(a, (height, width)), up(g, (height, width))
            sum_a = ua if sum_a is None else sum_a + ua
            sum_g = ug if sum_g is None else sum_g + ug
        assert sum_a is not None and sum_g is not None and target is not None
        n = sum(kept)
        mean_a, mean_g = sum_a / n, sum_g / n
        m = sum(FORMULAS[method](mean_a[c], mean_g[c], base_cells) for c in range(mean_a.shape[0]))
        maps.append(minmax(torch.clamp(torch.as_tensor(m), min=0)))
        chosen.append(target)
        kept_all.append(kept)
    return torch.stack(maps).float(), chosen, kept_all
