"""``cameras evaluate``: localisation and faithfulness metrics of saliency methods on annotated photos and data sets.

The photos come from a folder with a box file (``--images DIR --boxes FILE``, or ``--dataset folder --root DIR
--boxes FILE``) or from a data set in its standard layout: ``--dataset voc|coco|imagenet --root DIR [--split NAME]``
(:mod:`cameras.datasets`). For every photo and every annotated class of it, each method explains that class
(``--target label``, default) or the model's top-1 class (``--target predicted``, then all boxes of the photo
count). Metrics per (photo, class, method); without ``--metrics`` the cheap pair ``pointing`` and ``energy`` runs
(one explanation each, no extra forward pass), ``--metrics all`` runs every metric that applies, and the command
prints which metrics run:

* ``pointing`` — pointing game hit (Zhang et al. 2016), tolerance ``--tolerance`` px (TorchRay: 15), higher better;
* ``energy`` — share of the map's mass in the boxes (Score-CAM's energy-based pointing game), higher better;
* ``energy_mask`` — the same share inside the union of the class's instance masks (:func:`cameras.metrics.
  energy_in_mask`), higher better; data sets with masks only (COCO; pycocotools, ``pip install "cameras[coco]"``),
  in ``all`` only there; NaN (counted as undefined) for a (photo, class) with an object without a mask;
* ``insertion`` / ``deletion`` — RISE AUCs (Petsiuk et al. 2018) over ``--steps`` steps, higher / lower better;
* ``avg_drop`` / ``increase`` — Grad-CAM++'s Average Drop % (lower better) and Increase in Confidence % (higher
  better);
* ``discrimination`` — for photos annotated with two or more classes: whether the map's peak falls in the class's own
  boxes and in none of the other annotated classes' (:func:`cameras.metrics.discrimination`), higher better. It
  comes in two columns: ``discrimination`` for the plain map and ``discrimination_contrastive`` for the contrastive
  map of the class against the photo's other annotated classes (``contrast=`` them, weight ``--gamma``); NaN (and
  left out of the means) for photos with one class or with ``--target predicted``;
* ``rho_pos`` / ``rho_neg`` — the CAMERAS paper's positive / negative map density (Sec. 4.2, higher / lower
  better), with the paper's ``I ⊙ Ψ`` (removed pixels black, :func:`cameras.metrics.black_baseline`); a map with no
  density (mean 0 or 1) is NaN in the rows and counted as ``undefined`` in the summary.

With ``--target label`` and ``pointing`` on VOC, COCO or photos annotated with several classes, the data-set
protocol of the paper's Table 1 is reported too: the mean over classes of the per-class hit rate on all (photo,
class) pairs (``pointing_all``) and on the "difficult" ones (``pointing_difficult``: the class's boxes cover < 1/4
of the photo and another class is annotated; :func:`cameras.metrics.is_difficult`,
:func:`cameras.metrics.pointing_accuracy`), in ``evaluate.json``, ``pointing_table.csv`` and the printed table.

As in TorchRay's pointing game, a (photo, class) pair whose objects are all marked ``difficult`` (VOC) is not
scored. The localisation metrics are computed in the photo's pixels (the map resized back to the photo, as TorchRay
does; ``--frame input`` uses the model-input frame with the boxes scaled instead); the faithfulness metrics in the
model's input frame.

**The run.** One code path for one photo and for 50,000: the items are cut into chunks of ``--shard-size`` photos;
a DataLoader with ``--workers`` processes decodes (:func:`cameras.io.load_image`) and preprocesses them while the
model runs; the (photo, class) jobs of a chunk go to the explainers in batches of ``--explain-batch`` inputs of one
size (all of them with ``--square``); each finished chunk is committed atomically as ``--out/shards/chunk-N.json``
(:mod:`cameras.runs.store`). Rerunning the same command resumes (it says how many items are done); a different
configuration in the same ``--out`` is refused unless ``--overwrite``. Under ``torchrun`` the chunks are dealt to
the ranks (Gloo on the CPU, NCCL on CUDA, ``cuda:LOCAL_RANK`` each) and rank 0 merges the shards into the same
outputs a single process writes.

**Outputs** in ``--out`` (rank 0): ``per_image.csv`` (image, class, class_name, method, one column per metric, then
``difficult`` — the (photo, class) pair is in the pointing game's "difficult" subset — where the pointing table
applies), ``summary.csv``, ``evaluate.json``, ``evaluate.png``, ``skipped.csv`` (image, reason: photos or boxes
left out), ``pointing_table.csv`` (the paper's Table 1 form: per method the mean over classes of the per-class
pointing accuracy on All and on the Diff subset, then one row per class; written with ``pointing`` and
``--target label`` for VOC, COCO, and data sets with several classes per photo), ``maps/`` with ``--save-maps``
(:mod:`cameras.runs.maps`) and ``run.json`` (with ``image_root``, ``dataset`` and ``world_size``). The summary table
(mean ± std over rows) is printed.

A score that is undefined — a degenerate (constant) map, or a box with no pixel on the photo — is ``nan`` in the
CSV (``null`` in the JSON), left out of the means, and counted in the summary's ``undefined`` column; a box entirely
outside its photo is reported as an error and skipped; a photo that cannot be read is skipped with its reason and
the run goes on.
"""

from __future__ import annotations

import argparse

from ..evaluation import DEFAULT_METRICS, METRICS, Row, summarize
from .common import (
    ListOption,
    add_compile_option,
    add_model_options,
    add_progress_option,
    add_run_options,
    compile_setting,
    print_error,
    print_warning,
)
from .options import (
    add_output_option,
    finite_float,
    float_range,
    int_range,
    nonempty,
    positive_int,
    resolutions_option,
    size_limits,
)

__all__ = ["DEFAULT_METRICS", "METRICS", "Row", "add_parser", "run", "summarize"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "evaluate",
        help="pointing game, energy, insertion/deletion and confidence metrics of methods on annotated photos",
        description=(
            "Evaluate saliency methods on photos with bounding boxes (JSON {'file.jpg': [{'class': 951, 'box': "
            "[x0, y0, x1, y1]}]} in photo pixels, or Pascal VOC XML) or on a data set (VOC, COCO, ImageNet val). "
            "Resumable (rerun the same command), shardable with torchrun. Prints a method × metric table "
            "(mean ± std) and writes per_image.csv, summary.csv, evaluate.json, evaluate.png, skipped.csv "
            "(and pointing_table.csv, maps/) to --out."
        ),
    )
    p.add_argument("--images", type=nonempty, default=None, help="folder holding the annotated photos (folder form)")
    p.add_argument(
        "--boxes", type=nonempty, default=None, help="box file: .json, a VOC .xml, or a folder of VOC .xml files"
    )
    p.add_argument(
        "--dataset",
        choices=("folder", "voc", "coco", "imagenet"),
        default=None,
        help="data set layout (default: folder, i.e. --images + --boxes)",
    )
    p.add_argument(
        "--root",
        type=nonempty,
        default=None,
        help="data set folder: VOCdevkit/VOC2007, the COCO root, the ImageNet root, or the photos (folder)",
    )
    p.add_argument("--split", type=nonempty, default=None, help="split: VOC test (default), COCO val2014, ImageNet val")
    p.add_argument("--limit", type=positive_int, default=None, help="evaluate only the first N photos")
    p.add_argument(
        "--synsets",
        type=nonempty,
        default=None,
        help="ImageNet: a file of wnids in class-index order (default: the 1000 sorted synsets)",
    )
    p.add_argument(
        "--num-classes",
        type=positive_int,
        default=None,
        help="outputs of the --weights checkpoint's head (default: read from the checkpoint)",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        action=ListOption,
        default=None,
        help="methods (space or comma separated; default: cameras)",
    )
    add_model_options(p)
    p.add_argument(
        "--resolutions",
        type=resolutions_option,
        default=None,
        help="CAMERAS scales: '224,324' (shorter side, px), '1,1.5' (factors) or 'paper' (default)",
    )
    add_run_options(p)
    p.add_argument(
        "--metrics",
        nargs="+",
        action=ListOption,
        default=None,
        help=(
            f"metrics to compute (default: {', '.join(DEFAULT_METRICS)}, the cheap pair); 'all': every metric that "
            f"applies ({', '.join(k for k in METRICS if k != 'energy_mask')}, and energy_mask on COCO's masks)"
        ),
    )
    p.add_argument(
        "--target",
        choices=("label", "predicted"),
        default="label",
        help="explain the annotated class (default) or the model's top-1",
    )
    p.add_argument(
        "--tolerance",
        type=float_range(0.0, 1e6),
        default=15.0,
        help="pointing-game tolerance in pixels, ≥ 0 (default 15)",
    )
    p.add_argument(
        "--steps", type=int_range(1, 10000), default=100, help="insertion/deletion steps, 1..10000 (default 100)"
    )
    p.add_argument(
        "--frame",
        choices=("original", "input"),
        default="original",
        help="pixel frame of the localisation metrics: the photo's (default) or the model input's",
    )
    p.add_argument(
        "--batch-size",
        type=int_range(1, 4096),
        default=64,
        help="images per forward pass of insertion/deletion, confidence and densities, 1..4096 (default 64)",
    )
    p.add_argument(
        "--gamma",
        type=finite_float,
        default=1.0,
        help="weight γ of the other annotated classes in the contrastive maps of discrimination (default 1)",
    )
    p.add_argument(
        "--explain-batch",
        type=int_range(1, 4096),
        default=8,
        help="(photo, class) inputs of one size explained together, 1..4096 (default 8)",
    )
    p.add_argument(
        "--workers", type=int_range(0, 256), default=2, help="DataLoader processes decoding photos (default 2)"
    )
    p.add_argument(
        "--shard-size",
        type=int_range(1, 100000),
        default=32,
        help="photos per committed shard: the unit of resume and of the split over ranks (default 32)",
    )
    p.add_argument("--save-maps", action="store_true", help="also save every map (float16) under --out/maps/")
    p.add_argument(
        "--overwrite", action="store_true", help="start over when --out holds a run with another configuration"
    )
    add_output_option(p, "evaluate", per_configuration=True)
    add_progress_option(p)
    add_compile_option(p)
    p.set_defaults(func=run)


def _error(message: str) -> None:
    print_error("evaluate", message)


def _log(level: str, text: str) -> None:
    """The run's per-photo lines: errors and warnings on standard error, the resume line on standard output."""
    if level == "error":
        _error(text)
    elif level == "warning":
        print_warning("evaluate", text)
    else:
        print(text)


def _read_dataset(args: argparse.Namespace) -> tuple[str, str] | None:
    """The ``(kind, folder)`` of the data set the options name, or ``None`` after one error line."""
    kind = args.dataset or "folder"
    if kind == "folder":
        if args.images is not None and args.root is not None:
            _error("give the photos once: --images or --root")
            return None
        folder = args.images or args.root
        if folder is None or args.boxes is None:
            _error("give --images DIR and --boxes FILE, or --dataset voc|coco|imagenet --root DIR")
            return None
        if args.split is not None or args.synsets is not None:
            _error(f"{'--split' if args.split is not None else '--synsets'} does not apply to a folder of photos")
            return None
    else:
        if args.root is None:
            _error(f"--dataset {kind} needs --root DIR")
            return None
        if args.images is not None or args.boxes is not None:
            _error(f"--dataset {kind} reads its own photos and boxes: drop --images / --boxes")
            return None
        if args.synsets is not None and kind != "imagenet":
            _error("--synsets applies to --dataset imagenet only")
            return None
        folder = args.root
    return kind, folder


def run(args: argparse.Namespace) -> int:
    from ..evaluation import EvaluationError, evaluate
    from ..evaluation.summary import format_protocol, format_summary

    dataset = _read_dataset(args)
    if dataset is None:
        return 2
    try:
        result = evaluate(
            args.model,
            dataset,
            list(args.methods or ["cameras"]),
            args.metrics,
            layer=args.layer,
            resolutions=args.resolutions,
            out=args.out,
            resume=not args.overwrite,
            batch_size=args.batch_size,
            workers=args.workers,
            device=args.device,
            save_maps=args.save_maps,
            progress=not args.no_progress,
            compile=compile_setting(args),
            target=args.target,
            tolerance=args.tolerance,
            steps=args.steps,
            frame=args.frame,
            gamma=args.gamma,
            explain_batch=args.explain_batch,
            shard_size=args.shard_size,
            square=args.square,
            limits=size_limits(args),
            weights=args.weights,
            num_classes=args.num_classes,
            split=args.split,
            boxes=args.boxes,
            limit=args.limit,
            synsets=args.synsets,
            log=_log,
            record=args,
        )
    except EvaluationError as err:
        _error(str(err))
        return err.code
    if not result.is_main:
        return 0
    if not result.rows:  # nothing could be done: each skipped photo has said why already
        if not result.skipped:
            _error("nothing was evaluated")
        return 2
    print(format_summary(result.summary(), result.metrics, result.metric_info))
    protocol = result.pointing_protocol()
    if protocol:
        print(format_protocol(protocol))
    print(
        f"{len(result.rows)} row(s), {len(result.skipped)} skipped; wrote {', '.join(result.written)} "
        f"to {args.out.path}/"
    )
    return 1 if result.skipped else 0
