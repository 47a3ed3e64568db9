"""Layer tap: capture a layer's output as an autograd leaf, with no graph below it.

The tap is the heart of the engine. During one forward pass it

* runs every module *below* the chosen layer with autograd disabled (no graph, no saved tensors),
* replaces the layer's output by a fresh leaf tensor that requires grad, and switches autograd on from that point
  so that only the layers *above* the tap record a graph,
* freezes every parameter (``requires_grad=False``) so the graph above the tap never prepares parameter gradients.

The gradient of any class score w.r.t. the layer output is then one :func:`torch.autograd.grad` call whose backward
stops at the leaf. Layers whose output is not a (B, C, h, w) map — Vision Transformer tokens (B, N, C), Swin's
channels-last (B, H, W, C) maps — go through a :mod:`~cameras.engine.layout`: the leaf is the (B, C, h, w) map
(prefix tokens dropped, the patch grid taken at the input's size) and the model continues with its own layout rebuilt
from it, so the gradient w.r.t. the leaf is the gradient w.r.t. the patch tokens.

On exit (also after an exception) the hook is removed and the model's training flag and every parameter's
``requires_grad`` are restored; hooks the user installed are never touched.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import torch
from torch import Tensor, nn

from .contrast import class_scores
from .layout import Layout, Reshape, TapContext, check_input_size, resolve_layout

__all__ = [
    "LayerNotReachedError",
    "LayerReusedError",
    "LayerTap",
    "TapOutput",
    "extract_logits",
    "last_spatial_layer",
    "resolve_layer",
]


class LayerNotReachedError(RuntimeError):
    """The tapped layer did not run during the forward pass, or the logits do not depend on it."""


class LayerReusedError(RuntimeError):
    """The tapped module ran more than once in one forward pass (a shared module), so its output is ambiguous."""


def resolve_layer(model: nn.Module, layer: str | nn.Module) -> tuple[str, nn.Module]:
    """Find a layer of ``model`` by dotted name (``"layer4"``, ``"features.29"``) or by module object.

    Args:
        model: the network.
        layer: a dotted name as listed by ``model.named_modules()``, or a submodule of ``model``.

    Returns:
        ``(name, module)``.

    Raises:
        ValueError: unknown name (the message lists the closest names) or a module that is not part of ``model``.
        TypeError: ``layer`` is neither a string nor a module.

    Example:
        >>> import torchvision
        >>> resolve_layer(torchvision.models.resnet18(), "layer4")[0]
        'layer4'
    """
    modules = dict(model.named_modules())
    if isinstance(layer, str):
        if layer in modules and layer != "":
            return layer, modules[layer]
        names = [n for n in modules if n]
        close = difflib.get_close_matches(layer, names, n=5, cutoff=0.5)
        if not close:
            close = [n for n in names if layer.lower() in n.lower()][:5]
        hint = f" Did you mean: {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"Layer {layer!r} not found in {type(model).__name__}.{hint} "
            "List the names with `[n for n, _ in model.named_modules()]`."
        )
    if isinstance(layer, nn.Module):
        for name, mod in modules.items():
            if mod is layer:
                if name == "":
                    raise ValueError("The layer must be a submodule of the model, not the model itself.")
                return name, mod
        raise ValueError(f"The given {type(layer).__name__} module is not a submodule of the model.")
    raise TypeError(f"layer must be a dotted name (str) or an nn.Module, got {type(layer).__name__}.")


def extract_logits(output: Any) -> Tensor:
    """Return the (B, num_classes) logits from a model output (tensor, ``.logits``, mapping or tuple)."""
    if isinstance(output, Tensor):
        logits = output
    elif hasattr(output, "logits") and isinstance(output.logits, Tensor):
        logits = output.logits
    elif isinstance(output, Mapping) and isinstance(output.get("logits"), Tensor):
        logits = output["logits"]
    elif isinstance(output, tuple | list) and output and isinstance(output[0], Tensor):
        logits = output[0]
    else:
        raise TypeError(f"Cannot find logits in the model output of type {type(output).__name__}.")
    if logits.dim() != 2:
        raise ValueError(f"Expected the model to return logits of shape (B, num_classes), got {tuple(logits.shape)}.")
    return logits


@dataclass
class TapOutput:
    """One forward pass through a :class:`LayerTap`.

    Attributes:
        logits: (B, num_classes) class scores; part of a graph rooted at ``activations`` when ``grad`` was requested.
        activations: (B, C, h, w) the layer's output in the tap's layout, a leaf tensor (``requires_grad=True`` when
            ``grad``).
    """

    logits: Tensor
    activations: Tensor


class LayerTap:
    """Context manager that taps one layer of a model (see the module docstring for what it guarantees).

    Args:
        model: any ``nn.Module`` classifier returning logits (B, num_classes).
        layer: dotted name or submodule whose output is tapped.
        eval_mode: put the model in eval mode while tapped (restored on exit). Default ``True``.
        reshape: the layer output's layout (:data:`~cameras.engine.layout.Reshape`): ``None`` (the model's
            ``cameras_default_reshape``, else ``"auto"``: (B, C, h, w) maps and (B, N, C) tokens), ``"nchw"``,
            ``"tokens"``, ``"nhwc"``, a :class:`~cameras.engine.layout.Layout`, or a callable
            ``(output, input_size) -> (B, C, h, w)``.

    Example:
        >>> import torch, torchvision
        >>> net = torchvision.models.resnet18()
        >>> with LayerTap(net, "layer4") as tap:
        ...     out = tap.forward(torch.randn(1, 3, 64, 64))
        ...     g = tap.gradient(out, torch.tensor([[3]]))
        >>> out.activations.shape, g.shape
        (torch.Size([1, 512, 2, 2]), torch.Size([1, 1, 512, 2, 2]))
    """

    def __init__(
        self, model: nn.Module, layer: str | nn.Module, *, eval_mode: bool = True, reshape: Reshape = None
    ) -> None:
        self.model = model
        self.name, self.module = resolve_layer(model, layer)
        self.eval_mode = eval_mode
        self.layout: Layout = resolve_layout(reshape, model)
        self._context = TapContext(self.name, (0, 0))
        self._handle: torch.utils.hooks.RemovableHandle | None = None
        self._saved_training: list[tuple[nn.Module, bool]] = []
        self._saved_requires_grad: list[tuple[nn.Parameter, bool]] = []
        self._calls = 0
        self._leaf: Tensor | None = None
        self._want_grad = True
        self._active = False

    # -- context management -------------------------------------------------------------------------------------
    def __enter__(self) -> LayerTap:
        if self._active:
            raise RuntimeError("This LayerTap is already active.")
        self._saved_training = [(m, m.training) for m in self.model.modules()]
        self._saved_requires_grad = [(p, p.requires_grad) for p in self.model.parameters()]
        try:
            if self.eval_mode:
                self.model.eval()
            for p, _ in self._saved_requires_grad:
                p.requires_grad_(False)
            self._handle = self.module.register_forward_hook(self._hook)
        except BaseException:
            self._restore()
            raise
        self._active = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._restore()  # never swallows the exception: returns None

    def _restore(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        for m, mode in self._saved_training:
            m.training = mode
        for p, flag in self._saved_requires_grad:
            p.requires_grad_(flag)
        self._saved_training = []
        self._saved_requires_grad = []
        self._leaf = None
        self._active = False

    # -- the hook -----------------------------------------------------------------------------------------------
    def _hook(self, module: nn.Module, inputs: Any, output: Any) -> Tensor:
        self._calls += 1
        if self._calls > 1:
            raise LayerReusedError(
                f"Layer {self.name!r} ({type(module).__name__}) ran more than once in one forward pass, so its "
                "output is ambiguous. Tap a module that is called exactly once (wrap a shared module in a module "
                "of its own)."
            )
        if not isinstance(output, Tensor):
            raise TypeError(
                f"Layer {self.name!r} returned {type(output).__name__}; the tap needs a single tensor output."
            )
        ctx = self._context
        leaf = self.layout.to_maps(output, ctx).detach()  # (B, C, h, w); raises for outputs of another layout
        self._leaf = leaf
        if not self._want_grad:
            return output
        leaf.requires_grad_(True)
        torch.set_grad_enabled(True)  # the layers above the tap record a graph; restored after the forward
        # The model continues with its own layout rebuilt from the leaf (a new tensor, so the recorded activations
        # stay intact if a later module works in place, e.g. ReLU(inplace=True)).
        return self.layout.from_maps(leaf, output, ctx)

    # -- public API ---------------------------------------------------------------------------------------------
    def forward(self, images: Tensor, *, grad: bool = True) -> TapOutput:
        """Run the model once; the layers below the tap run without autograd.

        Args:
            images: (B, 3, H, W) input on the model's device and dtype.
            grad: record a graph above the tap so that :meth:`gradient` can be called.

        Returns:
            :class:`TapOutput` with logits (B, num_classes) and activations (B, C, h, w).

        Raises:
            ValueError: a patch-embedding model fixed to another input size (see
                :func:`~cameras.engine.layout.check_input_size`), or a layer output the layout cannot read.
        """
        if not self._active:
            raise RuntimeError("LayerTap.forward must be called inside `with LayerTap(...) as tap:`.")
        if torch.is_inference_mode_enabled() and grad:
            raise RuntimeError("Saliency needs gradients: call it outside torch.inference_mode().")
        size = (int(images.shape[-2]), int(images.shape[-1]))
        check_input_size(self.model, size)
        self._context = TapContext.of(self.model, self.name, size)
        self._calls = 0
        self._leaf = None
        self._want_grad = grad
        previous = torch.is_grad_enabled()
        try:
            torch.set_grad_enabled(False)
            output = self.model(images)
        finally:
            torch.set_grad_enabled(previous)
        leaf = self._leaf
        self._leaf = None
        if leaf is None:
            raise LayerNotReachedError(f"Layer {self.name!r} was not reached in the forward pass.")
        return TapOutput(logits=extract_logits(output), activations=leaf)

    @staticmethod
    def gradient(out: TapOutput, targets: Tensor, rivals: Tensor | None = None, gamma: float = 1.0) -> Tensor:
        r"""Gradient of the chosen class scores w.r.t. the tapped activations.

        The score of target :math:`c` is its logit :math:`y_c`, or with ``rivals`` the contrastive score
        :math:`y_c - \gamma\,\mathrm{mean}_j\,y_{d_j}` (:func:`cameras.engine.contrast.class_scores`).

        Args:
            out: the result of :meth:`forward` with ``grad=True``.
            targets: (B, K) class indices; K classes share the one graph.
            rivals: (B, K, M) rival classes of each target, or ``None`` (plain logits).
            gamma: weight of the rivals' mean logit.

        Returns:
            (B, K, C, h, w) gradients; the backward pass stops at the tapped layer.
        """
        leaf = out.activations
        if not leaf.requires_grad or out.logits.grad_fn is None:
            raise LayerNotReachedError(
                "The logits do not depend on the tapped layer's output (no graph from the layer to the logits)."
            )
        k_classes = targets.shape[1]
        scores = class_scores(out.logits, targets, rivals, gamma)  # (B, K)
        grads = []
        for k in range(k_classes):
            score = scores[:, k].sum()
            (g,) = torch.autograd.grad(score, leaf, retain_graph=k < k_classes - 1, allow_unused=True)
            if g is None:
                raise LayerNotReachedError("The logits do not depend on the tapped layer's output.")
            grads.append(g)
        return torch.stack(grads, dim=1)


def iter_parameters_state(model: nn.Module) -> Iterator[tuple[str, bool]]:
    """Yield ``(name, requires_grad)`` for every parameter (used by tests and debugging)."""
    for name, p in model.named_parameters():
        yield name, p.requires_grad


_PASS_THROUGH: tuple[type[nn.Module], ...] = (
    nn.Identity,
    nn.Dropout,
    nn.Dropout2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.Flatten,
)
"""Modules :func:`last_spatial_layer` never picks: they pass a map on or pool it for the head (VGG's 7×7
``avgpool``), and the module that produced the map is the better answer."""


def last_spatial_layer(model: nn.Module, input_size: tuple[int, int] = (224, 224)) -> str:
    """The dotted name of the last spatial layer of a CNN, found by one probe forward pass.

    Rule: run a (1, C, H, W) zero input (C: the first convolution's ``in_channels``, else 3) through the model in
    eval mode without autograd and, among the submodules that run exactly once, take the **last one to finish**
    whose output is a (B, C, h, w) tensor with h, w > 1, skipping pass-through and head-pooling modules
    (``nn.Identity``, dropout, adaptive pooling, ``nn.Flatten``). A container finishes after its children, so for
    a ResNet this is ``layer4`` (not ``layer4.1.relu``), for torchvision's EfficientNet / MobileNet / DenseNet
    ``features``, for VGG ``features`` (after the last max-pool). The model's training flags are restored.

    Models with a known rule are answered without a probe: a ``cameras_default_layer`` attribute (set by
    :func:`cameras.models.load`), and timm models (:func:`cameras.models.timm_models.default_layer`: a ViT's last
    ``blocks.<last>.norm1``, Swin's ``norm``, a CNN's last ``feature_info`` stage).

    Args:
        model: the network (any device and floating dtype).
        input_size: (H, W) of the probe input; use a size the model accepts.

    Returns:
        The dotted name, usable as ``layer=``.

    Raises:
        ValueError: the probe pass failed, no module produced a spatial map, or a Vision Transformer that is not a
            timm model (its last spatial map is the patch embedding, not a useful layer): pass ``layer=`` yourself.

    Example:
        >>> import torchvision
        >>> last_spatial_layer(torchvision.models.resnet18())
        'layer4'
    """
    given = getattr(model, "cameras_default_layer", None)
    if isinstance(given, str | nn.Module):
        return resolve_layer(model, given)[0]
    if type(model).__module__.startswith("timm."):
        from ..models.timm_models import default_layer

        return default_layer(model)[0]
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    channels = int(first_conv.in_channels) if first_conv is not None else 3
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    calls: dict[str, int] = {}
    finished: list[tuple[str, tuple[int, ...]]] = []
    names = {m: n for n, m in model.named_modules() if n}

    def hook(module: nn.Module, _inputs: Any, output: Any) -> None:
        name = names[module]
        calls[name] = calls.get(name, 0) + 1
        shape = tuple(output.shape) if isinstance(output, Tensor) else ()
        finished.append((name, shape))

    handles = [m.register_forward_hook(hook) for m in names]
    flags = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, channels, *input_size, device=device, dtype=dtype))
    except Exception as err:  # any failure of the user's forward becomes the one message below
        raise ValueError(
            f"layer=None: a probe pass of a {input_size[0]}×{input_size[1]} input through {type(model).__name__} "
            f"failed ({type(err).__name__}: {err}); pass layer='<dotted name>'."
        ) from err
    finally:
        for h in handles:
            h.remove()
        for m, flag in flags:
            m.train(flag)
    modules = dict(model.named_modules())
    chosen: str | None = None
    after_tokens = False
    for name, shape in reversed(finished):
        if calls[name] != 1 or isinstance(modules[name], _PASS_THROUGH):
            continue
        if len(shape) == 3 and shape[1] > 1:
            after_tokens = True  # a (B, N, C) token sequence runs after: a transformer
        if len(shape) == 4 and shape[2] > 1 and shape[3] > 1:
            chosen = name
            break
    if chosen is None or after_tokens:
        what = "runs tokens (B, N, C) after its last spatial map" if chosen else "produces no (B, C, h, w) map"
        raise ValueError(
            f"layer=None: {type(model).__name__} {what}, so no last spatial layer can be chosen; pass "
            "layer='<dotted name>' (a ViT: the last block's norm1; list names with model.named_modules())."
        )
    return chosen
