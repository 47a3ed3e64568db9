"""Where a model's weights come from: the ``weights`` argument, local checkpoints, and downloads that fail fast.

Shared by the registry (:mod:`cameras.models.registry`) and the timm builder (:mod:`cameras.models.timm_models`);
it imports neither, so both import it without a cycle.

Pretrained weights that are not in the local cache are downloaded (torchvision: the torch hub cache; timm: the
Hugging Face Hub cache). Before a download, :func:`reachable` opens one TCP connection to the server (or to the
proxy configured for it) with a :data:`PROBE_TIMEOUT` budget, name lookup included: offline, loading then fails in
seconds with one line (:func:`unreachable_message`) instead of after a minute of the downloaders' own retries.
"""

from __future__ import annotations

import os
import pickle
import socket
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

import torch
from torch import Tensor

__all__ = [
    "DOWNLOAD_ERRORS",
    "PROBE_TIMEOUT",
    "Weights",
    "WeightsUnavailableError",
    "first_line",
    "hf_offline",
    "reachable",
    "read_checkpoint",
    "torch_hub_cached",
    "unreachable_message",
    "weights_kind",
]

Weights = str | os.PathLike[str] | None
"""What ``weights=`` takes: ``"DEFAULT"`` (pretrained), a checkpoint path, or ``None`` / ``"none"`` / ``"random"``."""

PROBE_TIMEOUT = 3.0
"""Seconds :func:`reachable` waits for the download server (name lookup and TCP connect together)."""

DOWNLOAD_ERRORS = (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError)
"""What a failed or corrupt download raises (urllib, huggingface_hub, torch.load of a truncated file)."""


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights could not be obtained (no download, weight package missing); the message says what to do."""


def first_line(err: BaseException) -> str:
    """``"TypeName: first line of the message"`` of an exception, for one-line error messages."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def weights_kind(weights: Weights) -> Literal["default", "none", "path"]:
    """Which of the three kinds ``weights`` is: pretrained (``"DEFAULT"``, any case), none (``None``, ``"none"``,
    ``"random"``) or a path (anything else, including a torchvision weight name the caller resolves).

    Raises:
        TypeError: neither a string, a path nor ``None``.
    """
    if weights is None:
        return "none"
    if isinstance(weights, os.PathLike):
        return "path"
    if not isinstance(weights, str):
        raise TypeError(f"weights must be 'DEFAULT', a path or None, got {type(weights).__name__}.")
    word = weights.strip()
    if word.upper() == "DEFAULT":
        return "default"
    if word.lower() in ("none", "random"):
        return "none"
    return "path"


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read a state_dict from a checkpoint file (CPU tensors, ``weights_only=True``).

    Accepts a bare state_dict or a dict holding it under ``"state_dict"``, ``"model"`` or ``"model_state_dict"``, and
    strips a ``"module."`` (DataParallel / DDP) or ``"_orig_mod."`` (torch.compile) prefix from every key. Files
    named ``*.safetensors`` (the Hugging Face Hub's format, timm's downloads) are read with safetensors.

    Args:
        path: the checkpoint file.

    Returns:
        a ``{name: tensor}`` dict.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a readable checkpoint, a pickled whole model, or no state_dict inside.
    """
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"Checkpoint file not found: {p!r}.")
    try:
        if p.endswith(".safetensors"):
            from safetensors.torch import load_file

            obj: Any = load_file(p, device="cpu")
        else:
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except ImportError as err:
        raise ValueError(f"Reading {p!r} needs safetensors: pip install safetensors (timm installs it).") from err
    except Exception as err:  # torch.load fails in many ways on foreign files (UnpicklingError, struct.error, ...)
        first = str(err).splitlines()[0] if str(err) else ""
        raise ValueError(
            f"Cannot read {p!r} as a weights checkpoint ({type(err).__name__}: {first}). "
            "Save one with torch.save(model.state_dict(), path); whole pickled models are not loaded."
        ) from err
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(
            f"{p!r} holds no state_dict (expected {{name: tensor}}, or a dict with a 'state_dict', 'model' or "
            "'model_state_dict' entry)."
        )
    out: dict[str, Tensor] = {}
    for k, v in obj.items():
        name = str(k)
        for prefix in ("module.", "_orig_mod."):
            if name.startswith(prefix):
                name = name[len(prefix) :]
        out[name] = v
    return out


def torch_hub_cached(url: str) -> bool:
    """Whether the file ``url`` names is already in the torch hub cache (``torch.hub.get_dir()/checkpoints``), where
    ``torch.hub.load_state_dict_from_url`` (torchvision's weights, timm's URL weights) reads it without a download."""
    name = os.path.basename(urllib.parse.urlsplit(url).path)
    return bool(name) and os.path.isfile(os.path.join(torch.hub.get_dir(), "checkpoints", name))


def _endpoint(url: str) -> tuple[str, int] | None:
    """(host, port) a download of ``url`` first connects to: the proxy configured for it (``https_proxy`` …, unless
    ``no_proxy`` exempts the host), else the server; ``None`` when ``url`` names no host."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname
    if not host:
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if proxy and not urllib.request.proxy_bypass(host):
        via = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if via.hostname:
            return via.hostname, via.port or (443 if via.scheme == "https" else 80)
    return host, port


def reachable(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether a TCP connection to the server of ``url`` (or its proxy) opens within ``timeout`` seconds.

    The name lookup runs inside the budget too (in a daemon thread: ``getaddrinfo`` takes no timeout), so an offline
    machine whose resolver hangs answers ``False`` after ``timeout`` seconds rather than after the resolver's own
    retries. Nothing is sent; the connection is closed at once.

    Example:
        >>> reachable("https://localhost:1/", timeout=1.0)  # nothing listens on port 1
        False
    """
    target = _endpoint(url)
    if target is None:
        return False
    opened: list[bool] = []

    def connect() -> None:
        try:
            with socket.create_connection(target, timeout=timeout):
                opened.append(True)
        except OSError:
            opened.append(False)

    probe = threading.Thread(target=connect, name="cameras-weights-probe", daemon=True)
    probe.start()
    probe.join(timeout)
    return bool(opened) and opened[0]


def unreachable_message(model: str, url: str, alternative: str = "") -> str:
    """The one-line error of a model whose pretrained weights are not cached and whose server cannot be reached
    (``model`` as :func:`cameras.models.load` takes it; ``alternative``: a last sentence, e.g. a model that works)."""
    host = urllib.parse.urlsplit(url).hostname or url
    return (
        f"The pretrained weights of {model} are not downloaded yet and {host} cannot be reached (offline?): "
        f"download the checkpoint on a machine with internet access and pass `--weights PATH` (CLI) or "
        f"`cameras.models.load({model!r}, weights=PATH)` (Python), or use weights=None for random weights."
        f"{f' {alternative}' if alternative else ''}"
    )


@contextmanager
def hf_offline() -> Iterator[None]:
    """Run the block with the Hugging Face Hub in offline mode (``HF_HUB_OFFLINE=1`` semantics): files come from the
    local cache, and a missing one fails at once instead of after the hub client's retries."""
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before
