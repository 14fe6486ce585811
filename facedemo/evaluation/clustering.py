"""How well a clustering of faces matches the people in them: pairwise precision/recall (scikit-learn's
``pair_confusion_matrix``) and BCubed precision/recall/F (Bagga & Baldwin 1998; Amigo et al. 2009),
the two measures the face-clustering literature reports, plus the adjusted Rand index.

Pairwise counts every pair of faces, so it is dominated by the largest people; BCubed averages over
faces, so a person with one photo left alone counts as much as one of a big group put together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import adjusted_rand_score, pair_confusion_matrix
from sklearn.metrics.cluster import contingency_matrix

from .metrics import MetricsError


def _f(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class ClusteringScores:
    faces: int
    people: int  # distinct true labels
    clusters: int  # distinct predicted groups
    singletons: int  # predicted groups of one face
    pairwise_precision: float
    pairwise_recall: float
    bcubed_precision: float
    bcubed_recall: float
    ari: float

    @property
    def pairwise_f(self) -> float:
        return _f(self.pairwise_precision, self.pairwise_recall)

    @property
    def bcubed_f(self) -> float:
        return _f(self.bcubed_precision, self.bcubed_recall)

    def to_json(self) -> dict:
        return {
            "faces": self.faces,
            "people": self.people,
            "clusters": self.clusters,
            "singletons": self.singletons,
            "pairwise_precision": round(self.pairwise_precision, 4),
            "pairwise_recall": round(self.pairwise_recall, 4),
            "pairwise_f": round(self.pairwise_f, 4),
            "bcubed_precision": round(self.bcubed_precision, 4),
            "bcubed_recall": round(self.bcubed_recall, 4),
            "bcubed_f": round(self.bcubed_f, 4),
            "ari": round(self.ari, 4),
        }


def clustering_scores(truth: Sequence, predicted: Sequence) -> ClusteringScores:
    """Scores of ``predicted`` group labels against ``truth`` person labels, one of each per face.

    A pair of faces is a true positive when both are one person and put in one group. With no
    same-person pair at all (everyone appears once) pairwise recall is 1 by convention (nothing to find),
    and with no pair put together pairwise precision is 1 (nothing claimed)."""
    truth = np.asarray(truth)
    predicted = np.asarray(predicted)
    if truth.shape != predicted.shape or truth.ndim != 1:
        raise MetricsError(
            f"There are {truth.size} true labels but {predicted.size} predicted ones; give one of each per face."
        )
    if truth.size == 0:
        raise MetricsError("There are no faces to score.")
    (_, fp), (fn, tp) = pair_confusion_matrix(truth, predicted)
    table = contingency_matrix(truth, predicted, sparse=True).tocoo()  # rows: people, columns: groups
    person_sizes = np.bincount(table.row, weights=table.data)
    group_sizes = np.bincount(table.col, weights=table.data)
    shared = table.data.astype(np.float64)
    # BCubed: each face's precision is |its group ∩ its person| / |its group|; every face of one cell has
    # the same value, so a cell of n faces contributes n * n / |group| (and n * n / |person| to recall).
    precision = float((shared**2 / group_sizes[table.col]).sum() / truth.size)
    recall = float((shared**2 / person_sizes[table.row]).sum() / truth.size)
    return ClusteringScores(
        faces=int(truth.size),
        people=int(person_sizes.size),
        clusters=int(group_sizes.size),
        singletons=int((group_sizes == 1).sum()),
        pairwise_precision=float(tp / (tp + fp)) if tp + fp else 1.0,
        pairwise_recall=float(tp / (tp + fn)) if tp + fn else 1.0,
        bcubed_precision=precision,
        bcubed_recall=recall,
        ari=float(adjusted_rand_score(truth, predicted)),
    )
