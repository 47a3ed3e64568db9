"""Saliency methods, each a thin rule on the engine, and a registry by name.

>>> import cameras
>>> cameras.methods.get("cameras").__name__
'CAMERAS'
>>> cameras.methods.get("ms-gradcam++").name
'ms-gradcam++'
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

from .base import ContrastClasses, Explainer, Targets
from .cam import CAM, GradCAM, GradCAMPlusPlus, GradientCAM, HiResCAM, LayerCAM, XGradCAM
from .cameras import CAMERAS
from .gradients import Gradient, GuidedBackprop, IntegratedGradients, SmoothGrad
from .multiscale import MultiScale, MultiScaleCAM
from .scorecam import ScoreCAM

__all__ = [
    "CAM",
    "CAMERAS",
    "ContrastClasses",
    "Explainer",
    "GradCAM",
    "GradCAMPlusPlus",
    "Gradient",
    "GradientCAM",
    "GuidedBackprop",
    "HiResCAM",
    "IntegratedGradients",
    "LayerCAM",
    "MultiScale",
    "MultiScaleCAM",
    "ScoreCAM",
    "SmoothGrad",
    "Targets",
    "XGradCAM",
    "available",
    "get",
    "method_scales",
    "register",
]

_REGISTRY: dict[str, type[Explainer]] = {}


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").replace(" ", "")


def register(name: str, cls: type[Explainer], *aliases: str) -> None:
    """Register a method class under ``name`` (and aliases); names are matched ignoring case, '-' and '_'."""
    for n in (name, *aliases):
        _REGISTRY[_key(n)] = cls


def get(name: str) -> type[Explainer]:
    """The method class registered as ``name`` (e.g. ``"cameras"``, ``"gradcam++"``).

    Raises:
        ValueError: unknown name; the message lists the available ones.
    """
    try:
        return _REGISTRY[_key(name)]
    except KeyError:
        raise ValueError(f"Unknown method {name!r}. Available: {', '.join(available())}.") from None


def available() -> list[str]:
    """Canonical names of the registered methods."""
    return sorted({cls.name for cls in _REGISTRY.values()})


def method_scales(
    classes: Sequence[type],
    resolutions: Sequence[int | float] | None,
    *,
    square: bool = False,
    only: Sequence[str] | None = None,
) -> Callable[[tuple[int, int]], list[tuple[int, int]]]:
    """The input sizes the methods ``classes`` will run on an input of (h, w), for the size checks made before a
    run: the input itself, plus for each multi-scale method its schedule — ``resolutions`` if it applies to the
    method (to every one, or only to those whose registry name is in ``only``), else the method's own default — read
    by the one schedule function, :func:`cameras.engine.scales.schedule` (with ``square``, the ``--square`` option),
    exactly as the methods read it."""
    from ..engine.scales import schedule

    def sizes(input_hw: tuple[int, int]) -> list[tuple[int, int]]:
        out = [input_hw]
        for cls in classes:
            if "resolutions" in inspect.signature(cls).parameters:
                given = resolutions if only is None or getattr(cls, "name", None) in only else None
                own = given if given is not None else getattr(cls, "default_resolutions", None)
                out.extend(schedule(own, input_hw, square=square))
        return out

    return sizes


register("cameras", CAMERAS)
register("cam", CAM)
register("gradcam", GradCAM, "grad-cam")
register("gradcam++", GradCAMPlusPlus, "gradcampp", "grad-cam++")
register("hirescam", HiResCAM)
register("layercam", LayerCAM)
register("xgradcam", XGradCAM)
register("scorecam", ScoreCAM)
register("gradient", Gradient, "saliency", "vanilla_gradient")
register("guided_backprop", GuidedBackprop, "guidedbackprop", "guided-backprop")
register("integrated_gradients", IntegratedGradients, "ig", "integratedgradients")
register("smoothgrad", SmoothGrad)
for _base in (GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM):
    _ms = MultiScale(_base)
    register(_ms.name, _ms, f"multiscale-{_base.name}")
del _base, _ms
