"""``python -m tests.cli.gated GATE ARGS…``: run ``cameras ARGS…`` in a real process with a tiny random CNN (the fake
registry of :mod:`tests.cli.fakes`) whose forward pass waits until the file ``GATE`` exists — so a test can hold a
run in the middle of its work for as long as it needs, without any timing assumption."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from torch import Tensor


def main() -> int:
    from cameras import models
    from cameras.cli.main import main as cameras_main
    from cameras.models import LoadedModel, ModelSpec, Preprocess

    from ..engine.nets import TinyCNN

    gate = Path(sys.argv[1])

    class Gated(TinyCNN):
        def forward(self, x: Tensor) -> Tensor:
            deadline = time.monotonic() + 300
            while not gate.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            return super().forward(x)

    def load(name: str | None = None, weights: object = "DEFAULT", device: object = "cpu") -> LoadedModel:
        net = Gated(classes=5)
        net.cameras_default_layer = "features"  # type: ignore[assignment]
        return LoadedModel("gated", net, "features", Preprocess(size=32), [f"class{i}" for i in range(5)])

    def info(name: str | None = None) -> ModelSpec:
        return ModelSpec("gated", "lite", "features", 32, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

    models.load = load  # type: ignore[assignment]
    models.info = info  # type: ignore[assignment]
    models.DEFAULT_MODEL = "gated"
    return cameras_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
