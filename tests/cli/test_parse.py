from __future__ import annotations

import pytest

from cameras.cli.explain import parse_resolutions
from cameras.cli.main import build_parser, main


def test_parse_resolutions() -> None:
    assert parse_resolutions(None) is None
    assert parse_resolutions("paper") is None
    assert parse_resolutions("224,324, 424") == [224, 324, 424]
    assert parse_resolutions("1,1.5,2") == [1.0, 1.5, 2.0]
    with pytest.raises(ValueError):
        parse_resolutions("a,b")


def test_main_without_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "explain" in capsys.readouterr().out
    assert "explain" in build_parser().format_help()
