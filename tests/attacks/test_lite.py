"""End to end on the real EfficientNet-Lite0 and the bundled chelsea photo (few steps)."""

from __future__ import annotations

import pytest
import torch

import cameras
from cameras import attacks, data, models


@pytest.mark.slow
def test_focused_minimal_norm_attack_on_lite0_chelsea() -> None:
    m = models.load("efficientnet_lite0")
    lo, hi = -127 / 128, 128 / 128
    x = m.prepare(data.sample_image("chelsea")).tensor.clamp(lo, hi)
    with torch.no_grad():
        y = m.model(x).argmax(1)
    assert "cat" in m.labels[int(y)]
    sal = cameras.CAMERAS(m.model, layer=m.layer, resolutions=[224, 324])(x, y).saliency
    focus = attacks.top_area_mask(sal, 0.1)
    mask = torch.cat([focus, torch.ones_like(focus)])  # CAMERAS top-10 %, then the full image
    images, labels = x.repeat(2, 1, 1, 1), y.repeat(2)
    res = attacks.minimal_norm_attack(m.model, images, labels, mask=mask, norm="l2", bounds=(lo, hi), steps=4,
                                      search_steps=2)  # fmt: skip
    assert res.fooled.tolist() == [True, True]
    with torch.no_grad():
        assert bool((m.model(res.adversarial).argmax(1) != labels).all())
    assert bool((res.l2.double() <= res.eps.double()).all())
    frozen = (mask == 0)[:, None].expand_as(images)
    assert bool((res.adversarial[frozen] == images[frozen]).all())
    assert float(res.adversarial.min()) >= lo and float(res.adversarial.max()) <= hi
    assert float(res.l0[0]) <= float(focus.sum())
    assert 0 < float(res.l2[1]) < 10  # an undefended ImageNet model falls to a small full-image perturbation
