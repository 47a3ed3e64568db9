"""Options and helpers shared by the ``cameras`` subcommands (one definition, the same spelling everywhere).

The life of every command, in this order (so that a bad option or input costs nothing and leaves nothing behind):

1. **parse** — every option is validated while parsing (:mod:`cameras.cli.options`); ``--out`` is checked (not a
   file, not under a file, writable) but not created;
2. **cross-check** options against each other, the device and the model's registry entry (:func:`model_spec`, no
   weights loaded) and the methods' classes;
3. **read the inputs** with :func:`read_photos`: every photo is decoded by the one loader and its model input and
   largest scale are checked against the size bounds; each bad photo is one error line, the others go on;
4. **load the model** (:func:`load_model`) only when something is left to do;
5. **compute and write**, each file atomically through ``args.out`` (an :class:`cameras.io.OutputDir`, which
   creates the folder at its first write).

Errors are one line each, ``cameras COMMAND: error: …`` (:func:`print_error`); exit codes: 0 all done, 1 some inputs
or items failed (the others were written), 2 nothing could be done (bad options, no usable input).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..io.folders import FULL_DISK, write_failure
from ..methods import method_scales
from .options import ListOption, device_option, nonempty

if TYPE_CHECKING:
    from ..io import Photo, SizeLimits
    from ..models import LoadedModel, ModelSpec, PreparedImage

__all__ = [
    "FULL_DISK",
    "InputPhoto",
    "ListOption",
    "NativeSpec",
    "Parser",
    "add_model_options",
    "add_progress_option",
    "add_run_options",
    "load_model",
    "method_scales",
    "model_spec",
    "prepare",
    "print_error",
    "print_warning",
    "read_photos",
    "slug",
    "split_list",
    "write_failure",
]


class Parser(argparse.ArgumentParser):
    """The ``cameras`` parsers: a usage error is one line, ``cameras COMMAND: error: …``, and exit code 2."""

    def error(self, message: str) -> Any:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def add_model_options(parser: argparse.ArgumentParser, *, model: bool = True, layer_help: str | None = None) -> None:
    """``--model`` (unless ``model=False``, for commands that take several), ``--weights`` and ``--layer``."""
    if model:
        parser.add_argument(
            "--model",
            type=nonempty,
            default=None,
            help="model name (default: efficientnet_lite0); see `cameras.models`",
        )
    parser.add_argument(
        "--weights",
        type=nonempty,
        default="DEFAULT",
        help="DEFAULT (packaged/torchvision weights) or a checkpoint PATH",
    )
    parser.add_argument(
        "--layer",
        type=nonempty,
        default=None,
        help=layer_help or "dotted layer name (default: the model's default layer)",
    )


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """``--square`` (the paper's square input), ``--device`` and the size bounds (:func:`options.add_size_options`)."""
    from .options import add_size_options

    parser.add_argument(
        "--square",
        action="store_true",
        help="square model input and square scales, the paper's setting (Python: square=True); default: aspect kept",
    )
    parser.add_argument(
        "--device", type=device_option, default="cpu", help="torch device, e.g. cpu, cuda, cuda:1, mps (default cpu)"
    )
    add_size_options(parser)


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``: silence the progress bars (on standard error, tqdm, with rate and ETA) that every long step
    of a command shows; the library's ``progress=False``."""
    parser.add_argument("--no-progress", action="store_true", help="no progress bars on standard error")


def print_error(command: str, message: str) -> None:
    """One ``cameras COMMAND: error: …`` line on standard error (line breaks in ``message`` are joined)."""
    text = " ".join(str(message).split())
    print(f"cameras {command}: error: {text}", file=sys.stderr)


def print_warning(command: str, message: str) -> None:
    """One ``cameras COMMAND: warning: …`` line on standard error (the run goes on)."""
    text = " ".join(str(message).split())
    print(f"cameras {command}: warning: {text}", file=sys.stderr)


@dataclass(frozen=True)
class NativeSpec:
    """What a command knows about a model before loading it.

    Attributes:
        name: the name as given (``"efficientnet_lite0"``, ``"timm:vit_base_patch16_224"``).
        input_size: its native resolution (shorter side of the input), or ``None`` when it is only known once the
            model is built (``timm:`` models, whose data config comes with the model); the inputs are then checked
            after loading, by :func:`prepare`.
    """

    name: str
    input_size: int | None


def model_spec(name: str | None, command: str, device: str | None = None) -> NativeSpec | None:
    """The registry entry of ``--model`` (default: the bundled model), without loading anything, after checking that
    ``device`` (``--device``) exists on this machine; on a problem (an unknown name, a missing device) one error line
    and ``None``."""
    from .. import models
    from .options import device_problem

    problem = device_problem(device) if device is not None else None
    if problem is not None:
        print_error(command, problem)
        return None
    given = name or models.DEFAULT_MODEL
    if given.strip().lower().startswith("timm:"):
        return NativeSpec(given, None)
    try:
        spec: ModelSpec = models.info(given)
    except (ValueError, TypeError) as err:
        print_error(command, str(err))
        return None
    return NativeSpec(given, spec.input_size)


def load_model(
    args: argparse.Namespace, command: str, name: str | None = None, device: Any = None
) -> LoadedModel | None:
    """The model named by ``name`` or ``--model`` (default: the bundled one) with ``--weights`` (and
    ``--num-classes``, where the command has it) on ``device`` (default ``--device``); on failure one error line
    (:func:`print_error`) and ``None``."""
    import torch

    from .. import models

    try:
        where = torch.device(args.device if device is None else device)
        extra: dict[str, Any] = {}
        if getattr(args, "num_classes", None) is not None:
            extra["num_classes"] = args.num_classes
        given = name or getattr(args, "model", None) or models.DEFAULT_MODEL
        return models.load(given, args.weights, where, **extra)
    except (ValueError, RuntimeError, ImportError, OSError, KeyError, AssertionError) as err:
        text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        print_error(command, text.splitlines()[0] if text else type(err).__name__)
        return None


@dataclass(frozen=True)
class InputPhoto:
    """A photo read and checked by :func:`read_photos`.

    Attributes:
        label: the source as given on the command line (for messages and JSON).
        name: a file-name stem unique within the run (the file's stem or bundled name; ``_2``, ``_3`` … on repeats).
        photo: the decoded :class:`cameras.io.Photo`.
        input_sizes: (h, w) of the model input, one per model size checked.
    """

    label: str
    name: str
    photo: Photo
    input_sizes: tuple[tuple[int, int], ...]


def read_photos(
    command: str,
    sources: Sequence[Any],
    *,
    native_sizes: Sequence[int | None],
    square: bool,
    limits: SizeLimits,
    scales: Callable[[tuple[int, int]], list[tuple[int, int]]] | None = None,
    labels: Sequence[str] | None = None,
) -> tuple[list[InputPhoto], int]:
    """Decode and check every photo before any model is loaded.

    For each source: :func:`cameras.io.load_image` (any format, bundled names, ``limits.max_photo_pixels``); the
    model input of every native size (aspect kept, or square) against ``limits.max_side`` / ``max_pixels``; every
    scale ``scales(input)`` against ``limits.max_pixels`` / ``min_side``. A failing photo prints one error line
    and is skipped.

    Args:
        command: for the error lines.
        sources: paths, bundled names or arrays.
        native_sizes: the models' native resolutions (:attr:`NativeSpec.input_size`; ``None``: checked later, by
            :func:`prepare`).
        square: the ``--square`` option.
        limits: the bounds (:func:`cameras.cli.options.size_limits`).
        scales: the sizes an explainer runs on an input (:func:`method_scales`); ``None``: only the input.
        labels: how to call each source in messages (default ``str(source)``).

    Returns:
        (the usable photos in order, the number of failures).
    """
    from ..io import ImageError, load_image
    from ..models import Preprocess

    preps = [Preprocess(size=int(n)) for n in native_sizes if n is not None]
    good: list[InputPhoto] = []
    failures = 0
    used: set[str] = set()
    for i, source in enumerate(sources):
        label = labels[i] if labels is not None else str(source)
        try:
            photo = load_image(source, limits=limits)
            inputs = []
            for prep in preps:
                hw = prep.input_size_for(photo.size, square=True if square else None)
                limits.check_input(photo.size, hw, label)
                if scales is not None:
                    try:
                        sizes = scales(hw)
                    except ValueError as err:  # the engine's own bound on the schedule
                        raise ImageError(f"{label}: {err}") from err
                    limits.check_scales(sizes, label)
                inputs.append(hw)
        except ImageError as err:
            print_error(command, str(err))
            failures += 1
            continue
        name = photo.name if photo.name != "image" else f"image{i + 1}"
        base, k = name, 2
        while name.lower() in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name.lower())
        good.append(InputPhoto(label, name, photo, tuple(inputs)))
    return good, failures


def prepare(
    loaded: LoadedModel,
    item: InputPhoto,
    *,
    square: bool,
    limits: SizeLimits,
    scales: Callable[[tuple[int, int]], list[tuple[int, int]]] | None = None,
) -> PreparedImage:
    """The model input of a photo read by :func:`read_photos`, on the model's device, checked against ``limits``
    with the loaded model's own preprocessing (the input, and every scale ``scales(input)`` runs).

    Raises:
        cameras.io.ImageError: over a bound (:class:`cameras.io.SizeLimitError`).
    """
    from ..io import ImageError

    prepared = loaded.preprocess(item.photo.rgb, square=True if square else None, device=loaded.device, limits=limits)
    if scales is not None:
        try:
            sizes = scales(prepared.input_size)
        except ValueError as err:
            raise ImageError(f"{item.label}: {err}") from err
        limits.check_scales(sizes, item.label)
    return prepared


def slug(text: str, fallback: str = "item") -> str:
    """:func:`cameras.io.folders.slug` (imported when first used: the CLI's start stays light)."""
    from ..io.folders import slug as io_slug

    return io_slug(text, fallback)


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


def add_compile_option(parser: argparse.ArgumentParser) -> None:
    """``--compile {off,on,auto}``: the library's ``compile=False | True | "auto"``
    (:mod:`cameras.methods.compiling`)."""
    from ..methods.compiling import COMPILE_AUTO_MIN_PHOTOS

    parser.add_argument(
        "--compile",
        choices=["off", "on", "auto"],
        default="off",
        help="torch.compile the model (CAMERAS): the first photo pays the compile (minutes on a CPU, cached on disk "
        f"in ~/.cache/cameras/inductor), later photos run faster; auto: on from {COMPILE_AUTO_MIN_PHOTOS} photos "
        "(default off)",
    )


def compile_setting(args: argparse.Namespace) -> bool | str:
    """``--compile`` as the library spells it: ``off`` → ``False``, ``on`` → ``True``, ``auto`` → ``"auto"``."""
    return {"off": False, "on": True}.get(args.compile, "auto")
