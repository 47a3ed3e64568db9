"""Small seeded random timm transformers for the token-layout tests, and the definition-level token reshapes.

The reshapes are written from what the layouts *mean* (timm's token order: prefix tokens, then the patch grid row by
row; ⌈H/p⌉ × ⌈W/p⌉ patches when the input is padded to whole patches), independently of the library's layouts. They
act on a hooked output and, in the references, on its gradient after an ordinary backward().
"""

from __future__ import annotations

import math
from collections.abc import Callable

import timm
import torch
from torch import Tensor, nn

Reshape = Callable[[Tensor, tuple[int, int]], Tensor]


def _spread(model: nn.Module) -> nn.Module:
    """Re-initialise with O(1) activations (timm's std-0.02 initialisation keeps a random transformer nearly linear
    and its logits nearly equal, which would make the maps uninformative)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("pos_embed") or name.endswith("cls_token") or name.endswith("reg_token"):
                p.normal_(0.0, 0.5)
            elif name.endswith("dist_token"):
                p.normal_(0.0, 0.5)
            elif p.dim() >= 2:
                p.normal_(0.0, 1.0 / math.sqrt(p[0].numel()))
            elif "norm" in name and name.endswith("weight"):
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(0.0, 0.1)
    return model.eval()


def tiny_vit(
    seed: int = 0, *, patch: int = 8, img: int = 64, classes: int = 10, reg_tokens: int = 0, arch: str = "vit"
) -> nn.Module:
    """A 2-block ViT (or DeiT-distilled with ``arch="deit"``), width 32, for any input size (dynamic position
    embeddings, input padded to whole patches)."""
    torch.manual_seed(seed)
    name = "deit_tiny_distilled_patch16_224" if arch == "deit" else "vit_tiny_patch16_224"
    extra = {} if arch == "deit" else {"reg_tokens": reg_tokens}
    model = timm.create_model(
        name,
        img_size=img,
        patch_size=patch,
        embed_dim=32,
        depth=2,
        num_heads=2,
        num_classes=classes,
        dynamic_img_size=True,
        dynamic_img_pad=True,
        **extra,
    )
    return _spread(model)


def tiny_swin(seed: int = 0, *, classes: int = 10, dynamic: bool = True) -> nn.Module:
    """A 4-stage Swin (one block per stage, width 16, window 4) built for 64 px; with ``dynamic`` any input size
    that is a multiple of the patch size (4)."""
    torch.manual_seed(seed)
    model = timm.create_model(
        "swin_tiny_patch4_window7_224",
        img_size=64,
        window_size=4,
        embed_dim=16,
        depths=(1, 1, 1, 1),
        num_heads=(1, 1, 1, 1),
        num_classes=classes,
        dynamic_img_size=dynamic,
    )
    return _spread(model)


def vit_tokens_to_grid(patch: int, prefix: int) -> Reshape:
    """(1, prefix + ⌈H/p⌉·⌈W/p⌉, C) tokens of an (H, W) input → (1, C, ⌈H/p⌉, ⌈W/p⌉)."""

    def reshape(tokens: Tensor, size: tuple[int, int]) -> Tensor:
        h, w = math.ceil(size[0] / patch), math.ceil(size[1] / patch)
        patches = tokens[:, prefix:]
        assert patches.shape[1] == h * w
        return patches.reshape(tokens.shape[0], h, w, tokens.shape[2]).permute(0, 3, 1, 2)

    return reshape


def nhwc_to_nchw(t: Tensor, size: tuple[int, int]) -> Tensor:
    """(1, h, w, C) → (1, C, h, w)."""
    return t.permute(0, 3, 1, 2)
