""":func:`evaluate`: saliency methods on a data set, from Python — what ``cameras evaluate`` runs.

The life of a call, in this order (so that a bad argument costs nothing and leaves nothing behind):

1. **check** the options, the metrics, the methods, the data set (read, not decoded), the model's registry entry
   and the device; a problem raises :class:`EvaluationError` (a ``ValueError``; :class:`EvaluationFileError` for a
   missing file or folder) whose message is the line the CLI prints;
2. **join** torchrun's ranks if there are any, **load** the model and check its head against the data set's
   classes, build the explainers, open the resume store in ``out``;
3. **run** this rank's chunks of photos (:mod:`cameras.evaluation.run`); a photo that cannot be used is a
   :class:`Skipped` entry, never an exception;
4. **merge** on rank 0 (every shard, in chunk order) into an :class:`Evaluation`, and with ``out`` write its files.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .options import EvaluateOptions, EvaluationError, EvaluationFileError, EvaluationLockedError
from .result import Evaluation
from .rows import ALL, DEFAULT_METRICS, METRICS, MetricFn, Row, Skipped, with_contrastive

if TYPE_CHECKING:
    from ..datasets import DataSet
    from ..io import FolderLock, OutputDir
    from ..methods.compiling import CompileSetting
    from ..models import LoadedModel
    from ..runs import Ranks

__all__ = ["evaluate", "write_record"]

_DATASET_OPTIONS = ("split", "boxes", "limit", "synsets")
_OPTIONS = tuple(f.name for f in fields(EvaluateOptions))


def evaluate(
    model: Any,
    dataset: Any,
    methods: Sequence[Any] | str | Any = ("cameras",),
    metrics: Sequence[str | MetricFn] | str | None = None,
    *,
    layer: str | None = None,
    resolutions: str | Sequence[int | float] | None = "paper",
    out: str | os.PathLike[str] | OutputDir | None = None,
    resume: bool = True,
    batch_size: int = 64,
    workers: int = 2,
    device: str | None = None,
    save_maps: bool = False,
    progress: bool = True,
    compile: CompileSetting = False,
    **options: Any,
) -> Evaluation:
    """Evaluate saliency methods on a data set: localisation and faithfulness metrics per (photo, class, method).

    ``cameras evaluate`` is this call (its options are these arguments, spelled with dashes); the metrics, the rows,
    the Table 1 pointing protocol and the files are documented in :mod:`cameras.cli.evaluate`.

    Args:
        model: a registry name (``"efficientnet_lite0"``, ``"timm:…"``; loaded with ``weights``), a loaded model
            (:func:`cameras.models.load`), or an ``nn.Module`` classifier (then ``layer`` is needed unless it has
            ``cameras_default_layer``; its inputs are preprocessed with :class:`cameras.models.Preprocess`'s
            defaults, 224 px and ImageNet's mean and std — wrap it in a :class:`cameras.models.LoadedModel` for
            others).
        dataset: a :class:`cameras.datasets.DataSet` (:func:`cameras.datasets.open_dataset`), a ``(kind, root)``
            pair opened with the options ``split``, ``boxes``, ``limit`` and ``synsets``, or a sequence of
            :class:`cameras.datasets.Record` whose ``image`` paths are relative to the option ``image_root``
            (default: the current folder).
        methods: registry names (:func:`cameras.methods.available`) and/or explainer objects: a configured
            ``CAMERAS(model, layer, resolutions=…)`` or any callable ``f(x, targets) -> Result`` (or a (B, h, w)
            tensor of maps in [0, 1]); an object is named by its ``name`` attribute (else its type's name).
        metrics: metric keys (:data:`cameras.evaluation.METRICS`; default ``pointing`` and ``energy``, the cheap
            pair; ``"all"``: every metric that applies, ``energy_mask`` only on a data set with instance masks)
            and/or callables of the signature :class:`cameras.evaluation.MetricFn`. The run says which metrics run
            (an ``"info"`` line of ``log``).
        layer: the layer to explain (default: the model's).
        resolutions: the CAMERAS scales: ``"paper"``, shorter-side sizes (``[224, 324]``) or factors
            (``[1.0, 1.5]``), or the CLI's text (``"224,324"``).
        out: an output folder: the run is committed there chunk by chunk (resumable: call again with the same
            arguments), and the files of :meth:`Evaluation.save` and ``run.json`` are written at the end. ``None``:
            the run stays in memory. The call holds the folder's lock (:func:`cameras.io.lock_folder`; under
            torchrun, rank 0) until it returns or raises: another process's call on the same folder meanwhile
            raises :class:`EvaluationLockedError`.
        resume: with ``out``, continue the run it holds; ``False`` starts over (the CLI's ``--overwrite``).
        batch_size: images per forward pass of insertion/deletion, confidence and densities.
        workers: DataLoader processes decoding photos (0: in this process).
        device: the torch device (default ``"cpu"``, or a given model's device); under torchrun a CUDA run uses
            ``cuda:LOCAL_RANK``.
        save_maps: also save every map (float16) under ``out/maps/`` (:func:`cameras.runs.read_map`); needs ``out``.
        progress: a progress bar (``tqdm.auto``: a widget in a notebook); ``False`` silences it.
        compile: ``torch.compile`` the methods that accept it (CAMERAS): ``False`` (default), ``True``, or ``"auto"``
            (on when the data set holds at least :data:`cameras.methods.compiling.COMPILE_AUTO_MIN_PHOTOS` photos);
            ``--compile off|on|auto``. The first photo pays the compile (a "compiling (first call)" line with
            ``progress``); see :class:`cameras.CAMERAS` for the on-disk cache.
        **options: ``target`` (``"label"`` or ``"predicted"``), ``tolerance`` (px, default 15), ``steps`` (100),
            ``frame`` (``"original"`` or ``"input"``), ``gamma`` (1), ``explain_batch`` (8), ``shard_size`` (32),
            ``square`` (False), ``limits`` (:class:`cameras.io.SizeLimits`), ``weights`` (``"DEFAULT"``),
            ``num_classes``, ``log`` (a ``log(level, text)`` for the per-photo lines; default: standard error),
            and the data set's ``split``, ``boxes``, ``limit``, ``synsets``, ``image_root``.

    Returns:
        an :class:`Evaluation`; under torchrun rank 0's holds every rank's rows, another rank's only its own.

    Raises:
        EvaluationError: a bad argument, data set, model or output folder (before any photo is decoded), or outputs
            that cannot be merged or written.
        EvaluationLockedError: ``out`` is in use by another run (an :class:`EvaluationError` and a
            :class:`cameras.io.FolderLockedError`; its ``holder`` says who: ``pid``, ``host``, ``command``, …).

    Example (with Pascal VOC 2007's test set on disk and a 20-class checkpoint)::

        ev = cameras.evaluate("resnet50", ("voc", "VOCdevkit/VOC2007"), ["cameras", "gradcam"],
                              ["pointing", "energy"], weights="voc_resnet50.pt", out="runs/voc")
        ev.summary()["cameras"]["pointing"]["mean"], ev.pointing_table()[0]["all"]
    """
    unknown = sorted(set(options) - set(_OPTIONS) - set(_DATASET_OPTIONS) - {"image_root"})
    if unknown:
        raise TypeError(f"evaluate() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}")
    given = {k: v for k, v in options.items() if k in _OPTIONS}
    if "out" in given:
        raise TypeError("evaluate() got 'out' twice")
    opts = EvaluateOptions(
        batch_size=batch_size,
        workers=workers,
        save_maps=save_maps,
        progress=progress,
        overwrite=not resume if given.get("overwrite") is None else bool(given.pop("overwrite")),
        **given,
    )
    if not isinstance(resume, bool):
        raise EvaluationError(f"resume must be True or False, got {resume!r}")
    opts.check()
    from ..methods.compiling import check_compile, resolve_compile

    try:
        compile = check_compile(compile)
    except (TypeError, ValueError) as err:
        raise EvaluationError(str(err)) from err
    metric_names, custom = _metrics(metrics)
    named = _methods(methods)
    ds = _dataset(dataset, {k: options.get(k) for k in _DATASET_OPTIONS}, options.get("image_root"))
    if not len(ds):
        raise EvaluationError(f"{ds.root}: the data set has no annotated photo")
    if _asks_all(metrics) and not ds.has_masks:  # "all": the metrics that apply; energy_mask needs masks
        metric_names.remove("energy_mask")
    if "energy_mask" in metric_names:
        if not ds.has_masks:
            raise EvaluationError(
                f"--metrics energy_mask needs instance masks, and the {ds.kind} data set at {ds.root} has "
                "none (COCO's instances files have them); use energy for boxes"
            )
        from ..metrics import require_pycocotools

        try:
            require_pycocotools()
        except ImportError as err:
            raise EvaluationError(f"--metrics energy_mask: {err}") from err
    opts.device = _device(model, device)
    _model_spec(model, opts.device)
    opts.resolutions = _resolutions(resolutions)
    if opts.limits is None:
        from ..io import DEFAULT_LIMITS

        opts.limits = DEFAULT_LIMITS
    opts.out = _out(out)
    if opts.save_maps and opts.out is None:
        raise EvaluationError("save_maps needs an output folder: the maps are written under out/maps/")
    from ..runs import distributed

    lock = _lock(opts.out)
    try:
        ranks = distributed.setup(opts.device)
        try:
            return _run(
                model,
                layer,
                opts,
                ds,
                named,
                metric_names,
                custom,
                ranks,
                default_metrics=metrics is None,
                compile=resolve_compile(compile, len(ds)),
            )
        finally:
            if opts.record is not None:  # the CLI's one run; a script under torchrun may call again, in the same group
                ranks.close()
    finally:
        if lock is not None:
            lock.release()


# -- checks before any work ------------------------------------------------------------------------------------------


def _asks_all(metrics: Sequence[str | MetricFn] | str | None) -> bool:
    """Whether ``metrics`` names ``"all"``."""
    given = [metrics] if isinstance(metrics, str) else list(metrics or [])
    return any(isinstance(m, str) and m.strip().lower() == ALL for m in given)


def _metrics(metrics: Sequence[str | MetricFn] | str | None) -> tuple[list[str], dict[str, MetricFn]]:
    """The metric columns (``discrimination`` brings its contrastive column) and the user's metrics by name;
    ``"all"`` stands for every built-in metric (the caller drops ``energy_mask`` on a data set without masks)."""
    given: list[Any] = (
        list(DEFAULT_METRICS) if metrics is None else [metrics] if isinstance(metrics, str) else list(metrics)
    )
    if not given:
        raise EvaluationError("metrics is empty: give metric names or callables")
    names: list[str] = []
    custom: dict[str, MetricFn] = {}
    for m in given:
        if isinstance(m, str) and m.strip().lower() == ALL:
            names.extend(k for k in METRICS if k not in names)
            continue
        if isinstance(m, str):
            names.append(m)
            continue
        if not callable(m):
            raise EvaluationError(f"a metric is a name or a callable, got {type(m).__name__}")
        key = str(getattr(m, "name", None) or getattr(m, "__name__", "") or type(m).__name__)
        if key in METRICS or key in custom:
            raise EvaluationError(f"metric {key!r} is given twice or shadows a built-in metric: give it another name")
        custom[key] = m
        names.append(key)
    names = with_contrastive(names)
    bad = [k for k in names if k not in METRICS and k not in custom]
    if bad:
        raise EvaluationError(f"unknown metric(s) {', '.join(bad)}; choose from {', '.join(METRICS)}, or all")
    if len(set(names)) != len(names):
        raise EvaluationError(f"metrics name {next(k for k in names if names.count(k) > 1)!r} twice")
    return names, custom


@dataclass
class _Method:
    """A method to run: a registry class (built once the model is loaded) or the user's explainer object."""

    given: str
    cls: Any = None
    obj: Any = None

    @property
    def name(self) -> str:
        if self.cls is not None:
            return str(self.cls.name or self.given)
        return self.given


def _methods(methods: Sequence[Any] | str | Any) -> list[_Method]:
    from .. import methods as methods_mod

    given = [methods] if isinstance(methods, str) or callable(methods) else list(methods)
    if not given:
        raise EvaluationError("methods is empty: give method names or explainers")
    out: list[_Method] = []
    for m in given:
        if isinstance(m, str):
            try:
                out.append(_Method(m, cls=methods_mod.get(m)))
            except (ValueError, KeyError) as err:
                raise EvaluationError(str(err)) from err
        elif isinstance(m, type):
            raise EvaluationError(f"method {m.__name__}: give an explainer object (e.g. {m.__name__}(model, layer))")
        elif callable(m):
            name = getattr(m, "name", None) or getattr(m, "__name__", None) or type(m).__name__
            out.append(_Method(str(name), obj=m))
        else:
            raise EvaluationError(f"a method is a name or an explainer, got {type(m).__name__}")
    names = [m.name for m in out]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise EvaluationError(f"methods name {twice!r} twice: give each method once (or another name)")
    return out


def _dataset(dataset: Any, opened: Mapping[str, Any], image_root: Any) -> DataSet:
    """The data set of ``dataset`` (see :func:`evaluate`)."""
    from ..datasets import DataSet, DatasetError, Record, open_dataset

    if isinstance(dataset, DataSet):
        extra = [k for k, v in opened.items() if v is not None and k != "limit"]
        if extra:
            raise EvaluationError(f"{', '.join(extra)} apply to a (kind, root) data set, not an opened one")
        return dataset.head(opened.get("limit"))
    if isinstance(dataset, tuple) and len(dataset) == 2 and isinstance(dataset[0], str):
        kind, root = dataset
        try:
            return open_dataset(kind, root, **opened)
        except DatasetError as err:
            if isinstance(err, FileNotFoundError) or "no such" in str(err):
                raise EvaluationFileError(str(err)) from err
            raise EvaluationError(str(err)) from err
    if isinstance(dataset, Sequence) and not isinstance(dataset, str | bytes):
        records = tuple(dataset)
        bad = next((r for r in records if not isinstance(r, Record)), None)
        if bad is not None:
            raise EvaluationError(f"a data set's records are cameras.datasets.Record, got {type(bad).__name__}")
        root = Path(image_root if image_root is not None else ".").expanduser().absolute()
        return DataSet("folder", root, None, root, None, records).head(opened.get("limit"))
    raise EvaluationError(
        f"dataset: give what cameras.datasets.open_dataset returns, a (kind, root) pair or records, "
        f"got {type(dataset).__name__}"
    )


def _device(model: Any, device: str | None) -> str:
    import torch

    if device is not None:
        try:
            torch.device(device)
        except (RuntimeError, ValueError, TypeError) as err:
            raise EvaluationError(f"{device!r} is not a torch device (e.g. cpu, cuda, cuda:1, mps)") from err
        return str(device)
    module = getattr(model, "model", model)
    if isinstance(module, torch.nn.Module):
        first = next(module.parameters(), None)
        if first is not None:
            return str(first.device)
    return "cpu"


def _model_spec(model: Any, device: str) -> None:
    """The checks of ``cameras.cli.common.model_spec``: the device exists, a model name is known (nothing loaded)."""
    from .. import models
    from ..runs.distributed import device_problem

    problem = device_problem(device)
    if problem is not None:
        raise EvaluationError(problem)
    if model is None or isinstance(model, str):
        given = model or models.DEFAULT_MODEL
        if given.strip().lower().startswith("timm:"):
            return
        try:
            models.info(given)
        except (ValueError, TypeError) as err:
            raise EvaluationError(str(err)) from err
        return
    import torch

    if not isinstance(getattr(model, "model", model), torch.nn.Module):
        raise EvaluationError(
            f"model: give a registry name, a loaded model (cameras.models.load) or an nn.Module, "
            f"got {type(model).__name__}"
        )


def _resolutions(resolutions: str | Sequence[int | float] | None) -> list[int] | list[float] | None:
    from ..engine.scales import parse_resolutions

    if resolutions is None:
        return None
    text = resolutions if isinstance(resolutions, str) else ",".join(repr(r) for r in resolutions)
    try:
        return parse_resolutions(text)
    except ValueError as err:
        raise EvaluationError(f"resolutions {err}") from err


def _out(out: str | os.PathLike[str] | OutputDir | None) -> OutputDir | None:
    from ..io import OutputDir, OutputDirError

    if out is None or isinstance(out, OutputDir):
        return out
    try:
        return OutputDir(out)
    except OutputDirError as err:
        raise EvaluationError(str(err)) from err


def _lock(out: OutputDir | None) -> FolderLock | None:
    """The lock of ``out`` (:func:`cameras.io.lock_folder`) for the call's duration, so that two notebooks never run
    into one folder; nested when this thread holds it already (``cameras evaluate`` locks ``--out`` first).
    ``None`` without ``out`` and on the ranks other than 0 of a torchrun (they share rank 0's folder)."""
    from ..io import FolderLockedError
    from ..runs.distributed import current_rank

    if out is None or current_rank() != 0:
        return None
    try:
        return out.lock("cameras.evaluate")
    except FolderLockedError as err:
        raise EvaluationLockedError(str(err), holder=err.holder, lock=err.lock) from None
    except OSError as err:
        raise EvaluationError(f"cannot take the lock of --out {out.path}: {err}") from err


# -- the run ---------------------------------------------------------------------------------------------------------


def _load(model: Any, layer: str | None, opts: EvaluateOptions, ranks: Ranks) -> LoadedModel:
    """The model on this rank's device (``cameras.cli.common.load_model``'s errors, as :class:`EvaluationError`)."""
    import torch

    from .. import models

    if model is None or isinstance(model, str):
        try:
            extra: dict[str, Any] = {}
            if opts.num_classes is not None:
                extra["num_classes"] = opts.num_classes
            return models.load(model or models.DEFAULT_MODEL, opts.weights, ranks.device, **extra)
        except (ValueError, RuntimeError, ImportError, OSError, KeyError, AssertionError) as err:
            text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
            raise EvaluationError(text.splitlines()[0] if text else type(err).__name__) from err
    if isinstance(model, models.LoadedModel):
        loaded = model
    else:
        net: torch.nn.Module = model
        default = layer or getattr(net, "cameras_default_layer", None)
        if not default:
            raise EvaluationError("model: an nn.Module needs layer= (the layer to explain)")
        loaded = models.LoadedModel(type(net).__name__, net, str(default), models.Preprocess(), [])
    if loaded.device != ranks.device:
        loaded.model.to(ranks.device)
    loaded.model.eval()
    return loaded


def _digest(module: Any) -> str:
    """A digest of a model's weights: the resume key of a model given as an object."""
    import torch

    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return f"sha256:{h.hexdigest()}"


class _Adapter:
    """A user's callable explainer whose result is a (B, h, w) tensor: the ``saliency`` / ``degenerate`` the run
    reads (a map is degenerate when it is constant)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __call__(self, x: Any, targets: Any, **kwargs: Any) -> Any:
        import torch

        out = self.fn(x, targets, **kwargs)
        if not isinstance(out, torch.Tensor):
            return out
        if out.dim() != 3 or out.shape[0] != x.shape[0]:
            raise ValueError(f"an explainer returned maps of shape {tuple(out.shape)}; expected (B, h, w)")
        flat = out.detach().reshape(out.shape[0], -1)
        degenerate = (flat.amax(dim=1) - flat.amin(dim=1)) <= 0
        return argparse.Namespace(saliency=out, degenerate=degenerate)


def _run(
    model: Any,
    layer_given: str | None,
    opts: EvaluateOptions,
    dataset: DataSet,
    named: list[_Method],
    metric_names: list[str],
    custom: dict[str, MetricFn],
    ranks: Ranks,
    *,
    default_metrics: bool = False,
    compile: bool | str = False,
) -> Evaluation:
    from tqdm.auto import tqdm

    from ..datasets import DatasetError
    from ..io import file_digest, write_run_record
    from ..methods import method_scales
    from ..runs import RunConfigError, ShardStore, chunks, share
    from ..runs.loader import PhotoSet, chunk_loader
    from .run import Evaluator, count_outputs, records_digest

    loaded = _load(model, layer_given, opts, ranks)
    n_out = count_outputs(loaded.model, loaded.preprocess.size, loaded.device)
    if dataset.classes is not None and n_out != len(dataset.classes):
        n = len(dataset.classes)
        raise EvaluationError(
            f"--weights {opts.weights}: the model has {n_out} outputs but the {dataset.kind} data set has {n} "
            f"classes: pass a checkpoint with a {n}-class head (its size is read from the checkpoint, or give "
            f"--num-classes {n})"
        )
    beyond = next((r for r in dataset.records for c in r.classes if c >= n_out), None)
    if beyond is not None:
        raise EvaluationError(
            f"{opts.boxes}: {beyond.image} is annotated with class {max(beyond.classes)}, beyond the model's "
            f"{n_out} outputs (--weights {opts.weights})"
        )
    labels = list(dataset.classes) if dataset.classes is not None else list(loaded.labels)
    layer = layer_given or loaded.layer
    resolutions = opts.resolutions  # read by the one schedule function, as the methods read it (aspect kept)
    classes = [m.cls for m in named if m.cls is not None]
    class_scales = method_scales(classes, resolutions, square=opts.square, only=["cameras"])
    own = [
        (m.obj.resolutions, bool(getattr(m.obj, "square", False)))
        for m in named
        if m.obj is not None and hasattr(m.obj, "resolutions")
    ]

    def scales(input_hw: tuple[int, int]) -> list[tuple[int, int]]:
        from ..engine.scales import schedule

        return class_scales(input_hw) + [s for r, sq in own for s in schedule(r, input_hw, square=sq)]

    explainers: dict[str, Callable[..., Any]] = {}
    compiled = False
    for m in named:
        if m.obj is not None:
            bound = getattr(m.obj, "model", None)
            if bound is not None and bound is not loaded.model:
                raise EvaluationError(f"method {m.name!r} explains another model than the one evaluated")
            explainers[m.name] = _Adapter(m.obj)
            continue
        try:
            own_kwargs = {"resolutions": resolutions, "square": opts.square}
            kwargs: dict[str, Any] = own_kwargs if m.cls.name == "cameras" else {}
            if compile and "compile" in inspect.signature(m.cls).parameters:
                kwargs = {**kwargs, "compile": compile}
                compiled = True
            explainers[m.name] = m.cls(loaded.model, layer=layer, **kwargs)
        except (ValueError, TypeError, ImportError) as err:
            raise EvaluationError(f"method {m.given!r}: {err}") from err
    has_pairs = dataset.kind in ("voc", "coco") or any(len(r.classes) > 1 for r in dataset.records)
    table = "pointing" in metric_names and opts.target == "label" and has_pairs

    out = opts.out
    limits = opts.limits
    assert limits is not None
    weights = opts.weights
    if isinstance(model, str) or model is None:
        if weights is not None and Path(str(weights)).is_file():  # a checkpoint is keyed by its content, not its name
            weights = f"sha256:{file_digest(str(weights))}"
    else:
        weights = _digest(loaded.model)
    try:
        annotations = dataset.fingerprint()  # the annotation files' contents: a changed file is another run
    except DatasetError as err:
        raise EvaluationError(str(err)) from err
    key = {
        "dataset": dataset.describe(),
        "records": records_digest(dataset),
        "annotations": annotations,
        "model": loaded.name,
        "weights": weights,
        "outputs": n_out,
        "layer": layer,
        "methods": list(explainers),
        "metrics": metric_names,
        "resolutions": opts.resolutions,
        "square": opts.square,
        "target": opts.target,
        "frame": opts.frame,
        "tolerance": opts.tolerance,
        "steps": opts.steps,
        "gamma": opts.gamma,
        "limits": [limits.max_photo_pixels, limits.max_side, limits.max_pixels],
        "shard_size": opts.shard_size,
        "save_maps": opts.save_maps,
    }
    all_chunks = chunks(len(dataset), opts.shard_size)
    info = {**METRICS, **{k: (k, bool(getattr(fn, "higher_is_better", True))) for k, fn in custom.items()}}
    evaluation = Evaluation(
        rows=[],
        skipped=[],
        methods=list(explainers),
        metrics=metric_names,
        metric_info={k: info[k] for k in metric_names},
        labels=labels,
        table=table,
        model=loaded.name,
        layer=layer,
        dataset=dataset,
        options=opts,
        out=None if out is None else out.path,
        rank=ranks.rank,
        world_size=ranks.world_size,
    )
    store = ShardStore(out.path / "shards") if out is not None else None
    decision: tuple[str, Any]
    if ranks.is_main and store is not None and out is not None:
        import shutil

        try:
            if opts.overwrite:
                shutil.rmtree(out.path / "maps", ignore_errors=True)
            store.open(key, overwrite=opts.overwrite)
            decision = ("ok", sorted(store.done()))
        except (RunConfigError, OSError) as err:
            decision = ("error", str(err))
    else:
        decision = ("ok", [])
    decision = ranks.broadcast(decision)
    if decision[0] == "error":
        assert out is not None
        raise EvaluationError(f"--out {out.path}: {decision[1]}")
    done = set(decision[1])
    pending = [c for c in range(len(all_chunks)) if c not in done]
    mine = share(pending, ranks.rank, ranks.world_size)
    extra = {
        "image_root": str(dataset.image_root),
        "dataset": dataset.describe(),
        "world_size": ranks.world_size,
    }
    record = opts.record if opts.record is not None else _namespace(evaluation, opts)
    record.run_extra = extra
    if ranks.is_main:
        opts.log("info", _metrics_line(metric_names, default=default_metrics))
    if ranks.is_main and out is not None:
        if done:
            items_done = sum(len(all_chunks[c]) for c in done)
            opts.log(
                "info",
                f"cameras evaluate: resuming {out.path}: {items_done} of {len(dataset)} photos done, "
                f"{len(dataset) - items_done} to go",
            )
        write_run_record(out, record, status="running", extra=extra, argv=None if opts.record is not None else [])

    evaluator = Evaluator(opts, dataset, loaded, explainers, metric_names, labels, table, custom)
    photos = PhotoSet(dataset, loaded.preprocess, square=opts.square, limits=limits, scales=scales)
    loader = chunk_loader(photos, [all_chunks[c] for c in mine], opts.workers)
    total = sum(len(all_chunks[c]) for c in mine)
    desc = "photos" if ranks.world_size == 1 else f"photos (rank 0 of {ranks.world_size})"
    payloads: dict[int, dict[str, Any]] = {}
    if compiled and total and opts.progress and ranks.is_main:  # the compile is paid inside the first photo's call
        print("compiling (first call)", file=sys.stderr, flush=True)
    with tqdm(total=total, desc=desc, unit="img", disable=not opts.progress or not ranks.is_main) as bar:
        for cid, items in zip(mine, loader):
            payload = evaluator.chunk(cid, items, bar.update)  # the bar moves per photo, not per chunk
            if store is not None:
                store.commit(cid, payload)
            else:
                payloads[cid] = payload
    if store is None:  # in memory: rank 0 gathers every rank's chunks
        gathered = ranks.gather(payloads)
        if ranks.is_main:
            payloads = {cid: p for part in gathered for cid, p in part.items()}
    ranks.barrier()
    if not ranks.is_main:
        _fill(evaluation, [payloads[c] if store is None else store.read(c) for c in mine])
        return evaluation
    return _merge(evaluation, store, payloads, len(all_chunks), record)


def _metrics_line(names: Sequence[str], *, default: bool) -> str:
    """The line that says which metrics run (and, for the default set, how to ask for the others)."""
    text = f"cameras evaluate: metrics {', '.join(names)}"
    if default:
        rest = [k for k in METRICS if k not in names and k != "energy_mask"]
        text += f" (the default; --metrics all adds {', '.join(rest)})"
    return text


def _fill(evaluation: Evaluation, shards: Sequence[Mapping[str, Any]]) -> None:
    """The rows, skipped photos and map index of ``shards`` (in order) into ``evaluation``."""
    from .run import row_from_shard

    rows: list[Row] = []
    skipped: list[Skipped] = []
    map_rows: list[list[Any]] = []
    for shard in shards:
        rows.extend(row_from_shard(r) for r in shard["rows"])
        skipped.extend(Skipped(str(s[0]), str(s[1])) for s in shard["skipped"])
        map_rows.extend(shard.get("maps") or [])
    evaluation.rows, evaluation.skipped, evaluation.maps = rows, skipped, map_rows


def _merge(
    evaluation: Evaluation,
    store: Any,
    payloads: Mapping[int, Mapping[str, Any]],
    n_chunks: int,
    record: argparse.Namespace,
) -> Evaluation:
    """Rank 0: every shard, in chunk order, into the evaluation (and its files, with ``out``)."""
    from ..runs import RunConfigError

    if store is None:
        _fill(evaluation, [payloads[c] for c in range(n_chunks)])
        return evaluation
    missing = sorted(set(range(n_chunks)) - store.done())
    if missing:
        raise EvaluationError(
            f"{store.folder}: {len(missing)} shard(s) missing after the run (first: chunk {missing[0]})", code=1
        )
    try:
        _fill(evaluation, store.read_all(range(n_chunks)))
    except (RunConfigError, KeyError, TypeError, ValueError) as err:
        raise EvaluationError(str(err), code=1) from err
    opts = evaluation.options
    assert opts.out is not None
    evaluation.written = _write(evaluation, opts.out)
    if opts.record is None:  # a call from Python: the record the CLI's main writes
        write_record(evaluation, opts.out, status="done", namespace=record)
    return evaluation


def _write(evaluation: Evaluation, out: OutputDir) -> list[str]:
    from .outputs import write_outputs

    return write_outputs(evaluation, out)


def _namespace(evaluation: Evaluation, opts: EvaluateOptions) -> argparse.Namespace:
    """The configuration ``run.json`` records for a call from Python (the CLI records its command line)."""
    config = {f.name: getattr(opts, f.name) for f in fields(EvaluateOptions) if f.name not in ("log", "record", "out")}
    config["limits"] = (
        None if opts.limits is None else [opts.limits.max_photo_pixels, opts.limits.max_side, opts.limits.max_pixels]
    )
    return argparse.Namespace(
        command="evaluate",
        api="cameras.evaluate",
        model=evaluation.model,
        layer=evaluation.layer,
        methods=evaluation.methods,
        metrics=evaluation.metrics,
        **config,
    )


def write_record(
    evaluation: Evaluation,
    out: OutputDir,
    *,
    status: str,
    namespace: argparse.Namespace | None = None,
) -> Path:
    """``run.json`` of a call from Python (:func:`cameras.io.write_run_record`): status, exit code (1 when photos
    were skipped), the options and the run's ``image_root``, ``dataset`` and ``world_size``."""
    from ..io import write_run_record

    record = namespace if namespace is not None else _namespace(evaluation, evaluation.options)
    extra = {
        "image_root": str(evaluation.dataset.image_root),
        "dataset": evaluation.dataset.describe(),
        "world_size": evaluation.world_size,
    }
    code = 2 if not evaluation.rows else 1 if evaluation.skipped else 0
    return write_run_record(out, record, status=status, exit_code=code, argv=[], extra=extra)
