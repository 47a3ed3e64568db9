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
