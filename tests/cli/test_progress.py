"""Progress on standard error for the long steps of ``explain`` (per scale), ``compare`` (per map) and ``sanity``
(per method and randomisation step), with tqdm's rate/ETA; silenced by ``--no-progress`` / ``progress=False``.

tqdm writes its bars to ``sys.stderr`` even without a terminal, so ``capsys`` sees them when they are enabled.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cameras
from cameras.cli.main import main
from cameras.sanity import cascading_randomization

from .fakes import fake_registry, tiny_model

_BAR = re.compile(r"(\d+)/(\d+) \[")  # tqdm's "n/total [elapsed<eta, rate]"


def _photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (36, 48, 3), dtype=np.uint8)).save(path)
    return path


def _totals(err: str, desc: str) -> set[int]:
    """The totals of the bars named ``desc`` in captured stderr (empty when none was drawn)."""
    return {
        int(m.group(2)) for line in re.split(r"[\r\n]", err) if line.startswith(f"{desc}:") for m in _BAR.finditer(line)
    }


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_registry(monkeypatch, {"tiny": tiny_model}, cache=True)


def test_explain_shows_one_bar_over_the_paper_scales(
    tiny: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", str(_photo(tmp_path)), "--out", str(tmp_path / "a")]) == 0  # paper schedule: 8 scales
    err = capsys.readouterr().err
    assert _totals(err, "scales") == {8}
    assert "scale/s" in err  # tqdm's rate (and ETA) fields
    assert main(["explain", str(_photo(tmp_path)), "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "scales:" not in err and "\r" not in err


def test_library_progress_flag(capsys: pytest.CaptureFixture[str]) -> None:
    net = tiny_model().model
    x = torch.randn(1, 3, 32, 40)
    cameras.CAMERAS(net, layer="features", resolutions=[32, 40, 48], progress=True)(x)
    assert _totals(capsys.readouterr().err, "scales") == {3}
    cameras.CAMERAS(net, layer="features", resolutions=[32, 40, 48], progress=False)(x)
    cameras.MultiScale(cameras.GradCAM)(net, layer="features", resolutions=[32, 40])(x)  # default: silent
    assert capsys.readouterr().err == ""


def test_compare_counts_maps_and_scales(tiny: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = str(_photo(tmp_path))
    argv = ["compare", photo, "--methods", "gradcam,cameras,ms-gradcam", "--resolutions", "32,40"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert _totals(err, "maps") == {3}  # one tick per method
    assert _totals(err, "scales") == {2}  # and the scales inside each multi-scale method
    assert main([*argv, "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "maps:" not in err and "scales:" not in err and "\r" not in err


def test_sanity_counts_methods_times_steps(tiny: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sanity", str(_photo(tmp_path)), "--methods", "cameras,gradcam", "--resolutions", "32,40"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    steps = json.loads((tmp_path / "a" / "sanity.json").read_text())["steps"]  # "original", then each block
    assert len(steps) >= 2
    assert _totals(err, "sanity") == {2 * len(steps)}  # one tick per method and step
    assert main([*argv, "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    assert "sanity:" not in capsys.readouterr().err


def test_sanity_library_progress(capsys: pytest.CaptureFixture[str]) -> None:
    net = tiny_model().model
    x = torch.randn(1, 3, 32, 32)
    blocks = [name for name, m in net.named_children() if any(True for _ in m.parameters())]
    cascading_randomization(net, "gradcam", x, layer="features", blocks=blocks, bn_stats="reset", progress=True)
    assert _totals(capsys.readouterr().err, "sanity") == {1 + len(blocks)}
    cascading_randomization(net, "gradcam", x, layer="features", blocks=blocks, bn_stats="reset")
    assert capsys.readouterr().err == ""


def test_attack_shows_its_bar_on_stderr_like_every_command(
    tiny: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One rule for every command (#22 §3): bars on standard error unless ``--no-progress``, whether or not stderr is
    a terminal (attack used to show them on a terminal only; capsys is not one)."""
    argv = ["attack", str(_photo(tmp_path)), "--steps", "2", "--search-steps", "1", "--no-figures", "--focus", "full"]
    assert main([*argv, "--out", str(tmp_path / "a")]) in (0, 1)
    err = capsys.readouterr().err
    assert _totals(err, "attack (mask)") == {1} and ("photo/s" in err or "s/photo" in err)
    assert main([*argv, "--out", str(tmp_path / "b"), "--no-progress"]) in (0, 1)
    err = capsys.readouterr().err
    assert "attack (mask):" not in err and "\r" not in err


def test_report_and_evaluate_use_the_one_progress_option() -> None:
    """Every subcommand spells ``--no-progress`` with the one helper (the same help text everywhere)."""
    from cameras.cli.main import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subs.choices.items():
        option = next((a for a in sub._actions if "--no-progress" in a.option_strings), None)
        assert option is not None, name
        assert option.help == "no progress bars on standard error", name
