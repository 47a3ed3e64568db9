"""What a report knows about a run folder: its ``run.json``, its files, and "what was run" in a few lines.

A run folder is whatever a ``cameras`` command wrote into ``--out``: ``run.json`` (:mod:`cameras.io.runinfo`) and
the command's own files. The report reads only files; it never runs a model. Folders without ``run.json`` (written
by an older version, or by hand) still get a page, from the files alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io import read_run_record

__all__ = ["REPORT_DIR", "REPORT_FILE", "RunFolder", "read_json", "read_run_folder"]

REPORT_FILE = "report.html"
"""The page, written into the run folder."""

REPORT_DIR = "report_files"
"""The subfolder of the run folder holding the page's thumbnails (referenced relatively from the page)."""

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg", ".gif", ".webp")


@dataclass
class RunFolder:
    """A run folder as the report sees it.

    Attributes:
        path: the folder.
        record: its ``run.json`` (``{}`` when it has none).
        files: every regular file in it (not in subfolders, not the report's own), relative names, sorted with
            the record's ``outputs`` first in their order.
    """

    path: Path
    record: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    @property
    def command(self) -> str:
        """The command that wrote the folder (``""`` when unknown)."""
        return str(self.record.get("command") or "")

    @property
    def config(self) -> dict[str, Any]:
        """The parsed options of the run (``{}`` when unknown)."""
        config = self.record.get("config")
        return config if isinstance(config, dict) else {}

    def has(self, name: str) -> bool:
        """Whether ``name`` (relative) is a file of the folder."""
        return (self.path / name).is_file()

    def figures(self) -> list[str]:
        """The pictures of the run (PNG, JPEG, SVG …), in :attr:`files` order."""
        return [f for f in self.files if f.lower().endswith(_IMAGE_SUFFIXES)]

    def json_files(self) -> list[str]:
        """The JSON files other than ``run.json``."""
        return [f for f in self.files if f.lower().endswith(".json") and f != "run.json"]

    def summary(self) -> list[tuple[str, Any]]:
        """ "What was run": command, status, model, layer, method(s), resolutions, times, versions, command line —
        from ``run.json``, completed from the command's own JSON files (``model`` and ``layer`` they name)."""
        rec, cfg = self.record, self.config
        found = _first_fields(self, ("model", "models", "layer", "layers", "method"))
        versions: dict[str, Any] = rec["versions"] if isinstance(rec.get("versions"), dict) else {}
        method = cfg.get("methods") or cfg.get("method") or found.get("method")
        if method is None and cfg.get("focus") is not None:
            method = cfg.get("focus")
        resolutions = cfg.get("resolutions", "—") if cfg else "—"
        pairs: list[tuple[str, Any]] = [
            ("command", f"cameras {self.command}" if self.command else "unknown (no run.json)"),
            ("status", rec.get("status")),
            ("model", cfg.get("model") or cfg.get("models") or found.get("model") or found.get("models")),
            ("layer", cfg.get("layer") or found.get("layer") or found.get("layers")),
            ("method(s)", method),
            ("resolutions", "the paper's schedule" if resolutions is None else resolutions),
        ]
        pairs = [(k, _words(v)) for k, v in pairs]
        for key in ("dataset", "image_root", "world_size"):
            if key in rec:
                value = rec[key]
                pairs.append((key.replace("_", " "), _words(value)))
        pairs += [
            ("device", cfg.get("device")),
            ("started", rec.get("started")),
            ("seconds", rec.get("seconds")),
            ("cameras version", versions.get("cameras")),
            ("torch / python", f"{versions.get('torch', '—')} / {versions.get('python', '—')}" if versions else None),
            ("command line", " ".join(["cameras", *map(str, rec.get("argv") or [])]) if rec.get("argv") else None),
        ]
        return [(k, v) for k, v in pairs if v is not None]


def _words(value: Any) -> Any:
    """A mapping as ``k: v, …`` (a model's layers, a data set's description); anything else unchanged."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return value


def read_json(path: Path) -> Any:
    """A JSON file's content, or ``None`` when it cannot be read (the page then lists it as a file only)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _first_fields(run: RunFolder, keys: tuple[str, ...]) -> dict[str, Any]:
    """The first value of each key found at the top level (or under ``settings``) of the run's JSON files."""
    found: dict[str, Any] = {}
    for name in run.json_files()[:20]:
        obj = read_json(run.path / name)
        for holder in (obj, obj.get("settings") if isinstance(obj, dict) else None):
            if isinstance(holder, dict):
                for k in keys:
                    if k not in found and holder.get(k) not in (None, "", [], {}):
                        found[k] = holder[k]
        if len(found) == len(keys):
            break
    return found


def read_run_folder(path: str | Path) -> RunFolder:
    """Read a run folder's record and list its files.

    Raises:
        FileNotFoundError: ``path`` is not a folder.
        cameras.io.RunRecordError: ``run.json`` exists but is not a run record.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{str(folder)!r} is not a folder")
    record = read_run_record(folder) or {}
    present = sorted(
        p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.name != REPORT_FILE
    )
    outputs = [str(o) for o in record.get("outputs") or [] if str(o) in present]
    files = list(dict.fromkeys([*outputs, *present]))
    return RunFolder(folder, record, files)
