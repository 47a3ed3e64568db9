"""Every function that runs the user's model runs it in eval mode and gives it back exactly as it was: training
flags of every module (mixed modes included), ``requires_grad`` of every parameter, BatchNorm running statistics —
also when the function raises. One table over the attacks, the faithfulness metrics, the sanity check, the
explainers, predictions, and the paper's evaluation (map density, the saliency-penalised PGD and its report, the
adversarial sanity test)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import cameras
from cameras.attacks import compare_focus, compare_penalty, least_likely, minimal_norm_attack, pgd_attack, saliency_pgd
from cameras.engine import ModelState, eval_mode
from cameras.metrics import confidence_change, insertion_deletion, map_density
from cameras.models import LoadedModel, Preprocess
from cameras.sanity import adversarial_effect, adversarial_sanity, cascading_randomization, randomized_copy

from .nets import TinyCNN


def _model() -> TinyCNN:
    """Train mode with a mix: the body frozen in eval, one parameter without grad, one BN left in train."""
    net = TinyCNN(classes=4, seed=3).train()
    net.body.eval()
    net.stem[0].bias.requires_grad_(False)
    return net


def _state(net: nn.Module) -> tuple[list[bool], list[bool], list[torch.Tensor]]:
    flags = [m.training for m in net.modules()]
    grads = [p.requires_grad for p in net.parameters()]
    buffers = [b.detach().clone() for b in net.buffers()]
    return flags, grads, buffers


def _same(
    a: tuple[list[bool], list[bool], list[torch.Tensor]], b: tuple[list[bool], list[bool], list[torch.Tensor]]
) -> None:
    assert a[0] == b[0], "training flags changed"
    assert a[1] == b[1], "requires_grad changed"
    for x, y in zip(a[2], b[2]):
        torch.testing.assert_close(x, y, rtol=0, atol=0)  # BatchNorm statistics untouched


X = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
SAL = torch.rand(2, 16, 16, generator=torch.Generator().manual_seed(1))
T = torch.tensor([0, 1])

RUNS: dict[str, Callable[[nn.Module], Any]] = {
    "pgd_attack": lambda m: pgd_attack(m, X, T, eps=0.5, steps=3),
    "minimal_norm_attack": lambda m: minimal_norm_attack(m, X, T, steps=2, search_steps=1),
    "compare_focus": lambda m: compare_focus(
        m, X, T, sources=["gradcam", "full"], layer="features", steps=2, search_steps=1
    ),
    "insertion_deletion": lambda m: insertion_deletion(m, X, SAL, T, steps=4),
    "confidence_change": lambda m: confidence_change(m, X, SAL, T),
    "cascading_randomization": lambda m: cascading_randomization(
        m, "gradcam", X, T, layer="features", blocks=["head", "features"]
    ),
    "CAMERAS": lambda m: cameras.CAMERAS(m, layer="features", resolutions=[1.0, 1.5])(X, T),
    "GradCAM": lambda m: cameras.GradCAM(m, layer="features")(X, T),
    "predict": lambda m: LoadedModel("t", m, "features", Preprocess(size=16), list("abcd")).predict(X),
    "map_density": lambda m: map_density(m, X, SAL, T),
    "least_likely": lambda m: least_likely(m, X),
    "saliency_pgd": lambda m: saliency_pgd(m, X, SAL, T, beta=1.0, eps=0.1, step_size=0.05, steps=2),
    "compare_penalty": lambda m: compare_penalty(
        m,
        X,
        sources=["gradcam", "shuffled", "none"],
        betas=[1.0],
        eps=0.1,
        step_size=0.05,
        steps=2,
        layer="features",
    ),
    "adversarial_effect": lambda m: adversarial_effect(m, X, T, patch=4, eps=0.1, steps=2),
    "adversarial_sanity": lambda m: adversarial_sanity(m, "gradcam", X, T, patch=4, eps=0.1, steps=2, layer="features"),
}

# the same calls with a target class the 4-class model does not have: each raises after running the model
FAILING: dict[str, Callable[[nn.Module], Any]] = {
    "pgd_attack": lambda m: pgd_attack(m, X, torch.tensor([0, 9]), eps=0.5, steps=3),
    "minimal_norm_attack": lambda m: minimal_norm_attack(m, X, torch.tensor([0, 9]), steps=2),
    "insertion_deletion": lambda m: insertion_deletion(m, X, SAL, [0, 9], steps=4),
    "confidence_change": lambda m: confidence_change(m, X, SAL, [0, 9]),
    "cascading_randomization": lambda m: cascading_randomization(
        m, "gradcam", X, [0, 9], layer="features", blocks=["head"]
    ),
    "CAMERAS": lambda m: cameras.CAMERAS(m, layer="features", resolutions=[1.0])(X, torch.tensor([0, 9])),
    "map_density": lambda m: map_density(m, X, SAL, [0, 9]),
    "saliency_pgd": lambda m: saliency_pgd(m, X, SAL, torch.tensor([0, 9]), eps=0.1, step_size=0.05, steps=2),
    "adversarial_effect": lambda m: adversarial_effect(m, X, [0, 9], patch=4, eps=0.1, steps=2),
}


@pytest.mark.parametrize("name", list(RUNS))
def test_runs_in_eval_mode_and_restores_the_model(name: str) -> None:
    net = _model()
    before = _state(net)
    seen: list[bool] = []
    hook = net.stem[1].register_forward_pre_hook(lambda mod, inp: seen.append(mod.training))
    out = RUNS[name](net)
    hook.remove()
    assert seen and not any(seen), "the model ran in training mode"
    _same(before, _state(net))
    reference = _model().eval()  # the result equals that of the same model in eval mode
    if name in ("pgd_attack", "minimal_norm_attack"):
        ref = RUNS[name](reference)
        torch.testing.assert_close(out.adversarial, ref.adversarial)
        assert out.fooled.tolist() == ref.fooled.tolist()


@pytest.mark.parametrize("name", list(FAILING))
def test_restores_the_model_after_an_error(name: str) -> None:
    net = _model()
    before = _state(net)
    with pytest.raises(ValueError):
        FAILING[name](net)
    _same(before, _state(net))


def test_the_issue_s_wrong_result_is_gone() -> None:
    """``minimal_norm_attack`` on a model in train mode updated its BatchNorm statistics (and so its predictions) and
    reported ``fooled=True, eps=0``; now it equals the eval-mode attack and leaves the statistics alone."""
    net = TinyCNN(classes=4, seed=5).train()
    with torch.no_grad():
        labels = net.eval()(X).argmax(dim=1)
    net.train()
    stats = net.stem[1].running_mean.clone()
    res = minimal_norm_attack(net, X, labels, steps=3, search_steps=2)
    assert torch.equal(net.stem[1].running_mean, stats) and net.training
    assert (res.eps > 0).all()


def test_model_state_nests_and_eval_mode_passes_non_modules_through() -> None:
    net = _model()
    before = _state(net)
    state = ModelState(net)
    with state:
        with state:
            assert not any(m.training for m in net.modules())
        assert not net.training
    _same(before, _state(net))

    @eval_mode
    def first(model: object, x: torch.Tensor) -> object:
        return model

    assert first("not a model", X) == "not a model"  # validation left to the function itself
    assert first(model=net, x=X) is net and net.training
    with pytest.raises(TypeError):
        ModelState("net")  # type: ignore[arg-type]


def test_attacks_refuse_images_with_the_wrong_channel_count() -> None:
    """The issue's raw conv RuntimeError for a 1-channel image: now a ValueError naming both counts, and a model that
    cannot run on the images at all is a ValueError naming the shape."""
    net = TinyCNN(classes=4).eval()
    gray = torch.rand(1, 1, 16, 16)
    for attack in (lambda: minimal_norm_attack(net, gray, torch.tensor([0])),
                   lambda: pgd_attack(net, gray, torch.tensor([0]), eps=0.1)):  # fmt: skip
        with pytest.raises(ValueError, match="1 channels but the model's first convolution expects 3"):
            attack()
    linear = nn.Sequential(nn.Flatten(), nn.Linear(12, 2)).eval()
    with pytest.raises(ValueError, match=r"cannot run on images of shape \(1, 3, 4, 4\)"):
        minimal_norm_attack(linear, torch.rand(1, 3, 4, 4), torch.tensor([0]))


def test_randomized_copy_leaves_the_original_alone() -> None:
    """The randomised copy re-estimates its own BatchNorm statistics (in train mode, on the copy only); the
    original's flags, requires_grad and statistics are untouched and the copy comes back in eval mode."""
    net = _model()
    before = _state(net)
    copy = randomized_copy(net, X, seed=0)
    _same(before, _state(net))
    assert not any(m.training for m in copy.modules())
    assert not torch.equal(copy.stem[1].running_mean, net.stem[1].running_mean)
