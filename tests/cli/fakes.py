"""A fake model registry for CLI tests: small random models behind ``cameras.models.load`` / ``info``.

The commands look a model up with :func:`cameras.models.info` (native size, no weights) before they read photos,
and load it with :func:`cameras.models.load` only when there is work to do; :func:`fake_registry` replaces both and
counts the loads, so a test can also assert that a validation failure never loaded a model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from cameras import models
from cameras.models import LoadedModel, ModelSpec, Preprocess


@dataclass
class Registry:
    """What :func:`fake_registry` installed; ``loads`` lists the names loaded, in order."""

    factories: dict[str, Callable[[], LoadedModel]]
    loads: list[str] = field(default_factory=list)
    cache: dict[str, LoadedModel] = field(default_factory=dict)


def fake_registry(
    monkeypatch: pytest.MonkeyPatch,
    factories: dict[str, Callable[[], LoadedModel]],
    *,
    default: str | None = None,
    cache: bool = False,
) -> Registry:
    """Serve ``factories[name]()`` from ``cameras.models.load(name, ...)`` and a matching :class:`ModelSpec` from
    ``cameras.models.info(name)``; ``default`` (the first name if ``None``) becomes ``DEFAULT_MODEL``. With
    ``cache``, each model is built once per test and reused (the commands never change a model's weights)."""
    reg = Registry(dict(factories))
    first = default or next(iter(factories))

    def _known(name: str | None) -> str:
        key = name or first
        if key not in reg.factories:
            raise ValueError(f"Unknown model {name!r}. Available: {', '.join(reg.factories)}.")
        return key

    def load(name: str | None = None, weights: object = "DEFAULT", device: object = "cpu") -> LoadedModel:
        key = _known(name)
        reg.loads.append(key)
        if cache:
            if key not in reg.cache:
                reg.cache[key] = reg.factories[key]()
            return reg.cache[key]
        return reg.factories[key]()

    def info(name: str | None = None) -> ModelSpec:
        key = _known(name)
        built = reg.cache.get(key) or reg.factories[key]()
        prep = built.preprocess
        return ModelSpec(key, "lite", built.layer, prep.size, prep.mean, prep.std)

    monkeypatch.setattr(models, "load", load)
    monkeypatch.setattr(models, "info", info)
    monkeypatch.setattr(models, "DEFAULT_MODEL", first)
    return reg


TINY_LABELS = [f"class{i}" for i in range(5)]


@functools.cache
def tiny_model() -> LoadedModel:
    """A seeded random :class:`tests.engine.nets.TinyCNN` (5 classes, layer ``features``, 32 px input), built once."""
    from ..engine.nets import TinyCNN

    net = TinyCNN(classes=len(TINY_LABELS))
    net.cameras_default_layer = "features"  # type: ignore[assignment]
    return LoadedModel("tiny", net, "features", Preprocess(size=32), list(TINY_LABELS))
