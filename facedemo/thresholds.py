"""Thresholds as data: the registry's defaults, overridden by the thresholds calibrated on LFW View 1
that ship in ``facedemo/data/thresholds.json``, overridden by the user's own calibrations in
``$FACEDEMO_HOME/thresholds.json`` (written by ``python -m facedemo calibrate``).

Two tasks, two thresholds. Verification (1:1) uses the best-accuracy threshold. Identification (1:N)
compares a face with every person, so false accepts add up: it uses the stricter threshold calibrated
for a false accept rate of 1e-3 (``far_threshold``). At dlib-resnet's 1:1 threshold two thirds of LFW
strangers got a name against 8 enrolled people (docs/GALLERY.md)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .models.registry import ModelSpec

SHIPPED = Path(__file__).parent / "data" / "thresholds.json"


def user_file(home: Path) -> Path:
    return Path(home) / "thresholds.json"


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, OSError):
        return {}
    return data if isinstance(data, dict) else {}


def calibration(spec: ModelSpec, home: Path) -> dict | None:
    """The calibration record in force for a model (threshold, far, source), or None for the default."""
    for path in (user_file(home), SHIPPED):
        record = _read(path).get(spec.name)
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
    path = user_file(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _read(path)
    data[name] = record
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        json.dump(data, tmp, indent=2, sort_keys=True)
    os.replace(tmp.name, path)
    return path
