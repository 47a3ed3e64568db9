"""The tiled Gram fusion (``fuse(..., impl="tiles")``): every tile shape against the float64 definition, its plan
against F.interpolate, its tile choice. (Its agreement with the definition at default tiles, reduced-precision
inputs and input checks are tested with the other paths in ``test_fusion.py``.)"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cameras.engine.fusion.tiles import _TILE_CANDIDATES, auto_tile, fuse_tiles, taps_bytes, tile_plan

from .reference import random_problem, reference_fusion

SIZES = [(3, 9), (5, 4), (8, 7)]  # one scale wider than some outputs below: downsampling along that axis too


@pytest.mark.parametrize("out", [(19, 23), (40, 6), (6, 40), (5, 4), (1, 1)])
def test_tiled_fusion_equals_definition(out: tuple[int, int]) -> None:
    """Every tile shape (square, oblong, one pixel, larger than the map, not dividing it), channel step and image
    grouping gives the float64 definition, with three classes and a dropped scale."""
    acts, grads, w = random_problem(3, 3, 11, 3, SIZES, zero=(1, 0, 2))
    ref = reference_fusion(acts, grads, w, out)
    for tile in (None, 1, 3, (4, 7), (7, 2), 16, 100):
        for chunk in (None, 1, 4):
            for group in (None, 2):
                got = fuse_tiles(acts, grads, w, out, tile=tile, chunk_size=chunk, images_per_step=group)
                assert got.shape == ref.shape and got.dtype == torch.float32
                assert (got.double() - ref).abs().max() <= 1e-5 * ref.abs().max(), (tile, chunk, group)


@pytest.mark.parametrize("sizes", [[(1, 1), (2, 1), (3, 5)], [(4, 4), (1, 9)]])
def test_tiled_fusion_degenerate_shapes(sizes: list[tuple[int, int]]) -> None:
    """1-pixel feature maps and 1-pixel-wide outputs."""
    acts, grads, w = random_problem(5, 2, 4, 2, sizes, zero=(0, 0, 0))
    for out in [(1, 7), (7, 1), (2, 2), (33, 17)]:
        ref = reference_fusion(acts, grads, w, out)
        for tile in (None, 1, 2, 5, 64):
            got = fuse_tiles(acts, grads, w, out, tile=tile)
            assert (got.double() - ref).abs().max() <= 1e-5 * ref.abs().max(), (out, tile)


@pytest.mark.parametrize("tile", [(4, 4), (3, 5), (16, 16)])
def test_plan_reproduces_bilinear_upsampling(tile: tuple[int, int]) -> None:
    """For each tile pixel, Σ_j taps[t, p, j] · x[index[t, j]] is Σ_s F.interpolate(x_s) at that pixel; every
    position index is inside its own scale's block; padding entries carry no weight."""
    out = (13, 18)
    plan = tile_plan(SIZES, out, tile)
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(h, w, generator=gen, dtype=torch.float64) for h, w in SIZES]
    stacked = torch.cat([x.flatten() for x in xs])
    per_tile = (plan.taps.double() * stacked[plan.index][:, None, :]).sum(-1)  # (n, P)
    (nty, ntx), (ty, tx) = plan.grid, plan.tile
    got = per_tile.view(nty, ntx, ty, tx).permute(0, 2, 1, 3).reshape(nty * ty, ntx * tx)[: out[0], : out[1]]
    ref = sum(F.interpolate(x[None, None], size=out, mode="bilinear")[0, 0] for x in xs)
    assert torch.allclose(got, ref, atol=1e-6)
    offsets = torch.tensor([0] + [h * w for h, w in SIZES]).cumsum(0)
    assert bool((plan.index >= offsets[plan.scale]).all() and (plan.index < offsets[plan.scale + 1]).all())
    # a pixel reads at most 4 positions per scale, all with weights summing to 1 per scale (inside the map)
    assert int((plan.taps != 0).sum(-1).max()) <= 4 * len(SIZES)
    if max(tile) < 8:  # small tiles read only their neighbourhood
        assert plan.index.shape[1] < sum(h * w for h, w in SIZES) // 2


def test_auto_tile_follows_the_cost_model_and_the_memory_cap() -> None:
    sizes = [(7, 7), (11, 11), (14, 14), (17, 17), (20, 20), (23, 23), (26, 26), (29, 29)]  # ResNet-50, paper scales
    big = auto_tile(sizes, (224, 224), 2048)
    small = auto_tile(sizes, (224, 224), 16)
    assert big in _TILE_CANDIDATES and small in _TILE_CANDIDATES
    assert small is not None and big is not None and small < big  # few channels: the per-pixel term dominates
    assert auto_tile(sizes, (224, 224), 2048, max_taps_bytes=1000) is None
    capped = auto_tile(sizes, (224, 224), 2048, max_taps_bytes=taps_bytes(sizes, (224, 224), 12))
    assert capped is not None and taps_bytes(sizes, (224, 224), capped) <= taps_bytes(sizes, (224, 224), 12)
    assert taps_bytes(sizes, (224, 224), 16) == 4 * tile_plan(sizes, (224, 224), (16, 16)).taps.numel()


def test_tiled_fusion_refuses_empty_tiles() -> None:
    acts, grads, w = random_problem(0, 1, 2, 1, SIZES, zero=(0, 0, 0))
    for tile in (0, (3, 0), (-1, 2)):
        with pytest.raises(ValueError, match="tile must be positive"):
            fuse_tiles(acts, grads, w, (8, 8), tile=tile)
