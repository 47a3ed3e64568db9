"""The focus comparison: records agree with direct attacks, summary statistics, JSON, table and figure."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
import torch

from cameras.attacks import compare_focus, format_table, minimal_norm_attack, plot_focus_figure, random_area_mask

from .nets import SmallCNN

BOUNDS = (-1.0, 1.0)


@pytest.fixture(scope="module")
def setup() -> tuple[SmallCNN, torch.Tensor, torch.Tensor]:
    net = SmallCNN()
    g = torch.Generator().manual_seed(3)
    x = torch.rand(3, 3, 16, 16, generator=g) * 2 - 1
    return net, x, net(x).argmax(1)


def test_records_match_direct_attacks_and_summary(setup: tuple[SmallCNN, torch.Tensor, torch.Tensor]) -> None:
    net, x, y = setup
    kw = {"area": 0.25, "bounds": BOUNDS, "steps": 6, "search_steps": 4, "seed": 2}
    cmp = compare_focus(
        net, x, y, sources=["cameras", "random", "full"], layer="features", names=["a", "b", "c"],
        class_names=[f"class{i}" for i in range(5)], **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    assert [(r.image, r.source) for r in cmp.records] == [(n, s) for n in "abc" for s in ("cameras", "random", "full")]
    direct = minimal_norm_attack(
        net, x, y, mask=random_area_mask(3, 16, 16, 0.25, seed=2), bounds=BOUNDS, steps=6, search_steps=4, seed=2
    )
    rand = [r for r in cmp.records if r.source == "random"]
    assert [r.l2 for r in rand] == pytest.approx(direct.l2.tolist())
    assert [r.fooled for r in rand] == direct.fooled.tolist()
    assert all(r.free_pixels == 64 for r in rand)
    assert all(r.l0 <= r.free_pixels for r in cmp.records)
    assert all(r.label_name == f"class{r.label}" for r in cmp.records)

    summary = {row["source"]: row for row in cmp.summary()}
    for source in ("cameras", "random", "full"):
        recs = [r for r in cmp.records if r.source == source]
        fooled = [r.l2 for r in recs if r.fooled]
        assert summary[source]["fooling_rate"] == len(fooled) / 3
        if fooled:
            assert summary[source]["median_l2"] == pytest.approx(statistics.median(fooled))
    assert summary["full"]["fooling_rate"] == 1.0

    data = json.loads(json.dumps(cmp.to_dict()))  # strictly JSON (no inf / nan)
    assert data["settings"]["area"] == 0.25 and len(data["records"]) == 9
    table = format_table(cmp)
    assert table.count("\n| a |") == 3 and "| full |" in table


def test_summary_paired_median_uses_images_fooled_by_all(
    setup: tuple[SmallCNN, torch.Tensor, torch.Tensor],
) -> None:
    net, x, y = setup
    # a tiny area cannot fool everything within a small budget; full can
    cmp = compare_focus(net, x, y, sources=["random", "full"], area=0.01, bounds=BOUNDS, steps=4, search_steps=2)
    rows = {row["source"]: row for row in cmp.summary()}
    by_random = {r.image for r in cmp.records if r.source == "random" and r.fooled}
    by_full = {r.image for r in cmp.records if r.source == "full" and r.fooled}
    both = by_random & by_full
    assert rows["full"]["paired_images"] == len(both)
    full_paired = [r.l2 for r in cmp.records if r.source == "full" and r.image in both]
    expected = statistics.median(full_paired) if full_paired else math.nan
    assert (math.isnan(expected) and math.isnan(rows["full"]["paired_median_l2"])) or rows["full"][
        "paired_median_l2"
    ] == pytest.approx(expected)


def test_figure_written(setup: tuple[SmallCNN, torch.Tensor, torch.Tensor], tmp_path: Path) -> None:
    net, x, y = setup
    cmp = compare_focus(net, x[:1], y[:1], sources=["full"], bounds=BOUNDS, steps=3, search_steps=1)
    out = plot_focus_figure(cmp, 0, x[:1], lambda t: ((t + 1) / 2).permute(1, 2, 0).numpy(), tmp_path / "f.png")
    assert out.exists() and out.stat().st_size > 1000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_names(setup: tuple[SmallCNN, torch.Tensor, torch.Tensor]) -> None:
    net, x, y = setup
    with pytest.raises(ValueError, match="names"):
        compare_focus(net, x, y, sources=["full"], names=["only-one"])
