"""The fusion paths of :mod:`cameras.engine.fusion` against the float64 definition, and the ``"auto"`` rule.

Every kept path (``interpolate``, ``matmul``, ``gram``, ``tiles``) is compared with :func:`.reference.reference_fusion`
(F.interpolate in float64, all channels at once) on random problems with three classes, a dropped scale, partial
channel chunks, down- and up-sampling, 1-pixel feature maps and 1-pixel-wide outputs. The tiled path's own plan and
tile choice are tested in ``test_fusion_tiles.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import cameras
from cameras.engine import fusion, record_scales, schedule
from cameras.engine.fusion import (
    GENERIC_IMPLS,
    IMPLS,
    auto_impl,
    bilinear_matrix,
    cameras_rule,
    fuse,
    fuse_gram,
    fuse_interpolate,
    fuse_matmul,
    fuse_tiles,
)
from cameras.engine.fusion.gram import gram_transposed
from cameras.engine.fusion.tiles import auto_tile

from .nets import SizeSensitive, TinyCNN
from .reference import random_problem, reference_cameras, reference_fusion

Size = tuple[int, int]

PATHS: dict[str, Callable[..., torch.Tensor]] = {
    "interpolate": fuse_interpolate,
    "matmul": fuse_matmul,
    "gram": fuse_gram,
    "tiles": fuse_tiles,
}

PROBLEMS = [
    ([(3, 9), (5, 4), (8, 7)], (19, 23)),  # up-sampling; one scale wider than some outputs below
    ([(3, 9), (5, 4), (8, 7)], (40, 6)),  # "gram" transposes here, not below: both orientations
    ([(3, 9), (5, 4), (8, 7)], (6, 40)),
    ([(3, 4), (5, 6), (7, 9)], (4, 3)),  # down-sampling along both axes
    ([(1, 1), (2, 1), (3, 5)], (7, 1)),  # 1-pixel feature maps, a 1-pixel-wide output
    ([(4, 4), (1, 9)], (1, 1)),
]


def _close(got: torch.Tensor, ref: torch.Tensor, tol: float = 1e-5) -> bool:
    return bool((got.double() - ref).abs().max() <= tol * ref.abs().max())


@pytest.mark.parametrize(("sizes", "out"), PROBLEMS)
@pytest.mark.parametrize("impl", list(PATHS))
def test_every_path_equals_the_float64_definition(impl: str, sizes: list[Size], out: Size) -> None:
    """Each path, at every channel step (13 channels: partial last steps) and, for the Gram paths, image grouping
    (several images per step is the CUDA default), gives the float64 definition in float32."""
    acts, grads, w = random_problem(2, 3, 13, 3, sizes, zero=(0, 2, 1))
    ref = reference_fusion(acts, grads, w, out)
    groups: tuple[int | None, ...] = (None, 2, 5) if impl in ("gram", "tiles") else (None,)
    for chunk in (1, 4, None):
        for group in groups:
            kwargs: dict[str, Any] = {"chunk_size": chunk}
            if group is not None:
                kwargs["images_per_step"] = group
            got = PATHS[impl](acts, grads, w, out, **kwargs)
            assert got.shape == ref.shape and got.dtype == torch.float32
            assert _close(got, ref), (chunk, group)


def test_the_problems_cover_both_orientations_of_gram() -> None:
    acts = [torch.zeros(1, 1, h, w) for h, w in PROBLEMS[1][0]]
    assert gram_transposed(acts, PROBLEMS[1][1]) and not gram_transposed(acts, PROBLEMS[2][1])


def _gradcam_like(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return (g.mean(dim=(-2, -1), keepdim=True) * a).sum(2)


def _layercam_like(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return (g.relu() * a).sum(2)


@pytest.mark.parametrize("impl", ["interpolate", "matmul"])
def test_generic_paths_apply_any_rule_like_the_definition(impl: str) -> None:
    """The two paths for any rule (the MultiScale methods' rules are sums of per-channel terms, some nonlinear in
    Ḡ, some with spatial means) chunk by chunk give the rule applied to the float64 averages of all channels."""
    for sizes, out in PROBLEMS[:4]:
        acts, grads, w = random_problem(7, 2, 11, 2, sizes, zero=(1, 1, 0))
        for rule in (_gradcam_like, _layercam_like):
            ref = reference_fusion(acts, grads, w, out, rule=rule)
            for chunk in (1, 5, None):
                assert _close(PATHS[impl](acts, grads, w, out, rule, chunk_size=chunk), ref), (rule, chunk, out)


@pytest.mark.parametrize("impl", list(PATHS))
def test_every_path_reads_reduced_precision_inputs_in_float32(impl: str) -> None:
    acts, grads, w = random_problem(4, 2, 6, 1, [(3, 9), (5, 4), (8, 7)], zero=(0, 0, 0))
    low_a, low_g = [a.bfloat16() for a in acts], [g.bfloat16() for g in grads]
    ref = reference_fusion([a.float() for a in low_a], [g.float() for g in low_g], w, (12, 10))
    got = PATHS[impl](low_a, low_g, w, (12, 10))
    assert got.dtype == torch.float32 and _close(got, ref)
    assert not _close(got, reference_fusion(acts, grads, w, (12, 10)), 1e-6)  # the inputs really were rounded


@pytest.mark.parametrize("impl", list(PATHS))
def test_every_path_checks_its_inputs(impl: str) -> None:
    acts, grads, w = random_problem(0, 1, 2, 1, [(3, 9), (5, 4), (8, 7)], zero=(0, 0, 0))
    path = PATHS[impl]
    with pytest.raises(ValueError, match="one \\(A, G\\) pair per scale"):
        path(acts, grads[:2], w, (8, 8))
    with pytest.raises(ValueError, match="one \\(A, G\\) pair per scale"):
        path([], [], w[:, :, :0], (8, 8))
    with pytest.raises(ValueError, match="weights must be"):
        path(acts, grads, w[:, :, :2], (8, 8))
    with pytest.raises(ValueError, match="Expected A"):
        path(acts, [g[:, 0] for g in grads], w, (8, 8))
    with pytest.raises(ValueError, match="Inconsistent shapes"):
        path(acts, [grads[0], grads[1], grads[2][..., :3]], w, (8, 8))


def test_bilinear_matrix_equals_interpolate() -> None:
    """1-D: identity, down- and up-sampling, one output sample; 2-D: separable products equal F.interpolate."""
    x = torch.randn(3, 11, dtype=torch.float64)
    for n_out in (1, 5, 11, 12, 37, 224):
        ref = F.interpolate(x[None], size=n_out, mode="linear", align_corners=False)[0]
        assert (x @ bilinear_matrix(11, n_out).double().T - ref).abs().max() < 1e-6, n_out
    assert torch.equal(bilinear_matrix(4, 4), torch.eye(4))  # identity: no mixing
    assert torch.allclose(bilinear_matrix(7, 30).sum(1), torch.ones(30))  # rows are convex weights
    x2 = torch.randn(2, 5, 7, 11, dtype=torch.float64)
    for out in [(7, 11), (13, 29), (224, 337), (3, 5), (1, 1)]:
        mh, mw = bilinear_matrix(7, out[0]).double(), bilinear_matrix(11, out[1]).double()
        ref2 = F.interpolate(x2, size=out, mode="bilinear", align_corners=False)
        assert (mh @ x2 @ mw.T - ref2).abs().max() < 1e-6, out
    with pytest.raises(ValueError, match="positive"):
        bilinear_matrix(0, 3)


# -- fuse(): the dispatcher on recordings ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dropped() -> Any:
    """A recording of 3 images on which the keep rule drops scales per image (per-(image, class) weights matter)."""
    rec = record_scales(SizeSensitive(), "features", torch.rand(3, 3, 16, 20), schedule([1.0, 2.0, 3.3, 5.0], (16, 20)))
    assert not bool(rec.keep.all())
    return rec


def _definition_of(rec: Any, out: tuple[int, int], rule: Callable[..., torch.Tensor] | None = None) -> torch.Tensor:
    """reference_fusion of a recording, with the paper's weights 1/n_kept computed here from the keep mask."""
    keep = rec.keep.double()
    weights = keep / keep.sum(-1, keepdim=True)
    acts = [s.activations for s in rec.scales]
    grads = [s.gradients for s in rec.scales]
    return reference_fusion(acts, grads, weights, out, rule=rule)


def test_fuse_every_impl_equals_the_definition_on_a_recording(dropped: Any) -> None:
    ref = _definition_of(dropped, (16, 20))
    for impl in IMPLS:
        for chunk in (1, 3, None):
            got = fuse(dropped, (16, 20), impl=impl, chunk_size=chunk)
            assert got.dtype == torch.float32 and _close(got, ref), (impl, chunk)
    ref_other = _definition_of(dropped, (16, 20), _layercam_like)
    for impl in GENERIC_IMPLS:
        assert _close(fuse(dropped, (16, 20), _layercam_like, impl=impl, chunk_size=2), ref_other), impl


def test_auto_rule_per_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """The measured choice: CAMERAS rule → "tiles" on the CPU ("gram" past the weights cap), "gram" on CUDA; any
    other rule → "matmul" on the CPU, "interpolate" on CUDA (and on other accelerators, like CUDA)."""
    sizes = [(7, 7), (11, 11), (14, 14), (17, 17), (20, 20), (23, 23), (26, 26), (29, 29)]  # ResNet-50, paper scales
    tile = auto_tile(sizes, (224, 224), 2048, 1, max_taps_bytes=fusion.TILES_MAX_TAPS_BYTES)
    assert tile is not None
    assert auto_impl(cameras_rule, "cpu", sizes, (224, 224), 2048) == ("tiles", tile)
    for device in ("cuda", "cuda:1", torch.device("cuda", 0), "mps"):
        assert auto_impl(cameras_rule, device, sizes, (224, 224), 2048) == ("gram", None)
        assert auto_impl(_gradcam_like, device, sizes, (224, 224), 2048) == ("interpolate", None)
    assert auto_impl(_gradcam_like, "cpu", sizes, (224, 224), 2048) == ("matmul", None)
    # a rule computing the same numbers is still not the CAMERAS rule: only the identity gets the CAMERAS paths
    assert auto_impl(lambda a, g: cameras_rule(a, g), "cpu", sizes, (224, 224), 2048) == ("matmul", None)
    monkeypatch.setattr(fusion, "TILES_MAX_TAPS_BYTES", 1000)
    assert auto_impl(cameras_rule, "cpu", sizes, (224, 224), 2048) == ("gram", None)


def test_fuse_auto_on_the_cpu_is_exactly_the_chosen_path(dropped: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = fusion.scale_weights(dropped.keep)
    active = [s for s in range(len(dropped.scales)) if bool(weights[:, :, s].any())]
    acts = [dropped.scales[s].activations for s in active]
    grads = [dropped.scales[s].gradients for s in active]
    tile = auto_tile([(a.shape[-2], a.shape[-1]) for a in acts], (16, 20), acts[0].shape[1], weights.shape[1])
    tiled = fuse_tiles(acts, grads, weights[:, :, active], (16, 20), tile=tile)
    assert torch.equal(fuse(dropped, (16, 20)), tiled)
    assert torch.equal(fuse(dropped, (16, 20), _layercam_like), fuse(dropped, (16, 20), _layercam_like, impl="matmul"))
    monkeypatch.setattr(fusion, "TILES_MAX_TAPS_BYTES", 1000)
    assert torch.equal(fuse(dropped, (16, 20), impl="auto"), fuse(dropped, (16, 20), impl="gram"))


def test_fuse_errors(dropped: Any) -> None:
    for impl in ("tiles", "gram"):
        with pytest.raises(ValueError, match="CAMERAS rule only"):
            fuse(dropped, (16, 20), _layercam_like, impl=impl)
    for removed in ("gram-tf32", "triton", "triton-gather", "gather", "fastest"):
        with pytest.raises(ValueError, match="impl must be one of 'auto', 'tiles', 'gram', 'matmul', 'interpolate'"):
            fuse(dropped, (16, 20), impl=removed)
    with pytest.raises(ValueError, match="chunk_size"):
        fuse(dropped, (16, 20), chunk_size=0)


# -- the fusion options of the methods -------------------------------------------------------------------------------


@pytest.mark.parametrize("fusion_impl", IMPLS)
def test_cameras_fusion_options_match_reference(fusion_impl: str) -> None:
    model = TinyCNN(seed=21)
    x = torch.randn(2, 3, 36, 44)
    res = [1.0, 1.6, 2.3]
    ref, ref_t, _ = reference_cameras(model, model.features, x, schedule(res, (36, 44)))
    out = cameras.CAMERAS(model, layer="features", resolutions=res, fusion=fusion_impl)(x)
    assert torch.equal(out.targets, ref_t)
    assert (out.saliency - ref).abs().max() <= 1e-4


def test_multiscale_fusion_option() -> None:
    """The MultiScale methods take the generic paths; they agree, and the CAMERAS-only ones are refused."""
    model = TinyCNN(seed=22)
    x = torch.randn(2, 3, 32, 40)
    cls = cameras.MultiScale(cameras.GradCAMPlusPlus, resolutions=[1.0, 1.5, 2.0])
    maps = {f: cls(model, layer="features", fusion=f)(x) for f in GENERIC_IMPLS}
    for f in ("matmul", "interpolate"):
        assert torch.equal(maps[f].targets, maps["auto"].targets)
        assert (maps[f].raw - maps["auto"].raw).abs().max() <= 1e-5 * maps["auto"].raw.abs().max()
    assert torch.equal(maps["auto"].raw, maps["matmul"].raw)  # "auto" on the CPU is the matmul path
    for bad in ("tiles", "gram", "triton"):
        with pytest.raises(ValueError, match="fusion must be one of 'auto', 'matmul', 'interpolate'"):
            cls(model, layer="features", fusion=bad)
