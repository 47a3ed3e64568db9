"""Fast paths (mixed precision, channels-last, batch splitting) checked against the exact float32 engine."""

from __future__ import annotations

import pytest
import torch

import cameras

from .nets import TinyCNN


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten() - a.mean(), b.flatten() - b.mean()
    return float((a @ b) / (a.norm() * b.norm()))


def test_bfloat16_autocast_is_close_to_exact() -> None:
    model = TinyCNN(seed=11, width=16)
    x = torch.randn(3, 3, 48, 48)
    exact = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 1.5, 2.0])(x)
    fast = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 1.5, 2.0], dtype=torch.bfloat16)(x)
    assert fast.saliency.dtype == torch.float32 and fast.raw.dtype == torch.float32
    assert torch.equal(fast.targets, exact.targets)
    for i in range(3):
        assert _corr(fast.saliency[i], exact.saliency[i]) > 0.98
    assert (fast.saliency - exact.saliency).abs().max() < 0.15
    assert not torch.equal(fast.raw, exact.raw)  # it really ran in reduced precision


def test_channels_last_and_max_batch_equal_exact() -> None:
    model = TinyCNN(seed=12)
    x = torch.randn(5, 3, 40, 36)
    base = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 2.0])(x)
    split = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 2.0], max_batch=2)(x)
    assert torch.equal(split.targets, base.targets) and torch.equal(split.kept, base.kept)
    assert (split.saliency - base.saliency).abs().max() <= 1e-5
    given = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 2.0], max_batch=3)(x, targets=[1, 2, 3, 4, 5])
    assert given.targets.tolist() == [1, 2, 3, 4, 5]
    cl_model = TinyCNN(seed=12).to(memory_format=torch.channels_last)
    cl = cameras.CAMERAS(cl_model, layer="features", resolutions=[1.0, 2.0], channels_last=True)(x)
    assert (cl.saliency - base.saliency).abs().max() <= 1e-5


def test_fast_path_argument_errors() -> None:
    model = TinyCNN(seed=0)
    with pytest.raises(ValueError, match="dtype"):
        cameras.CAMERAS(model, layer="features", dtype=torch.float64)
    with pytest.raises(ValueError, match="max_batch"):
        cameras.CAMERAS(model, layer="features", max_batch=0)


def test_multi_class_shares_one_forward_per_scale() -> None:
    model = TinyCNN(seed=13)
    calls: list[int] = []
    handle = model.stem.register_forward_hook(lambda m, i, o: calls.append(1))
    out = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 1.5, 2.0])(torch.randn(2, 3, 32, 32), top_k=4)
    handle.remove()
    assert out.saliency.shape == (2, 4, 32, 32)
    assert len(calls) == 3  # one forward per scale for all 4 classes


# -- fusion implementations -----------------------------------------------------------------------------------------


def _interp_fusion(acts: list[torch.Tensor], grads: list[torch.Tensor], w: torch.Tensor, out: tuple[int, int]):  # type: ignore[no-untyped-def]
    """Definition: weighted sums over scales of F.interpolate'd A and G, product, sum over channels (float64)."""
    import torch.nn.functional as F

    b, k = grads[0].shape[:2]
    sa = sum(
        w[:, :, s, None, None, None].double() * F.interpolate(a.double(), size=out, mode="bilinear").unsqueeze(1)
        for s, a in enumerate(acts)
    )
    sg = sum(
        w[:, :, s, None, None, None].double()
        * F.interpolate(g.double().flatten(0, 1), size=out, mode="bilinear").reshape(b, k, -1, *out)
        for s, g in enumerate(grads)
    )
    return (sa * sg).sum(2)


def _random_problem(
    seed: int, batch: int, channels: int, classes: int, sizes: list[tuple[int, int]], zero: tuple[int, int, int]
) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    """Random per-scale A (B, C, h, w), G (B, K, C, h, w) and scale weights (B, K, S), one weight set to 0 (a
    dropped scale)."""
    gen = torch.Generator().manual_seed(seed)
    acts = [torch.randn(batch, channels, h, w, generator=gen) for h, w in sizes]
    grads = [torch.randn(batch, classes, channels, h, w, generator=gen) for h, w in sizes]
    weights = torch.rand(batch, classes, len(sizes), generator=gen)
    weights[zero] = 0.0
    return acts, grads, weights


@pytest.mark.parametrize("out", [(19, 23), (40, 6), (6, 40)])
def test_gram_fusion_equals_definition_both_orientations(out: tuple[int, int]) -> None:
    """(40, 6) and (6, 40) make the row- and the column-contraction the cheaper one: both code paths run."""
    from cameras.engine.fuse import fuse_gram

    acts, grads, w = _random_problem(2, 3, 11, 3, [(3, 9), (5, 4), (8, 7)], zero=(0, 2, 1))
    ref = _interp_fusion(acts, grads, w, out)
    for chunk in (1, 4, None):
        for split in (False, True):
            for group in (None, 2, 5):  # images batched per step (several at once is the CUDA default)
                got = fuse_gram(acts, grads, w, out, chunk_size=chunk, split_tf32=split, images_per_step=group)
                assert got.shape == ref.shape and got.dtype == torch.float32
                assert (got.double() - ref).abs().max() <= 1e-5 * ref.abs().max()
    with pytest.raises(ValueError, match="weights must be"):
        fuse_gram(acts, grads, w[:, :, :2], out)


def test_tf32_split_is_exact_and_restores_precision() -> None:
    """hi carries at most 10 mantissa bits, hi + lo reproduces x bit for bit, and the TF32 switch is undone even
    when the product raises."""
    from cameras.engine.fuse import _split_bmm, _tf32_split

    x = torch.randn(1000, dtype=torch.float32) * torch.logspace(-20, 20, 1000)
    hi, lo = _tf32_split(x)
    assert torch.equal(hi + lo, x)
    assert int((hi.view(torch.int32) & 0x1FFF).abs().max()) == 0  # the 13 low mantissa bits are clear
    assert bool((lo.abs() <= x.abs() * 2.0**-10).all())
    a, b = torch.randn(4, 30, 50), torch.randn(4, 50, 20)
    ref = a.double() @ b.double()
    assert (_split_bmm(a, b).double() - ref).abs().max() <= 1e-5 * ref.abs().max()
    before = torch.get_float32_matmul_precision()
    with pytest.raises(RuntimeError):
        _split_bmm(a, torch.randn(4, 7, 3))
    assert torch.get_float32_matmul_precision() == before


def test_bilinear_taps_equal_interpolate() -> None:
    import torch.nn.functional as F

    from cameras.engine.fuse_triton import bilinear_taps

    x = torch.randn(3, 11, dtype=torch.float64)
    for n_out in (1, 5, 11, 12, 37, 224):  # down-, identity and up-sampling
        i0, i1, lam = bilinear_taps(11, n_out)
        mine = (1 - lam.double()) * x[:, i0.long()] + lam.double() * x[:, i1.long()]
        ref = F.interpolate(x[None], size=n_out, mode="linear", align_corners=False)[0]
        assert (mine - ref).abs().max() < 1e-6, n_out
    assert bilinear_taps(4, 4)[2].abs().max() == 0  # identity: no mixing
    with pytest.raises(ValueError, match="positive"):
        bilinear_taps(0, 3)


@pytest.mark.parametrize("out", [(19, 23), (4, 3)])
def test_gather_fusion_equals_definition(out: tuple[int, int]) -> None:
    from cameras.engine.fuse_triton import fuse_gather

    acts, grads, w = _random_problem(0, 2, 13, 3, [(3, 4), (5, 6), (7, 9)], zero=(1, 2, 0))
    ref = _interp_fusion(acts, grads, w, out)
    for chunk in (1, 4, 64):
        got = fuse_gather(acts, grads, w, out, chunk_size=chunk)
        assert got.dtype == torch.float32
        assert (got.double() - ref).abs().max() <= 1e-5 * ref.abs().max()


def test_fuse_impls_agree_on_a_recording(monkeypatch: pytest.MonkeyPatch) -> None:
    from cameras.engine import fuse, record_scales, schedule
    from cameras.engine.fuse import cameras_rule

    from .nets import SizeSensitive

    model = SizeSensitive()  # scales dropped per image: per-(image, class) weights matter
    x = torch.rand(3, 3, 16, 20)
    rec = record_scales(model, "features", x, schedule([1.0, 2.0, 3.3, 5.0], (16, 20)))
    assert not bool(rec.keep.all())
    ref = fuse(rec, (16, 20), impl="interpolate", chunk_size=5)
    cases = [("matmul", 1), ("matmul", None), ("gram", 1), ("gram", 3), ("gram", None), ("gather", 2), ("auto", 3)]
    cases += [("tiles", 1), ("tiles", None)]
    for impl, chunk in cases:
        got = fuse(rec, (16, 20), impl=impl, chunk_size=chunk)
        assert (got - ref).abs().max() <= 1e-5 * ref.abs().max(), impl
    # on the CPU "auto" is exactly the tiled path (with the modelled tile) for the CAMERAS rule, the matmul path for
    # any other rule; with the interpolation weights over the cap it is the gram path
    import importlib

    from cameras.engine.fuse_tiles import auto_tile, fuse_tiles

    fuse_module = importlib.import_module("cameras.engine.fuse")
    weights = fuse_module.scale_weights(rec.keep)
    active = [s for s in range(len(rec.scales)) if bool(weights[:, :, s].any())]
    acts = [rec.scales[s].activations for s in active]
    grads = [rec.scales[s].gradients for s in active]
    tile = auto_tile([(a.shape[-2], a.shape[-1]) for a in acts], (16, 20), acts[0].shape[1])
    tiled = fuse_tiles(acts, grads, weights[:, :, active], (16, 20), tile=tile)
    assert torch.equal(fuse(rec, (16, 20), impl="auto"), tiled)
    monkeypatch.setattr(fuse_module, "TILES_MAX_TAPS_BYTES", 1000)
    assert torch.equal(fuse(rec, (16, 20), impl="auto"), fuse(rec, (16, 20), impl="gram"))

    def other(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return (a * g.relu()).sum(2)

    assert torch.equal(fuse(rec, (16, 20), other), fuse(rec, (16, 20), other, impl="matmul"))
    with pytest.raises(ValueError, match="CAMERAS rule only"):
        fuse(rec, (16, 20), lambda a, g: (a * g).sum(2), impl="gather")
    with pytest.raises(ValueError, match="CAMERAS rule only"):
        fuse(rec, (16, 20), other, impl="gram")
    for impl in ("triton", "triton-gather"):
        with pytest.raises(RuntimeError, match="CUDA"):
            fuse(rec, (16, 20), cameras_rule, impl=impl)
    with pytest.raises(ValueError, match="CAMERAS rule only"):
        fuse(rec, (16, 20), other, impl="triton")
    with pytest.raises(ValueError, match="chunk_size"):
        fuse(rec, (16, 20), chunk_size=0)


@pytest.mark.parametrize("fusion", ["tiles", "gram", "matmul", "gather", "interpolate"])
def test_cameras_fusion_options_match_reference(fusion: str) -> None:
    from cameras.engine import schedule

    from .reference import reference_cameras

    model = TinyCNN(seed=21)
    x = torch.randn(2, 3, 36, 44)
    res = [1.0, 1.6, 2.3]
    ref, ref_t, _ = reference_cameras(model, model.features, x, schedule(res, (36, 44)))
    out = cameras.CAMERAS(model, layer="features", resolutions=res, fusion=fusion)(x)
    assert torch.equal(out.targets, ref_t)
    assert (out.saliency - ref).abs().max() <= 1e-4


def test_triton_dispatch_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    from cameras.engine import fuse_triton as ft

    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert not ft.triton_available("cpu")
    assert not ft.triton_usable("cpu")  # never tries the kernel on a CPU
    acts, grads = [torch.ones(1, 2, 3, 3)], [torch.ones(1, 1, 2, 3, 3)]
    with pytest.raises(RuntimeError, match="impl='matmul'"):
        ft.fuse_triton(acts, grads, torch.ones(1, 1, 1), (4, 4))
    with pytest.raises(RuntimeError, match="impl='gram'"):
        ft.fuse_triton_gram(acts, grads, torch.ones(1, 1, 1), (4, 4))
    with pytest.raises(ValueError, match="one \\(A, G\\) pair per scale"):
        ft.fuse_gather(acts, [], torch.ones(1, 1, 1), (4, 4))
    with pytest.raises(ValueError, match="weights must be"):
        ft.fuse_gather(acts, grads, torch.ones(1, 1, 2), (4, 4))


_INTERPRETER_SCRIPT = r"""
import json, sys, warnings
import torch
sys.path.insert(0, sys.argv[1])
import cameras
from cameras.engine import fuse_triton as ft
from cameras.engine import fuse, record_scales, schedule
from engine.nets import SizeSensitive, TinyCNN
from engine.reference import reference_cameras

assert ft.interpreter_enabled() and ft.triton_available("cpu")
gen = torch.Generator().manual_seed(1)
sizes = [(3, 4), (6, 5), (9, 7)]
acts = [torch.randn(2, 37, h, w, generator=gen) for h, w in sizes]  # 37: a partial channel block
grads = [torch.randn(2, 3, 37, h, w, generator=gen) for h, w in sizes]
w = torch.rand(2, 3, 3, generator=gen)
w[0, 1, 2] = 0.0
res = {}
for out, bp, bc in [((19, 23), 64, 32), ((5, 4), 16, 8), ((11, 11), 32, 64)]:  # partial pixel tiles, downsampling
    got = ft.fuse_triton(acts, grads, w, out, block_p=bp, block_c=bc)
    ref = ft.fuse_gather(acts, grads, w, out)
    res[f"{out}"] = float((got - ref).abs().max() / ref.abs().max())
# Gram kernel: both orientations (rows or columns contracted), partial row/channel blocks, one image per launch
for out, blocks, per_launch in [((19, 23), None, None), ((40, 6), (16, 32, 16), 1), ((6, 40), (32, 16, 32), None)]:
    got = ft.fuse_triton_gram(acts, grads, w, out, blocks=blocks, max_images=per_launch)
    ref = ft.fuse_gather(acts, grads, w, out)
    res[f"gram{out}"] = float((got - ref).abs().max() / ref.abs().max())
model = SizeSensitive()
x = torch.rand(2, 3, 16, 20)
rec = record_scales(model, "features", x, schedule([1.0, 2.0, 3.3, 5.0], (16, 20)))
for impl in ("triton", "triton-gather"):
    res[f"recording-{impl}"] = float(
        (fuse(rec, (16, 20), impl=impl) - fuse(rec, (16, 20), impl="interpolate")).abs().max()
        / fuse(rec, (16, 20), impl="interpolate").abs().max()
    )
net = TinyCNN(seed=3)
x = torch.randn(1, 3, 24, 28)
ref_map, ref_t, _ = reference_cameras(net, net.features, x, schedule([1.0, 1.5], (24, 28)))
out = cameras.CAMERAS(net, layer="features", resolutions=[1.0, 1.5], fusion="triton")(x)
res["cameras_vs_reference"] = float((out.saliency - ref_map).abs().max())
res["targets_equal"] = bool(torch.equal(out.targets, ref_t))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    res["self_check"] = ft.triton_usable("cpu")
    ft._VERIFIED.clear()
    res["failing_check"] = ft.triton_usable("cpu", check=lambda: False)
    res["failing_check_cached"] = ft.triton_usable("cpu", check=lambda: True)
    ft._VERIFIED.clear()
    res["raising_check"] = ft.triton_usable("cpu", check=lambda: 1 / 0 > 0)
res["warnings"] = [str(c.message) for c in caught]
print(json.dumps(res))
"""


def test_triton_kernel_under_interpreter_matches_exact_path() -> None:
    """The real Triton kernel, run by Triton's CPU interpreter in a fresh process (the variable must be set before
    Triton is imported). Needs the ``triton`` package (it ships with PyTorch's Linux CUDA wheels)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import triton  # noqa: F401  (a missing triton is an error here, not a skip)

    tests_dir = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _INTERPRETER_SCRIPT, tests_dir], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    keys = ("(19, 23)", "(5, 4)", "(11, 11)", "gram(19, 23)", "gram(40, 6)", "gram(6, 40)")
    for key in (*keys, "recording-triton", "recording-triton-gather"):
        assert res[key] <= 1e-5, (key, res[key])
    assert res["cameras_vs_reference"] <= 1e-4 and res["targets_equal"]
    assert res["self_check"] is True
    assert res["failing_check"] is False and res["failing_check_cached"] is False  # verdict cached per device
    assert res["raising_check"] is False
    assert any("self-check" in m for m in res["warnings"]) and any("unusable" in m for m in res["warnings"])


# -- memory bounds --------------------------------------------------------------------------------------------------


def test_run_order_and_images_per_pass() -> None:
    from cameras.engine.accumulate import images_per_pass, run_order

    sizes = [(10, 10), (30, 30), (20, 20), (25, 25)]
    assert run_order(sizes) == [0, 1, 3, 2]
    assert run_order(sizes, base_first=False) == [1, 3, 2, 0]
    assert images_per_pass((30, 30), 7, None) == 7
    assert images_per_pass((30, 30), 7, 2000) == 2
    assert images_per_pass((30, 30), 7, 10) == 1  # at least one image
    assert images_per_pass((10, 10), 7, 10**6) == 7


def test_max_pixels_splits_per_scale_and_changes_nothing() -> None:
    from cameras.engine import record_scales, schedule
    from cameras.engine.accumulate import images_per_pass

    model = TinyCNN(seed=14)
    seen: list[tuple[int, int]] = []  # (batch, width) of every pass
    handle = model.stem.register_forward_hook(lambda m, i, o: seen.append((o.shape[0], o.shape[-1])))
    x = torch.randn(5, 3, 20, 20)
    sizes = schedule([1.0, 2.0, 3.0], (20, 20))
    whole = record_scales(model, "features", x, sizes, top_k=2)
    n_whole = len(seen)
    seen.clear()
    split = record_scales(model, "features", x, sizes, top_k=2, max_pixels=2 * 40 * 40)
    handle.remove()
    assert n_whole == 3
    # base first, then largest first; each scale split into passes of images_per_pass images
    expected = []
    for h in (20, 60, 40):
        step = images_per_pass((h, h), 5, 2 * 40 * 40)
        expected += [(min(step, 5 - b0), h) for b0 in range(0, 5, step)]
    assert seen == expected and expected[0] == (5, 20) and expected[1] == (1, 60)
    assert torch.equal(split.targets, whole.targets) and torch.equal(split.keep, whole.keep)
    for a, b in zip(split.scales, whole.scales):
        assert a.size == b.size and torch.equal(a.top1, b.top1)
        assert torch.allclose(a.activations, b.activations, atol=1e-6)
        assert torch.allclose(a.gradients, b.gradients, atol=1e-6)
    with pytest.raises(ValueError, match="max_pixels"):
        record_scales(model, "features", x, sizes, max_pixels=0)


def test_memory_budget_gives_the_same_maps() -> None:
    from cameras.engine.accumulate import bytes_per_pixel

    model = TinyCNN(seed=15)
    x = torch.randn(4, 3, 24, 24)
    bpp = bytes_per_pixel(model, "features", x, (48, 48))
    # the largest module output of one image at 48 px is the stem's 8×48×48 float32 map: 3 × that is the estimate floor
    assert bpp >= 3 * 8 * 4
    passes: list[int] = []
    handle = model.stem.register_forward_hook(lambda m, i, o: passes.append(o.shape[0]))
    base = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 2.0])(x)
    n_base = len(passes)
    passes.clear()
    small = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 2.0], memory_budget=int(bpp * 48 * 48))(x)
    handle.remove()
    assert n_base == 2
    assert passes[0] == 1 and 1 in passes[1:]  # the probe, then small passes at the largest scale
    assert torch.equal(small.targets, base.targets)
    assert (small.saliency - base.saliency).abs().max() <= 1e-5
    with pytest.raises(ValueError, match="memory_budget"):
        cameras.CAMERAS(model, layer="features", memory_budget=0)
    with pytest.raises(ValueError, match="fusion"):
        cameras.CAMERAS(model, layer="features", fusion="fast")
    with pytest.raises(TypeError, match="compile"):
        cameras.CAMERAS(model, layer="features", compile=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="compile_mode must be"):
        cameras.CAMERAS(model, layer="features", compile=True, compile_mode="fastest")
    with pytest.raises(ValueError, match="compile_mode needs"):
        cameras.CAMERAS(model, layer="features", compile_mode="reduce-overhead")


def test_compile_option_matches_eager() -> None:
    model = TinyCNN(seed=16)
    x = torch.randn(2, 3, 32, 32)
    eager = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 1.5])(x)
    compiled = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 1.5], compile="aot_eager")
    for _ in range(2):
        out = compiled(x)
        assert torch.equal(out.targets, eager.targets)
        assert (out.saliency - eager.saliency).abs().max() <= 1e-5
    assert all(p.requires_grad for p in model.parameters()) and all(p.grad is None for p in model.parameters())


def test_compile_mode_reaches_torch_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """``compile_mode`` is handed to torch.compile once (CUDA graphs are only exercised in tests/gpu)."""
    seen: list[dict[str, object]] = []
    real = torch.compile

    def spy(model: torch.nn.Module, **kwargs: object) -> object:
        seen.append(kwargs)
        return real(model, backend="aot_eager")

    monkeypatch.setattr(torch, "compile", spy)
    model = TinyCNN(seed=18)
    x = torch.randn(1, 3, 32, 32)
    eager = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 1.5])(x)
    explainer = cameras.CAMERAS(
        model, layer="features", resolutions=[1.0, 1.5], compile=True, compile_mode="reduce-overhead"
    )
    for _ in range(2):
        assert (explainer(x).saliency - eager.saliency).abs().max() <= 1e-5
    assert seen == [{"dynamic": False, "backend": "inductor", "mode": "reduce-overhead"}]


def test_bfloat16_multi_class_and_given_targets() -> None:
    model = TinyCNN(seed=17, width=16)
    x = torch.randn(2, 3, 40, 40)
    targets = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 2.0])(x, top_k=2).targets
    exact = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 2.0])(x, targets)
    fast = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 2.0], dtype=torch.bfloat16)(x, targets)
    assert fast.saliency.shape == exact.saliency.shape == (2, 2, 40, 40)
    assert torch.equal(fast.targets, targets) and bool(fast.kept.all())
    checked = 0
    for b in range(2):
        for k in range(2):
            if exact.raw[b, k].max() > 0:
                assert _corr(fast.saliency[b, k], exact.saliency[b, k]) > 0.95
                checked += 1
    assert checked >= 2


@pytest.mark.parametrize("method", ["cameras", "ms-gradcam++"])
def test_cpu_default_groups_images_by_largest_scale(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """On the CPU the multi-scale methods' default explains as many images together as keep the largest scale
    within CPU_PIXELS_PER_PASS pixels; the maps do not depend on the grouping."""
    from cameras.methods import base

    cls = cameras.CAMERAS if method == "cameras" else cameras.MultiScale(cameras.GradCAMPlusPlus)
    model = TinyCNN(seed=14)
    x = torch.randn(3, 3, 40, 40)
    whole = cls(model, layer="features", resolutions=[1.0, 2.0], max_batch=3)(x)
    for budget, groups in ((80 * 80, 3), (2 * 80 * 80, 2), (10**9, 1)):
        monkeypatch.setattr(base, "CPU_PIXELS_PER_PASS", budget)
        calls: list[int] = []
        handle = model.stem.register_forward_hook(lambda m, i, o, calls=calls: calls.append(int(i[0].shape[0])))
        out = cls(model, layer="features", resolutions=[1.0, 2.0])(x)
        handle.remove()
        assert len(calls) == 2 * groups  # two scales per group
        assert torch.equal(out.targets, whole.targets)
        assert (out.saliency - whole.saliency).abs().max() <= 1e-5
    given = cls(model, layer="features", resolutions=[1.0, 2.0], max_batch=2)(x, targets=[1, 0, 1])
    assert given.targets.tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="max_batch"):
        cls(model, layer="features", max_batch=0)
