"""The engine vs the slow reference on the real bundled EfficientNet-Lite0 and real photos."""

from __future__ import annotations

import pytest
import torch

import cameras
from cameras import data, models
from cameras.engine import schedule

from .reference import reference_cameras

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lite0() -> models.LoadedModel:
    return models.load("efficientnet_lite0")


@pytest.mark.parametrize(
    ("photo", "square", "resolutions", "target"),
    [
        ("chelsea", False, [1.0, 324 / 224, 424 / 224], None),  # non-square, class chosen by the model
        ("coffee", True, [224, 324, 424], 967),  # square paper mode, absolute sizes, class given (espresso)
        ("rocket", False, [1.0, 1.5], None),
    ],
)
def test_engine_matches_reference_on_lite0(
    lite0: models.LoadedModel, photo: str, square: bool, resolutions: list, target: int | None
) -> None:
    x = lite0.preprocess(data.sample_image(photo), square=square).tensor
    targets = None if target is None else torch.tensor([target])
    sizes = schedule(resolutions, (int(x.shape[-2]), int(x.shape[-1])))
    layer = dict(lite0.model.named_modules())[lite0.layer]
    ref_map, ref_t, ref_kept = reference_cameras(lite0.model, layer, x, sizes, targets)
    out = cameras.CAMERAS(lite0.model, layer=lite0.layer, resolutions=resolutions)(x, targets)
    assert torch.equal(out.targets, ref_t) and torch.equal(out.kept, ref_kept)
    assert (out.saliency - ref_map).abs().max().item() <= 1e-4
