"""A tiny random CNN behind the model registry, for the report tests that run real ``cameras`` commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from ..cli.fakes import Registry, fake_registry, tiny_model


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> Registry:
    """``--model tiny`` (the default model) is a seeded random TinyCNN at 32 px."""
    return fake_registry(monkeypatch, {"tiny": tiny_model})


def photo(folder: Path, name: str = "a.png", colour: tuple[int, int, int] = (120, 30, 200)) -> Path:
    """A 40 × 32 photo with a bright square, so the maps are not constant."""
    folder.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (40, 32), colour)
    img.paste((250, 250, 250), (4, 4, 16, 16))
    path = folder / name
    img.save(path)
    return path
