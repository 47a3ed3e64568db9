"""Size bounds: messages that say which bound and how to raise it; the preprocessing applies them before resizing."""

from __future__ import annotations

import numpy as np
import pytest

from cameras.io import DEFAULT_LIMITS, SizeLimitError, SizeLimits
from cameras.models import Preprocess


def test_defaults_let_the_paper_schedule_run_on_any_allowed_input() -> None:
    lim = DEFAULT_LIMITS
    long_side = lim.max_side
    paper_top = 924 / 224
    assert round(224 * paper_top) * round(long_side * paper_top) <= lim.max_pixels


def test_the_issue_s_4000x20_photo_is_refused_before_any_allocation() -> None:
    prep = Preprocess(size=224)
    assert prep.input_size_for((20, 4000)) == (224, 44800)
    with pytest.raises(SizeLimitError, match=r"224×44800 model input, longer than the limit of 1024 px") as info:
        prep(np.zeros((20, 4000, 3), np.uint8))
    assert "--max-side" in str(info.value) and "--square" in str(info.value)
    assert prep(np.zeros((20, 4000, 3), np.uint8), square=True).input_size == (224, 224)
    wide = prep(np.zeros((20, 4000, 3), np.uint8), limits=SizeLimits(max_side=50_000, max_pixels=11_000_000))
    assert wide.input_size == (224, 44800)  # raised bounds: allowed


def test_scales_and_bounds() -> None:
    lim = SizeLimits(max_pixels=10_000, min_side=16)
    lim.check_scales([(100, 100), (16, 40)])
    with pytest.raises(SizeLimitError, match="101×100 = 10,100 pixels exceeds the limit of 10,000"):
        lim.check_scales([(100, 100), (101, 100)], "cat.png")
    with pytest.raises(SizeLimitError, match="below the smallest side of 16 px"):
        lim.check_scales([(15, 40)])
    with pytest.raises(SizeLimitError, match="more than the limit"):
        lim.check_input((10, 10), (101, 100))
    for bad in ({"max_side": 0}, {"max_pixels": -1}, {"min_side": True}, {"max_side": 8, "min_side": 16}):
        with pytest.raises(ValueError):
            SizeLimits(**bad)  # type: ignore[arg-type]
