"""A slow, definition-level CAMERAS written straight from the paper's description (for tests only).

Per scale: resize the input (bicubic, align_corners=False; the input itself at its own size), full forward with an
ordinary forward hook, full ``backward()`` of the class logit (parameter gradients included), upsample every channel
of A and G to the input size (bilinear, align_corners=False), average over the kept scales, fuse with all channels at
full resolution, ReLU, min–max normalise. Nothing here is shared with the library's engine.

:func:`reference_fusion` is the fusion step alone written the same way, in float64, for the fusion paths' tests.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def reference_cameras(
    model: nn.Module,
    layer: nn.Module,
    images: Tensor,
    sizes: list[tuple[int, int]],
    targets: Tensor | None = None,
    reshape: Callable[[Tensor, tuple[int, int]], Tensor] | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Return (saliency (B, H, W), targets (B,), kept (B, S)) computed image by image, scale by scale.

    ``reshape(tensor, (h_in, w_in))`` maps the hooked layer output of a (1, 3, h_in, w_in) input, and its gradient,
    to (1, C, h, w)."""
    model.eval()
    batch, _, height, width = images.shape
    maps, chosen, kept_all = [], [], []
    store: dict[str, Tensor] = {}

    def hook(_m: nn.Module, _i: object, out: Tensor) -> None:
        out.retain_grad()
        store["a"] = out

    handle = layer.register_forward_hook(hook)
    try:
        for b in range(batch):
            x0 = images[b : b + 1]
            target = None if targets is None else int(targets[b])
            sum_a = None
            sum_g = None
            kept = []
            for s, size in enumerate(sizes):
                if tuple(size) == (height, width):
                    x = x0.clone()
                else:
                    x = F.interpolate(x0, size=size, mode="bicubic", align_corners=False)
                model.zero_grad(set_to_none=True)
                with torch.enable_grad():
                    logits = model(x)
                    if s == 0 and target is None:
                        target = int(logits.argmax(1))
                    assert target is not None
                    keep = targets is not None or int(logits.argmax(1)) == target
                    kept.append(keep)
                    logits[0, target].backward()
                a = store["a"].detach()
                g = store["a"].grad
                assert g is not None
                if reshape is not None:
                    a, g = reshape(a, tuple(x.shape[-2:])), reshape(g, tuple(x.shape[-2:]))
                if not keep:
                    continue
                up_a = F.interpolate(a, size=(height, width), mode="bilinear", align_corners=False)
                up_g = F.interpolate(g, size=(height, width), mode="bilinear", align_corners=False)
                sum_a = up_a if sum_a is None else sum_a + up_a
                sum_g = up_g if sum_g is None else sum_g + up_g
            n = sum(kept)
            assert sum_a is not None and sum_g is not None
            m = torch.relu((sum_a / n * sum_g / n).sum(dim=1))[0]
            lo, hi = m.min(), m.max()
            m = (m - lo) / (hi - lo) if hi > lo else torch.zeros_like(m)
            maps.append(m)
            chosen.append(target)
            kept_all.append(kept)
    finally:
        handle.remove()
    return torch.stack(maps), torch.tensor(chosen), torch.tensor(kept_all)


def reference_fusion(
    acts: list[Tensor],
    grads: list[Tensor],
    weights: Tensor,
    out: tuple[int, int],
    rule: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> Tensor:
    """The fusion's definition in float64, all channels at once: Ā = Σ_s w_s up(A_s), Ḡ = Σ_s w_s up(G_s) with
    ``up`` = F.interpolate (bilinear, align_corners=False), then ``rule(Ā, Ḡ)`` (default Σ_c Ā_c Ḡ_c), before the
    ReLU. A (B, C, h_s, w_s), G (B, K, C, h_s, w_s), weights (B, K, S) → (B, K, H, W) float64."""
    b, k = grads[0].shape[:2]
    sum_a = sum(
        weights[:, :, s, None, None, None].double()
        * F.interpolate(a.double(), size=out, mode="bilinear", align_corners=False).unsqueeze(1)
        for s, a in enumerate(acts)
    )
    sum_g = sum(
        weights[:, :, s, None, None, None].double()
        * F.interpolate(g.double().flatten(0, 1), size=out, mode="bilinear", align_corners=False).unflatten(0, (b, k))
        for s, g in enumerate(grads)
    )
    assert isinstance(sum_a, Tensor) and isinstance(sum_g, Tensor)
    return (sum_a * sum_g).sum(2) if rule is None else rule(sum_a, sum_g)


def random_problem(
    seed: int, batch: int, channels: int, classes: int, sizes: list[tuple[int, int]], zero: tuple[int, int, int]
) -> tuple[list[Tensor], list[Tensor], Tensor]:
    """Random per-scale A (B, C, h, w), G (B, K, C, h, w) and scale weights (B, K, S), the weight at index ``zero``
    set to 0 (a dropped scale)."""
    gen = torch.Generator().manual_seed(seed)
    acts = [torch.randn(batch, channels, h, w, generator=gen) for h, w in sizes]
    grads = [torch.randn(batch, classes, channels, h, w, generator=gen) for h, w in sizes]
    weights = torch.rand(batch, classes, len(sizes), generator=gen)
    weights[zero] = 0.0
    return acts, grads, weights
