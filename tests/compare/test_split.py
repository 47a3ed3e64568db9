"""Issue 23 §2: the comparison views are computed in :mod:`cameras.compare` (no figure until one is asked for) and
drawn by :mod:`cameras.viz.compare`; :func:`cameras.compare.compare` picks the view as ``cameras compare`` does."""

from __future__ import annotations

import numpy as np
import pytest

import cameras.compare as C
import cameras.viz as viz
import cameras.viz.compare as vc
from cameras.models import LoadedModel, Preprocess

from ..engine.nets import TinyCNN

LABELS = ["ant", "bee", "cat", "dog", "eel"]


def _tiny(name: str, seed: int) -> LoadedModel:
    return LoadedModel(name, TinyCNN(classes=5, seed=seed), "features", Preprocess(size=32), list(LABELS))


@pytest.fixture
def photo() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, size=(36, 52, 3), dtype=np.uint8)


def _same(a: C.Comparison, b: C.Comparison) -> None:
    assert a.view == b.view and a.title == b.title and a.spearman == b.spearman and a.info == b.info
    assert [(p.title, p.kind, p.class_index, p.against, p.row) for p in a.panels] == [
        (p.title, p.kind, p.class_index, p.against, p.row) for p in b.panels
    ]
    for p, q in zip(a.panels, b.panels):
        np.testing.assert_array_equal(p.saliency, q.saliency)


def test_compare_picks_the_view_and_equals_the_view_s_own_call(photo: np.ndarray) -> None:
    a, b = _tiny("a", 0), _tiny("b", 1)
    cases = [
        (C.compare([a], photo, methods=["gradcam", "layercam"]), C.compare_methods(a, photo, ["gradcam", "layercam"])),
        (C.compare([a], photo, classes=["bee", "eel"], methods=["gradcam"]),
         C.compare_classes(a, photo, ["bee", "eel"], "gradcam")),
        (C.compare([a], photo, classes=["bee", "eel"], methods=["gradcam"], contrastive=True, gamma=0.5),
         C.compare_classes(a, photo, ["bee", "eel"], "gradcam", contrastive=True, gamma=0.5)),
        (C.compare([a, b], photo, methods=["gradcam"], classes=["dog"]),
         C.compare_models([a, b], photo, "gradcam", "dog")),
        (C.compare([a, b], photo, methods=["gradcam"], classes=["bee", "dog"]),
         C.compare_class_grid([a, b], photo, ["bee", "dog"], ["gradcam"])),
    ]  # fmt: skip
    assert [got.view for got, _ in cases] == ["methods", "classes", "classes", "models", "class_grid"]
    for got, expected in cases:
        _same(got, expected)
    assert cases[2][0].info["gamma"] == 0.5 and {p.kind for p in cases[2][0].panels[2:]} == {"contrastive"}


def test_the_figure_is_drawn_on_first_use_by_viz(photo: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    view = C.compare_classes(_tiny("a", 0), photo, ["bee", "eel"], "gradcam")
    assert view._figure is None  # computing drew nothing
    drawn: list[C.Comparison] = []
    real = vc.draw
    monkeypatch.setattr(vc, "draw", lambda v: drawn.append(v) or real(v))
    figure = view.figure
    assert view.figure is figure and drawn == [view]  # drawn once, by cameras.viz.compare.draw
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert [p.title for p in view.panels] == titles[1:]  # photo, then the panels in order
    assert len(figure.axes) == 2 * 3 + 2  # 2 rows of photo/side + 2 maps, and two colour bars (maps, contrasts)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"methods": ["a", "b"], "models": ["x", "y"]}, "compare one thing at a time"),
        ({"contrastive": True, "classes": ["bee"]}, "--contrastive needs two or more --classes"),
        ({"gamma": 0.5, "classes": ["bee", "eel"]}, "--gamma applies to --contrastive"),
        ({"layer": "features", "models": ["x", "y"]}, "--layer applies to one model"),
    ],
)
def test_choose_view_refuses_what_the_cli_refuses(kwargs: dict[str, object], message: str) -> None:
    lists = {"methods": [], "classes": [], "models": ["x"]}
    lists.update({k: v for k, v in kwargs.items() if k in lists})  # type: ignore[misc]
    rest = {k: v for k, v in kwargs.items() if k not in lists}
    with pytest.raises(ValueError, match=message):
        C.choose_view(lists["methods"], lists["classes"], lists["models"], **rest)  # type: ignore[arg-type]


def test_a_bad_alpha_is_refused_before_any_map(photo: np.ndarray) -> None:
    class Boom(TinyCNN):
        def forward(self, x: object) -> object:
            raise AssertionError("the model ran")

    loaded = LoadedModel("boom", Boom(classes=5), "features", Preprocess(size=32), list(LABELS))
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        C.compare_methods(loaded, photo, ["gradcam"], target=1, alpha=1.5)


def test_public_names_stay_where_they_were() -> None:
    for name in ("Comparison", "Panel", "compare_methods", "compare_classes", "compare_models",
                 "compare_class_grid", "spearman", "method_label", "DEFAULT_METHODS"):  # fmt: skip
        assert getattr(vc, name) is getattr(C, name) is getattr(viz, name), name
