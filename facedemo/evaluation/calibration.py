"""Calibration: choose a model's thresholds on LFW View 1 (never on View 2, which is only for reporting),
save them where ``models.thresholds`` reads them, and save the same/different distance histograms the
Verify tab draws a pair on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..errors import InvalidParameterError
from ..models import distributions
from ..models.thresholds import save_calibration
from ..progress import Progress
from .metrics import DEFAULT_FAR, best_threshold, rates_at
from .pairs import read_lfw_pairs
from .verification import evaluate_pairs

CALIBRATION_PAIRS = "pairsDevTrain.txt"  # LFW View 1
USES = ("accuracy", "far")


@dataclass(frozen=True)
class Calibration:
    model: str
    alignment: str
    record: dict  # what was saved: the threshold in force and everything it was chosen from
    file: Path  # the user's thresholds file it was saved into
    far_at_far_threshold: float  # the false accept rate measured at ``record["far_threshold"]``

    @property
    def threshold(self) -> float:
        return self.record["threshold"]

    def to_json(self) -> dict:
        return {"model": self.model, **self.record, "file": str(self.file)}


def check_far(far: float) -> None:
    """Refuse a bad false accept rate before minutes of embedding, not after."""
    if not 0.0 < far < 1.0:
        raise InvalidParameterError(f"--far is a false accept rate between 0 and 1 (e.g. 1e-3), not {far:g}.")


def calibrate(
    pipeline,
    root: Path,
    model: str | None = None,
    far: float = DEFAULT_FAR,
    use: str = "accuracy",
    progress: Progress | None = None,
) -> Calibration:
    """Measure ``model`` on LFW View 1 under ``root`` and save its thresholds in ``$FACEDEMO_HOME``:
    the best-accuracy threshold (verification), the one at ``far`` (identification), and which of the two
    verification uses (``use``)."""
    check_far(far)
    if use not in USES:
        raise InvalidParameterError(f"Unknown criterion '{use}': use accuracy or far.")
    pairs = read_lfw_pairs(Path(root) / CALIBRATION_PAIRS, Path(root))
    spec = pipeline.spec(model)
    alignment = pipeline.alignment(spec)
    result = evaluate_pairs(pipeline, pairs, spec, far=far, progress=progress)
    best = best_threshold(result.distances, result.labels)
    strict = result.metrics.at_far
    chosen = best.threshold if use == "accuracy" else strict.threshold
    at_chosen = rates_at(result.distances, result.labels, chosen)
    command = f"python -m facedemo calibrate --model {spec.name} --far {far:g} --use {use}"
    if alignment != spec.alignment:
        command += f" --alignment {alignment}"
    record = {
        "threshold": round(chosen, 4),
        "criterion": "best accuracy" if use == "accuracy" else f"FAR <= {far:g}",
        "far": round(at_chosen.far, 5),  # measured on View 1 at `threshold`
        "val": round(at_chosen.val, 5),
        "accuracy_threshold": round(best.threshold, 4),
        "accuracy": round(best.accuracy, 5),
        "far_target": far,
        "far_threshold": round(strict.threshold, 4),
        "val_at_far_target": round(strict.val, 5),
        "alignment": alignment,
        "pairs": len(pairs),
        "detection_failures": result.detection_failures,
        "source": f"LFW View 1 {CALIBRATION_PAIRS}",
        "command": command,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }
    path = save_calibration(spec.name, record, pipeline.settings.home)
    histograms = distributions.histogram_record(
        result.distances[result.labels],
        result.distances[~result.labels],
        source=f"LFW View 1 {CALIBRATION_PAIRS}, {alignment} alignment",
    )
    distributions.save(spec.name, histograms, pipeline.settings.home)
    return Calibration(spec.name, alignment, record, path, strict.far)
