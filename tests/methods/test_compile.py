"""compile= of CAMERAS: the compiled path gives eager's maps, "auto" is off for one photo, bad values are refused."""

from __future__ import annotations

import pytest
import torch

import cameras
from cameras.methods.compiling import COMPILE_AUTO_MIN_PHOTOS, check_compile, resolve_compile
from tests.engine.nets import TinyCNN


def test_compiled_maps_equal_eager() -> None:
    torch.manual_seed(0)
    net = TinyCNN().eval()
    x = torch.randn(2, 3, 32, 40)
    eager = cameras.CAMERAS(net, layer="features", resolutions=[32, 48])(x)
    compiled = cameras.CAMERAS(net, layer="features", resolutions=[32, 48], compile="aot_eager")(x)
    assert torch.equal(eager.targets, compiled.targets)
    assert (eager.saliency - compiled.saliency).abs().max() < 1e-4


def test_auto_rule() -> None:
    assert resolve_compile("auto", 1) is False
    assert resolve_compile("auto", COMPILE_AUTO_MIN_PHOTOS) is True
    assert resolve_compile(True, 1) is True and resolve_compile(False, 10**6) is False


@pytest.mark.parametrize("bad", ["on", "off", "", 1, None])
def test_bad_values_refused(bad: object) -> None:
    with pytest.raises((TypeError, ValueError), match="compile"):
        check_compile(bad)
