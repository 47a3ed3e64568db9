"""The batched metrics (:func:`cameras.metrics.faithfulness_set`) against the per-method functions called one map set
at a time (insertion_deletion, confidence_change, map_density: each tested against its own slow reference), on small
random CNNs with BatchNorm, several methods' maps, constant maps, photos of different sizes and pass sizes that cut
the queue anywhere."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from cameras.metrics import (
    black_baseline,
    confidence_change,
    faithfulness_set,
    insertion_deletion,
    map_density,
)

ATOL = 1e-6


def _cnn(seed: int, classes: int = 5) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2, padding=1),
        nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, classes),
    )  # fmt: skip
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):  # statistics that are not the identity, so train mode would differ
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return net.train()  # the metrics must switch it to eval mode themselves


def _maps(m: int, b: int, h: int, w: int, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    maps = torch.rand(m, b, h, w, generator=g)
    maps[1, 0] = 0.0  # a constant (degenerate) map: undefined everywhere
    maps[0, -1] = torch.round(maps[0, -1] * 4) / 4  # ties: the order's tie-break must be the same
    return maps


def _close(a: Tensor, b: Tensor) -> None:
    a, b = a.double(), b.double()
    assert torch.equal(a.isnan(), b.isnan())
    ok = ~a.isnan()
    assert float(torch.cat([(a[ok] - b[ok]).abs(), a.new_zeros(1)]).max()) <= ATOL


@pytest.mark.parametrize(
    ("seed", "size", "steps", "batch_size"),
    [(0, (12, 16), 10, 7), (1, (15, 9), 25, 64), (2, (8, 8), 100, 33)],  # steps > H*W: repeated pixel counts
)
def test_equals_the_per_method_functions(seed: int, size: tuple[int, int], steps: int, batch_size: int) -> None:
    net = _cnn(seed)
    h, w = size
    g = torch.Generator().manual_seed(seed + 10)
    x = torch.randn(3, 3, h, w, generator=g)
    raw = _maps(4, 3, h, w, seed) * 3 - 1  # outside [0, 1]: insertion orders by it, the others see it clamped
    unit = raw.clamp(0, 1)
    targets = [1, 4, 0]
    black = black_baseline()
    shown = torch.ones(4, 3, dtype=torch.bool)
    shown[2, 1] = False
    out = faithfulness_set(
        net, x, raw, targets, unit_maps=unit, steps=steps, density_baseline=black, density_mask=shown,
        batch_size=batch_size,
    )  # fmt: skip
    assert out.insertion_deletion is not None and out.confidence is not None and out.density is not None
    for m in range(4):
        ref = insertion_deletion(net, x, raw[m], targets, steps=steps, batch_size=batch_size)
        got = out.insertion_deletion[m]
        for field in ("insertion", "deletion", "insertion_curve", "deletion_curve", "fractions"):
            _close(getattr(got, field), getattr(ref, field))
        cc = confidence_change(net, x, unit[m], targets, batch_size=batch_size)
        for field in ("original", "explained", "drop", "increase"):
            _close(getattr(out.confidence[m], field), getattr(cc, field))
        keep = [k for k in range(3) if shown[m, k]]
        den = map_density(net, x[keep], unit[m][keep], [targets[k] for k in keep], baseline=black)
        d = out.density[m]
        for field in ("positive", "negative", "positive_probability", "negative_probability", "map_mean"):
            _close(getattr(d, field)[keep], getattr(den, field))
        _close(d.original_probability, cc.original)
        dropped = [k for k in range(3) if not shown[m, k]]
        assert d.positive[dropped].isnan().all() and d.negative[dropped].isnan().all()
    # the degenerate map: insertion/deletion and confidence undefined
    assert math.isnan(float(out.insertion_deletion[1].insertion[0]))
    assert math.isnan(float(out.confidence[1].drop[0]))
    assert net.training  # the model's mode is restored


def test_fewer_forwards_than_one_call_per_method() -> None:
    """The images the maps do not change run once per image: 2 (S - 1) + 3 per (method, image) plus 3 per image,
    against 2 (S + 1) + 2 + 3 per (method, image) one call at a time."""
    net, steps = _cnn(3), 20
    x = torch.randn(2, 3, 10, 10)
    maps = torch.rand(3, 2, 10, 10)
    out = faithfulness_set(net, x, maps, [0, 1], steps=steps)
    assert out.forwards == 3 * 2 * (2 * (steps - 1) + 3) + 3 * 2


@pytest.mark.parametrize("sizes", [[(12, 12), (16, 10), (9, 20)]])
def test_photos_of_different_sizes(sizes: list[tuple[int, int]]) -> None:
    """One call per input size (as the evaluator batches them) gives each photo the numbers of the one-at-a-time
    functions on that photo alone."""
    net = _cnn(4)
    for n, (h, w) in enumerate(sizes):
        x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(n))
        maps = torch.rand(2, 2, h, w, generator=torch.Generator().manual_seed(100 + n))
        out = faithfulness_set(net, x, maps, [2, 3], steps=12, batch_size=16)
        assert out.insertion_deletion is not None and out.density is not None
        for m in range(2):
            for k in range(2):
                one = insertion_deletion(net, x[k : k + 1], maps[m, k : k + 1], [2, 3][k], steps=12)
                _close(out.insertion_deletion[m].insertion[k : k + 1], one.insertion)
                _close(out.insertion_deletion[m].deletion_curve[k : k + 1], one.deletion_curve)
                den = map_density(net, x[k : k + 1], maps[m, k : k + 1], [2, 3][k])
                _close(out.density[m].positive[k : k + 1], den.positive)
                _close(out.density[m].negative[k : k + 1], den.negative)


def test_only_the_asked_metrics_and_their_forwards() -> None:
    net = _cnn(5)
    x, maps = torch.randn(2, 3, 8, 8), torch.rand(2, 2, 8, 8)
    out = faithfulness_set(net, x, maps, 1, insertion=False, confidence=False, density=True)
    assert out.insertion_deletion is None and out.confidence is None and out.density is not None
    assert out.forwards == 2 + 2 * 2 * 2  # the images once, kept and removed per (method, image)


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"maps": torch.rand(2, 8, 8)}, ValueError, r"\(M, B, H, W\)"),
        ({"maps": torch.rand(1, 2, 7, 8)}, ValueError, "resize the maps"),
        ({"maps": torch.full((1, 2, 8, 8), math.nan)}, ValueError, "NaN"),
        ({"unit_maps": torch.rand(2, 2, 8, 8)}, ValueError, "shape of maps"),
        ({"maps": torch.rand(1, 2, 8, 8) * 2}, ValueError, r"\[0, 1\]"),
        ({"targets": [0, 9]}, ValueError, "out of range"),
        ({"density_mask": torch.ones(2, 2, dtype=torch.bool)}, ValueError, "density_mask"),
        ({"steps": 0}, ValueError, "steps"),
    ],
)
def test_bad_inputs(kwargs: dict[str, object], err: type[Exception], match: str) -> None:
    args: dict[str, object] = {"maps": torch.rand(1, 2, 8, 8), "targets": [0, 1]}
    args.update(kwargs)
    maps, targets = args.pop("maps"), args.pop("targets")
    with pytest.raises(err, match=match):
        faithfulness_set(_cnn(6), torch.randn(2, 3, 8, 8), maps, targets, **args)  # type: ignore[arg-type]
