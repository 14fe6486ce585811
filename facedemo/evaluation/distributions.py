"""Where a verification distance falls among a model's genuine and impostor distances.

``data/distributions.json`` holds, per model, histograms of same-person and different-person distances
on LFW View 1 (pairsDevTrain.txt), written by calibration (``calibration.py``). The Verify tab draws the
pair's distance on them (``explorer.figures.verify_figure``) so a person sees how sure the answer is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..files import read_json, update_json

SHIPPED = Path(__file__).resolve().parent.parent / "data" / "distributions.json"


def histogram_record(same: np.ndarray, different: np.ndarray, bins: int = 60, source: str = "") -> dict:
    edges = np.linspace(0.0, max(1.6, float(np.max(np.concatenate([same, different]))) + 0.05), bins + 1)
    return {
        "edges": [round(float(e), 4) for e in edges],
        "same": np.histogram(same, edges)[0].tolist(),
        "different": np.histogram(different, edges)[0].tolist(),
        "source": source,
    }


def load(model: str, home: Path | None = None) -> dict | None:
    for path in ([Path(home) / "distributions.json"] if home else []) + [SHIPPED]:
        record = read_json(path).get(model)
        if record:
            return record
    return None


def save(model: str, record: dict, home: Path) -> Path:
    """One model's histograms into the user's file, atomically (beside its calibrated thresholds)."""
    return update_json(Path(home) / "distributions.json", model, record)


def same_probability(record: dict, distance: float) -> float | None:
    """The share of LFW pairs at this distance that were the same person (from the histograms)."""
    edges = np.asarray(record["edges"])
    index = int(np.clip(np.searchsorted(edges, distance) - 1, 0, len(edges) - 2))
    same, diff = record["same"][index], record["different"][index]
    total_same, total_diff = max(sum(record["same"]), 1), max(sum(record["different"]), 1)
    # Normalise each class so the answer does not depend on how many pairs of each kind were counted.
    a, b = same / total_same, diff / total_diff
    return None if a + b == 0 else a / (a + b)
