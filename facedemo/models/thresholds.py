"""Thresholds as data: the registry's defaults, overridden by the thresholds calibrated on LFW View 1
that ship in ``facedemo/data/thresholds.json``, overridden by the user's own calibrations in
``$FACEDEMO_HOME/thresholds.json`` (written by ``facedemo.evaluation.calibration``).

Two tasks, two thresholds. Verification (1:1) uses the best-accuracy threshold. Identification (1:N)
compares a face with every person, so false accepts add up: it uses the stricter threshold calibrated
for a false accept rate of 1e-3 (``far_threshold``). At dlib-resnet's 1:1 threshold two thirds of LFW
strangers got a name against 8 enrolled people (docs/GALLERY.md)."""

from __future__ import annotations

from pathlib import Path
from statistics import NormalDist

from ..files import read_json, update_json
from . import data
from .base import ModelSpec

SHIPPED = data.shipped("thresholds")


def user_file(home: Path) -> Path:
    return data.mine(home, "thresholds")


def calibration(spec: ModelSpec, home: Path) -> dict | None:
    """The calibration record in force for a model (threshold, far, source), or None for the default."""
    for path in data.places(home, "thresholds"):
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


# -- open-set identification: a threshold that follows the gallery's size ------------------------------
OPEN_SET = data.shipped("openset")


def open_set_record(spec: ModelSpec, home: Path) -> dict | None:
    """A model's open-set calibration (impostor tails, and the DET curves measured with them), from the
    user's ``$FACEDEMO_HOME/openset.json`` or the shipped ``facedemo/data/openset.json``."""
    for path in data.places(home, "openset"):
        record = read_json(path).get(spec.name)
        if isinstance(record, dict) and isinstance(record.get("tails"), dict):
            return {**record, "file": str(path)}
    return None


def impostor_tail(spec: ModelSpec, home: Path, method: str) -> dict | None:
    """The fitted lower tail of one method's per-person impostor scores (``mean``, ``sd`` of a normal;
    ``evaluation.openset.fit_impostor_tail``), from the user's ``$FACEDEMO_HOME/openset.json`` or the
    shipped ``facedemo/data/openset.json``; None where none was calibrated."""
    record = (open_set_record(spec, home) or {}).get("tails", {}).get(method)
    if isinstance(record, dict) and all(isinstance(record.get(k), (int, float)) for k in ("mean", "sd")):
        return record
    return None


def comparison_rate(people: int, target_fpir: float) -> float:
    """The per-person false-match rate p that gives FPIR = target over ``people`` independent comparisons:
    1 - (1 - p) ** people = target."""
    return 1.0 - (1.0 - target_fpir) ** (1.0 / max(1, people))


def open_set_threshold(tail: dict, people: int, target_fpir: float) -> float:
    """The distance below which a stranger gets a name with probability ``target_fpir`` when ``people``
    are enrolled: the ``comparison_rate`` quantile of the impostor tail. It tightens as the gallery grows."""
    return NormalDist(tail["mean"], tail["sd"]).inv_cdf(comparison_rate(people, target_fpir))


def expected_fpir(tail: dict, people: int, threshold: float) -> float:
    """The share of strangers expected to get a name at ``threshold`` with ``people`` enrolled."""
    p = NormalDist(tail["mean"], tail["sd"]).cdf(threshold)
    return 1.0 - (1.0 - p) ** max(0, people)
