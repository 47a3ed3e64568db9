"""CAMERAS (Jalwana, Akhtar, Bennamoun, Mian, CVPR 2021): the engine with the paper's rule."""

from __future__ import annotations

import functools
import sys
from typing import Any

import torch
from torch import Tensor, nn

from ..engine.accumulate import bytes_per_pixel, record_scales
from ..engine.contrast import Contrast
from ..engine.fusion import IMPLS, cameras_rule, fuse
from ..engine.layout import Reshape
from ..engine.result import Result
from ..engine.scales import Resolutions, schedule
from .base import CPU_PIXELS_PER_PASS, Explainer, Targets, explain_in_groups
from .compiling import COMPILE_DYNAMIC, CompileSetting, check_compile, resolve_compile, use_inductor_cache

__all__ = ["CAMERAS", "COMPILE_MODES", "CPU_PIXELS_PER_PASS"]

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
"""Accepted ``compile_mode`` values (``torch.compile``'s modes)."""


class CAMERAS(Explainer):
    r"""Enhanced-resolution, sanity-preserving class activation maps.

    For an input of size H×W the image is run at every scale of the schedule (default: the paper's factors 1,
    324/224, …, 924/224, i.e. 224…924 px for a 224 px input; every scale but the input itself is a bicubic resize).
    At each scale the layer's activations :math:`A_s` and the gradient :math:`G_s` of the target class *logit* w.r.t.
    them are recorded; both are upsampled bilinearly to H×W, averaged over the kept scales, and fused:

    .. math:: M = \mathrm{ReLU}\Big(\sum_c \bar A_c \odot \bar G_c\Big), \quad \text{then min–max normalised.}

    With no target the class is the top-1 at the base scale and only scales whose own top-1 agrees are kept; with a
    target every scale is kept (Jalwana et al. 2021, Sec. 3, Alg. 1).

    Engineering: the backward pass stops at the layer (no parameter gradients, no graph below the layer), each scale
    keeps only its layer-resolution A and G, and the fusion never materialises upsampled tensors of all channels
    (the channel sum is contracted at low resolution: per output tile on the CPU, per output column on CUDA). K
    classes of the same images share one forward pass per scale (K gradients from one graph).

    Args:
        model: classifier returning logits (B, num_classes); any device and floating dtype.
        layer: dotted name (``"layer4"``, ``"features.29"``) or module; ``None`` uses ``model.cameras_default_layer``
            (set by :func:`cameras.models.load`).
        resolutions: the schedule (:func:`cameras.engine.scales.schedule`, the one reading shared with the command
            line's ``--resolutions``): ``None`` (paper factors 1, 324/224, …, 924/224), shorter sides in pixels with
            the input's aspect ratio kept (``[224, 324, 424]`` runs 224×359, 324×519, 424×679 on a 224×359 input),
            factors (``[1.0, 1.5]``) or (h, w) pairs. The first entry is the base scale.
        square: run every scale as a square (``[224, 324]`` runs 224×224 and 324×324 whatever the input's aspect,
            the paper's setting; ``--square`` on the command line); no effect on a square input.
        chunk_size: channels upsampled at once in the fusion (memory bound); ``None`` chooses ≈16 MB buffers.
        progress: show a progress bar over scales.
        dtype: ``None`` (default, exact float32 path) or ``torch.bfloat16`` / ``torch.float16``: forward passes under
            autocast in that dtype; activations and gradients are accumulated and fused in float32. Faster on GPUs;
            maps differ slightly from the exact path (see BENCHMARKS.md). Never the default.
        channels_last: feed inputs in channels-last memory format (pair with
            ``model.to(memory_format=torch.channels_last)``).
        max_batch: largest number of images explained at once (recording and fusion); bigger batches are split.
            ``None`` (default): on the CPU, as many images as keep the largest scale within
            :data:`CPU_PIXELS_PER_PASS` pixels (one at a time for the paper's schedule; faster there, see
            BENCHMARKS.md), the whole batch on other devices. Results do not depend on it.
        memory_budget: bytes one forward/backward pass may use: at each scale the batch is split into passes of
            at most ``budget / (bytes per pixel × h × w)`` images (small scales run big batches, the largest scale
            small ones). Bytes per pixel are measured once per input shape by a one-image pass at the largest scale
            (on CUDA with the allocator's peak counter, which that pass resets; elsewhere a rough estimate).
            ``None``: no split. Results do not depend on it.
        fusion: fusion path, one of :data:`cameras.engine.fusion.IMPLS`: ``"auto"`` (default: ``"tiles"`` on the
            CPU, the fastest path measured there, and ``"gram"`` on CUDA, the fastest measured on an H100),
            ``"tiles"`` (tiled Gram form; also runs on CUDA, where it is not yet timed), ``"gram"`` (column-wise Gram
            form), ``"matmul"`` (resize-matrix products) or ``"interpolate"`` (the literal definition,
            ``F.interpolate`` per scale); see :mod:`cameras.engine.fusion`. All agree within float rounding.
        compile: run the model through ``torch.compile`` (paid on the first call, then faster; see BENCHMARKS.md):
            ``False`` (default, eager), ``True`` for the default backend (inductor, needs a C++/Triton toolchain),
            ``"auto"`` (compile when a call explains at least
            :data:`~cameras.methods.compiling.COMPILE_AUTO_MIN_PHOTOS` images; :func:`cameras.evaluate` and the
            command line decide from the whole run's photo count) or a backend name such as ``"aot_eager"``. With
            :data:`~cameras.methods.compiling.COMPILE_DYNAMIC` one graph with dynamic shapes serves every scale;
            inductor's kernels are cached on disk in :func:`~cameras.methods.compiling.inductor_cache_dir`
            (``~/.cache/cameras/inductor``; ``TORCHINDUCTOR_CACHE_DIR`` overrides), so a rerun starts warm. With
            ``progress`` a line "compiling (first call)" goes to stderr.
        compile_mode: ``torch.compile``'s ``mode`` (needs ``compile``): ``"reduce-overhead"`` replays each scale's
            kernels as CUDA graphs, which is what batch 1 on a GPU needs when kernel launches, not the GPU, bound the
            time (see BENCHMARKS.md); ``"max-autotune"``, ``"max-autotune-no-cudagraphs"``, ``"default"``, or
            ``None`` for PyTorch's default. Inductor only (other backends ignore it).
        reshape: the layer output's layout: ``None`` (the model's ``cameras_default_reshape``, else (B, C, h, w)
            maps and Vision Transformer tokens (B, N, C), prefix tokens dropped and the patch grid taken at each
            scale's size), ``"nchw"``, ``"tokens"``, ``"nhwc"`` (Swin), a :class:`~cameras.engine.layout.TokenLayout`
            or a callable ``(output, input_size) -> (B, C, h, w)``. The model must accept every size of the schedule
            (timm ViTs built with ``dynamic_img_size=True``, as :func:`cameras.models.load` builds them); a model
            fixed to one size raises a ``ValueError`` that says how to build it.

    Call:
        ``explainer(images, targets=None, top_k=1, *, contrast=None, gamma=1.0, contrast_k=1)``

        * images: (B, 3, H, W) normalised for the model.
        * targets: ``None``, an int, B ints, a (B,) LongTensor, or a (B, K) LongTensor for K classes per image.
        * top_k: with ``targets=None``, explain the top-k classes (k > 1 gives (B, k, H, W) maps; a scale is kept
          for a class when the class is in that scale's top-k, which for k = 1 is the paper's rule).
        * contrast, gamma, contrast_k: explain each target *against* rival classes: :math:`A_s` and the gradients
          :math:`G_s` of :math:`y_c - \gamma\,\mathrm{mean}_j\,y_{d_j}` at every scale (see
          :class:`~cameras.methods.base.Explainer` for the accepted forms; ``"auto"`` takes each target's
          ``contrast_k`` most probable other classes at the base scale). The rivals are the same at every scale, and
          the scale-keeping rule stays the paper's: with a target given every scale is kept; with no target the
          class is the top-1 at the base scale and a scale is kept when its own top-1 agrees (the rule is about the
          class, not the explained score).

    Returns:
        :class:`~cameras.engine.result.Result` with ``saliency`` (B, H, W) in [0, 1] on the images' device,
        ``targets`` (B,), ``probabilities`` (B,), ``raw`` (B, H, W), ``kept`` (B, S), ``resolutions``, and for a
        contrastive call ``contrast`` (B, M) and ``gamma``.

    Example:
        >>> import torch, torchvision, cameras
        >>> net = torchvision.models.resnet18().eval()
        >>> out = cameras.CAMERAS(net, layer="layer4", resolutions=[64, 96])(torch.randn(2, 3, 64, 64))
        >>> out.saliency.shape, out.targets.shape
        (torch.Size([2, 64, 64]), torch.Size([2]))
    """

    name = "cameras"
    supports_contrast = True

    def __init__(
        self,
        model: nn.Module,
        layer: str | nn.Module | None = None,
        resolutions: Resolutions = None,
        *,
        square: bool = False,
        chunk_size: int | None = None,
        progress: bool = False,
        dtype: torch.dtype | None = None,
        channels_last: bool = False,
        max_batch: int | None = None,
        memory_budget: int | None = None,
        fusion: str = "auto",
        compile: CompileSetting = False,
        compile_mode: str | None = None,
        reshape: Reshape = None,
    ) -> None:
        super().__init__(model, layer, reshape=reshape)
        self.resolutions = resolutions
        self.square = bool(square)
        schedule(resolutions, (224, 224), square=self.square)  # validate early
        self.chunk_size = chunk_size
        self.progress = progress
        if dtype is not None and dtype not in (torch.bfloat16, torch.float16):
            raise ValueError(f"dtype must be None (exact), torch.bfloat16 or torch.float16, got {dtype}.")
        if max_batch is not None and (not isinstance(max_batch, int) or max_batch < 1):
            raise ValueError(f"max_batch must be a positive int or None, got {max_batch!r}.")
        if memory_budget is not None and (not isinstance(memory_budget, int) or memory_budget < 1):
            raise ValueError(f"memory_budget must be a positive number of bytes or None, got {memory_budget!r}.")
        compile = check_compile(compile)
        if compile_mode is not None and compile_mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode must be None or one of {', '.join(COMPILE_MODES)}, got {compile_mode!r}.")
        if compile_mode is not None and not compile:
            raise ValueError("compile_mode needs compile=True (or a backend name).")
        if fusion not in IMPLS:
            raise ValueError(f"fusion must be one of {', '.join(map(repr, IMPLS))}, got {fusion!r}.")
        self.dtype = dtype
        self.channels_last = channels_last
        self.max_batch = max_batch
        self.memory_budget = memory_budget
        self.fusion = fusion
        self.compile = compile
        self.compile_mode = compile_mode
        self.compile_dynamic = COMPILE_DYNAMIC
        self._compiled: nn.Module | None = None
        self._resolved: bool | str | None = None
        self._bytes_per_pixel: dict[tuple[Any, ...], float] = {}

    def _runner(self, images: int = 1) -> tuple[nn.Module, str | nn.Module]:
        """The callable model and the layer to tap on it (the compiled wrapper shares the original's modules);
        ``images``: the call's batch size, which decides ``compile="auto"`` on the first call."""
        assert self.layer_name is not None
        if self._resolved is None:
            self._resolved = resolve_compile(self.compile, images)
        if not self._resolved:
            return self.model, self.layer_name
        if self._compiled is None:
            backend = self._resolved if isinstance(self._resolved, str) else "inductor"
            if backend == "inductor":
                use_inductor_cache()
            if self.progress:
                print("compiling (first call)", file=sys.stderr, flush=True)
            self._compiled = torch.compile(  # type: ignore[assignment]
                self.model, dynamic=self.compile_dynamic, backend=backend, mode=self.compile_mode
            )
        assert self._compiled is not None
        return self._compiled, dict(self.model.named_modules())[self.layer_name]

    def _max_pixels(self, images: Tensor, sizes: list[tuple[int, int]]) -> int | None:
        if self.memory_budget is None:
            return None
        largest = max(sizes, key=lambda s: s[0] * s[1])
        key = (tuple(images.shape[1:]), str(images.device), images.dtype, self.dtype, self.channels_last, largest)
        if key not in self._bytes_per_pixel:
            model, layer = self._runner()
            self._bytes_per_pixel[key] = bytes_per_pixel(
                model,
                layer,
                images,
                largest,
                autocast_dtype=self.dtype,
                channels_last=self.channels_last,
                reshape=self.reshape,
            )
        return max(1, int(self.memory_budget / self._bytes_per_pixel[key]))

    def __call__(self, images: Tensor, targets: Targets = None, top_k: int = 1, **kwargs: Any) -> Result:
        if not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive int, got {top_k!r}.")
        if top_k > 1 and targets is not None:
            raise ValueError("Give either targets or top_k > 1, not both.")
        result = super().__call__(images, targets, top_k=top_k, **kwargs)
        if targets is None and top_k == 1:
            result = result.select(0)
        return result

    def explain(
        self,
        images: Tensor,
        targets: Tensor | None,
        top_k: int = 1,
        contrast: Contrast | None = None,
        **kwargs: Any,
    ) -> Result:
        if self._resolved is None:  # "auto" decided by the first call's whole batch, before it is split in groups
            self._resolved = resolve_compile(self.compile, int(images.shape[0]))
        batch = functools.partial(self._explain_batch, top_k=top_k)
        return explain_in_groups(images, targets, self.resolutions, self.max_batch, batch, contrast, self.square)

    def _explain_batch(
        self,
        images: Tensor,
        targets: Tensor | None,
        sizes: list[tuple[int, int]],
        contrast: Contrast | None,
        top_k: int,
    ) -> Result:
        assert self.layer_name is not None
        model, layer = self._runner()
        recording = record_scales(
            model,
            layer,
            images,
            sizes,
            targets,
            top_k=top_k,
            progress=self.progress,
            autocast_dtype=self.dtype,
            channels_last=self.channels_last,
            max_pixels=self._max_pixels(images, sizes),
            contrast=contrast,
            reshape=self.reshape,
        )
        out_size = (int(images.shape[-2]), int(images.shape[-1]))
        raw = torch.relu(fuse(recording, out_size, cameras_rule, chunk_size=self.chunk_size, impl=self.fusion))
        return Result.from_recording(raw, recording, self.name)
