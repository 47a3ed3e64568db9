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
from cameras.engine.fuse import fuse_gram
from cameras.engine.fuse_tiles import fuse_tiles
from cameras.engine.fuse_triton import fuse_gather, fuse_triton, fuse_triton_gram, triton_usable

from ..engine.nets import SizeSensitive, TinyCNN
from ..engine.reference import reference_cameras

CUDA = torch.device(os.environ.get("CAMERAS_TEST_DEVICE", "cuda"))
"""The device under test. ``CAMERAS_TEST_DEVICE=cpu TRITON_INTERPRET=1`` dry-runs the file on a CPU (the Triton kernel
under Triton's interpreter) to check the tests themselves."""

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


@pytest.mark.parametrize("fusion", ["auto", "tiles", "triton", "triton-gather", "gram", "matmul", "interpolate"])
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
    for fusion in ("auto", "tiles", "triton", "triton-gather", "gram", "gram-tf32", "matmul"):
        gpu = cameras.CAMERAS(net, layer="layer4", resolutions=[128, 192, 256], fusion=fusion)(x.to(CUDA))
        assert torch.equal(gpu.targets.cpu(), cpu.targets)
        assert (gpu.saliency.cpu() - cpu.saliency).abs().max() <= 1e-4, fusion


def test_triton_kernel_equals_gather_on_cuda() -> None:
    assert triton_usable(CUDA)  # both kernels pass their one-time self-check
    gen = torch.Generator().manual_seed(4)
    sizes = [(7, 7), (11, 10), (14, 15), (30, 29)]
    channels, out = (300, (97, 131)) if CUDA.type == "cuda" else (40, (13, 17))  # the interpreter is slow
    acts = [torch.randn(2, channels, h, w, generator=gen).to(CUDA) for h, w in sizes]
    grads = [torch.randn(2, 3, channels, h, w, generator=gen).to(CUDA) for h, w in sizes]
    weights = torch.rand(2, 3, 4, generator=gen).to(CUDA)
    weights[1, 2, 3] = 0.0
    ref = fuse_gather(acts, grads, weights, out)
    scale = ref.abs().max()
    for blocks in ((None, None), (64, 32), (128, 16), (32, 64)):
        got = fuse_triton(acts, grads, weights, out, block_p=blocks[0], block_c=blocks[1])
        assert (got - ref).abs().max() <= 1e-5 * scale, blocks
    for split in (False, True):
        got = fuse_gram(acts, grads, weights, out, split_tf32=split)
        assert (got - ref).abs().max() <= 1e-5 * scale, split
    for tile in (None, 8, (16, 28), 32):
        for per_step in (None, 1):
            got = fuse_tiles(acts, grads, weights, out, tile=tile, images_per_step=per_step)
            assert (got - ref).abs().max() <= 1e-5 * scale, (tile, per_step)
    for blocks in (None, (64, 64, 32), (32, 128, 16), (16, 16, 16)):
        for per_launch in (None, 1):
            for size in (out, out[::-1]):  # both orientations
                got = fuse_triton_gram(acts, grads, weights, size, blocks=blocks, max_images=per_launch)
                want = ref if size == out else fuse_gather(acts, grads, weights, size)
                assert (got - want).abs().max() <= 1e-5 * scale, (blocks, per_launch, size)
    assert torch.get_float32_matmul_precision() == "highest"  # the split's TF32 switch was undone


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
