"""The models package's module layout: no import cycle (``registry`` → ``timm_models`` → ``weights``, never back),
and every module importable on its own in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

from ..engine.test_fusion_layout import _IMPORT_EACH_ALONE, SRC, _cycle, _graph

MODULES = [
    "cameras.models.weights",
    "cameras.models.timm_models",
    "cameras.models.registry",
    "cameras.models.labels",
    "cameras.models.lite",
    "cameras.models.preprocess",
    "cameras.models",
]


def test_models_have_no_import_cycle() -> None:
    graph = _graph("cameras.models")
    assert set(MODULES) <= set(graph), sorted(graph)
    assert "cameras.models.timm_models" in graph["cameras.models.registry"]
    assert _cycle(graph) is None, _cycle(graph)
    # the shared pieces depend on no other module of the package
    assert graph["cameras.models.weights"] == set()


def test_every_models_module_imports_alone() -> None:
    """Each module first, in a library not yet imported (one fresh process; torch itself is imported once)."""
    assert sorted(MODULES[:-1]) == sorted(
        f"cameras.models.{p.stem}" for p in (SRC / "models").glob("*.py") if p.stem != "__init__"
    )
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH_ALONE, *MODULES], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == [w for m in MODULES for w in (m, "ok")]
