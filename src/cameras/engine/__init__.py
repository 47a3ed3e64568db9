"""The engine: layer tap → per-scale activations and gradients → accumulation → fusion.

Every saliency method in :mod:`cameras.methods` is a thin rule on top of these pieces.
"""

from .accumulate import Recording, ScaleRecord, record_scales
from .contrast import Contrast, class_scores
from .fusion import ChannelRule, cameras_rule, fuse
from .layout import ChannelsLastLayout, FunctionLayout, Layout, Reshape, SpatialLayout, TokenLayout, resolve_layout
from .normalize import constant_maps, minmax_normalize
from .result import Result
from .scales import PAPER_FACTORS, PAPER_RESOLUTIONS, resize, schedule
from .state import ModelState, eval_mode
from .tap import (
    LayerNotReachedError,
    LayerReusedError,
    LayerTap,
    TapOutput,
    extract_logits,
    last_spatial_layer,
    resolve_layer,
)

__all__ = [
    "PAPER_FACTORS",
    "PAPER_RESOLUTIONS",
    "ChannelRule",
    "ChannelsLastLayout",
    "Contrast",
    "FunctionLayout",
    "LayerNotReachedError",
    "LayerReusedError",
    "LayerTap",
    "Layout",
    "ModelState",
    "Recording",
    "Reshape",
    "Result",
    "ScaleRecord",
    "SpatialLayout",
    "TapOutput",
    "TokenLayout",
    "cameras_rule",
    "class_scores",
    "constant_maps",
    "eval_mode",
    "extract_logits",
    "fuse",
    "last_spatial_layer",
    "minmax_normalize",
    "record_scales",
    "resize",
    "resolve_layer",
    "resolve_layout",
    "schedule",
]
