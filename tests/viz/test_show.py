"""``cameras.viz.show`` / ``Result.plot``: maps over the photo side by side in a matplotlib figure, drawn with the one
overlay (the pixels in each panel are exactly ``overlay(photo, map on the photo)``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

import cameras
from cameras.models import Preprocess
from cameras.models.preprocess import resize_map
from cameras.viz import overlay, show

from ..engine.nets import TinyCNN

LABELS = [f"label{i}" for i in range(10)]


def _photo() -> tuple[np.ndarray, object]:
    rgb = np.random.default_rng(0).integers(0, 256, (30, 45, 3), dtype=np.uint8)
    return rgb, Preprocess(size=32)(rgb)  # input 32×48: the maps come back to 30×45


def _panel_pixels(fig: Figure, i: int) -> np.ndarray:
    images = fig.axes[i].get_images()
    assert len(images) == 1
    return np.asarray(images[0].get_array())


def test_result_plot_draws_each_class_as_the_overlay_of_its_map_on_the_photo() -> None:
    rgb, photo = _photo()
    out = cameras.CAMERAS(TinyCNN(), layer="features", resolutions=[1.0, 1.5])(photo.tensor, top_k=2)  # type: ignore[attr-defined]
    fig = out.plot(photo, labels=LABELS, alpha=0.4)
    assert isinstance(fig, Figure)
    assert np.array_equal(_panel_pixels(fig, 0), rgb)  # the photo first
    for k in range(2):
        on_photo = resize_map(out.saliency[0, k], (30, 45)).numpy()
        assert np.array_equal(_panel_pixels(fig, 1 + k), overlay(rgb, on_photo, alpha=0.4))
        cls, p = int(out.targets[0, k]), float(out.probabilities[0, k])
        assert fig.axes[1 + k].get_title() == f"cameras\n{LABELS[cls]} (p={p:.2f})"
    assert fig.axes[-1].get_label() == "<colorbar>"


def test_show_methods_side_by_side_from_a_mapping_of_results_and_maps() -> None:
    rgb, photo = _photo()
    net = TinyCNN()
    x = photo.tensor  # type: ignore[attr-defined]
    maps = {
        "CAMERAS": cameras.CAMERAS(net, layer="features", resolutions=[1.0, 1.5])(x),
        "Grad-CAM": cameras.GradCAM(net, layer="features")(x),
        "a ramp": torch.linspace(0, 1, 48).repeat(32, 1),
    }
    fig = show(photo, maps, labels=LABELS, columns=2, title="three maps")
    titles = [ax.get_title().split("\n")[0] for ax in fig.axes[:4]]
    assert titles == ["photo", "CAMERAS", "Grad-CAM", "a ramp"]
    assert fig.get_suptitle() == "three maps"
    ramp = resize_map(maps["a ramp"], (30, 45)).numpy()  # type: ignore[arg-type]
    assert np.array_equal(_panel_pixels(fig, 3), overlay(rgb, ramp))
    # a plain array photo: maps of another size are resized onto it
    fig = show(rgb, [np.zeros((30, 45), np.float32), np.ones((2, 15, 20), np.float32)])
    assert [ax.get_title() for ax in fig.axes[:4]] == ["photo\n30×45 px", "map", "map 1", "map 2"]


def test_show_refuses_bad_inputs() -> None:
    rgb, photo = _photo()
    with pytest.raises(ValueError, match="Nothing to draw"):
        show(rgb, [])
    with pytest.raises(ValueError, match=r"\(H, W\) or \(K, H, W\)"):
        show(rgb, torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="index"):
        cameras.GradCAM(TinyCNN(), layer="features")(photo.tensor).plot(photo, index=3)  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="photo"):
        show("not a photo", torch.zeros(4, 4))
    with pytest.raises(ValueError, match="alpha"):
        show(rgb, torch.zeros(4, 4), alpha=1.5)
