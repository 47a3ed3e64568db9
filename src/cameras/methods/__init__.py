"""Saliency methods, each a thin rule on the engine, and a registry by name.

>>> import cameras
>>> cameras.methods.get("cameras").__name__
'CAMERAS'
"""

from __future__ import annotations

from .base import Explainer, Targets
from .cameras import CAMERAS

__all__ = ["CAMERAS", "Explainer", "Targets", "available", "get", "register"]

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


register("cameras", CAMERAS)
