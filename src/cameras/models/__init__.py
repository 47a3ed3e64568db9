"""Pretrained classifiers ready to explain: registry, preprocessing and ImageNet labels.

:func:`load` returns a :class:`LoadedModel` (network in eval mode, default layer, :class:`Preprocess`, labels). The
default model, EfficientNet-Lite0, ships its weights as a Python package and works offline; torchvision models
download theirs (or take ``weights=PATH``).

Example:
    >>> import cameras
    >>> from cameras import models, data
    >>> m = models.load()                                    # efficientnet_lite0, layer "head"
    >>> x = m.prepare(data.sample_image("chelsea"))          # 300×451 photo → (1, 3, 224, 337)
    >>> m.predict(x.tensor, k=1)[0][0].label
    'Egyptian cat'
    >>> out = cameras.CAMERAS(m.model, layer=m.layer, resolutions=[1.0, 1.5])(x.tensor)
    >>> x.to_original(out.saliency).shape                   # back on the photo's pixels
    torch.Size([1, 300, 451])
"""

from __future__ import annotations

from .labels import class_index, imagenet_labels, imagenet_synonyms
from .lite import EfficientNetLite
from .preprocess import IMAGENET_MEAN, IMAGENET_STD, PreparedImage, Preprocess, read_rgb, resize_map, scale_box
from .registry import (
    DEFAULT_MODEL,
    LoadedModel,
    ModelSpec,
    Prediction,
    WeightsUnavailableError,
    available,
    info,
    load,
    read_checkpoint,
)

__all__ = [
    "DEFAULT_MODEL",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "EfficientNetLite",
    "LoadedModel",
    "ModelSpec",
    "Prediction",
    "PreparedImage",
    "Preprocess",
    "WeightsUnavailableError",
    "available",
    "class_index",
    "imagenet_labels",
    "imagenet_synonyms",
    "info",
    "load",
    "read_checkpoint",
    "read_rgb",
    "resize_map",
    "scale_box",
]
