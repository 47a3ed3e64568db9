"""``attacks.attack_photos``: the one loop of ``cameras attack`` over photos of several sizes equals the reports of
each same-size batch computed directly and merged; a failing batch costs only its photos; figures are listed in the
output folder; progress is on stderr unless silenced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from cameras import attacks
from cameras.io import OutputDir

from .nets import SmallCNN

BOUNDS = (-2.0, 2.0)


def _photos() -> list[tuple[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    sizes = {"a": (16, 20), "b": (12, 12), "c": (16, 20)}
    return [(n, (torch.rand(1, 3, *hw, generator=g) * 2 - 1)) for n, hw in sizes.items()]


MASK = dict(sources=["cameras", "random", "full"], area=0.2, bounds=BOUNDS, layer="features", steps=3, search_steps=2)
PENALTY = dict(
    sources=["gradcam", "constant", "none"], beta=1.0, betas=[0.1], eps=0.3, step_size=0.1, steps=3, bounds=BOUNDS,
    layer="features", batch_size=4,
)  # fmt: skip


def _json(cmp: Any) -> str:
    """The comparison's report without its timings."""

    def untimed(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: untimed(x) for k, x in v.items() if k != "seconds"}
        return [untimed(x) for x in v] if isinstance(v, list) else v

    return json.dumps(untimed(cmp.to_dict()), sort_keys=True)


def test_mask_objective_equals_the_batches_merged(capsys: pytest.CaptureFixture[str]) -> None:
    net = SmallCNN(classes=5)
    photos = _photos()
    done = attacks.attack_photos(net, photos, objective="mask", options=MASK, progress=False)
    assert done.objective == "mask" and done.failures == 0 and done.figures == []
    parts = []
    for names in (["a", "c"], ["b"]):  # batched by size, in the order of each size's first photo
        batch = torch.cat([x for n, x in photos if n in names])
        labels = net(batch).argmax(dim=1)
        parts.append(attacks.compare_focus(net, batch, labels, names=names, **MASK))  # type: ignore[arg-type]
    expected = attacks.FocusComparison.merge(parts)
    assert isinstance(done.comparison, attacks.FocusComparison)
    assert [(r.image, r.source) for r in done.comparison.records] == [
        (n, s) for n in ("a", "c", "b") for s in ("cameras", "random", "full")
    ]
    assert _json(done.comparison) == _json(expected)
    assert capsys.readouterr().err == ""  # progress=False: silent


def test_penalty_objective_equals_the_batches_merged() -> None:
    net = SmallCNN(classes=5)
    photos = _photos()
    done = attacks.attack_photos(net, photos, objective="penalty", options=PENALTY, progress=False)
    parts = []
    for names in (["a", "c"], ["b"]):
        batch = torch.cat([x for n, x in photos if n in names])
        parts.append(attacks.compare_penalty(net, batch, names=names, **PENALTY))  # type: ignore[arg-type]
    expected = attacks.PenaltyComparison.merge(parts)
    assert isinstance(done.comparison, attacks.PenaltyComparison)
    assert _json(done.comparison) == _json(expected)
    # a warning for each photo and source whose map is flat (not for "none", which has no map), batch by batch
    flat = [
        ("warning", f"{n}: {s}: degenerate (constant) map, its penalty is uniform")
        for part, names in zip(parts, (["a", "c"], ["b"]))
        for s, maps in part.maps.items()
        if s != "none"
        for n, m in zip(names, maps)
        if float(m.max() - m.min()) <= 1e-6 * float(m.abs().max())
    ]
    assert ("warning", "b: constant: degenerate (constant) map, its penalty is uniform") in flat
    assert done.messages == flat


def test_a_failing_batch_costs_only_its_photos(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    net = SmallCNN(classes=5)
    photos = [*_photos(), ("gray", torch.zeros(1, 1, 10, 10))]  # one channel: the model refuses it
    out = OutputDir(tmp_path / "out")
    done = attacks.attack_photos(
        net,
        photos,
        objective="mask",
        options=MASK,
        out=out,
        to_display=lambda t: ((t + 2) / 4).permute(1, 2, 0).numpy(),
        progress=True,
    )
    assert done.failures == 1
    errors = [line for kind, line in done.messages if kind == "error"]
    assert len(errors) == 1 and errors[0].startswith("gray: ")
    assert done.comparison is not None and {r.image for r in done.comparison.records} == {"a", "b", "c"}
    assert done.figures == ["a_attack.png", "c_attack.png", "b_attack.png"]
    assert out.written == [out.path / f for f in done.figures] and all(p.stat().st_size > 1000 for p in out.written)
    err = capsys.readouterr().err
    assert "attack (mask)" in err and "4/4" in err  # the bar over the photos reached the end, on stderr


def test_nothing_attacked_and_bad_arguments(tmp_path: Path) -> None:
    net = SmallCNN(classes=5)
    done = attacks.attack_photos(net, [("gray", torch.zeros(1, 1, 8, 8))], options=MASK, progress=False)
    assert done.comparison is None and done.failures == 1
    with pytest.raises(ValueError, match="objective"):
        attacks.attack_photos(net, _photos(), objective="other", options=MASK)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="to_display"):
        attacks.attack_photos(net, _photos(), options=MASK, out=OutputDir(tmp_path / "o"))
