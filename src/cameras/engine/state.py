"""Running the user's model safely: eval mode for the duration of a computation, everything restored afterwards.

Every function of the package that runs the caller's model — the explainers (through
:class:`~cameras.engine.tap.LayerTap` or this class), the attacks, the faithfulness metrics, predictions — does so
inside :class:`ModelState`: BatchNorm running statistics are not updated, dropout is off, and the model's training
flags and parameters' ``requires_grad`` come back exactly as they were, also when the computation raises.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import TracebackType
from typing import ParamSpec, TypeVar

from torch import nn

__all__ = ["ModelState", "eval_mode"]

P = ParamSpec("P")
R = TypeVar("R")


class ModelState:
    """Context manager: eval mode (and, with ``freeze``, ``requires_grad=False`` on every parameter) for a block;
    every module's training flag and every parameter's ``requires_grad`` are restored on exit, also after an error.

    Each module's own flag is saved, so a model whose submodules were in mixed modes (e.g. a frozen backbone in eval
    under a head in training) gets exactly that mix back. Re-entrant: nested uses restore in order.

    Args:
        model: the network.
        freeze: also set ``requires_grad=False`` on every parameter (no parameter gradients are prepared; the
            gradients with respect to inputs or activations are unaffected).

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout()).train()
        >>> with ModelState(net):
        ...     net.training, net[0].weight.requires_grad
        (False, False)
        >>> net.training, net[0].weight.requires_grad
        (True, True)
    """

    def __init__(self, model: nn.Module, freeze: bool = True) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
        self.model = model
        self.freeze = freeze
        self._saved: list[tuple[list[tuple[nn.Module, bool]], list[tuple[nn.Parameter, bool]]]] = []

    def __enter__(self) -> ModelState:
        training = [(m, m.training) for m in self.model.modules()]
        grads = [(p, p.requires_grad) for p in self.model.parameters()] if self.freeze else []
        self._saved.append((training, grads))
        self.model.eval()
        for p, _ in grads:
            p.requires_grad_(False)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        training, grads = self._saved.pop()
        for m, mode in training:
            m.training = mode
        for p, flag in grads:
            p.requires_grad_(flag)


def eval_mode(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator: run ``fn`` with its model — the first positional argument, or the ``model=`` keyword — inside
    :class:`ModelState` (eval mode, parameters frozen, everything restored afterwards, also on an error).

    When the model argument is not an ``nn.Module`` the function is called as is (so that its own validation
    raises its own error).

    Example:
        >>> import torch
        >>> @eval_mode
        ... def first_logit(model: nn.Module, x: torch.Tensor) -> float:
        ...     return float(model(x)[0, 0])
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).train()
        >>> _ = first_logit(net, torch.ones(1, 2))   # batch of 1: only possible in eval mode
        >>> net.training, int(net[1].num_batches_tracked)
        (True, 0)
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        model = args[0] if args else kwargs.get("model")
        if not isinstance(model, nn.Module):
            return fn(*args, **kwargs)
        with ModelState(model):
            return fn(*args, **kwargs)

    return wrapper
