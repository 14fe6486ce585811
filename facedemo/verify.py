"""1:1 verification: distances between L2-normalised embeddings, and the verdict as a dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def l2_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise L2 distances between rows of two sets of unit vectors."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    squared = np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0.0)
    return np.sqrt(squared)


@dataclass(frozen=True)
class VerifyResult:
    model: str
    distance: float
    similarity: float
    threshold: float
    notes: tuple[str, ...] = field(default_factory=tuple)  # e.g. "image A holds 3 faces; the largest was used"

    @property
    def same_person(self) -> bool:
        return self.distance <= self.threshold

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "distance": round(self.distance, 4),
            "similarity": round(self.similarity, 4),
            "threshold": round(self.threshold, 4),
            "same_person": self.same_person,
            "notes": list(self.notes),
        }


def compare(model: str, a: np.ndarray, b: np.ndarray, threshold: float, notes=()) -> VerifyResult:
    return VerifyResult(model=model, distance=l2_distance(a, b), similarity=cosine_similarity(a, b), threshold=threshold, notes=tuple(notes))
