"""Where a verification distance falls among a model's genuine and impostor distances.

``data/distributions.json`` holds, per model, histograms of same-person and different-person distances
on LFW View 1 (pairsDevTrain.txt), written by calibration (``evaluation/calibration.py``). They are
calibrated data, like the thresholds beside them, so they live with the models: the pipeline reads them
to put every distance on one scale (``common_score``), and the Verify tab draws the pair's distance on
them (``explorer.figures.verify_figure``) so a person sees how sure the answer is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..files import read_json, update_json
from . import data

SHIPPED = data.shipped("distributions")


def histogram_record(same: np.ndarray, different: np.ndarray, bins: int = 60, source: str = "") -> dict:
    edges = np.linspace(0.0, max(1.6, float(np.max(np.concatenate([same, different]))) + 0.05), bins + 1)
    return {
        "edges": [round(float(e), 4) for e in edges],
        "same": np.histogram(same, edges)[0].tolist(),
        "different": np.histogram(different, edges)[0].tolist(),
        "source": source,
    }


def load(model: str, home: Path | None = None) -> dict | None:
    for path in data.places(home, "distributions"):
        record = read_json(path).get(model)
        if record:
            return record
    return None


def save(model: str, record: dict, home: Path) -> Path:
    """One model's histograms into the user's file, atomically (beside its calibrated thresholds)."""
    return update_json(data.mine(home, "distributions"), model, record)


# -- one scale for every model -----------------------------------------------------------------------
@dataclass(frozen=True)
class CommonScore:
    """Where a distance falls among LFW's different-person pairs, as that model measured them: the share
    of those stranger pairs it put at least this close (its false-match rate at this distance).

    Raw distances are on each model's own scale (dlib-resnet's threshold is 0.42, CASIA FaceNet's 1.14);
    this share means the same for every model: "1 in 1,000" is as rare a closeness for one as for the
    other. The histograms hold about 1,100 pairs, so below one pair the score says "fewer than 1 in
    1,100" rather than a number the data cannot give."""

    model: str
    distance: float
    stranger_share: float  # 0..1, rises with the distance
    pairs: int  # the different-person pairs it was counted on
    source: str  # where those pairs come from

    @property
    def resolved(self) -> bool:
        """At least one stranger pair was this close (else the share is only bounded by 1 / pairs)."""
        return self.stranger_share * self.pairs >= 1.0

    @property
    def text(self) -> str:
        """The share in words a person reads: "1 in 180", "fewer than 1 in 1,100", "38 in 100", "all 1,100"."""
        if not self.resolved:
            return f"fewer than 1 in {self.pairs:,}"
        if self.stranger_share * self.pairs > self.pairs - 1:
            return f"all {self.pairs:,}"
        if self.stranger_share < 0.1:
            return f"1 in {_two_figures(1.0 / self.stranger_share):,}"
        return f"{round(100 * self.stranger_share)} in 100"

    def to_json(self) -> dict:
        return {
            "stranger_share": round(self.stranger_share, 6),
            "text": self.text,
            "pairs": self.pairs,
            "source": self.source,
        }


def common_score(record: dict | None, distance: float, model: str = "") -> CommonScore | None:
    """A distance on the common scale, from one model's distance histograms (``load``): the share of its
    different-person pairs at or below ``distance``, counted whole bin by bin and linearly within the bin
    the distance falls in (the pairs' exact distances are not kept). None when the model has no
    distributions (a fine-tuned model, say): no number is made up for it."""
    if not record or not sum(record.get("different") or ()):
        return None
    edges = np.asarray(record["edges"], dtype=float)
    counts = np.asarray(record["different"], dtype=float)
    below = np.concatenate([[0.0], np.cumsum(counts)])  # pairs closer than each edge
    total = float(below[-1])
    share = float(np.interp(distance, edges, below)) / total  # 0 below the first edge, 1 past the last
    return CommonScore(model, float(distance), share, int(total), record.get("source", ""))


def _two_figures(x: float) -> int:
    """Rounded to two significant figures (1 in 183 reads 1 in 180: the data is not finer than that)."""
    digits = max(0, len(str(int(round(x)))) - 2)
    return int(round(x, -digits))
