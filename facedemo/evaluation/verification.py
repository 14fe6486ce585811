"""Verification on labelled pairs: the LFW 10-fold protocol (the threshold of fold i is the best one on the
other folds), or any CSV of pairs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..progress import Progress
from .embed import embed_images
from .metrics import DEFAULT_FAR, PairMetrics, pair_metrics
from .pairs import Pair, PairsFileError


@dataclass(frozen=True)
class PairsEvaluation:
    model: str
    alignment: str
    metrics: PairMetrics
    distances: np.ndarray
    labels: np.ndarray
    folds: np.ndarray
    failed_images: tuple[str, ...]
    images: int
    computed: int  # photos embedded in this run (the rest came from the cache)
    flip: bool = False  # each face averaged with its mirror image (test-time flip)

    @property
    def detection_failures(self) -> int:
        return len(self.failed_images)

    @property
    def accuracy(self) -> float:
        return self.metrics.cv.accuracy

    @property
    def threshold(self) -> float:
        return self.metrics.cv.threshold

    def to_json(self) -> dict:
        m = self.metrics
        return {
            "model": self.model,
            "flip": self.flip,
            "accuracy": round(m.cv.accuracy, 6),
            "accuracy_std": round(m.cv.accuracy_std, 6),
            "auc": round(m.roc.auc, 6),
            "val": round(m.at_far.val, 6),
            "far": round(m.at_far.far, 6),
            "threshold": round(m.cv.threshold, 6),
            "mean_pos_distance": round(m.stats.mean_pos, 6),
            "mean_neg_distance": round(m.stats.mean_neg, 6),
            "loss": round(m.loss, 6),
            "pairs": m.pairs,
            "detection_failures": self.detection_failures,
        }


def evaluate_pairs(
    pipeline,
    pairs: Sequence[Pair],
    model: str | None = None,
    alignment: str | None = None,
    far: float = DEFAULT_FAR,
    progress: Progress | None = None,
) -> PairsEvaluation:
    if not pairs:
        raise PairsFileError("There are no pairs to evaluate.")
    spec = pipeline.spec(model)
    alignment = alignment or pipeline.alignment(spec)
    embedded = embed_images(pipeline, [p for pair in pairs for p in (pair.a, pair.b)], spec, alignment, progress)
    a = np.stack([embedded.vectors[pair.a] for pair in pairs]).astype(np.float64)
    b = np.stack([embedded.vectors[pair.b] for pair in pairs]).astype(np.float64)
    distances = np.linalg.norm(a - b, axis=1)
    labels = np.array([pair.same for pair in pairs], dtype=bool)
    folds = np.array([pair.fold for pair in pairs], dtype=int)
    return PairsEvaluation(
        model=spec.name,
        alignment=alignment,
        metrics=pair_metrics(distances, labels, folds, far),
        distances=distances,
        labels=labels,
        folds=folds,
        failed_images=tuple(str(p) for p in embedded.failures),
        images=len(embedded.vectors),
        computed=embedded.computed,
        flip=pipeline.flip(spec),
    )
