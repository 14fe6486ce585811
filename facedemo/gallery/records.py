"""What the store holds, as records: a person, an enrolled face (for every model), one face's vector in
one model's collection, and a search hit; and the ids derived from the data, so re-imports upsert.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PersonRecord:
    id: str
    name: str
    created_at: str = ""


@dataclass(frozen=True)
class Region:
    """Where a stored face region sits in its photo: region pixel = (photo pixel - origin) * scale."""

    x0: float
    y0: float
    scale: float

    def to_region(self, x: float, y: float) -> tuple[float, float]:
        return (x - self.x0) * self.scale, (y - self.y0) * self.scale


@dataclass(frozen=True)
class FaceRecord:
    """One enrolled face, for every model: whose, from which photo (its name and the sha256 of its bytes),
    where in it (box and landmarks in the photo's pixels), and where its stored region is (None: enrolled
    before regions were kept, so a later model cannot embed it without the photo)."""

    id: str
    person_id: str
    image: str
    image_sha: str
    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...] | None = None
    region: Region | None = None
    enrolled_at: str = ""  # ISO 8601, UTC

    def metadata(self) -> dict:
        x1, y1, x2, y2 = self.box
        meta = {
            "person_id": self.person_id,
            "image": self.image,
            "image_sha": self.image_sha,
            "enrolled_at": self.enrolled_at,
            "x1": x1,
            "y1": y1,
            "x2": x2,
            "y2": y2,
        }
        if self.landmarks:
            meta.update({f"l{i}": float(v) for i, v in enumerate(c for point in self.landmarks for c in point)})
        if self.region is not None:
            meta.update({"rx": self.region.x0, "ry": self.region.y0, "rs": self.region.scale})
        return meta

    @classmethod
    def from_metadata(cls, id: str, meta: dict) -> FaceRecord:
        box = tuple(float(meta.get(k, 0.0)) for k in ("x1", "y1", "x2", "y2"))
        landmarks = None
        if all(f"l{i}" in meta for i in range(10)):
            flat = [float(meta[f"l{i}"]) for i in range(10)]
            landmarks = tuple((flat[i], flat[i + 1]) for i in range(0, 10, 2))
        region = (
            Region(float(meta["rx"]), float(meta["ry"]), float(meta["rs"]))
            if all(k in meta for k in ("rx", "ry", "rs"))
            else None
        )
        return cls(
            id,
            str(meta.get("person_id", "")),
            str(meta.get("image", "")),
            str(meta.get("image_sha", "")),
            box,
            landmarks,
            region,
            str(meta.get("enrolled_at", "")),
        )


@dataclass(frozen=True)
class ModelRecord:
    """One face's vector in one model's collection: its own id, the face's and the person's."""

    id: str
    face_id: str
    person_id: str

    def metadata(self, model: str) -> dict:
        return {"face_id": self.face_id, "person_id": self.person_id, "model": model}


@dataclass(frozen=True)
class Hit:
    record: ModelRecord
    distance: float


def face_id(image_sha: str, box: Sequence[float]) -> str:
    """The same face of the same photo always gets the same id, whatever the model, so re-imports upsert."""
    key = f"{image_sha}|" + ",".join(f"{v:.0f}" for v in box)
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def record_id(model: str, image_sha: str, box: Sequence[float]) -> str:
    """A face's id in one model's collection (the ids galleries of schema 1 used, so they migrate in place)."""
    key = f"{model}|{image_sha}|" + ",".join(f"{v:.0f}" for v in box)
    return hashlib.sha256(key.encode()).hexdigest()[:32]
