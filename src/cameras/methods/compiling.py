"""``compile=`` of the multi-scale methods: its one reading, the ``"auto"`` rule and inductor's on-disk cache.

The same spelling in Python and on the command line: ``compile="auto" | True | False`` (``--compile auto|on|off``),
or a ``torch.compile`` backend name such as ``"aot_eager"`` (Python only).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "COMPILE_AUTO_MIN_PHOTOS",
    "COMPILE_CHOICES",
    "COMPILE_DYNAMIC",
    "CompileSetting",
    "check_compile",
    "inductor_cache_dir",
    "resolve_compile",
    "use_inductor_cache",
]

CompileSetting = bool | str
"""``True`` (inductor), ``False`` (eager), ``"auto"`` (decided from the photo count) or a backend name."""

COMPILE_CHOICES = ("off", "on", "auto")
"""The command line's ``--compile`` values: ``off`` = ``False``, ``on`` = ``True``, ``auto`` = ``"auto"``."""

COMPILE_AUTO_MIN_PHOTOS = 16
"""``compile="auto"`` compiles when a run explains at least this many photos, and runs eagerly below.

The compile pays for itself after ``first-call cost / (eager − compiled warm time per photo)`` photos. PROVISIONAL:
estimated from the issue's figures (196 s first call per-shape, eager 38 s/photo on 2 shared cores in
``benchmarks/compile_cpu.py``, 2026-12-05); the compiled warm time is not yet measured here."""

COMPILE_DYNAMIC = False
"""One graph per scale shape (``dynamic=False``). ``dynamic=True`` (one graph for every shape) was tried in
``benchmarks/compile_cpu.py`` (2026-12-05, 2 shared CPU cores, Lite0, paper schedule): its first call plus three warm
calls had not finished after 32 min, against 196 s for the per-shape first call in issue 27, so it lost."""


def check_compile(value: object) -> CompileSetting:
    """Validate a ``compile=`` value (bool, ``"auto"`` or a ``torch.compile`` backend name) and return it.

    Raises:
        TypeError: not a bool or a string.
        ValueError: an empty string, or ``"on"`` / ``"off"`` (the command line's spellings: use ``True`` / ``False``).
    """
    if isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise TypeError(f"compile must be True, False, 'auto' or a torch.compile backend name, got {value!r}.")
    if value in ("on", "off"):
        raise ValueError(f"compile={value!r} is the command line's spelling; in Python use compile={value == 'on'}.")
    if not value.strip():
        raise ValueError("compile must be True, False, 'auto' or a torch.compile backend name, got ''.")
    return value


def resolve_compile(value: CompileSetting, photos: int) -> bool | str:
    """The setting a run of ``photos`` photos uses: ``"auto"`` becomes ``True`` from
    :data:`COMPILE_AUTO_MIN_PHOTOS` photos on and ``False`` below (one photo never compiles); anything else is
    returned unchanged.

    Example:
        >>> resolve_compile("auto", 1), resolve_compile("auto", 500), resolve_compile(False, 500)
        (False, True, False)
    """
    value = check_compile(value)
    if value == "auto":
        return photos >= COMPILE_AUTO_MIN_PHOTOS
    return value


def inductor_cache_dir() -> Path:
    """Inductor's on-disk cache folder used for compiled runs: ``$TORCHINDUCTOR_CACHE_DIR`` when set, else
    ``$CAMERAS_CACHE_DIR/inductor``, else ``$XDG_CACHE_HOME/cameras/inductor`` (``~/.cache/cameras/inductor``)."""
    given = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if given:
        return Path(given)
    root = os.environ.get("CAMERAS_CACHE_DIR")
    if root:
        return Path(root) / "inductor"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "cameras" / "inductor"


def use_inductor_cache() -> Path:
    """Point inductor's on-disk cache (compiled kernels and FX graphs) at :func:`inductor_cache_dir` — by setting
    ``TORCHINDUCTOR_CACHE_DIR`` when it is unset — so that a rerun, or a second rank on the machine, starts warm."""
    folder = inductor_cache_dir()
    if not os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
    return folder
