"""The data-set loop of an evaluation: the (photo, class) jobs of a chunk of photos, explained in batches, scored by
every metric (:class:`Evaluator`), each chunk's rows committed as a shard (:mod:`cameras.runs`) or kept in memory,
the ranks of a torchrun run, and rank 0's merge of the shards in chunk order (:func:`execute`).

One code path for one photo and for 50,000: the items are cut into chunks of ``shard_size`` photos; a DataLoader
with ``workers`` processes decodes (:func:`cameras.io.load_image`) and preprocesses them while the model runs; the
(photo, class) jobs of a chunk go to the explainers in batches of ``explain_batch`` inputs of one size; each
finished chunk is committed atomically as ``out/shards/chunk-N.json`` (:mod:`cameras.runs.store`). Rerunning the
same evaluation resumes; a different configuration in the same ``out`` is refused unless ``overwrite``. Under
``torchrun`` the chunks are dealt to the ranks and rank 0 merges the shards into the same result one process gets.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .options import EvaluateOptions
from .rows import MetricFn, Row

__all__ = ["Evaluator", "check_boxes", "count_outputs", "records_digest", "row_from_shard"]


def check_boxes(fname: str, anns: Sequence[Any], size: tuple[int, int]) -> tuple[list[Any], list[str]]:
    """The annotations with at least one pixel on the (H, W) photo, and an error message for each other one."""
    h, w = size
    kept, errors = [], []
    for a in anns:
        x0, y0, x1, y1 = a.box
        if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h or x1 <= x0 or y1 <= y0:
            errors.append(
                f"{fname}: box {list(a.box)} ({a.name or a.label}) has no pixel on the {h}×{w} photo, skipped"
            )
        else:
            kept.append(a)
    return kept, errors


def count_outputs(model: Any, size: int, device: Any) -> int:
    """The number of logits the model returns (one forward pass on a blank input)."""
    import torch

    from ..engine.state import ModelState
    from ..engine.tap import extract_logits

    with torch.no_grad(), ModelState(model):
        return int(extract_logits(model(torch.zeros(1, 3, size, size, device=device))).shape[1])


def records_digest(dataset: Any) -> str:
    """A digest of the data set's records (photos, classes, boxes, flags, instance masks): part of the resume key."""
    import hashlib
    import json

    h = hashlib.sha256()
    for r in dataset.records:
        objects = [
            [a.label, list(a.box), a.difficult, *([] if a.segmentation is None else [a.segmentation.data])]
            for a in r.objects
        ]
        h.update(json.dumps([r.image, objects]).encode())
    return h.hexdigest()


@dataclass
class _Job:
    """One (photo, class) to explain."""

    position: int
    record: Any
    item: Any
    cls: int
    boxes: Any
    others: list[int]
    other_boxes: Any
    difficult: bool | None
    mask: Any = None
    """(H, W) bool union of the objects' instance masks at the photo's size (``energy_mask``), ``None`` without."""


class Evaluator:
    """Computes the rows of one chunk of photos (everything a shard holds)."""

    def __init__(
        self,
        options: EvaluateOptions,
        dataset: Any,
        loaded: Any,
        explainers: dict[str, Callable[..., Any]],
        metric_names: list[str],
        labels: list[str],
        table: bool,
        custom: Mapping[str, MetricFn] | None = None,
    ) -> None:
        from ..metrics import black_baseline

        self.options = options
        self.log = options.log
        self.custom = dict(custom or {})
        self.dataset = dataset
        self.loaded = loaded
        self.explainers = explainers
        self.metrics = metric_names
        self.labels = labels
        self.table = table
        self.black = black_baseline(loaded.preprocess.mean, loaded.preprocess.std).to(loaded.device)

    def _out_path(self) -> Any:
        """The run's output folder (the saved maps go under it; ``save_maps`` needs one)."""
        assert self.options.out is not None, "save_maps needs an output folder"
        return self.options.out.path

    def _jobs(self, items: Sequence[Any], skipped: list[list[str]]) -> list[_Job]:
        import torch

        from ..datasets import ebp_difficult
        from ..engine.state import ModelState
        from ..engine.tap import extract_logits
        from ..metrics import boxes_tensor

        jobs: list[_Job] = []
        for it in items:
            record = self.dataset.records[it.index]
            if it.error is not None:
                self.log("error", it.error)
                skipped.append([record.image, it.error])
                continue
            anns, errors = check_boxes(record.image, record.objects, it.size)
            errors = [f"{record.image}: {reason}, skipped" for reason in record.dropped] + errors  # the reader's
            for e in errors:
                self.log("error", e)
                skipped.append([record.image, e])
            if not anns:
                if not errors:
                    self.log("error", f"{record.image}: no boxes, skipped")
                    skipped.append([record.image, "no boxes"])
                continue
            if self.options.target == "predicted" or any(a.label is None for a in anns):
                x = it.tensor[None].to(self.loaded.device)
                with torch.no_grad(), ModelState(self.loaded.model):
                    top1 = int(extract_logits(self.loaded.model(x)).argmax(dim=1)[0])
                job = _Job(len(jobs), record, it, top1, boxes_tensor(anns), [], boxes_tensor([]), None)
                jobs.append(self._with_mask(job, anns))
                continue
            annotated = [c for c in dict.fromkeys(a.label for a in anns) if c is not None]
            for c in annotated:
                own = [a for a in anns if a.label == c]
                if all(a.difficult for a in own):  # TorchRay: a class annotated only as difficult is not scored
                    continue
                others = [o for o in annotated if o != c]
                rivals = boxes_tensor([a for a in anns if a.label in others])
                hard = ebp_difficult(record, c, it.size) if self.table else None
                job = _Job(len(jobs), record, it, c, boxes_tensor(anns, label=c), others, rivals, hard)
                jobs.append(self._with_mask(job, own))
        return jobs

    def _with_mask(self, job: _Job, objects: Sequence[Any]) -> _Job:
        """``job`` with the union of ``objects``' instance masks at the photo's size, when ``energy_mask`` is asked."""
        if "energy_mask" in self.metrics:
            from ..metrics import instance_mask

            job.mask = instance_mask([a.segmentation for a in objects], job.item.size)
        return job

    def chunk(
        self, chunk: int, items: Sequence[Any], photo_done: Callable[[int], object] | None = None
    ) -> dict[str, Any]:
        """The shard payload of one chunk: rows, skipped photos, and the index of its saved maps.

        ``photo_done(n)`` is called as photos finish (``n`` of them since the last call: a photo is done when its
        last (photo, class) job is scored, or at once when it has none) — the progress bar's per-photo step.
        """
        skipped: list[list[str]] = []
        jobs = self._jobs(items, skipped)
        left: dict[int, int] = {}
        for j in jobs:
            left[j.item.index] = left.get(j.item.index, 0) + 1
        if photo_done is not None and len(items) > len(left):
            photo_done(len(items) - len(left))
        buckets: dict[tuple[int, int], list[_Job]] = {}
        for j in jobs:
            buckets.setdefault(j.item.input_size, []).append(j)
        size = self.options.explain_batch
        results: list[tuple[tuple[int, int], dict[str, Any]]] = []
        maps: list[tuple[tuple[int, int], str, int, str, Any]] = []
        for bucket in buckets.values():
            for start in range(0, len(bucket), size):
                batch = bucket[start : start + size]
                results.extend(self._batch(batch, skipped, maps))
                finished = 0
                for j in batch:
                    left[j.item.index] -= 1
                    finished += left[j.item.index] == 0
                if photo_done is not None and finished:
                    photo_done(finished)
        results.sort(key=lambda kv: kv[0])
        payload: dict[str, Any] = {"rows": [r for _, r in results], "skipped": skipped, "maps": []}
        if maps:  # written before the shard is committed: a committed row always has its map
            from ..runs.maps import MapStore

            maps.sort(key=lambda m: m[0])
            payload["maps"] = MapStore(self._out_path()).write(chunk, [m[1:] for m in maps])
        return payload

    def _frames(self, sal: Any, batch: list[_Job], ks: list[int]) -> list[tuple[list[int], Any]]:
        """The maps ``sal`` (one per job ``batch[k]``, ``k`` in ``ks``, in that order) in the frame the localisation
        metrics score them in, grouped by that frame's size: ``(jobs, (n, H, W) maps)`` per group.

        ``--frame original`` resizes each group to its photos' size in one call (:func:`~cameras.models.resize_map`
        treats each map apart, so this is the per-map resize, batched); ``--frame input`` keeps the maps as they are.
        """
        from ..models import resize_map

        original = self.options.frame == "original"
        groups: dict[tuple[int, int], list[int]] = {}
        for n, k in enumerate(ks):
            groups.setdefault(batch[k].item.size if original else batch[k].item.input_size, []).append(n)
        out: list[tuple[list[int], Any]] = []
        for size, rows in groups.items():
            maps = sal if len(rows) == sal.shape[0] else sal[rows]
            out.append(([ks[n] for n in rows], resize_map(maps, size) if original else maps))
        return out

    def _batch(
        self, batch: list[_Job], skipped: list[list[str]], maps: list[tuple[tuple[int, int], str, int, str, Any]]
    ) -> list[tuple[tuple[int, int], dict[str, Any]]]:
        import torch

        from ..metrics import discrimination, energy_in_box, pointing_game
        from ..models import scale_box

        args, metric_names = self.options, self.metrics
        device = self.loaded.device
        x = torch.stack([j.item.tensor for j in batch]).to(device)
        targets = torch.tensor([j.cls for j in batch], device=device)
        out: list[tuple[tuple[int, int], dict[str, Any]]] = []

        def boxes(b: Any, j: _Job) -> Any:
            return b if args.frame == "original" else scale_box(b, j.item.size, j.item.input_size)

        # The maps of every method first, then the model-based metrics of all of them in shared forward passes.
        done: dict[str, tuple[Any, Any, list[dict[str, float]]]] = {}
        for mname, explainer in self.explainers.items():
            try:
                result = explainer(x, targets)
                sal = result.saliency.detach().float()
                values: list[dict[str, float]] = [{} for _ in batch]
                for ks, loc in self._frames(sal, batch, list(range(len(batch)))):
                    own = [boxes(batch[k].boxes, batch[k]) for k in ks]
                    if "pointing" in metric_names:
                        for k, v in zip(ks, pointing_game(loc, own, tolerance=args.tolerance).tolist()):
                            values[k]["pointing"] = v
                    if "energy" in metric_names:
                        for k, v in zip(ks, energy_in_box(loc, own).tolist()):
                            values[k]["energy"] = v
                    if "energy_mask" in metric_names:
                        self._energy_mask(loc, batch, ks, values)
                    if "discrimination" in metric_names or "discrimination_contrastive" in metric_names:
                        for k in ks:
                            values[k]["discrimination"] = values[k]["discrimination_contrastive"] = math.nan
                        pos = [n for n, k in enumerate(ks) if batch[k].others]
                        if pos:
                            rivals = [boxes(batch[ks[n]].other_boxes, batch[ks[n]]) for n in pos]
                            scores = discrimination(loc[pos], [own[n] for n in pos], rivals).tolist()
                            for n, v in zip(pos, scores):
                                values[ks[n]]["discrimination"] = v
            except (ValueError, RuntimeError, TypeError) as err:
                self._failed(batch, mname, err, skipped)
                continue
            done[mname] = (result, sal, values)
        for mname, error in self._faithfulness(x, targets, done).items():
            self._failed(batch, mname, error, skipped)
            del done[mname]
        for mi, (mname, explainer) in enumerate(self.explainers.items()):
            if mname not in done:
                continue
            result, sal, values = done[mname]
            try:
                if "discrimination_contrastive" in metric_names:
                    self._contrastive(explainer, mname, batch, x, targets, values, skipped, boxes)
                for key, fn in self.custom.items():
                    self._custom(key, fn, batch, x, sal, targets, values)
            except (ValueError, RuntimeError, TypeError) as err:
                self._failed(batch, mname, err, skipped)
                continue
            for k, j in enumerate(batch):
                name = self.labels[j.cls] if j.cls < len(self.labels) else str(j.cls)
                degenerate = bool(result.degenerate.reshape(-1)[k])
                warnings = []
                if degenerate:
                    warnings.append("degenerate (constant) map: every metric undefined")
                    self.log(
                        "warning", f"{j.record.image}: {mname}: {name}: degenerate (constant) map, metrics undefined"
                    )
                row = {
                    "image": j.record.image,
                    "class": j.cls,
                    "class_name": name,
                    "method": mname,
                    "values": {m: values[k][m] for m in metric_names if m in values[k]},
                    "degenerate": degenerate,
                    "warnings": warnings,
                    "difficult": j.difficult,
                }
                out.append(((j.position, mi), row))
                if args.save_maps:
                    maps.append(((j.position, mi), j.record.image, j.cls, mname, sal[k]))
        return out

    def _failed(self, batch: list[_Job], mname: str, err: Exception, skipped: list[list[str]]) -> None:
        """Log the error that left method ``mname`` out of the batch's rows, once per photo."""
        text = " ".join(str(err).split())
        for j in batch:
            self.log("error", f"{j.record.image}: {mname}: {text}")
            skipped.append([j.record.image, f"{mname}: {text}"])

    def _faithfulness(
        self, x: Any, targets: Any, done: dict[str, tuple[Any, Any, list[dict[str, float]]]]
    ) -> dict[str, Exception]:
        """Insertion/deletion, confidence change and densities of every method's maps of the batch, in shared
        forward passes (:func:`~cameras.metrics.faithfulness_set`), into each method's ``values``. A method whose
        maps the metrics refuse is scored alone, so that only its rows are lost: the errors, by method."""
        import torch

        from ..metrics import faithfulness_set

        names = self.metrics
        ins = "insertion" in names or "deletion" in names
        conf = "avg_drop" in names or "increase" in names
        dens = "rho_pos" in names or "rho_neg" in names
        if not done or not (ins or conf or dens):
            return {}
        model, args = self.loaded.model, self.options

        def score(methods: list[str]) -> None:
            sals = [done[m][1] for m in methods]
            shown = torch.stack([~done[m][0].degenerate.reshape(-1).to(x.device) for m in methods])
            out = faithfulness_set(
                model,
                x,
                sals,
                targets,
                unit_maps=[s.clamp(0, 1) for s in sals],
                insertion=ins,
                confidence=conf,
                density=dens,
                steps=args.steps,
                density_baseline=self.black,
                density_mask=shown,  # a constant map explains nothing: no density
                batch_size=args.batch_size,
            )
            for n, m in enumerate(methods):
                values = done[m][2]
                for k in range(x.shape[0]):
                    if out.insertion_deletion is not None:
                        values[k]["insertion"] = float(out.insertion_deletion[n].insertion[k])
                        values[k]["deletion"] = float(out.insertion_deletion[n].deletion[k])
                    if out.confidence is not None:
                        values[k]["avg_drop"] = 100.0 * float(out.confidence[n].drop[k])
                        values[k]["increase"] = 100.0 * float(out.confidence[n].increase[k])
                    if out.density is not None:
                        values[k]["rho_pos"] = float(out.density[n].positive[k])
                        values[k]["rho_neg"] = float(out.density[n].negative[k])

        try:
            score(list(done))
            return {}
        except (ValueError, RuntimeError, TypeError) as err:
            if len(done) == 1:
                return {next(iter(done)): err}
        errors: dict[str, Exception] = {}
        for m in done:
            try:
                score([m])
            except (ValueError, RuntimeError, TypeError) as err:
                errors[m] = err
        return errors

    def _custom(
        self,
        key: str,
        fn: MetricFn,
        batch: list[_Job],
        x: Any,
        sal: Any,
        targets: Any,
        values: list[dict[str, float]],
    ) -> None:
        """A user's metric (:class:`~cameras.evaluation.MetricFn`) on the batch, in the model input's frame."""
        import torch

        from ..models import scale_box

        boxes = [scale_box(j.boxes, j.item.size, j.item.input_size) for j in batch]
        scores = fn(self.loaded.model, x, sal.clamp(0, 1), targets, boxes)
        flat = torch.as_tensor(scores, dtype=torch.float64).detach().reshape(-1).cpu().tolist()
        if len(flat) != len(batch):
            raise ValueError(f"metric {key!r} returned {len(flat)} score(s) for {len(batch)} input(s)")
        for k, v in enumerate(flat):
            values[k][key] = float(v)

    @staticmethod
    def _energy_mask(loc: Any, batch: list[_Job], ks: list[int], values: list[dict[str, float]]) -> None:
        """``energy_mask`` of the maps ``loc`` (one per job ``batch[k]``, ``k`` in ``ks``): the masks, made at the
        photo's size, are resized (nearest) to the maps' frame (a no-op in ``--frame original``); NaN without one."""
        import torch

        from ..metrics import energy_in_mask
        from ..metrics.masks import resize_mask

        for k in ks:
            values[k]["energy_mask"] = math.nan
        pos = [n for n, k in enumerate(ks) if batch[k].mask is not None]
        if not pos:
            return
        masks = torch.stack([resize_mask(batch[ks[n]].mask, loc.shape[-2:]) for n in pos])
        scores = energy_in_mask(loc[pos], masks.to(loc.device)).tolist()
        for n, v in zip(pos, scores):
            values[ks[n]]["energy_mask"] = v

    def _contrastive(
        self,
        explainer: Callable[..., Any],
        mname: str,
        batch: list[_Job],
        x: Any,
        targets: Any,
        values: list[dict[str, float]],
        skipped: list[list[str]],
        boxes: Callable[[Any, _Job], Any],
    ) -> None:
        """The contrastive maps of the jobs with rival classes, batched by their number of rivals."""
        import torch

        from ..metrics import discrimination

        groups: dict[int, list[int]] = {}
        for k, j in enumerate(batch):
            if j.others:
                groups.setdefault(len(j.others), []).append(k)
        for ks in groups.values():
            rivals = torch.tensor([batch[k].others for k in ks], device=x.device)
            try:
                result = explainer(x[ks], targets[ks], contrast=rivals, gamma=self.options.gamma)
            except (ValueError, RuntimeError, TypeError) as err:
                for k in ks:
                    message = f"{mname}: contrastive map: {' '.join(str(err).split())}"
                    self.log("error", f"{batch[k].record.image}: {message}")
                    skipped.append([batch[k].record.image, message])
                continue
            c_sal = result.saliency.detach().float()
            for group, loc in self._frames(c_sal, batch, ks):
                own = [boxes(batch[k].boxes, batch[k]) for k in group]
                rival = [boxes(batch[k].other_boxes, batch[k]) for k in group]
                for k, v in zip(group, discrimination(loc, own, rival).tolist()):
                    values[k]["discrimination_contrastive"] = v


def row_from_shard(data: dict[str, Any]) -> Row:
    values = {k: (math.nan if v is None else float(v)) for k, v in data["values"].items()}
    return Row(
        data["image"],
        int(data["class"]),
        data["class_name"],
        data["method"],
        values,
        bool(data["degenerate"]),
        list(data["warnings"]),
        data.get("difficult"),
    )
