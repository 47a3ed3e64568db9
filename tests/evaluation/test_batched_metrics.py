"""The evaluator's model-based metrics, now computed for all methods of a batch in shared forward passes, give the
same ``per_image.csv`` byte for byte as the per-method calls they replaced (insertion_deletion, confidence_change and
map_density once per method, kept here as the reference), on the VOC and ImageNet fixtures (photos of several input
sizes); and a method whose maps the metrics refuse loses only its own rows."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

import cameras
from cameras.evaluation.run import Evaluator
from cameras.metrics import confidence_change, insertion_deletion, map_density

from ..datasets.fixtures import make_imagenet, make_voc
from .procs import tiny

API = {"resolutions": [32, 40], "workers": 0, "shard_size": 4, "explain_batch": 3, "progress": False, "steps": 7}
FAITHFUL = ["pointing", "insertion", "deletion", "avg_drop", "increase", "rho_pos", "rho_neg"]


def _per_method(
    self: Evaluator, x: Any, targets: Any, done: dict[str, tuple[Any, Any, list[dict[str, float]]]]
) -> dict[str, Exception]:
    """The evaluator's metrics as they were: each function called once per method."""
    model, args = self.loaded.model, self.options
    for result, sal, values in done.values():
        ins_del = insertion_deletion(model, x, sal, targets, steps=args.steps, batch_size=args.batch_size)
        cc = confidence_change(model, x, sal.clamp(0, 1), targets, batch_size=args.batch_size)
        for k in range(len(values)):
            values[k]["insertion"] = float(ins_del.insertion[k])
            values[k]["deletion"] = float(ins_del.deletion[k])
            values[k]["avg_drop"] = 100.0 * float(cc.drop[k])
            values[k]["increase"] = 100.0 * float(cc.increase[k])
            values[k]["rho_pos"] = values[k]["rho_neg"] = math.nan
        shown = [k for k in range(len(values)) if not bool(result.degenerate.reshape(-1)[k])]
        if shown:
            d = map_density(model, x[shown], sal[shown].clamp(0, 1), targets[shown], self.black, args.batch_size)
            for n, k in enumerate(shown):
                values[k]["rho_pos"] = float(d.positive[n])
                values[k]["rho_neg"] = float(d.negative[n])
    return {}


@pytest.mark.parametrize("kind", ["voc", "imagenet"])
def test_per_image_csv_identical_to_the_per_method_calls(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_voc(tmp_path / "VOC2007") if kind == "voc" else make_imagenet(tmp_path / "imagenet")
    loaded = tiny(20 if kind == "voc" else 1000)
    methods = ["gradcam", "cameras", "gradcampp"]
    batched = cameras.evaluate(loaded, (kind, root), methods, FAITHFUL, out=tmp_path / "batched", **API)
    monkeypatch.setattr(Evaluator, "_faithfulness", _per_method)
    reference = cameras.evaluate(loaded, (kind, root), methods, FAITHFUL, out=tmp_path / "reference", **API)
    assert len(batched.rows) >= 6 and len({r.image for r in batched.rows}) >= 3
    for r in batched.rows:
        assert math.isfinite(r.values["insertion"]) or r.degenerate
    new, old = (tmp_path / d / "per_image.csv" for d in ("batched", "reference"))
    assert new.read_bytes() == old.read_bytes()
    # and the unrounded values within 1e-6 (in the metrics' own units: avg_drop and increase are percent). They may
    # differ in the last bits: a float32 GEMM (the classifier's Linear) sums in an order that depends on the batch's
    # shape, and the shared passes hold other images than the per-method ones (models in eval mode: no BN effect).
    for a, b in zip(batched.rows, reference.rows, strict=True):
        for key in FAITHFUL:
            x, y = a.values[key], b.values[key]
            scale = 100.0 if key in ("avg_drop", "increase") else max(1.0, abs(y))
            assert (math.isnan(x) and math.isnan(y)) or abs(x - y) <= 1e-6 * scale, (a, key)


def _nan_maps(x: torch.Tensor, targets: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """A broken user explainer: NaN maps."""
    return torch.full((x.shape[0], *x.shape[-2:]), math.nan)


def test_a_refused_method_loses_only_its_rows(tmp_path: Path) -> None:
    root = make_voc(tmp_path / "VOC2007")
    said: list[tuple[str, str]] = []
    ev = cameras.evaluate(
        tiny(), ("voc", root), ["gradcam", _nan_maps], ["insertion", "rho_pos"], log=lambda *a: said.append(a), **API
    )
    assert {r.method for r in ev.rows} == {"gradcam"} and len(ev.rows) == 7
    assert all(math.isfinite(r.values["insertion"]) for r in ev.rows)
    errors = [text for level, text in said if level == "error" and "_nan_maps" in text]
    assert len(errors) == 7 and all("NaN" in e for e in errors)
