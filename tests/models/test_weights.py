"""Pretrained weights offline: a model whose weights are not cached fails at once with one line when the download
server cannot be reached (no download attempted, no retries), and a cached one loads without the network. No test
here touches the network: ``socket.create_connection`` is replaced by a fake that records where it was asked to
connect."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision

from cameras.cli.main import main
from cameras.models import WeightsUnavailableError, load
from cameras.models.weights import reachable


class _Network:
    """A fake ``socket.create_connection``: records each (host, port) and fails (offline), opens, or hangs."""

    def __init__(self, mode: str = "offline") -> None:
        self.mode = mode
        self.calls: list[tuple[str, int]] = []
        self.release = threading.Event()

    def __call__(self, address: tuple[str, int], timeout: float | None = None, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((str(address[0]), int(address[1])))
        if self.mode == "hang":
            self.release.wait(30)
        if self.mode != "online":
            raise OSError(-2, "Name or service not known")
        return _Closable()


class _Closable:
    def __enter__(self) -> _Closable:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> _Network:
    net = _Network("offline")
    monkeypatch.setattr(socket, "create_connection", net)
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return net


@pytest.fixture
def hub_dir(tmp_path: Path) -> Iterator[Path]:
    """An empty torch hub cache (nothing downloaded yet)."""
    before = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        yield tmp_path / "hub"
    finally:
        torch.hub.set_dir(before)


def _no_download(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("a download was attempted although the server cannot be reached")


def test_reachable_connects_once_to_the_server_or_its_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    net = _Network("online")
    monkeypatch.setattr(socket, "create_connection", net)
    assert reachable("https://download.pytorch.org/models/resnet18-f37072fd.pth")
    assert reachable("http://example.org:8080/x")
    assert net.calls == [("download.pytorch.org", 443), ("example.org", 8080)]
    net.mode = "offline"
    assert not reachable("https://huggingface.co")
    assert not reachable("not a url")  # no host: nothing to connect to
    assert net.calls[-1] == ("huggingface.co", 443) and len(net.calls) == 3
    net.mode = "online"
    monkeypatch.setenv("https_proxy", "http://proxy.internal:3128")
    assert reachable("https://huggingface.co")
    assert net.calls[-1] == ("proxy.internal", 3128)  # the download goes through the proxy: probe the proxy
    monkeypatch.setenv("no_proxy", "huggingface.co")
    assert reachable("https://huggingface.co")
    assert net.calls[-1] == ("huggingface.co", 443)


def test_reachable_gives_up_on_a_hanging_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """A resolver or connect that never answers counts as unreachable once the budget is spent."""
    net = _Network("hang")
    monkeypatch.setattr(socket, "create_connection", net)
    try:
        assert reachable("https://huggingface.co", timeout=0.2) is False
        assert net.calls == [("huggingface.co", 443)]
    finally:
        net.release.set()


def test_torchvision_offline_fails_at_once_with_one_line(
    offline: _Network, hub_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", _no_download)
    with pytest.raises(WeightsUnavailableError) as info:
        load("resnet18")
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("The pretrained weights of resnet18 are not downloaded yet and download.pytorch.org")
    assert "--weights PATH" in text and "cameras.models.load('resnet18', weights=PATH)" in text
    assert offline.calls == [("download.pytorch.org", 443)]  # one probe, no retries


def test_torchvision_cached_weights_load_offline(offline: _Network, hub_dir: Path) -> None:
    """Weights already in the torch hub cache load without the network (no probe at all)."""
    torch.manual_seed(3)
    ref = torchvision.models.resnet18()
    url = torchvision.models.ResNet18_Weights.DEFAULT.url
    (hub_dir / "checkpoints").mkdir(parents=True)
    torch.save(ref.state_dict(), hub_dir / "checkpoints" / url.rsplit("/", 1)[-1])
    m = load("resnet18")
    assert m.weights == "ResNet18_Weights.IMAGENET1K_V1"
    assert offline.calls == []
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(m.model(x), ref.eval()(x), rtol=0, atol=0)


def test_timm_offline_fails_at_once_with_one_line(offline: _Network) -> None:
    from huggingface_hub import constants

    was_offline = constants.HF_HUB_OFFLINE
    with pytest.raises(WeightsUnavailableError) as info:
        load("timm:test_vit")
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("The pretrained weights of timm:test_vit are not downloaded yet and huggingface.co")
    assert "--weights PATH" in text and "weights=PATH" in text
    assert offline.calls == [("huggingface.co", 443)]  # the probe only: the Hub client made no request, no retries
    assert constants.HF_HUB_OFFLINE is was_offline  # offline mode was for that one call


@pytest.mark.parametrize("model", ["resnet50", "timm:test_vit"])
def test_cli_offline_error_is_one_line(
    model: str, offline: _Network, hub_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["explain", "--model", model, "--out", str(tmp_path / "out"), "--no-progress", "chelsea"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith(f"cameras explain: error: The pretrained weights of {model} are not downloaded yet")
    assert "--weights PATH" in err
    assert len(offline.calls) == 1
