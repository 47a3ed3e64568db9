"""The engine's module layout: no import cycle (lazy imports inside functions included), every fusion module
importable on its own, and no Triton anywhere in the library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import cameras

SRC = Path(cameras.__file__).resolve().parent  # src/cameras


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports, at any depth (function bodies too); ``from P import x``
    counts as importing ``P.x`` when that is a module of the library, else ``P``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if _exists(sub) else target)
    return found


def _exists(module: str) -> bool:
    if not module.startswith("cameras"):
        return False
    rel = Path(*module.split(".")[1:])
    return (SRC / rel).with_suffix(".py").is_file() or (SRC / rel / "__init__.py").is_file()


def _graph(root: str) -> dict[str, set[str]]:
    files = sorted((SRC / Path(*root.split(".")[1:])).rglob("*.py"))
    graph = {_module_name(f): _imports(f) for f in files}
    return {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                return [*path[path.index(d) :], d]
            if d not in state and (found := visit(d)):
                return found
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_engine_has_no_import_cycle() -> None:
    graph = _graph("cameras.engine")
    assert {"cameras.engine.fusion", "cameras.engine.fusion.tiles", "cameras.engine.normalize"} <= set(graph)
    assert "cameras.engine.fusion.resize" in graph["cameras.engine.fusion.tiles"]  # the graph sees relative imports
    assert _cycle(graph) is None, _cycle(graph)
    # the fusion paths depend on the shared pieces only, never on the dispatcher or on each other (but the
    # definition's rule type)
    shared = {"cameras.engine.fusion.resize", "cameras.engine.fusion.definition"}
    for path in ("definition", "matmul", "gram", "tiles"):
        assert graph[f"cameras.engine.fusion.{path}"] <= shared, path


_IMPORT_EACH_ALONE = """
import importlib, sys
import torch  # loaded once; every module of the library below is imported from scratch
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "cameras" or m.startswith("cameras.")]:
        del sys.modules[loaded]
    importlib.import_module(name)
    print(name, "ok")
"""


def test_each_fusion_module_imports_alone() -> None:
    """Each module first, in a library not yet imported (one fresh process; torch itself is imported once)."""
    modules = [
        "cameras.engine.fusion.resize",
        "cameras.engine.fusion.definition",
        "cameras.engine.fusion.matmul",
        "cameras.engine.fusion.gram",
        "cameras.engine.fusion.tiles",
        "cameras.engine.fusion",
        "cameras.engine.normalize",
        "cameras.engine.result",
    ]
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH_ALONE, *modules], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == [w for m in modules for w in (m, "ok")]


def test_no_triton_in_the_library() -> None:
    for f in SRC.rglob("*.py"):
        assert not any(m.split(".")[0] == "triton" for m in _imports(f)), f
