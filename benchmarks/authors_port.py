"""The cost structure of the authors' CAMERAS release, re-written from its description (not its code).

The release explains one image at a time. Per scale: a module forward hook on the layer plus a tensor hook for its
gradient, a full forward with every parameter requiring grad, a full ``backward()`` (parameter gradients included,
through every layer down to the input), then the layer's activations and gradients upsampled to the output size *for
all channels* and kept in lists until the last scale; at the end the kept scales are stacked and averaged and the map
is fused at full resolution with all channels at once. Used only as the baseline of the benchmarks; it computes the
same map as the engine (the benchmarks check that).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def authors_cameras(
    model: nn.Module, layer: nn.Module, images: Tensor, sizes: list[tuple[int, int]], targets: Tensor | None = None
) -> Tensor:
    """(B, H, W) CAMERAS maps in [0, 1] with the authors' cost structure (images one by one, as the release does).

    Args:
        model: classifier; its parameters keep ``requires_grad=True`` (full backward).
        layer: the module whose output is explained.
        images: (B, 3, H, W).
        sizes: (h, w) per scale, ``sizes[0]`` the base scale.
        targets: (B,) classes, or ``None`` for the top-1 at the base scale (then only agreeing scales are kept).
    """
    model.eval()
    height, width = images.shape[-2:]
    store: dict[str, Tensor] = {}

    def fwd_hook(_m: nn.Module, _i: object, out: Tensor) -> None:
        store["a"] = out
        out.register_hook(lambda g: store.__setitem__("g", g))

    handle = layer.register_forward_hook(fwd_hook)
    maps = []
    try:
        for b in range(images.shape[0]):
            image = images[b : b + 1]
            target = None if targets is None else int(targets[b])
            acts: list[Tensor] = []
            grads: list[Tensor] = []
            for index, size in enumerate(sizes):
                x = image if tuple(size) == (height, width) else F.interpolate(image, size=size, mode="bicubic")
                model.zero_grad()
                with torch.enable_grad():
                    logits = model(x)
                    if index == 0 and target is None:
                        target = int(logits.argmax(1))
                    assert target is not None
                    keep = targets is not None or int(logits.argmax(1)) == target
                    one_hot = torch.zeros_like(logits)
                    one_hot[0, target] = 1.0
                    logits.backward(gradient=one_hot)
                if keep:
                    acts.append(F.interpolate(store["a"].detach(), size=(height, width), mode="bilinear"))
                    grads.append(F.interpolate(store["g"].detach(), size=(height, width), mode="bilinear"))
                del logits, x
                store.clear()
            mean_a = torch.stack(acts).mean(0)
            del acts
            mean_g = torch.stack(grads).mean(0)
            del grads
            m = torch.relu((mean_a * mean_g).sum(1))[0]
            lo, hi = m.min(), m.max()
            maps.append((m - lo) / (hi - lo) if hi > lo else torch.zeros_like(m))
            del mean_a, mean_g
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
    return torch.stack(maps)
