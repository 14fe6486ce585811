"""Thresholds as data: the registry's defaults, overridden by the thresholds calibrated on LFW View 1
that ship in ``facedemo/data/thresholds.json``, overridden by the user's own calibrations in
``$FACEDEMO_HOME/thresholds.json`` (written by ``facedemo.evaluation.calibration``).

Two tasks, two thresholds. Verification (1:1) uses the best-accuracy threshold. Identification (1:N)
compares a face with every person, so false accepts add up: it uses the stricter threshold calibrated
for a false accept rate of 1e-3 (``far_threshold``). At dlib-resnet's 1:1 threshold two thirds of LFW
strangers got a name against 8 enrolled people (docs/GALLERY.md)."""

from __future__ import annotations

from pathlib import Path

from ..files import read_json, update_json
from .base import ModelSpec

SHIPPED = Path(__file__).resolve().parent.parent / "data" / "thresholds.json"


def user_file(home: Path) -> Path:
    return Path(home) / "thresholds.json"


def calibration(spec: ModelSpec, home: Path) -> dict | None:
    """The calibration record in force for a model (threshold, far, source), or None for the default."""
    for path in (user_file(home), SHIPPED):
        record = read_json(path).get(spec.name)
        if isinstance(record, dict) and isinstance(record.get("threshold"), (int, float)):
            return {**record, "file": str(path)}
    return None


TASKS = ("verify", "identify")


def threshold_for(spec: ModelSpec, home: Path, task: str = "verify") -> float:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}")
    record = calibration(spec, home)
    if task == "identify":
        if record and isinstance(record.get("far_threshold"), (int, float)):
            return float(record["far_threshold"])
        return spec.identify_threshold if spec.identify_threshold is not None else threshold_for(spec, home, "verify")
    return float(record["threshold"]) if record else spec.threshold


def save_calibration(name: str, record: dict, home: Path) -> Path:
    """Write one model's calibration into the user's file, atomically."""
    return update_json(user_file(home), name, record, indent=2, sort_keys=True)
