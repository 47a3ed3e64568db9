"""CUDA checks: every GPU path against the CPU float32 engine or the slow definition-level reference.

These run only where a CUDA device is present (CI has none; they are run on the lent GPU machine, see BENCHMARKS.md)
and are skipped, visibly, elsewhere. cuDNN's and cuBLAS's TF32 shortcuts are switched off inside each test so that the
GPU's float32 convolutions are comparable with the CPU's within 1e-4.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch
import torchvision

import cameras
from cameras.engine import fuse, record_scales
from cameras.engine.fusion import IMPLS, fuse_gram, fuse_interpolate, fuse_matmul, fuse_tiles

from ..engine.nets import SizeSensitive, TinyCNN
from ..engine.reference import random_problem, reference_cameras, reference_fusion

CUDA = torch.device(os.environ.get("CAMERAS_TEST_DEVICE", "cuda"))
"""The device under test. ``CAMERAS_TEST_DEVICE=cpu`` dry-runs the file on a CPU to check the tests themselves."""

pytestmark = pytest.mark.skipif(
    CUDA.type == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device (or CAMERAS_TEST_DEVICE)"
)


@pytest.fixture(autouse=True)
def exact_float32() -> Iterator[None]:
    conv, mm = torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision()
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = conv
        torch.set_float32_matmul_precision(mm)


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten() - a.mean(), b.flatten() - b.mean()
    return float((a @ b) / (a.norm() * b.norm()))


@pytest.mark.parametrize("fusion", IMPLS)
def test_engine_on_cuda_equals_reference(fusion: str) -> None:
    model = TinyCNN(seed=21, width=16)
    x = torch.randn(3, 3, 40, 52)
    sizes = [(40, 52), (60, 78), (80, 104)]
    ref_maps, ref_targets, _ = reference_cameras(model, model.features, x, sizes)
    out = cameras.CAMERAS(model.to(CUDA), layer="features", resolutions=[1.0, 1.5, 2.0], fusion=fusion)(x.to(CUDA))
    assert out.saliency.device == torch.device(CUDA.type, 0) or out.saliency.device == CUDA
    assert out.targets.cpu().tolist() == ref_targets.tolist()
    assert (out.saliency.cpu() - ref_maps).abs().max() <= 1e-4


def test_keep_rule_on_cuda() -> None:
    model = SizeSensitive(seed=3)
    x = torch.rand(2, 3, 24, 24)
    sizes = [(24, 24), (48, 48), (96, 96)]
    ref_maps, ref_targets, ref_kept = reference_cameras(model, model.features, x, sizes)
    out = cameras.CAMERAS(model.to(CUDA), layer="features", resolutions=[24, 48, 96])(x.to(CUDA))
    assert out.targets.cpu().tolist() == ref_targets.tolist()
    assert out.kept.cpu().tolist() == ref_kept.tolist()
    assert not bool(ref_kept.all())  # the model really drops scales
    assert (out.saliency.cpu() - ref_maps).abs().max() <= 1e-4


def test_resnet18_cuda_matches_cpu_engine_every_fusion() -> None:
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None).eval()
    x = torch.randn(2, 3, 128, 128)
    cpu = cameras.CAMERAS(net, layer="layer4", resolutions=[128, 192, 256], fusion="interpolate")(x)
    net = net.to(CUDA)
    for fusion in IMPLS:
        gpu = cameras.CAMERAS(net, layer="layer4", resolutions=[128, 192, 256], fusion=fusion)(x.to(CUDA))
        assert torch.equal(gpu.targets.cpu(), cpu.targets)
        assert (gpu.saliency.cpu() - cpu.saliency).abs().max() <= 1e-4, fusion


def test_fusion_paths_on_cuda_equal_the_float64_definition() -> None:
    """Every kept path with its CUDA step sizes (several images per step by default, one per step forced) and both
    orientations of the output, against the float64 definition computed on the CPU: four scales, three classes, a
    dropped scale, a partial last channel step (300 channels)."""
    sizes = [(7, 7), (11, 10), (14, 15), (30, 29)]
    channels, out = (300, (97, 131)) if CUDA.type == "cuda" else (40, (13, 17))  # a smaller dry run on a CPU
    acts, grads, weights = random_problem(4, 2, channels, 3, sizes, zero=(1, 2, 3))
    dev = ([a.to(CUDA) for a in acts], [g.to(CUDA) for g in grads], weights.to(CUDA))
    for size in (out, out[::-1]):
        ref = reference_fusion(acts, grads, weights, size)
        runs: dict[object, torch.Tensor] = {
            "matmul": fuse_matmul(*dev, size),
            "interpolate": fuse_interpolate(*dev, size),
        }
        for per_step in (None, 1):
            runs["gram", per_step] = fuse_gram(*dev, size, images_per_step=per_step)
            runs["gram", 64, per_step] = fuse_gram(*dev, size, chunk_size=64, images_per_step=per_step)
            for tile in (None, 8, (16, 28), 32):
                runs["tiles", tile, per_step] = fuse_tiles(*dev, size, tile=tile, images_per_step=per_step)
        for label, got in runs.items():
            assert got.device.type == CUDA.type and got.dtype == torch.float32
            assert (got.cpu().double() - ref).abs().max() <= 1e-5 * ref.abs().max(), (label, size)


def test_multiscale_on_cuda_matches_cpu() -> None:
    """The MultiScale methods' paths on CUDA ("auto" is "interpolate" there) against the CPU engine."""
    model = TinyCNN(seed=26, width=16)
    x = torch.randn(2, 3, 40, 48)
    cls = cameras.MultiScale(cameras.GradCAMPlusPlus, resolutions=[1.0, 1.5, 2.0])
    cpu = cls(model, layer="features", fusion="matmul")(x)
    model = model.to(CUDA)
    for fusion in ("auto", "matmul", "interpolate"):
        gpu = cls(model, layer="features", fusion=fusion)(x.to(CUDA))
        assert torch.equal(gpu.targets.cpu(), cpu.targets)
        assert (gpu.saliency.cpu() - cpu.saliency).abs().max() <= 1e-4, fusion


def test_bfloat16_autocast_on_cuda() -> None:
    model = TinyCNN(seed=22, width=16).to(CUDA)
    x = torch.randn(4, 3, 48, 48, device=CUDA)
    exact = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 1.5, 2.0])(x)
    fast = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 1.5, 2.0], dtype=torch.bfloat16)(x)
    assert fast.saliency.dtype == torch.float32
    assert torch.equal(fast.targets, exact.targets)
    assert not torch.equal(fast.raw, exact.raw)  # reduced precision really ran
    for i in range(4):
        assert _corr(fast.saliency[i], exact.saliency[i]) > 0.98


def test_channels_last_memory_budget_and_top_k_on_cuda() -> None:
    model = TinyCNN(seed=23, width=16).to(CUDA)
    x = torch.randn(5, 3, 40, 36, device=CUDA)
    base = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 2.0])(x)
    budget = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 2.0], memory_budget=2**20, max_batch=2)(x)
    assert torch.equal(budget.targets, base.targets)
    assert (budget.saliency - base.saliency).abs().max() <= 1e-5
    cl_model = TinyCNN(seed=23, width=16).to(CUDA, memory_format=torch.channels_last)
    cl = cameras.CAMERAS(cl_model, layer="features", resolutions=[1.0, 2.0], channels_last=True)(x)
    assert (cl.saliency - base.saliency).abs().max() <= 1e-5
    top = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 2.0])(x, top_k=3)
    for k in range(3):
        one = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 2.0])(x, targets=top.targets[:, k].cpu())
        assert (one.saliency - top.saliency[:, k]).abs().max() <= 1e-5


def test_gradcam_baseline_on_cuda_matches_cpu() -> None:
    model = TinyCNN(seed=24, width=16)
    x = torch.randn(2, 3, 32, 32)
    cpu = cameras.GradCAM(model, layer="features")(x)
    gpu = cameras.GradCAM(model.to(CUDA), layer="features")(x.to(CUDA))
    assert torch.equal(gpu.targets.cpu(), cpu.targets)
    assert (gpu.saliency.cpu() - cpu.saliency).abs().max() <= 1e-4


def test_fuse_auto_on_cuda_is_an_exact_path() -> None:
    torch.manual_seed(1)
    net = torchvision.models.resnet18(weights=None).eval().to(CUDA)
    x = torch.randn(1, 3, 96, 96, device=CUDA)
    rec = record_scales(net, "layer4", x, [(96, 96), (144, 144), (192, 192)], torch.tensor([[3]], device=CUDA))
    ref = fuse(rec, (96, 96), impl="interpolate")
    got = fuse(rec, (96, 96), impl="auto")
    assert (got - ref).abs().max() <= 1e-5 * ref.abs().max()
    chosen = "gram" if CUDA.type == "cuda" else "tiles"  # the measured default of each device
    assert torch.equal(got, fuse(rec, (96, 96), impl=chosen))


@pytest.mark.slow
def test_compiled_with_cuda_graphs_matches_eager() -> None:
    """``compile=True, compile_mode="reduce-overhead"`` (inductor, CUDA graphs replayed per scale shape) gives the
    eager engine's maps on repeated calls, and leaves the model's parameters untouched."""
    model = TinyCNN(seed=25, width=16).to(CUDA)
    x = torch.randn(1, 3, 40, 40, device=CUDA)
    eager = cameras.CAMERAS(model, layer="features", resolutions=[1.0, 1.5])(x)
    graphs = cameras.CAMERAS(
        model, layer="features", resolutions=[1.0, 1.5], compile=True, compile_mode="reduce-overhead"
    )
    for _ in range(3):  # warm-up recording, then replays
        out = graphs(x)
        assert torch.equal(out.targets, eager.targets)
        assert (out.saliency - eager.saliency).abs().max() <= 1e-4
    assert all(p.grad is None for p in model.parameters())
