"""The registry by name used by the CLI: every documented name and alias resolves; unknown names fail clearly."""

from __future__ import annotations

import re

import pytest
import torch

import cameras.methods as M

from ..engine.nets import TinyCNN

NAMES = {
    "cameras": M.CAMERAS,
    "cam": M.CAM,
    "gradcam": M.GradCAM,
    "gradcam++": M.GradCAMPlusPlus,
    "hirescam": M.HiResCAM,
    "layercam": M.LayerCAM,
    "xgradcam": M.XGradCAM,
    "scorecam": M.ScoreCAM,
    "gradient": M.Gradient,
    "saliency": M.Gradient,
    "guided_backprop": M.GuidedBackprop,
    "guidedbackprop": M.GuidedBackprop,
    "integrated_gradients": M.IntegratedGradients,
    "ig": M.IntegratedGradients,
    "smoothgrad": M.SmoothGrad,
    "Grad-CAM++": M.GradCAMPlusPlus,
}


def test_names_and_aliases() -> None:
    for name, cls in NAMES.items():
        assert M.get(name) is cls, name
    assert set(M.available()) == {
        "cameras", "cam", "gradcam", "gradcam++", "hirescam", "layercam", "xgradcam", "scorecam", "gradient",
        "guided_backprop", "integrated_gradients", "smoothgrad",
        "ms-gradcam", "ms-gradcam++", "ms-hirescam", "ms-layercam", "ms-xgradcam",
    }  # fmt: skip
    # every canonical name maps back to its class
    assert all(M.get(n).name == n for n in M.available())


def test_every_registered_method_runs_through_the_common_call() -> None:
    model = TinyCNN(seed=0, width=4)
    x = torch.randn(1, 3, 32, 32)
    for name in M.available():
        cls = M.get(name)
        kwargs = {"progress": False} if name == "scorecam" else {}
        if name == "cameras" or name.startswith("ms-"):
            kwargs = {"resolutions": [1.0, 1.5]}
        out = cls(model, layer="features", **kwargs)(x, targets=[3])
        assert out.saliency.shape == (1, 32, 32), name
        assert out.targets.tolist() == [3] and out.method == name
        assert 0 <= float(out.saliency.min()) and float(out.saliency.max()) <= 1


def test_unknown_name() -> None:
    with pytest.raises(ValueError, match=re.escape("Unknown method 'gradcam+++'. Available: cam, cameras, gradcam,")):
        M.get("gradcam+++")
