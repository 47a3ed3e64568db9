"""Fusion of per-scale activations and gradients into one map: one dispatcher, one module per kept path.

CAMERAS (Jalwana et al., CVPR 2021, Eq. 2-4) upsamples every kept scale's A_s and G_s bilinearly to the output size,
averages them over the kept scales and fuses ``ReLU(Σ_c Ā_c ⊙ Ḡ_c)``; any rule that is a sum over channels of a
per-channel term is fused the same way (:mod:`.definition`). No C×H×W tensor of all channels ever exists: every path
works one chunk of channels at a time or contracts the channels at low resolution.

The paths (``fuse(..., impl=...)``), all computing the same float32 quantity, each kept because a measurement
(BENCHMARKS.md) needs it:

* ``"tiles"`` (CAMERAS rule; :mod:`.tiles`): one small Gram matrix per output tile. The fastest on the CPU
  (108 ms/image for ResNet-50's 2048 channels on 2 cores, 4.4–4.8× faster than ``"gram"``). Not yet timed on a GPU:
  the candidate for the next GPU measurement, so it runs (and is tested) on CUDA too.
* ``"gram"`` (CAMERAS rule; :mod:`.gram`): one Gram matrix per output column. The fastest measured on CUDA
  (2.07 ms/image at batch 32 on an H100, 7–12× faster than the definition), and the CPU fallback when ``"tiles"``'
  interpolation weights would exceed :data:`TILES_MAX_TAPS_BYTES`.
* ``"matmul"`` (any rule; :mod:`.matmul`): resize-matrix products. The fastest path for rules other than CAMERAS'
  (the ``MultiScale(...)`` methods) on the CPU, 2.8–2.9× faster than the definition.
* ``"interpolate"`` (any rule; :mod:`.definition`): ``F.interpolate`` per scale and chunk, the literal definition and
  the cross-check of every other path; on CUDA as fast as ``"matmul"`` or faster (H100: 21.3 against 22.1 ms/image at
  batch 1, 24.6 against 34.5 at batch 32).

``"auto"`` (the default) picks the fastest measured path for the rule and the device (:func:`auto_impl`):

* the CAMERAS rule (:func:`cameras_rule`): ``"tiles"`` on the CPU (``"gram"`` where the tiles' weights exceed the
  cap), ``"gram"`` on CUDA (and any other non-CPU device);
* any other rule: ``"matmul"`` on the CPU, ``"interpolate"`` on CUDA (and any other non-CPU device).

Removed after the measurements (their figures stay in BENCHMARKS.md): ``"gram-tf32"`` (``"gram"`` with 3×TF32 split
products: 2.6–3.1× slower than ``"gram"`` on the H100), the Triton kernels ``"triton"`` (Gram form: 1.7–1.8× slower
than ``"gram"``) and ``"triton-gather"`` (per pixel: 2.4–2.6× slower), and ``"gather"`` (that kernel's arithmetic in
PyTorch: 8× slower than the definition and 140–180× slower than ``"tiles"`` on the CPU). Nothing in the package
needs Triton.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..accumulate import Recording
from .definition import ChannelRule, cameras_rule, fuse_interpolate
from .gram import fuse_gram
from .matmul import fuse_matmul
from .resize import auto_chunk_size, bilinear_matrix, scale_weights
from .tiles import auto_tile, fuse_tiles

__all__ = [
    "GENERIC_IMPLS",
    "IMPLS",
    "TILES_MAX_TAPS_BYTES",
    "ChannelRule",
    "auto_chunk_size",
    "auto_impl",
    "bilinear_matrix",
    "cameras_rule",
    "fuse",
    "fuse_gram",
    "fuse_interpolate",
    "fuse_matmul",
    "fuse_tiles",
    "scale_weights",
]

IMPLS: tuple[str, ...] = ("auto", "tiles", "gram", "matmul", "interpolate")
"""Accepted values of ``fuse(..., impl=...)`` (and of ``cameras.CAMERAS(..., fusion=...)``)."""

GENERIC_IMPLS: tuple[str, ...] = ("auto", "matmul", "interpolate")
"""The values that work with any :data:`ChannelRule` (``"tiles"`` and ``"gram"`` are the CAMERAS rule's only); the
accepted ``fusion=`` values of the ``MultiScale(...)`` methods."""

TILES_MAX_TAPS_BYTES = 1 << 27
"""``"auto"`` uses ``"tiles"`` (on the CPU) only when its cached interpolation weights fit in this many bytes (128 MB;
about 40 MB for a 224 px map of ResNet-50's eight paper scales); beyond that, ``"gram"``."""


def auto_impl(
    rule: ChannelRule,
    device: torch.device | str,
    sizes: list[tuple[int, int]],
    out_size: tuple[int, int],
    channels: int,
    classes: int = 1,
) -> tuple[str, int | None]:
    """The path ``impl="auto"`` takes, and the tile side when it is ``"tiles"`` (see the module docstring's table).

    Args:
        rule: the channel rule; only :func:`cameras_rule` itself (by identity) gets the CAMERAS-only paths.
        device: where the fusion runs: ``"cpu"`` gets the CPU choice, every other device the CUDA one.
        sizes: (h_s, w_s) of each fused scale's feature map.
        out_size: (H, W).
        channels: C.
        classes: K.

    Example:
        >>> auto_impl(cameras_rule, "cuda", [(7, 7), (11, 11)], (224, 224), 2048)
        ('gram', None)
        >>> auto_impl(lambda a, g: (a * g).sum(2), "cpu", [(7, 7)], (224, 224), 2048)
        ('matmul', None)
    """
    cpu = torch.device(device).type == "cpu"
    if rule is not cameras_rule:
        return ("matmul" if cpu else "interpolate"), None
    if not cpu:
        return "gram", None
    tile = auto_tile(sizes, out_size, channels, classes, max_taps_bytes=TILES_MAX_TAPS_BYTES)
    return ("gram", None) if tile is None else ("tiles", tile)


def fuse(
    recording: Recording,
    out_size: tuple[int, int],
    rule: ChannelRule = cameras_rule,
    *,
    chunk_size: int | None = None,
    impl: str = "auto",
) -> Tensor:
    """Average upsampled A and G over the kept scales and fuse them with ``rule``, by the path ``impl``.

    Args:
        recording: per-scale (A, G) and keep masks from :func:`~cameras.engine.accumulate.record_scales`.
        out_size: (H, W) of the output map.
        rule: per-chunk rule (default: CAMERAS' Σ_c Ā_c Ḡ_c, :func:`cameras_rule`).
        chunk_size: channels per chunk or step (default: each path's own, ≈16 MB buffers on the CPU). The result does
            not depend on it beyond float rounding.
        impl: one of :data:`IMPLS`: ``"tiles"`` (:func:`~.tiles.fuse_tiles`) and ``"gram"``
            (:func:`~.gram.fuse_gram`) for the CAMERAS rule; ``"matmul"`` (:func:`~.matmul.fuse_matmul`) and
            ``"interpolate"`` (:func:`~.definition.fuse_interpolate`, the literal definition) for any rule;
            ``"auto"`` (default): the fastest measured path for the rule and device (:func:`auto_impl`).

    Returns:
        (B, K, H, W) float32 map *before* the ReLU.

    Raises:
        ValueError: unknown ``impl``, ``"tiles"`` or ``"gram"`` with a rule other than :func:`cameras_rule`, or
            ``chunk_size`` < 1.

    Example:
        >>> import torch
        >>> from cameras.engine import record_scales
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        >>> rec = record_scales(net, "0", torch.randn(1, 3, 16, 16), [(16, 16), (24, 24)])
        >>> fuse(rec, (16, 16)).shape
        torch.Size([1, 1, 16, 16])
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {', '.join(map(repr, IMPLS))}, got {impl!r}.")
    if impl not in GENERIC_IMPLS and rule is not cameras_rule:
        raise ValueError(
            f"impl={impl!r} implements the CAMERAS rule only; use one of {', '.join(map(repr, GENERIC_IMPLS))} "
            "for other rules."
        )
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be ≥ 1, got {chunk_size}.")
    device = recording.scales[0].activations.device
    weights = scale_weights(recording.keep).to(device)  # (B, K, S)
    active = [s for s in range(len(recording.scales)) if bool((weights[:, :, s] != 0).any())]
    acts = [recording.scales[s].activations for s in active]
    grads = [recording.scales[s].gradients for s in active]
    w = weights[:, :, active]
    tile: int | None = None
    if impl == "auto":
        sizes = [(int(a.shape[-2]), int(a.shape[-1])) for a in acts]
        impl, tile = auto_impl(rule, device, sizes, out_size, int(acts[0].shape[1]), int(w.shape[1]))
    if impl == "tiles":
        return fuse_tiles(acts, grads, w, out_size, tile=tile, chunk_size=chunk_size)
    if impl == "gram":
        return fuse_gram(acts, grads, w, out_size, chunk_size=chunk_size)
    if impl == "matmul":
        return fuse_matmul(acts, grads, w, out_size, rule, chunk_size=chunk_size)
    return fuse_interpolate(acts, grads, w, out_size, rule, chunk_size=chunk_size)
