"""The cost structure of the authors' CAMERAS release, re-written from its description (not its code).

Per scale: module forward hook and tensor hook on the layer, full forward with parameters requiring grad, full
``backward()`` (parameter gradients included, through every layer down to the input), each scale's activations and
gradients upsampled to the output size *for all channels* and kept in lists until the end, then averaged and fused at
full resolution with all channels at once. Used only as the baseline of the benchmarks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def authors_cameras(
    model: nn.Module, layer: nn.Module, images: Tensor, sizes: list[tuple[int, int]], targets: Tensor | None = None
) -> Tensor:
    """(B, H, W) CAMERAS maps with the authors' cost structure (batched)."""
    model.eval()
    height, width = images.shape[-2:]
    store: dict[str, Tensor] = {}

    def fwd_hook(_m: nn.Module, _i: object, out: Tensor) -> None:
        store["a"] = out
        out.register_hook(lambda g: store.__setitem__("g", g))

    handle = layer.register_forward_hook(fwd_hook)
    acts: list[Tensor] = []
    grads: list[Tensor] = []
    keeps: list[Tensor] = []
    try:
        for index, size in enumerate(sizes):
            x = images if tuple(size) == (height, width) else F.interpolate(images, size=size, mode="bicubic")
            model.zero_grad()
            with torch.enable_grad():
                logits = model(x)
                if index == 0 and targets is None:
                    targets = logits.argmax(1)
                assert targets is not None
                keeps.append(logits.argmax(1) == targets if index else torch.ones_like(targets, dtype=torch.bool))
                one_hot = torch.zeros_like(logits).scatter_(1, targets[:, None], 1.0)
                logits.backward(gradient=one_hot)
            acts.append(F.interpolate(store["a"].detach(), size=(height, width), mode="bilinear").clone())
            grads.append(F.interpolate(store["g"].detach(), size=(height, width), mode="bilinear").clone())
    finally:
        handle.remove()
    keep = torch.stack(keeps).float()  # (S, B)
    n = keep.sum(0).clamp_min(1)
    w = (keep / n)[:, :, None, None, None]
    mean_a = (torch.stack(acts) * w).sum(0)
    mean_g = (torch.stack(grads) * w).sum(0)
    m = torch.relu((mean_a * mean_g).sum(1))
    flat = m.flatten(1)
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp_min(1e-12)).reshape(m.shape)
