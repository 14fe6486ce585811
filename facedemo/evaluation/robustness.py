"""Robustness slices: how each model's verification holds up when one photo of every pair is degraded.

For every pair the *second* photo is spoiled by a named condition of ``vision.degrade`` at each severity,
before detection, so a face MTCNN loses counts (a centre crop stands in, as ``embed`` does) and the first
photo stays clean. Per model, slice and severity: accuracy at the model's calibrated verification threshold
(``Pipeline.threshold``: calibrated on View 1's ``pairsDevTrain.txt``, so the default pairs here,
``pairsDevTest.txt``, are independent of it), AUC, VAL at the FAR target, the mean same-person and
different-person distances, and how many of the degraded photos had no face found.

Embeddings are cached per photo by ``embed.embed_images``; the finished figures are saved as one JSON per
model and pairs under ``$FACEDEMO_HOME/robustness/`` (keyed on the embedding key, the pairs, the threshold
and the FAR target), filled slice by slice, so a run per condition adds to it and the Explorer draws it
without computing anything (``cached_robustness``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelUnavailableError
from ..files import read_json, write_json
from ..models import data
from ..models.registry import weights_fingerprint
from ..progress import Progress
from ..vision.degrade import CONDITIONS, DEFAULT_SEVERITIES, check_severity, condition
from .embed import chosen_models, embed_images, embedding_key, portable_key
from .metrics import DEFAULT_FAR, accuracy_at, distance_stats, roc, val_at_far
from .pairs import Pair, PairsFileError

DEGRADED = "second"  # which photo of each pair is degraded: pair.b
DEFAULT_PAIRS = "pairsDevTest.txt"  # LFW View 1's test half: independent of the thresholds' calibration


@dataclass(frozen=True)
class SliceMetrics:
    """Verification figures of one slice (clean, or one condition at one severity)."""

    accuracy: float  # at the model's calibrated threshold
    auc: float
    val: float  # at the FAR target
    mean_pos_distance: float
    mean_neg_distance: float
    detection_failures: int  # degraded (second) photos where MTCNN found no face

    def to_json(self) -> dict:
        return {
            "accuracy": round(self.accuracy, 6),
            "auc": round(self.auc, 6),
            "val": round(self.val, 6),
            "mean_pos_distance": round(self.mean_pos_distance, 6),
            "mean_neg_distance": round(self.mean_neg_distance, 6),
            "detection_failures": int(self.detection_failures),
        }

    @classmethod
    def from_json(cls, record: dict) -> SliceMetrics:
        return cls(**{k: record[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class ModelRobustness:
    model: str
    threshold: float
    clean: SliceMetrics
    conditions: dict[str, dict[int, SliceMetrics]]  # condition -> severity -> figures
    photos: int  # distinct degraded photos per slice (the detection rate's denominator)
    computed: int = 0  # photos embedded by this run (the rest came from the caches)

    def detection_rate(self, metrics: SliceMetrics) -> float:
        return 1.0 - metrics.detection_failures / self.photos if self.photos else float("nan")

    def to_json(self) -> dict:
        return {
            "clean": self.clean.to_json(),
            "conditions": {
                name: [{"severity": s, **levels[s].to_json()} for s in sorted(levels)]
                for name, levels in self.conditions.items()
            },
        }


@dataclass(frozen=True)
class RobustnessResult:
    models: dict[str, ModelRobustness]
    unavailable: dict[str, str]  # model -> why it did not run
    pairs_file: str
    pairs: int
    far: float
    files: dict[str, str] = field(default_factory=dict)  # model -> its saved results

    def compared(self) -> dict[str, dict]:
        """What a fair comparison draws, per condition: ``levels``, the severities measured for every model
        that has the condition, and ``left_out``, each model's severities that another lacks. Comparing a
        model at a severity the other was never measured at shows no point for the other, which reads as
        "held up" (one model at 0.50 under the harshest blur, the other with no point there)."""
        out = {}
        for name in CONDITIONS:
            measured = {m: set(r.conditions[name]) for m, r in self.models.items() if r.conditions.get(name)}
            if not measured:
                continue
            common = set.intersection(*measured.values())
            left = {m: sorted(levels - common) for m, levels in measured.items() if levels - common}
            out[name] = {"levels": sorted(common), "left_out": left}
        return out

    def to_json(self) -> dict:
        return {
            "models": {name: m.to_json() for name, m in self.models.items()},
            "compared": self.compared(),
            "unavailable": [{"model": m, "reason": r} for m, r in self.unavailable.items()],
            "pairs_file": self.pairs_file,
            "pairs": self.pairs,
            "degraded": DEGRADED,
            "degraded_photos": {name: m.photos for name, m in self.models.items()},
            "thresholds": {name: round(m.threshold, 6) for name, m in self.models.items()},
            "far_target": self.far,
        }


def check_slices(conditions: Sequence[str] | None, severities: Sequence[int] | None) -> tuple[list[str], list[int]]:
    """The conditions (default: all) and severities (default 1, 3, 5) asked for, refused with a sentence
    before any work when a name or a level is unknown."""
    names = list(dict.fromkeys(condition(c).name for c in (conditions or CONDITIONS)))
    levels = sorted(set(check_severity(s) for s in (severities or DEFAULT_SEVERITIES)))
    return names, levels


def pairs_digest(pairs: Sequence[Pair]) -> str:
    """The pairs themselves (photos by their last two path parts, and labels), so the same LFW file read
    from another folder shares its results."""
    text = "\n".join(f"{p.a.parent.name}/{p.a.name} {p.b.parent.name}/{p.b.name} {int(p.same)}" for p in pairs)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def results_file(home: Path, model: str, key: str, pairs: Sequence[Pair], threshold: float, far: float) -> Path:
    """Where a model's figures for these pairs are saved on this machine: named by what they depend on."""
    digest = hashlib.sha1(json.dumps([key, pairs_digest(pairs), round(threshold, 9), far]).encode()).hexdigest()[:16]
    return data.mine(home, "robustness") / f"{model}-{digest}.json"


# The figures of the built-in models on LFW View 1's test pairs ship with facedemo
# (``python -m facedemo calibrate --all --ship`` regenerates them): a machine without LFW (a Space) draws them
# at once. They are matched on what they depend on, with the weights named by their content
# (``portable_key``), so other weights never match them; a user's own file always wins.
SHIPPED = data.shipped("robustness")


def shipped_record(model: str, key: str, threshold: float, far: float, pairs: Sequence[Pair] | None) -> dict:
    """The shipped figures measured exactly this way (``key``: ``portable_key``; on these pairs, or on any
    when they are not on this machine), else {}."""
    digest = None if pairs is None else pairs_digest(pairs)
    for path in sorted(SHIPPED.glob(f"{model}-*.json")):
        record = read_json(path)
        if (
            record.get("clean")
            and record.get("portable_key") == key
            and round(float(record.get("threshold", -1)), 9) == round(threshold, 9)
            and record.get("far_target") == far
            and (digest is None or record.get("pairs_digest") == digest)
        ):
            return record
    return {}


def _slice(
    pipeline, spec, alignment, pairs, reference, threshold, far, degradation, progress
) -> tuple[SliceMetrics, int]:
    seconds = embed_images(pipeline, [p.b for p in pairs], spec, alignment, progress, degradation=degradation)
    a = np.stack([reference.vectors[p.a] for p in pairs]).astype(np.float64)
    b = np.stack([seconds.vectors[p.b] for p in pairs]).astype(np.float64)
    d = np.linalg.norm(a - b, axis=1)
    y = np.array([p.same for p in pairs], dtype=bool)
    stats = distance_stats(d, y)
    metrics = SliceMetrics(
        accuracy=accuracy_at(d, y, threshold),
        auc=roc(d, y).auc,
        val=val_at_far(d, y, far).val,
        mean_pos_distance=stats.mean_pos,
        mean_neg_distance=stats.mean_neg,
        detection_failures=len(seconds.failures),
    )
    return metrics, seconds.computed


def evaluate_model(
    pipeline,
    pairs: Sequence[Pair],
    model: str,
    conditions: Sequence[str] | None = None,
    severities: Sequence[int] | None = None,
    far: float = DEFAULT_FAR,
    pairs_file: str = "",
    progress_for=None,
) -> tuple[ModelRobustness, Path]:
    """One model's robustness figures: read from its saved results where they are there, the missing
    slices computed (and saved after each one, so an interrupted run keeps what it finished).
    ``progress_for(label)`` returns a progress callback for each slice that has photos to embed."""
    names, levels = check_slices(conditions, severities)
    if not pairs:
        raise PairsFileError("There are no pairs to evaluate.")
    spec = pipeline.spec(model)
    alignment = pipeline.alignment(spec)
    threshold = pipeline.threshold(spec)
    file = results_file(
        pipeline.settings.home, spec.name, embedding_key(pipeline, spec, alignment), pairs, threshold, far
    )
    portable = portable_key(pipeline, spec, alignment)
    saved = copy.deepcopy(  # filled in below; the parsed file is shared
        read_json(file) or shipped_record(spec.name, portable, threshold, far, pairs)
    )
    record = {
        "model": spec.name,
        "portable_key": portable,
        "pairs_file": pairs_file,
        "pairs_digest": pairs_digest(pairs),
        "pairs": len(pairs),
        "threshold": threshold,
        "far_target": far,
        "photos": len({p.b for p in pairs}),
        "clean": saved.get("clean"),
        "conditions": saved.get("conditions", {}),
    }
    computed, reference = 0, None

    def progress(label: str) -> Progress | None:
        return progress_for(f"{spec.name} {label}") if progress_for else None

    def run(label: str, degradation) -> dict:
        nonlocal computed, reference
        if reference is None:
            reference = embed_images(pipeline, [p.a for p in pairs], spec, alignment, progress("first photos"))
            computed += reference.computed
        metrics, done = _slice(
            pipeline, spec, alignment, pairs, reference, threshold, far, degradation, progress(label)
        )
        computed += done
        return metrics.to_json()

    if record["clean"] is None:
        record["clean"] = run("clean", None)
        write_json(file, record, indent=1)
    for name in names:
        for level in levels:
            if str(level) not in record["conditions"].get(name, {}):
                record["conditions"].setdefault(name, {})[str(level)] = run(f"{name}:{level}", (name, level))
                write_json(file, record, indent=1)
    return _model_result(record, names, levels, computed), file


def _model_result(record: dict, names: Sequence[str], levels: Sequence[int], computed: int = 0) -> ModelRobustness:
    return ModelRobustness(
        model=record["model"],
        threshold=float(record["threshold"]),
        clean=SliceMetrics.from_json(record["clean"]),
        conditions={n: {s: SliceMetrics.from_json(record["conditions"][n][str(s)]) for s in levels} for n in names},
        photos=int(record["photos"]),
        computed=computed,
    )


def evaluate_robustness(
    pipeline,
    pairs: Sequence[Pair],
    models: Sequence[str] | None = None,
    conditions: Sequence[str] | None = None,
    severities: Sequence[int] | None = None,
    far: float = DEFAULT_FAR,
    pairs_file: str = "",
    progress_for=None,
) -> RobustnessResult:
    """Every model named (default: every available model, the others listed with their reason) on every
    condition and severity asked for, plus the clean pairs."""
    check_slices(conditions, severities)  # a bad name is refused before any model loads
    names, unavailable = chosen_models(pipeline, models)
    results, files = {}, {}
    for name in names:
        try:
            results[name], file = evaluate_model(
                pipeline, pairs, name, conditions, severities, far, pairs_file, progress_for
            )
        except ModelUnavailableError as exc:
            if models:
                raise
            unavailable[name] = str(exc)
            continue
        files[name] = str(file)
    if not results:
        raise ModelUnavailableError(
            "None of the models could run: " + "; ".join(f"{m}: {r}" for m, r in unavailable.items())
        )
    return RobustnessResult(results, unavailable, pairs_file, len(pairs), far, files)


def cached_robustness(
    pipeline, pairs: Sequence[Pair] | None, far: float = DEFAULT_FAR, pairs_file: str = ""
) -> RobustnessResult:
    """What ``evaluate_robustness`` saved for these pairs (the user's, else the shipped figures), for every
    model whose weights are on this machine, computing nothing: each model with the conditions and
    severities measured so far. ``pairs=None`` (the pairs are not on this machine): the shipped figures
    only. Models with no saved results are listed in ``unavailable``."""
    results, missing, files = {}, {}, {}
    count = len(pairs) if pairs is not None else 0  # without the pairs: as many as the shipped figures had
    for status in pipeline.models():
        spec = pipeline.spec(status.name)
        if not status.available or weights_fingerprint(spec, pipeline.settings) is None:
            missing[spec.name] = (
                status.reason
                or "its weights are not on this machine yet; they are fetched or converted the first time it is used"
            )
            continue
        alignment, threshold = pipeline.alignment(spec), pipeline.threshold(spec)
        key = embedding_key(pipeline, spec, alignment)
        file = results_file(pipeline.settings.home, spec.name, key, pairs, threshold, far) if pairs else None
        record = read_json(file) if file is not None else {}
        if not record.get("clean"):
            record = shipped_record(spec.name, portable_key(pipeline, spec, alignment), threshold, far, pairs)
            file = SHIPPED if record else file
        if not record.get("clean"):
            missing[spec.name] = (
                "not measured yet: its figures come from a run on LFW's photos, which docs/EVALUATION.md describes"
            )
            continue
        levels = {n: sorted(int(s) for s in by) for n, by in record.get("conditions", {}).items()}
        conditions = {
            n: {s: SliceMetrics.from_json(record["conditions"][n][str(s)]) for s in ls}
            for n, ls in levels.items()
            if n in CONDITIONS
        }
        results[spec.name] = ModelRobustness(
            spec.name,
            float(record["threshold"]),
            SliceMetrics.from_json(record["clean"]),
            conditions,
            int(record["photos"]),
        )
        files[spec.name] = str(file)
        if pairs is None:
            count = max(count, int(record.get("pairs", 0)))
    return RobustnessResult(results, missing, pairs_file, count, far, files)
