"""Open-set identification measured the way NIST's FRTE 1:N reports it (NISTIR 8271), on scores where
lower means "more likely this person" (an L2 distance, or 1 - a classifier's probability):

* A *mated* search is a photo of someone enrolled; it fails (a false negative) unless the rank-1
  candidate is that person *and* its score passes the threshold. FNIR = failed mated searches / mated.
* A *non-mated* search is a photo of a stranger; it is a false positive when the rank-1 candidate's
  score passes the threshold. FPIR = false positives / non-mated searches.

The DET curve (FNIR against FPIR over every threshold) is scikit-learn's ``det_curve`` on the score
``-score``, with a mated search whose rank-1 candidate is the wrong person given a score no threshold
passes. The impostor tail model turns a per-comparison impostor distribution into the threshold that
keeps FPIR at a target for a gallery of N people (``models.thresholds.open_set_threshold``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np
from sklearn.metrics import det_curve

from ..files import update_json
from ..models import data
from ..rules import DecisionRule
from .metrics import MetricsError

NEVER = 1e9  # the score of a mated search whose rank-1 candidate is someone else: no threshold passes it
FPIR_TARGETS = (0.001, 0.01, 0.1)


@dataclass(frozen=True)
class Searches:
    """Rank-1 results of open-set searches: each search's best score and whether its rank-1 candidate is
    the right person (mated searches); the best score of each non-mated search."""

    mated_scores: np.ndarray
    mated_correct: np.ndarray  # bool: rank-1 candidate is the searched person
    nonmated_scores: np.ndarray

    @classmethod
    def of(
        cls, mated_scores: Sequence[float], mated_correct: Sequence[bool], nonmated_scores: Sequence[float]
    ) -> Searches:
        m = np.asarray(mated_scores, dtype=np.float64).ravel()
        c = np.asarray(mated_correct, dtype=bool).ravel()
        n = np.asarray(nonmated_scores, dtype=np.float64).ravel()
        if m.size != c.size:
            raise MetricsError(f"There are {m.size} mated scores but {c.size} rank-1 verdicts.")
        if m.size == 0 or n.size == 0:
            raise MetricsError(
                "Open-set identification needs both mated searches (enrolled people) and non-mated ones (strangers)."
            )
        return cls(m, c, n)

    def fpir(self, threshold: float) -> float:
        return float(np.mean(self.nonmated_scores <= threshold))

    def fnir(self, threshold: float) -> float:
        return float(np.mean(~(self.mated_correct & (self.mated_scores <= threshold))))


@dataclass(frozen=True)
class DetCurve:
    """FNIR against FPIR for every threshold, ordered from the loosest threshold to the strictest."""

    label: str
    fpir: np.ndarray
    fnir: np.ndarray
    thresholds: np.ndarray
    mated: int
    nonmated: int

    def fnir_at(self, fpir: float) -> tuple[float, float]:
        """(FNIR, threshold) at the loosest threshold whose FPIR is at most ``fpir``."""
        ok = np.flatnonzero(self.fpir <= fpir + 1e-12)
        if ok.size == 0:
            return 1.0, float("nan")
        i = ok[np.argmin(self.fnir[ok])]
        return float(self.fnir[i]), float(self.thresholds[i])

    def to_json(self, targets: Sequence[float] = FPIR_TARGETS, points: int = 60) -> dict:
        at = {}
        for t in targets:
            fnir, thr = self.fnir_at(t)
            at[f"{t:g}"] = {"fnir": round(fnir, 4), "threshold": None if not np.isfinite(thr) else round(thr, 4)}
        keep = _thin(len(self.fpir), points)
        return {
            "label": self.label,
            "mated": self.mated,
            "nonmated": self.nonmated,
            "fnir_at_fpir": at,
            "det": {
                "fpir": [round(float(v), 5) for v in self.fpir[keep]],
                "fnir": [round(float(v), 5) for v in self.fnir[keep]],
                "threshold": [round(float(v), 4) if np.isfinite(v) else None for v in self.thresholds[keep]],
            },
        }  # None: nobody named


def _thin(n: int, points: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, points)).round().astype(int)) if n else np.zeros(0, int)


def det(searches: Searches, label: str = "") -> DetCurve:
    """The DET curve of a set of open-set searches (scikit-learn's ``det_curve``)."""
    scores = np.concatenate([np.where(searches.mated_correct, searches.mated_scores, NEVER), searches.nonmated_scores])
    truth = np.concatenate([np.ones(searches.mated_scores.size, bool), np.zeros(searches.nonmated_scores.size, bool)])
    fpr, fnr, thresholds = det_curve(truth, -scores)
    # det_curve stops where FNIR reaches 0 or FPIR reaches 0; make sure the strict end (nobody named) is there.
    fpr, fnr, thr = np.append(fpr, 0.0), np.append(fnr, 1.0), np.append(-thresholds, -np.inf)
    real = thr < NEVER / 2
    return DetCurve(
        label, fpr[real], fnr[real], thr[real], int(searches.mated_scores.size), int(searches.nonmated_scores.size)
    )


# -- the impostor tail: a normal fitted to the lower tail of per-comparison impostor scores ----------
@dataclass(frozen=True)
class ImpostorTail:
    """P(impostor score <= d) ~ Phi((d - mean) / sd), fitted to the tail that matters (probabilities
    ``low``..``high``) by least squares on the normal quantiles, so that it extrapolates past the data."""

    mean: float
    sd: float
    comparisons: int
    low: float
    high: float

    def cdf(self, d: float) -> float:
        return NormalDist(self.mean, self.sd).cdf(d)

    def quantile(self, p: float) -> float:
        return NormalDist(self.mean, self.sd).inv_cdf(min(max(p, 1e-15), 1 - 1e-15))

    def to_json(self) -> dict:
        return {
            "mean": round(self.mean, 5),
            "sd": round(self.sd, 5),
            "comparisons": self.comparisons,
            "fit_low": self.low,
            "fit_high": self.high,
        }


def fit_impostor_tail(scores: Sequence[float], low: float | None = None, high: float = 0.05) -> ImpostorTail:
    """Fit the lower tail of per-comparison impostor scores (stranger vs one enrolled person)."""
    s = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    if s.size < 100:
        raise MetricsError(f"Fitting an impostor tail needs at least 100 impostor comparisons, not {s.size}.")
    low = low if low is not None else max(20 / s.size, 1e-5)  # at least 20 scores below the first quantile fitted
    probs = np.geomspace(low, high, 24)
    quantiles = np.quantile(s, probs)
    z = np.array([NormalDist().inv_cdf(p) for p in probs])
    sd, mean = np.polyfit(z, quantiles, 1)
    return ImpostorTail(float(mean), float(sd), int(s.size), float(low), float(high))


# -- every decision rule's curve, and the calibration the product reads ------------------------------------
def rule_det(
    rule: DecisionRule,
    distances: np.ndarray,
    owner: np.ndarray,
    people: int,
    truth: np.ndarray,
    scale: float,
) -> DetCurve:
    """One decision rule's DET (``rules.py``): ``distances`` of each search to the columns the rule compares
    with, ``owner[j]`` the person index of column j, ``truth`` each search's person index (-1: a stranger).
    A rule whose winner does not depend on the threshold is scored once (its best person's distance); any
    other (the k-NN vote) is decided again at 81 thresholds from 0.5 to 1.5 times ``scale``, the model's
    1:N threshold (CASIA's distances are about twice dlib's, so no fixed grid fits both)."""
    limits = np.linspace(0.5, 1.5, 81) * scale
    truth = np.asarray(truth)
    mated = truth >= 0
    if rule.ranks_without_limit:
        scores = rule.person_scores(distances, owner, people)
        best, score = scores.argmin(1), scores.min(1)
        return det(Searches.of(score[mated], best[mated] == truth[mated], score[~mated]), rule.name)
    fpir, fnir = [], []
    for limit in limits:
        named = rule.choose(distances, owner, float(limit))
        fpir.append(np.mean(named[~mated] >= 0))
        fnir.append(np.mean(named[mated] != truth[mated]))
    return DetCurve(
        rule.name, np.array(fpir), np.array(fnir), np.asarray(limits, float), int(mated.sum()), int((~mated).sum())
    )


def save_open_set_calibration(
    home: Path, model: str, tails: dict[str, dict], target_fpir: float, curves: dict[int, list[DetCurve]]
) -> Path:
    """The fitted impostor tails (and the curves, for the Explorer) into ``$FACEDEMO_HOME/openset.json``, where
    the identification threshold reads them (``models.thresholds.impostor_tail``). The benchmark only
    measures; this is the one writer of the calibration."""
    record = {
        "tails": tails,
        "target_fpir": target_fpir,
        "source": "LFW: calibration strangers vs the open-set pool",
        "command": "python -m facedemo bench identify --open-set --save-calibration",
        "curves": {str(n): [c.to_json() for c in cs] for n, cs in curves.items()},
    }
    return update_json(data.mine(home, "openset"), model, record, indent=1)
