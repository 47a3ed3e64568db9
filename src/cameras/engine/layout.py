"""Layer-output layouts: how a tapped layer's output becomes the (B, C, h, w) map every method works on.

A CNN layer already returns a feature map (B, C, h, w). A Vision Transformer block returns *tokens* (B, N, C): a few
prefix tokens (class, register, distillation tokens; timm's ``num_prefix_tokens``) followed by one token per patch in
row-major order. Swin and some ConvNeXt blocks return *channels-last* maps (B, H, W, C). A :class:`Layout` turns any
of these into (B, C, h, w) and hands the model back a tensor of the layer's own layout rebuilt from that map, so that

* the map is the autograd leaf of :class:`~cameras.engine.tap.LayerTap`: ``torch.autograd.grad`` of a class score
  w.r.t. it is exactly the gradient w.r.t. the patch tokens (prefix tokens enter the rebuilt tensor as constants);
* the gradient follows the same reshape as the activations, at every input size: the token grid (h, w) comes from the
  model's patch embedding *at that input size* (``patch_embed.dynamic_feat_size``), so one layout serves every scale
  of the CAMERAS schedule.

Layouts by name (the ``reshape=`` argument of every method, of :func:`~cameras.engine.accumulate.record_scales` and
of :class:`~cameras.engine.tap.LayerTap`):

* ``None``: the model's ``cameras_default_reshape`` (set by :func:`cameras.models.load` for timm models), else
  ``"auto"``;
* ``"auto"``: 3-D outputs are tokens (:class:`TokenLayout` with the model's prefix count and patch grid), 4-D
  outputs (B, C, h, w) maps, or channels-last maps when their dims 1–2 lie on the model's patch grid (Swin stages,
  timm's dynamic patch embeddings; see :class:`AutoLayout`); anything else is an error;
* ``"nchw"``: (B, C, h, w) only; ``"tokens"``: :class:`TokenLayout()`; ``"nhwc"``: channels-last (B, H, W, C);
* a :class:`Layout` instance (e.g. ``TokenLayout(prefix=1, grid=(14, 14))``);
* a callable ``reshape(output, input_size) -> (B, C, h, w)`` for anything else. It must *rearrange* the output
  (select, permute, reshape its elements, as pytorch-grad-cam's ``reshape_transform`` does); the model then gets back
  ``output + Jᵀ(map − map)`` (value unchanged, J the callable's Jacobian, one vector-Jacobian product), so the
  gradient w.r.t. the map is the callable applied to the gradient w.r.t. the output.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

__all__ = [
    "LAYOUT_NAMES",
    "AutoLayout",
    "ChannelsLastLayout",
    "FunctionLayout",
    "Layout",
    "Reshape",
    "SpatialLayout",
    "TapContext",
    "TokenLayout",
    "check_input_size",
    "patch_grid",
    "resolve_layout",
]


@dataclass(frozen=True)
class TapContext:
    """What a layout may need besides the output, read from the model before each forward pass (the hook itself
    never touches the model, so that ``torch.compile`` can trace it).

    Attributes:
        layer: the tapped layer's dotted name (for messages).
        input_size: (H, W) of the input of this pass.
        patch_grid: the model's patch grid at that size (:func:`patch_grid`), or ``None`` (no patch embedding).
        prefix_tokens: the model's prefix-token count (timm's ``num_prefix_tokens``; 1 for torchvision ViTs), or
            ``None`` when it has none.
    """

    layer: str
    input_size: tuple[int, int]
    patch_grid: tuple[int, int] | None = None
    prefix_tokens: int | None = None

    @classmethod
    def of(cls, model: nn.Module, layer: str, input_size: tuple[int, int]) -> TapContext:
        """The context of one pass of ``model`` at ``input_size``."""
        return cls(layer, input_size, patch_grid(model, input_size), _prefix_tokens(model))


class Layout(abc.ABC):
    """Turns a layer's output into (B, C, h, w) maps and rebuilds the output from them (see the module docstring)."""

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def to_maps(self, output: Tensor, ctx: TapContext) -> Tensor:
        """The (B, C, h, w) view or copy of ``output``.

        Raises:
            ValueError: the output does not have this layout (the message names the layer and the shape).
        """

    @abc.abstractmethod
    def from_maps(self, maps: Tensor, output: Tensor, ctx: TapContext) -> Tensor:
        """A tensor equal to ``output`` whose layer-layout elements are computed from ``maps`` (differentiably), the
        rest (prefix tokens) taken from ``output`` as constants. Always a new tensor: later in-place operations of
        the model never touch ``maps``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _neither(output: Tensor, ctx: TapContext, expected: str) -> ValueError:
    return ValueError(
        f"Layer {ctx.layer!r} returned a tensor of shape {tuple(output.shape)}: {expected}. Tap a layer whose output "
        "is a feature map (B, C, h, w), tokens (B, N, C) or a channels-last map (B, H, W, C) and say which with "
        "reshape='nchw' | 'tokens' | 'nhwc', or pass reshape=callable(output, input_size) -> (B, C, h, w)."
    )


class SpatialLayout(Layout):
    """(B, C, h, w) feature maps, as CNN layers return them (the identity)."""

    name = "nchw"

    def to_maps(self, output: Tensor, ctx: TapContext) -> Tensor:
        if output.dim() != 4:
            raise _neither(output, ctx, "the engine needs a spatial feature map (B, C, h, w)")
        return output

    def from_maps(self, maps: Tensor, output: Tensor, ctx: TapContext) -> Tensor:
        return maps.clone()


class ChannelsLastLayout(Layout):
    """(B, H, W, C) channels-last maps (timm's Swin stages and norms, ConvNeXt blocks' inner norms)."""

    name = "nhwc"

    def to_maps(self, output: Tensor, ctx: TapContext) -> Tensor:
        if output.dim() != 4:
            raise _neither(output, ctx, "a channels-last map (B, H, W, C) was expected (reshape='nhwc')")
        return output.permute(0, 3, 1, 2)

    def from_maps(self, maps: Tensor, output: Tensor, ctx: TapContext) -> Tensor:
        return maps.permute(0, 2, 3, 1).clone()


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    a, b = value
    return (int(a), int(b))


def _patch_source(model: nn.Module) -> nn.Module | None:
    """The (sub)module that embeds patches: a timm model (``patch_embed``) or a torchvision ViT (int ``patch_size``
    and ``image_size``); the first in ``modules()`` order, so wrapped and compiled models work too."""
    module: nn.Module
    for module in model.modules():
        if isinstance(getattr(module, "patch_embed", None), nn.Module) or _is_torchvision_vit(module):
            return module
    return None


def _is_torchvision_vit(module: nn.Module) -> bool:
    return isinstance(getattr(module, "patch_size", None), int) and isinstance(getattr(module, "image_size", None), int)


def patch_grid(model: nn.Module, input_size: tuple[int, int]) -> tuple[int, int] | None:
    """The (h, w) patch grid the model's patch embedding produces for an (H, W) input, or ``None`` (no patch
    embedding found).

    timm: ``patch_embed.dynamic_feat_size((H, W))`` (⌈H/p⌉ × ⌈W/p⌉ when the embedding pads the input to whole
    patches, ⌊H/p⌋ × ⌊W/p⌋ otherwise); torchvision ViTs: ⌊H/p⌋ × ⌊W/p⌋.

    Example:
        >>> import timm
        >>> patch_grid(timm.create_model("test_vit", dynamic_img_size=True), (160, 96))
        (10, 6)
    """
    source = _patch_source(model)
    if source is None:
        return None
    embed = getattr(source, "patch_embed", None)
    h, w = int(input_size[0]), int(input_size[1])
    if embed is None:
        p: int = getattr(source, "patch_size")  # noqa: B009  (an int attribute, checked by _patch_source)
        return (h // p, w // p)
    feat = getattr(embed, "dynamic_feat_size", None)
    if callable(feat):
        return _pair(feat((h, w)))
    size = getattr(embed, "patch_size", None)
    if size is not None:
        ph, pw = _pair(size)
        return (h // ph, w // pw)
    grid = getattr(embed, "grid_size", None)
    return None if grid is None else _pair(grid)


def _prefix_tokens(model: nn.Module) -> int | None:
    source = _patch_source(model)
    if source is None:
        return None
    count = getattr(source, "num_prefix_tokens", None)
    if isinstance(count, int):
        return count
    if getattr(source, "patch_embed", None) is None and isinstance(getattr(source, "class_token", None), Tensor):
        return 1  # torchvision ViT: one class token
    return None


@dataclass(frozen=True)
class TokenLayout(Layout):
    """(B, N, C) tokens: ``prefix`` tokens first (dropped), then ``h·w`` patch tokens in row-major order.

    Args:
        prefix: number of leading non-patch tokens; ``None`` reads the model's ``num_prefix_tokens`` (timm: class
            + register + distillation tokens; torchvision ViT: 1), else ``N − h·w`` for a known grid, else 0.
        grid: the patch grid: an (h, w) pair, a callable ``(H, W) -> (h, w)`` of the input size, or ``None`` for the
            model's patch embedding at the input size (:func:`patch_grid`), else a grid of the input's aspect
            ratio (``h = round(√(n·H/W))``) that must contain the ``n`` patch tokens exactly.

    Raises (at call):
        ValueError: the output is not 3-D, or the token count does not form the grid.

    Example:
        >>> import torch
        >>> lay = TokenLayout(prefix=1, grid=(2, 3))
        >>> ctx = TapContext("blocks.0", (32, 48))
        >>> lay.to_maps(torch.arange(14.0).reshape(1, 7, 2), ctx)[0, 0]
        tensor([[ 2.,  4.,  6.],
                [ 8., 10., 12.]])
    """

    prefix: int | None = None
    grid: tuple[int, int] | Callable[[tuple[int, int]], tuple[int, int]] | None = None

    name = "tokens"

    def __post_init__(self) -> None:
        if self.prefix is not None and (isinstance(self.prefix, bool) or not isinstance(self.prefix, int)):
            raise TypeError(f"prefix must be an int or None, got {type(self.prefix).__name__}.")
        if self.prefix is not None and self.prefix < 0:
            raise ValueError(f"prefix must be ≥ 0, got {self.prefix}.")
        if self.grid is not None and not callable(self.grid):
            g = self.grid
            if not (isinstance(g, tuple) and len(g) == 2 and all(isinstance(v, int) and v > 0 for v in g)):
                raise ValueError(f"grid must be an (h, w) pair of positive ints, a callable or None, got {g!r}.")

    def _grid(self, tokens: int, ctx: TapContext) -> tuple[tuple[int, int], int, str]:
        """(grid, prefix, where the grid came from)."""
        prefix = self.prefix if self.prefix is not None else ctx.prefix_tokens
        if callable(self.grid):
            grid, origin = _pair(self.grid(ctx.input_size)), "the grid callable"
        elif self.grid is not None:
            grid, origin = self.grid, "grid="
        elif ctx.patch_grid is not None:
            grid, origin = ctx.patch_grid, "the model's patch embedding"
        else:
            prefix = prefix or 0
            n = tokens - prefix
            height, width = ctx.input_size
            h = max(1, round(math.sqrt(max(n, 0) * height / width)))
            grid, origin = (h, max(1, n // h)), "the input's aspect ratio (no patch embedding found)"
        if prefix is None:
            prefix = tokens - grid[0] * grid[1]
        return grid, prefix, origin

    def to_maps(self, output: Tensor, ctx: TapContext) -> Tensor:
        if output.dim() != 3:
            raise _neither(output, ctx, "tokens (B, N, C) were expected (reshape='tokens')")
        batch, tokens, channels = output.shape
        (h, w), prefix, origin = self._grid(int(tokens), ctx)
        if prefix < 0 or tokens - prefix != h * w:
            raise ValueError(
                f"Layer {ctx.layer!r} returned {tokens} tokens at input size {ctx.input_size[0]}×{ctx.input_size[1]}"
                f"; with {max(prefix, 0)} prefix token(s) that leaves {tokens - max(prefix, 0)}, which does not form "
                f"the {h}×{w} patch grid given by {origin}. Pass reshape=TokenLayout(prefix=..., grid=(h, w) or a "
                "callable of the input size), or tap a layer whose tokens are one per patch."
            )
        return output[:, prefix:].transpose(1, 2).reshape(batch, channels, h, w)

    def from_maps(self, maps: Tensor, output: Tensor, ctx: TapContext) -> Tensor:
        prefix = output.shape[1] - maps.shape[-2] * maps.shape[-1]
        patches = maps.flatten(2).transpose(1, 2)
        if prefix == 0:
            return patches.contiguous()
        return torch.cat([output[:, :prefix].detach(), patches], dim=1)


class FunctionLayout(Layout):
    """A user's ``reshape(output, input_size) -> (B, C, h, w)`` rearrangement; the output is rebuilt from the map by
    one vector-Jacobian product (see the module docstring)."""

    name = "function"

    def __init__(self, fn: Callable[[Tensor, tuple[int, int]], Tensor]) -> None:
        self.fn = fn

    def _apply(self, output: Tensor, ctx: TapContext) -> Tensor:
        maps = self.fn(output, ctx.input_size)
        if not isinstance(maps, Tensor) or maps.dim() != 4:
            got = tuple(maps.shape) if isinstance(maps, Tensor) else type(maps).__name__
            raise ValueError(
                f"The reshape callable must return a (B, C, h, w) tensor for layer {ctx.layer!r}, got {got}."
            )
        return maps

    def to_maps(self, output: Tensor, ctx: TapContext) -> Tensor:
        return self._apply(output, ctx)

    def from_maps(self, maps: Tensor, output: Tensor, ctx: TapContext) -> Tensor:
        x = output.detach().requires_grad_(True)
        with torch.enable_grad():
            y = self._apply(x, ctx)
            if not y.requires_grad:
                raise ValueError(
                    "The reshape callable must be a differentiable rearrangement of the layer's output (index, "
                    "permute, reshape); its result does not depend on the output."
                )
            (back,) = torch.autograd.grad(y, x, grad_outputs=maps - maps.detach(), create_graph=True)
        return output.detach() + back

    def __repr__(self) -> str:
        return f"FunctionLayout({getattr(self.fn, '__name__', repr(self.fn))})"


def _on_patch_grid(dims: tuple[int, int], grid: tuple[int, int]) -> bool:
    """``dims`` is the patch grid or the grid halved k ≥ 1 times, rounded up (a hierarchical stage of it)."""
    h, w = grid
    while True:
        if dims == (h, w):
            return True
        if h == 1 and w == 1:
            return False
        h, w = -(-h // 2), -(-w // 2)


class AutoLayout(Layout):
    """(B, N, C) tokens through :class:`TokenLayout` (the model's prefix tokens and patch grid); 4-D outputs are
    (B, C, h, w) maps, except in a model with a patch embedding, where an output whose dims 1–2 (and not dims 2–3) are
    the patch grid at this input size, or that grid halved k times (rounded up), is channels-last (B, H, W, C): timm's
    dynamic patch embeddings and Swin's stages. Any other rank is an error. Channels-last maps of models without a
    patch embedding (the inner norms of timm's ConvNeXt blocks) need ``reshape="nhwc"``."""

    name = "auto"
    _spatial: ClassVar[SpatialLayout] = SpatialLayout()
    _channels_last: ClassVar[ChannelsLastLayout] = ChannelsLastLayout()
    _tokens: ClassVar[TokenLayout] = TokenLayout()

    def _pick(self, output: Tensor, ctx: TapContext) -> Layout:
        if output.dim() == 4:
            grid = ctx.patch_grid
            _, d1, d2, d3 = (int(v) for v in output.shape)
            if grid is not None and _on_patch_grid((d1, d2), grid) and not _on_patch_grid((d2, d3), grid):
                return self._channels_last
            return self._spatial
        if output.dim() == 3:
            return self._tokens
        raise _neither(output, ctx, "neither a feature map (B, C, h, w) nor tokens (B, N, C)")

    def to_maps(self, output: Tensor, ctx: TapContext) -> Tensor:
        return self._pick(output, ctx).to_maps(output, ctx)

    def from_maps(self, maps: Tensor, output: Tensor, ctx: TapContext) -> Tensor:
        return self._pick(output, ctx).from_maps(maps, output, ctx)


Reshape = str | Layout | Callable[[Tensor, tuple[int, int]], Tensor] | None
"""``None``, ``"auto"``, ``"nchw"``, ``"tokens"``, ``"nhwc"``, a :class:`Layout`, or ``fn(output, input_size)``."""

LAYOUT_NAMES: dict[str, Callable[[], Layout]] = {
    "auto": AutoLayout,
    "nchw": SpatialLayout,
    "tokens": TokenLayout,
    "nhwc": ChannelsLastLayout,
}
"""The layouts ``reshape=`` accepts by name."""


def resolve_layout(reshape: Reshape, model: nn.Module | None = None) -> Layout:
    """The :class:`Layout` for a ``reshape=`` argument.

    Args:
        reshape: see :data:`Reshape`; ``None`` takes ``model.cameras_default_reshape`` when the model has one.
        model: the network (for its default).

    Raises:
        ValueError: an unknown layout name.
        TypeError: neither a name, a :class:`Layout` nor a callable.

    Example:
        >>> resolve_layout("nhwc")
        ChannelsLastLayout()
        >>> resolve_layout(None)
        AutoLayout()
    """
    if reshape is None and model is not None:
        reshape = getattr(model, "cameras_default_reshape", None)
    if reshape is None:
        return AutoLayout()
    if isinstance(reshape, Layout):
        return reshape
    if isinstance(reshape, str):
        key = reshape.strip().lower().replace("-", "_")
        key = {"channels_last": "nhwc", "maps": "nchw"}.get(key, key)
        if key not in LAYOUT_NAMES:
            raise ValueError(
                f"reshape={reshape!r} is not a layout: use one of {', '.join(map(repr, LAYOUT_NAMES))}, a "
                "cameras.engine.TokenLayout(...), or a callable(output, input_size) -> (B, C, h, w)."
            )
        return LAYOUT_NAMES[key]()
    if callable(reshape):
        return FunctionLayout(reshape)
    raise TypeError(
        "reshape must be None, a layout name, a Layout or a callable(output, input_size), "
        f"got {type(reshape).__name__}."
    )


def check_input_size(model: nn.Module, input_size: tuple[int, int]) -> None:
    """Raise a clear error before running a patch-embedding model at a size it cannot take.

    Two cases (timm's ``PatchEmbed`` and torchvision's ViT): an embedding fixed to one image size (timm's
    ``strict_img_size``; torchvision ViTs always) given another size, and a dynamic embedding that does not pad
    (``dynamic_img_pad=False``) given a size that is not a multiple of the patch size.

    Raises:
        ValueError: the message says which sizes the model takes and how to build it for any size.
    """
    source = _patch_source(model)
    if source is None:
        return
    h, w = int(input_size[0]), int(input_size[1])
    arch = type(source).__name__
    embed = getattr(source, "patch_embed", None)
    how = (
        "CAMERAS and the multi-scale methods run the image at several sizes. Build the model for any size with "
        "timm.create_model(name, dynamic_img_size=True) (timm's ViT, DeiT, EVA, Swin and others; "
        "cameras.models.load('timm:NAME') does this where timm supports it)"
    )
    if embed is None:  # torchvision ViT
        size: int = getattr(source, "image_size")  # noqa: B009  (an int attribute, checked by _patch_source)
        if (h, w) != (size, size):
            raise ValueError(
                f"{arch} takes only {size}×{size} inputs, got {h}×{w}. {how}, or explain a square {size}×{size} "
                f"input at one scale: resolutions=[({size}, {size})]."
            )
        return
    fixed = getattr(embed, "img_size", None)
    if getattr(embed, "strict_img_size", False) and fixed is not None and _pair(fixed) != (h, w):
        fh, fw = _pair(fixed)
        raise ValueError(
            f"{arch} takes only {fh}×{fw} inputs (its patch embedding is fixed to img_size={fh}×{fw}), got {h}×{w}. "
            f"{how}, or explain a {fh}×{fw} input at one scale: resolutions=[({fh}, {fw})] with a square input "
            "(Preprocess(square=True), --square)."
        )
    patch = getattr(embed, "patch_size", None)
    if patch is not None and not getattr(embed, "dynamic_img_pad", True):
        ph, pw = _pair(patch)
        if h % ph or w % pw:
            raise ValueError(
                f"{arch} takes sizes that are multiples of its patch size {ph}×{pw}, got {h}×{w}. Let it pad the "
                "input to whole patches (timm.create_model(name, dynamic_img_size=True, dynamic_img_pad=True), or "
                "model.patch_embed.dynamic_img_pad = True; cameras.models.load('timm:NAME') does so), or use "
                f"resolutions that are multiples of {ph}."
            )
