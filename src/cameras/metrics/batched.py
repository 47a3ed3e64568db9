"""The model-based metrics of several maps per image in shared forward passes.

:func:`faithfulness_set` scores M maps (one per method) of the same B images with insertion/deletion, confidence
change and the densities at once: the same numbers as :func:`~cameras.metrics.insertion_deletion`,
:func:`~cameras.metrics.confidence_change` and :func:`~cameras.metrics.map_density` called once per method
(within float32 rounding of the forward passes, ~1e-7), for fewer and fuller forward passes:

* every perturbed image of every (method, image) goes into one queue, cut into passes of ``batch_size`` images;
* the images that do not depend on the map are run once per image, not once per method and metric: the image
  itself (the original confidence of both confidence metrics, the last insertion point and the first deletion
  point), the insertion baseline (the first insertion point, the blurred image once per image) and the deletion
  baseline (the last deletion point);
* images whose scores are undefined (constant maps; the maps a ``density_mask`` leaves out) are not run.

>>> import torch
>>> from cameras.metrics import faithfulness_set, insertion_deletion
>>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
>>> x, maps = torch.randn(2, 3, 12, 12), torch.rand(3, 2, 12, 12)
>>> out = faithfulness_set(net, x, maps, [0, 1], steps=6)
>>> one = insertion_deletion(net, x, maps[1], [0, 1], steps=6)
>>> bool(torch.allclose(out.insertion_deletion[1].insertion, one.insertion, atol=1e-6))
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..engine.normalize import constant_maps
from ..engine.state import ModelState
from ..methods.base import model_device_dtype
from ._checks import check_images_and_maps, check_targets, check_unit_maps
from .density import MapDensity
from .faithfulness import (
    Baseline,
    ConfidenceChange,
    InsertionDeletion,
    _check_int,
    _make_baseline,
    _probabilities,
)

__all__ = ["FaithfulnessSet", "faithfulness_set"]

# Kinds of queued images.
_X, _BASE_INS, _BASE_DEL, _INS, _DEL, _EXPLAINED, _KEPT, _REMOVED = range(8)


@dataclass
class FaithfulnessSet:
    """The metrics of M maps of the same images, one entry per map set (method), in the order given.

    Attributes:
        insertion_deletion: M :class:`~cameras.metrics.InsertionDeletion`, or ``None`` when not asked.
        confidence: M :class:`~cameras.metrics.ConfidenceChange`, or ``None`` when not asked.
        density: M :class:`~cameras.metrics.MapDensity`, or ``None`` when not asked.
        forwards: the number of images the model ran on (all passes together).
    """

    insertion_deletion: list[InsertionDeletion] | None
    confidence: list[ConfidenceChange] | None
    density: list[MapDensity] | None
    forwards: int


def _stack_maps(maps: Tensor | list[Tensor] | tuple[Tensor, ...], name: str) -> Tensor:
    if isinstance(maps, list | tuple):
        if not maps:
            raise ValueError(f"{name} must hold at least one (B, H, W) map set.")
        maps = torch.stack([m.detach() for m in maps])
    if not isinstance(maps, Tensor) or maps.dim() != 4:
        shape = tuple(maps.shape) if isinstance(maps, Tensor) else type(maps).__name__
        raise ValueError(f"{name} must be (M, B, H, W) maps (M methods of B images), got {shape}.")
    return maps.detach()


def faithfulness_set(
    model: nn.Module,
    images: Tensor,
    maps: Tensor | list[Tensor],
    targets: int | list[int] | Tensor,
    *,
    unit_maps: Tensor | list[Tensor] | None = None,
    insertion: bool = True,
    confidence: bool = True,
    density: bool = True,
    steps: int = 100,
    baseline: Baseline | tuple[Baseline, Baseline] = ("blur", "zero"),
    confidence_baseline: Baseline = "zero",
    density_baseline: Baseline = "zero",
    density_mask: Tensor | None = None,
    batch_size: int = 64,
) -> FaithfulnessSet:
    """Insertion/deletion, confidence change and map densities of M maps per image, in shared forward passes.

    For method ``m`` the fields equal ``insertion_deletion(model, images, maps[m], targets, steps, baseline)``,
    ``confidence_change(model, images, unit_maps[m], targets, confidence_baseline)`` and
    ``map_density(model, images, unit_maps[m], targets, density_baseline)`` (see those functions for the
    definitions and the ``nan`` of undefined entries), up to float32 rounding of the forward passes.

    Args:
        model: classifier returning logits (B, num_classes); run without autograd in eval mode on its own device
            (training flags and ``requires_grad`` restored afterwards, also on an error).
        images: (B, C, H, W) images as the model takes them.
        maps: (M, B, H, W) maps, or a list of M (B, H, W) maps: what insertion/deletion orders pixels by.
        targets: the class of each image: an int, B ints, or a (B,) LongTensor.
        unit_maps: (M, B, H, W) maps in [0, 1] for the confidence change and the densities; ``None``: ``maps``.
        insertion, confidence, density: which metrics to compute.
        steps: insertion/deletion steps S (curves of S + 1 points).
        baseline: the insertion/deletion baseline(s), as in :func:`~cameras.metrics.insertion_deletion`.
        confidence_baseline: the baseline of :func:`~cameras.metrics.confidence_change`.
        density_baseline: the baseline of :func:`~cameras.metrics.map_density` (e.g.
            :func:`~cameras.metrics.black_baseline`).
        density_mask: (M, B) bool, the maps whose densities are computed; the others are ``nan`` (and not run).
            ``None``: all.
        batch_size: images per forward pass.

    Returns:
        :class:`FaithfulnessSet` with M results per asked metric, on the images' device.

    Raises:
        TypeError, ValueError: as the three functions do (bad model, shapes, targets, baselines, maps outside
            [0, 1] for the confidence metrics), before any forward pass.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    order_maps = _stack_maps(maps, "maps")
    m_count = int(order_maps.shape[0])
    checked = []
    for one in order_maps:
        images, one = check_images_and_maps(images, one)
        checked.append(one)
    order_maps = torch.stack(checked)
    b, _, h, w = images.shape
    unit = order_maps if unit_maps is None else _stack_maps(unit_maps, "unit_maps")
    if unit.shape != order_maps.shape:
        raise ValueError(f"unit_maps {tuple(unit.shape)} must have the shape of maps {tuple(order_maps.shape)}.")
    if confidence or density:
        check_unit_maps(unit.reshape(-1, h, w).float())
    steps = _check_int("steps", steps, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    device, dtype = model_device_dtype(model)
    t = check_targets(targets, b, device)
    x = images.detach().to(device=device, dtype=dtype)
    hw = h * w
    ins_spec, del_spec = baseline if isinstance(baseline, tuple) else (baseline, baseline)
    base_ins = _make_baseline(ins_spec, x) if insertion else x
    base_del = _make_baseline(del_spec, x) if insertion else x
    base_cc = _make_baseline(confidence_baseline, x) if confidence else x
    base_den = _make_baseline(density_baseline, x) if density else x
    psi = unit.to(device=device, dtype=dtype)[:, :, None]  # (M, B, 1, H, W)
    if density_mask is None:
        shown = torch.ones(m_count, b, dtype=torch.bool, device=device)
    else:
        shown = torch.as_tensor(density_mask, dtype=torch.bool).to(device)
        if shown.shape != (m_count, b):
            raise ValueError(f"density_mask must be ({m_count}, {b}) bool, got {tuple(shown.shape)}.")

    # The queue: (kind, method m, image b, step i of the curves) per image to run.
    kinds: list[Tensor] = []
    ms: list[Tensor] = []
    bs: list[Tensor] = []
    ns: list[Tensor] = []

    def queue(kind: int, m: Tensor, bb: Tensor, n: Tensor | None = None) -> None:
        kinds.append(torch.full_like(bb, kind))
        ms.append(m)
        bs.append(bb)
        ns.append(torch.zeros_like(bb) if n is None else n)

    images_idx = torch.arange(b, device=device)
    zeros_b = torch.zeros_like(images_idx)
    queue(_X, zeros_b, images_idx)
    counts = torch.div(torch.arange(steps + 1, device=device) * hw, steps, rounding_mode="floor")
    grid_m = torch.arange(m_count, device=device).repeat_interleave(b)
    grid_b = images_idx.repeat(m_count)
    rank = torch.empty(0, dtype=torch.long, device=device)
    defined_order = ~constant_maps(order_maps).to(device)  # (M, B)
    if insertion:
        queue(_BASE_INS, zeros_b, images_idx)
        queue(_BASE_DEL, zeros_b, images_idx)
        order = torch.sort(order_maps.to(device).reshape(m_count * b, hw), dim=1, descending=True, stable=True)
        rank = torch.empty_like(order.indices)
        rank.scatter_(1, order.indices, torch.arange(hw, device=device).expand(m_count * b, hw))
        inner = torch.arange(steps + 1, device=device)[(counts > 0) & (counts < hw)]  # the steps that use the map
        keep = defined_order.reshape(-1)
        cm = grid_m[keep].repeat_interleave(inner.numel())
        cb = grid_b[keep].repeat_interleave(inner.numel())
        cn = inner.repeat(int(keep.sum()))
        queue(_INS, cm, cb, cn)
        queue(_DEL, cm, cb, cn)
    defined_unit = ~constant_maps(unit).to(device)
    if confidence:
        keep = defined_unit.reshape(-1)
        queue(_EXPLAINED, grid_m[keep], grid_b[keep])
    if density:
        keep = shown.reshape(-1)
        queue(_KEPT, grid_m[keep], grid_b[keep])
        queue(_REMOVED, grid_m[keep], grid_b[keep])
    job_kind, job_m, job_b, job_n = torch.cat(kinds), torch.cat(ms), torch.cat(bs), torch.cat(ns)
    total = int(job_kind.numel())

    def build(kind: int, m: Tensor, bb: Tensor, n: Tensor) -> Tensor:
        if kind == _X:
            return x[bb]
        if kind == _BASE_INS:
            return base_ins[bb]
        if kind == _BASE_DEL:
            return base_del[bb]
        if kind in (_INS, _DEL):
            mask = (rank[m * b + bb] < counts[n][:, None]).reshape(-1, 1, h, w)
            if kind == _INS:
                return torch.where(mask, x[bb], base_ins[bb])
            return torch.where(mask, base_del[bb], x[bb])
        p = psi[m, bb]
        if kind == _EXPLAINED:
            return base_cc[bb] + p * (x[bb] - base_cc[bb])
        if kind == _KEPT:
            return base_den[bb] + p * (x[bb] - base_den[bb])
        return base_den[bb] + (1 - p) * (x[bb] - base_den[bb])

    probs = torch.empty(total, device=device)
    with ModelState(model), torch.no_grad():
        for s in range(0, total, batch_size):
            sl = slice(s, s + batch_size)
            k, m, bb, n = job_kind[sl], job_m[sl], job_b[sl], job_n[sl]
            parts = [build(int(kind), m[k == kind], bb[k == kind], n[k == kind]) for kind in dict.fromkeys(k.tolist())]
            probs[sl] = _probabilities(model, torch.cat(parts), t[bb])

    # Read the probabilities back: table[kind][m, b, n] (n only for the curves).
    def lookup(kind: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        sel = job_kind == kind
        return probs[sel].double(), job_m[sel], job_b[sel], job_n[sel]

    p_x = lookup(_X)[0]  # (B,) in image order
    out_dev = images.device
    nan = math.nan
    result_id: list[InsertionDeletion] | None = None
    result_cc: list[ConfidenceChange] | None = None
    result_den: list[MapDensity] | None = None
    if insertion:
        p_bi, p_bd = lookup(_BASE_INS)[0], lookup(_BASE_DEL)[0]
        curves = torch.full((2, m_count, b, steps + 1), nan, dtype=torch.float64, device=device)
        for row, kind in ((0, _INS), (1, _DEL)):
            pv, pm, pb, pi = lookup(kind)
            curves[row, pm, pb, pi] = pv
        none, every = counts == 0, counts == hw  # nothing / every pixel moved: the same image for every map
        curves[0][..., none] = p_bi[None, :, None]
        curves[0][..., every] = p_x[None, :, None]
        curves[1][..., none] = p_x[None, :, None]
        curves[1][..., every] = p_bd[None, :, None]
        curves[:, ~defined_order] = nan
        fractions = counts.double() / hw
        areas = torch.trapezoid(curves, fractions, dim=-1)
        result_id = [
            InsertionDeletion(
                insertion=areas[0, i].float().to(out_dev),
                deletion=areas[1, i].float().to(out_dev),
                insertion_curve=curves[0, i].float().to(out_dev),
                deletion_curve=curves[1, i].float().to(out_dev),
                fractions=fractions.float().to(out_dev),
            )
            for i in range(m_count)
        ]
    if confidence:
        explained = torch.full((m_count, b), nan, dtype=torch.float64, device=device)
        pv, pm, pb, _ = lookup(_EXPLAINED)
        explained[pm, pb] = pv
        result_cc = []
        for mi in range(m_count):
            y, o = p_x, explained[mi]
            drop = (y - o).clamp(min=0) / y.clamp(min=torch.finfo(torch.float64).tiny)
            increase = torch.where(defined_unit[mi], (o > y).double(), torch.full_like(o, nan))
            result_cc.append(
                ConfidenceChange(
                    original=y.float().to(out_dev),
                    explained=o.float().to(out_dev),
                    drop=drop.float().to(out_dev),
                    increase=increase.float().to(out_dev),
                )
            )
    if density:
        kept = torch.full((m_count, b), nan, dtype=torch.float64, device=device)
        removed = torch.full((m_count, b), nan, dtype=torch.float64, device=device)
        for table, kind in ((kept, _KEPT), (removed, _REMOVED)):
            pv, pm, pb, _ = lookup(kind)
            table[pm, pb] = pv
        result_den = []
        tiny = torch.finfo(torch.float64).tiny
        for mi in range(m_count):
            u = unit[mi].to(device=device, dtype=torch.float64)
            area = u.mean(dim=(1, 2))
            rest = (1 - u).mean(dim=(1, 2))
            nans = torch.full_like(area, nan)
            ok = shown[mi]
            positive = torch.where(ok & (area > 0), kept[mi] / area.clamp_min(tiny), nans)
            negative = torch.where(ok & (rest > 0), removed[mi] / rest.clamp_min(tiny), nans)
            result_den.append(
                MapDensity(
                    positive=positive.to(out_dev),
                    negative=negative.to(out_dev),
                    positive_probability=kept[mi].float().to(out_dev),
                    negative_probability=removed[mi].float().to(out_dev),
                    map_mean=area.to(out_dev),
                    original_probability=p_x.float().to(out_dev),
                )
            )
    return FaithfulnessSet(insertion_deletion=result_id, confidence=result_cc, density=result_den, forwards=total)
