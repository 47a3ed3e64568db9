"""Issue 21 §7: a misspelt keyword in a method's call is an error naming it and the closest valid one — never
silently ignored (``CAMERAS(...)(x, target=5)`` used to explain the top-1 class)."""

from __future__ import annotations

import pytest
import torch

import cameras.methods as M

from ..engine.nets import TinyCNN

MISSPELT = [("target", "targets"), ("topk", "top_k"), ("contrst", "contrast"), ("gama", "gamma")]


@pytest.mark.parametrize("name", M.available())
def test_every_method_refuses_an_unknown_keyword(name: str) -> None:
    net = TinyCNN(classes=5)
    explainer = M.get(name)(net, layer="features")
    x = torch.randn(1, 3, 24, 24)
    for wrong, right in MISSPELT:
        with pytest.raises(TypeError) as err:
            explainer(x, **{wrong: 3})
        message = str(err.value)
        assert f"unexpected keyword argument {wrong!r}" in message and f"did you mean {right!r}?" in message, message
    with pytest.raises(TypeError, match=r"'zzz'; it takes .*targets.*top_k"):
        explainer(x, zzz=1)
    # the valid spelling is accepted and means what it says
    assert int(explainer(x, targets=3).targets[0]) == 3
