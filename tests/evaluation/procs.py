"""What the process tests run: a seeded tiny VOC classifier, a slow explainer (so that a run can be killed between
shards) and ``python -m tests.evaluation.procs ROOT OUT [--memory FILE]``, which calls :func:`cameras.evaluate` as a
user's script would (also under torchrun: every rank makes the same call)."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

import cameras
from cameras.methods import GradCAM
from cameras.models import LoadedModel, Preprocess


class Tiny(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        torch.manual_seed(n)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU())
        self.fc = nn.Linear(8, n)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.fc(self.features(x).mean(dim=(2, 3)))
        return out


def tiny(n: int = 20) -> LoadedModel:
    """A random ``n``-class CNN, the same weights in every process (seeded)."""
    model = Tiny(n).eval()
    return LoadedModel(f"tiny{n}", model, "features", Preprocess(size=32), [f"class {i}" for i in range(n)])


class SlowGradCAM:
    """Grad-CAM after a pause: a user's explainer object, slow enough for a run to be killed between shards."""

    name = "slow_gradcam"

    def __init__(self, model: nn.Module, pause: float, gate: Path | None = None) -> None:
        self.model = model
        self.inner = GradCAM(model, layer="features")
        self.pause = pause
        self.gate = gate

    def __call__(self, x: Tensor, targets: Tensor, **kwargs: Any) -> Any:
        time.sleep(self.pause)
        deadline = time.monotonic() + 300
        while self.gate is not None and not self.gate.exists() and time.monotonic() < deadline:
            time.sleep(0.01)  # held until the test opens the gate
        return self.inner(x, targets, **kwargs)


def run(root: Path, out: Path | None, pause: float = 0.0, gate: Path | None = None) -> cameras.Evaluation:
    loaded = tiny()
    return cameras.evaluate(
        loaded,
        ("voc", root),
        ["gradcam", SlowGradCAM(loaded.model, pause, gate)],
        ["pointing", "energy"],
        resolutions=[32, 40],
        out=out,
        shard_size=1,
        workers=0,
        progress=False,
    )


def records(ev: cameras.Evaluation) -> list[dict[str, Any]]:
    """The rows as JSON-able dicts (NaN as ``None``, so that equal rows compare equal)."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in ev.records()]


def main(argv: list[str]) -> int:
    root, out = Path(argv[0]), Path(argv[1])
    pause = float(argv[argv.index("--pause") + 1]) if "--pause" in argv else 0.0
    gate = Path(argv[argv.index("--gate") + 1]) if "--gate" in argv else None
    ev = run(root, out, pause, gate)
    if "--memory" in argv:  # also a run in memory: rank 0 gets every row, another rank its own
        memory = run(root, None)
        dest = Path(argv[argv.index("--memory") + 1])
        dest.with_name(f"{dest.stem}-rank{memory.rank}.json").write_text(
            json.dumps({"world_size": memory.world_size, "rows": records(memory), "on_disk": len(ev.rows)})
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
