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


# -- the one option validator ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("224,324,424", [224, 324, 424]),
        (" 224 324 ", [224, 324]),
        ("1,1.5,2", [1.0, 1.5, 2.0]),
        ("1.0", [1.0]),
        ("2e0,3.5", [2.0, 3.5]),
        ("PAPER", None),
        (None, None),
    ],
)
def test_resolutions_accepted(text: str | None, expected: object) -> None:
    from cameras.cli.options import parse_resolutions as parse

    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        (" , ", "empty"),
        ("224,1.5", "mixes absolute sizes"),
        ("1.0,inf", "finite"),
        ("nan", "finite"),
        ("1.0,1e300", "between"),
        ("1e400", "finite"),
        ("8,12", "at least 16"),
        ("1,2", "for factors write 1.0,2.0"),
        ("a,b", "not a number"),
        ("224,224", "twice"),
        ("224,70000", "at most"),
        ("0.01", "between"),
        ("-1.5", "between"),
    ],
)
def test_resolutions_refused(text: str, match: str) -> None:
    from cameras.cli.options import parse_resolutions as parse

    with pytest.raises(ValueError, match=match):
        parse(text)


def test_sizes_are_shorter_sides_read_by_the_one_schedule() -> None:
    from cameras.cli.options import parse_resolutions
    from cameras.engine import schedule

    sizes = parse_resolutions("224,324,424")
    assert sizes == [224, 324, 424]  # passed to the methods unchanged
    assert schedule(sizes, (224, 337)) == [(224, 337), (324, 487), (424, 638)]  # shorter side as given
    assert schedule(sizes, (337, 224)) == [(337, 224), (487, 324), (638, 424)]  # portrait too
    assert schedule(sizes, (224, 224)) == [(224, 224), (324, 324), (424, 424)]  # the paper's squares
    assert schedule(sizes, (224, 337), square=True) == [(224, 224), (324, 324), (424, 424)]


def test_number_validators() -> None:
    import argparse

    from cameras.cli.options import finite_float, float_range, fraction, int_range, nonempty

    assert int_range(1, 3)("2") == 2 and fraction("0") == 0.0 and fraction("1") == 1.0
    assert float_range(0, 1, lo_open=True)("1") == 1.0 and finite_float("-1e3") == -1000.0
    assert nonempty("  layer4 ") == "layer4"
    for parse, text in [
        (int_range(1, 3), "4"),
        (int_range(1), "0"),
        (int_range(1), "1.0"),
        (int_range(1), "1e3"),
        (int_range(1), ""),
        (fraction, "1.01"),
        (fraction, "nan"),
        (fraction, "-inf"),
        (float_range(0, 1, lo_open=True), "0"),
        (float_range(0, 1, hi_open=True), "1"),
        (finite_float, "1e999"),
        (nonempty, "  "),
    ]:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


def test_list_option() -> None:
    from cameras.cli.common import Parser
    from cameras.cli.options import ListOption

    p = Parser(prog="t")
    p.add_argument("--methods", nargs="+", action=ListOption)
    p.add_argument("--classes", action=ListOption)
    assert p.parse_args([]).methods is None
    args = p.parse_args(["--methods", "cameras,gradcam", "ig", "--classes", "tiger cat", "--classes", "285"])
    assert args.methods == ["cameras", "gradcam", "ig"] and args.classes == ["tiger cat", "285"]
    assert p.parse_args(["--classes", "x,,"]).classes == ["x"]  # a stray comma is harmless
    for argv in (["--methods", ""], ["--methods", ","], ["--methods", "a", "A"], ["--classes", ",,"]):
        with pytest.raises(SystemExit):
            p.parse_args(argv)


def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--alpha", "2"]) == 2
    err = capsys.readouterr().err
    expected = "argument --alpha: must be a number in [0, 1], got 2 (see 'cameras explain --help')"
    assert err == f"cameras explain: error: {expected}\n"
    assert main(["nosuchcommand"]) == 2
    assert capsys.readouterr().err.startswith("cameras: error: argument COMMAND: invalid choice")
    assert main(["explain", "--help"]) == 0
    assert "--max-side" in capsys.readouterr().out


def test_an_unexpected_exception_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: object) -> int:
        raise ZeroDivisionError("a bug")

    parser_args = ["explain", "--out", "unused_out_folder"]
    monkeypatch.setattr("cameras.cli.main.build_parser", _parser_with(broken))
    assert main(parser_args) == 1
    assert capsys.readouterr().err == (
        "cameras explain: error: unexpected ZeroDivisionError: a bug (set CAMERAS_DEBUG=1 to see the traceback)\n"
    )
    monkeypatch.setenv("CAMERAS_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(parser_args)


def _parser_with(func: object) -> object:
    def build() -> object:
        parser = build_parser()
        for action in parser._subparsers._group_actions:  # type: ignore[union-attr]
            action.choices["explain"].set_defaults(func=func)  # type: ignore[index]
        return parser

    return build
