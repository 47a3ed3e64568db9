"""cameras: enhanced-resolution, sanity-preserving class activation maps (CAMERAS, Jalwana et al., CVPR 2021).

>>> import torch, torchvision, cameras
>>> net = torchvision.models.resnet18().eval()
>>> out = cameras.CAMERAS(net, layer="layer4", resolutions=[64, 96])(torch.randn(1, 3, 64, 64))
>>> out.saliency.shape
torch.Size([1, 64, 64])
"""

from __future__ import annotations

from .engine.result import Result
from .methods import CAMERAS

__version__ = "0.1.0"
__all__ = ["CAMERAS", "Result", "__version__"]
