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


@pytest.mark.parametrize(
    ("argv", "model"),
    [
        (["explain", "chelsea"], True),
        (["compare"], False),
        (["evaluate", "--images", "x", "--boxes", "y"], True),
        (["sanity", "chelsea"], True),
        (["attack"], True),
    ],
)
def test_shared_options_parse_alike_in_every_command(argv: list[str], model: bool) -> None:
    """The model/run options come from one helper (cli.common): same names, defaults and parsing everywhere."""
    parser = build_parser()
    args = parser.parse_args(argv)
    assert (args.weights, args.layer, args.square, args.device) == ("DEFAULT", None, False, "cpu")
    extra = ["--model", "resnet50"] if model else []
    args = parser.parse_args(
        [*argv, *extra, "--weights", "w.pth", "--layer", "layer4", "--square", "--device", "cuda:1"]
    )
    assert (args.weights, args.layer, args.square, args.device) == ("w.pth", "layer4", True, "cuda:1")
    assert getattr(args, "model", None) == ("resnet50" if model else None)


def test_slug_and_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    from cameras.cli.common import print_error, slug

    assert slug("Egyptian cat, #285") == "egyptian_cat_285"
    assert slug("***", "image") == "image"
    print_error("explain", "no such file")
    assert capsys.readouterr().err == "cameras explain: error: no such file\n"
