"""What the pipeline returns: faces embedded, the face chosen for 1:1 work, and the 1:1 verdicts (one model,
every model side by side, where each model looks)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..models.distributions import CommonScore, common_score
from ..vectors import cosine_similarity, l2_distance
from ..vision.detect import Face
from ..vision.occlusion import OcclusionMap


@dataclass(frozen=True)
class EmbeddedFace:
    face: Face
    crop: Image.Image  # the aligned model input
    embedding: np.ndarray


@dataclass(frozen=True)
class AnalyzedImage:
    source: object
    image: Image.Image | None
    faces: list[EmbeddedFace]
    error: str | None = None  # the sentence for an image that could not be read


@dataclass(frozen=True)
class ChosenFace:
    """One face picked out of an image for 1:1 work, and what the user should know about the choice."""

    image: Image.Image
    face: Face
    crop: Image.Image
    embedding: np.ndarray
    face_count: int
    note: str | None


@dataclass(frozen=True)
class VerifyResult:
    """A 1:1 verdict: ``same_person`` when the distance is at or below the threshold."""

    model: str
    distance: float
    similarity: float
    threshold: float
    notes: tuple[str, ...] = field(default_factory=tuple)  # e.g. "image A holds 3 faces; the largest was used"
    score: CommonScore | None = None  # the distance on the scale every model shares (None: no distributions)
    ms_per_face: float | None = None  # aligning and embedding one face, measured in this request

    @property
    def same_person(self) -> bool:
        return self.distance <= self.threshold

    @property
    def margin(self) -> float:
        """Distance minus threshold: below zero is the same-person side, and how far in."""
        return self.distance - self.threshold

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "distance": round(self.distance, 4),
            "similarity": round(self.similarity, 4),
            "threshold": round(self.threshold, 4),
            "same_person": self.same_person,
            "margin": round(self.margin, 4),
            "score": None if self.score is None else self.score.to_json(),
            "ms_per_face": None if self.ms_per_face is None else round(self.ms_per_face, 1),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ModelComparison:
    """The same two faces verified by every available model: one ``VerifyResult`` per model that ran,
    and why each other model could not."""

    results: list[VerifyResult]
    unavailable: dict[str, str]  # model -> the reason, in words
    first: ChosenFace  # the faces compared (found once, embedded by every model)
    second: ChosenFace

    @property
    def agree(self) -> bool:
        return len({r.same_person for r in self.results}) <= 1

    @property
    def split(self) -> str | None:
        """The one line that says how the verdicts split, or None when the models agree."""
        if self.agree:
            return None
        says = ", ".join(
            f"{r.model} says {'same person' if r.same_person else 'different people'}" for r in self.results
        )
        return f"The models disagree: {says}."

    def to_json(self) -> dict:
        return {
            "models": [r.to_json() for r in self.results],
            "agree": self.agree,
            "split": self.split,
            "unavailable": [{"model": m, "reason": r} for m, r in self.unavailable.items()],
        }


@dataclass(frozen=True)
class Explanation:
    """Where each model looks on one pair: an ``OcclusionMap`` per model that ran (each over the chip that
    model itself sees), and why each other model could not."""

    maps: list[OcclusionMap]
    unavailable: dict[str, str]  # model -> the reason, in words
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict:
        return {
            "models": [m.to_json() for m in self.maps],
            "unavailable": [{"model": m, "reason": r} for m, r in self.unavailable.items()],
            "notes": list(self.notes),
        }


def compare(
    model: str,
    a: np.ndarray,
    b: np.ndarray,
    threshold: float,
    notes=(),
    record: dict | None = None,
    ms_per_face: float | None = None,
) -> VerifyResult:
    """Two embeddings' verdict; ``record``: the model's distance distributions, for the common score."""
    distance = l2_distance(a, b)
    return VerifyResult(
        model=model,
        distance=distance,
        similarity=cosine_similarity(a, b),
        threshold=threshold,
        notes=tuple(notes),
        score=common_score(record, distance, model),
        ms_per_face=ms_per_face,
    )
