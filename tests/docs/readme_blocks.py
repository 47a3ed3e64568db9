"""Extract and run the fenced ```python and ```bash blocks of a Markdown file (the README test's engine).

A block is run as written, in a folder of its own: python blocks with this interpreter, bash blocks with
``bash -e``, the interpreter's ``bin`` folder first on ``PATH`` (so ``cameras`` and ``python`` are this
environment's) and ``PYTHONPATH`` pointing at this checkout's ``src`` (so ``import cameras`` is the code under test).

A block may be preceded (as the last non-blank line before its fence) by one visible marker line::

    *README test: skipped — needs a GPU and a ResNet-50 checkpoint.*
    *README test: slow — about 2 min on 2 CPU cores.*

``skipped`` blocks are reported as skipped with the reason; ``slow`` blocks run under ``@pytest.mark.slow``. Any
other line that starts with ``*README test:`` is an error, and so is a marker that no fence follows: a typo must
not silently turn a check off.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Block", "MarkerError", "env_for", "extract", "run_block"]

SRC = Path(__file__).resolve().parents[2] / "src"
LANGS = ("python", "bash")

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,})(?P<info>[^`]*)$")
_MARKER_START = "*README test:"
_MARKER = re.compile(r"^\*README test: (?P<kind>skipped|slow) — (?P<reason>[^*]+?)\.?\*$")


class MarkerError(ValueError):
    """A ``*README test:`` line that does not parse, or that no fenced block follows."""


@dataclass(frozen=True)
class Block:
    """One fenced block: its language, source, first line number (of the fence), heading and marker."""

    lang: str
    code: str
    line: int
    heading: str
    skip: str | None = None
    slow: str | None = None

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")[:40].strip("-") or "top"
        return f"L{self.line}-{self.lang}-{slug}"


def extract(markdown: str) -> list[Block]:
    """Every ```python / ```bash block of ``markdown`` (other fences are skipped over), in order.

    Raises:
        MarkerError: a malformed ``*README test:`` marker, a marker not directly before a fence, or an unclosed fence.
    """
    lines = markdown.splitlines()
    blocks: list[Block] = []
    heading = ""
    pending: tuple[str, str, int] | None = None  # (kind, reason, line) of a marker waiting for its fence
    i = 0
    while i < len(lines):
        text = lines[i]
        stripped = text.strip()
        fence = _FENCE.match(text)
        if fence:
            indent, ticks = fence["indent"], fence["ticks"]
            lang = fence["info"].strip().split(" ")[0].lower() if fence["info"].strip() else ""
            body: list[str] = []
            j = i + 1
            while j < len(lines) and lines[j].strip() != ticks:
                body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j].lstrip())
                j += 1
            if j == len(lines):
                raise MarkerError(f"line {i + 1}: fence {ticks}{lang} is never closed")
            if lang in LANGS:
                kind, reason = (pending[0], pending[1]) if pending else (None, None)
                blocks.append(
                    Block(
                        lang=lang,
                        code="\n".join(body) + "\n",
                        line=i + 1,
                        heading=heading,
                        skip=reason if kind == "skipped" else None,
                        slow=reason if kind == "slow" else None,
                    )
                )
            elif pending:
                raise MarkerError(
                    f"line {pending[2]}: a README-test marker before a ```{lang} block (only python/bash run)"
                )
            pending = None
            i = j + 1
            continue
        if stripped.startswith(_MARKER_START):
            m = _MARKER.match(stripped)
            if m is None:
                raise MarkerError(
                    f"line {i + 1}: malformed README-test marker {stripped!r}; write "
                    "'*README test: skipped — REASON.*' or '*README test: slow — HOW LONG.*'"
                )
            if pending:
                raise MarkerError(f"line {pending[2]}: README-test marker not followed by a fenced block")
            pending = (m["kind"], m["reason"].strip(), i + 1)
        elif stripped:
            if pending:
                raise MarkerError(f"line {pending[2]}: README-test marker not directly followed by a fenced block")
            if text.startswith("#"):
                heading = text.lstrip("#").strip()
        i += 1
    if pending:
        raise MarkerError(f"line {pending[2]}: README-test marker at the end of the file, no block follows")
    return blocks


def env_for(src: Path = SRC) -> dict[str, str]:
    """The environment a block runs in: this interpreter's bin first on PATH, ``src`` first on PYTHONPATH."""
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(src), env.get("PYTHONPATH", "")] if p)
    env["MPLBACKEND"] = "Agg"
    env.pop("VIRTUAL_ENV", None)
    return env


def run_block(block: Block, cwd: Path, timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
    """Run ``block`` as written in ``cwd``; returns the finished process (stdout and stderr captured, merged)."""
    # The script lives beside the block's folder, not in it: globs and outputs see only what the block made.
    runner_dir = cwd.parent / f"{cwd.name}-script"
    runner_dir.mkdir(exist_ok=True)
    script = runner_dir / ("readme_block.py" if block.lang == "python" else "readme_block.sh")
    script.write_text(block.code)
    cmd = [sys.executable, str(script)] if block.lang == "python" else ["bash", "-e", str(script)]
    return subprocess.run(
        cmd,
        cwd=cwd,
        env=env_for(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
