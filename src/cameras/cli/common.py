"""Options and helpers shared by the ``cameras`` subcommands (one definition, the same spelling everywhere)."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..models import LoadedModel

__all__ = ["add_model_options", "add_run_options", "load_model", "print_error", "slug", "split_list"]


def add_model_options(parser: argparse.ArgumentParser, *, model: bool = True, layer_help: str | None = None) -> None:
    """``--model`` (unless ``model=False``, for commands that take several), ``--weights`` and ``--layer``."""
    if model:
        parser.add_argument(
            "--model", default=None, help="model name (default: efficientnet_lite0); see `cameras.models`"
        )
    parser.add_argument(
        "--weights", default="DEFAULT", help="DEFAULT (packaged/torchvision weights) or a checkpoint PATH"
    )
    parser.add_argument(
        "--layer", default=None, help=layer_help or "dotted layer name (default: the model's default layer)"
    )


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """``--square`` (the paper's square input) and ``--device``."""
    parser.add_argument("--square", action="store_true", help="resize photos to a square input (the paper's setting)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1, mps (default cpu)")


def load_model(args: argparse.Namespace, command: str) -> LoadedModel | None:
    """The model named by ``--model`` (default: the bundled one) with ``--weights`` on ``--device``; on failure one
    error line (:func:`print_error`) and ``None``."""
    import torch

    from .. import models

    try:
        device = torch.device(args.device)
        return models.load(args.model or models.DEFAULT_MODEL, weights=args.weights, device=device)
    except (ValueError, RuntimeError, ImportError, OSError) as err:
        print_error(command, str(err))
        return None


def print_error(command: str, message: str) -> None:
    """One ``cameras COMMAND: error: …`` line on standard error."""
    print(f"cameras {command}: error: {message}", file=sys.stderr)


def slug(text: str, fallback: str = "item") -> str:
    """A file-name-safe lower-case form of ``text`` (``fallback`` when nothing is left).

    Example:
        >>> slug("Egyptian cat, #285")
        'egyptian_cat_285'
    """
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower() or fallback


def split_list(values: Sequence[str] | None) -> list[str]:
    """Comma-separated option values (the option may also be repeated) → stripped, non-empty items.

    Example:
        >>> split_list(["tiger cat,Egyptian cat", " 281 "])
        ['tiger cat', 'Egyptian cat', '281']
    """
    items: list[str] = []
    for value in values or []:
        items.extend(t.strip() for t in value.split(",") if t.strip())
    return items
