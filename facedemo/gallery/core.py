"""The gallery: one object over a face store that enrolls people, imports folders, names the faces of a
photo, and lists, renames and deletes people.

``Gallery(pipeline, store)`` is built once and shared; writes take the store's lock so two people clicking
at once cannot interleave a duplicate check with an insert. Enrollment and identification live in their
own modules (``enroll.py``, ``identify.py``); this one holds what both need and the people themselves.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import params
from ..errors import GalleryError, UnknownPersonError
from ..pipeline import Pipeline
from ..vectors import centroid
from .enroll import Enrollment
from ..models.thresholds import impostor_tail, open_set_threshold
from .identify import CLASSIFIER_LIMIT, DEFAULT_METHOD, Identification
from .names import validate_name
from .store import FaceRecord, FaceStore


@dataclass(frozen=True)
class Person:
    name: str
    images: int
    thumbnail: Path | None
    models: tuple[str, ...]

    def to_json(self) -> dict:
        return {"name": self.name, "images": self.images}


class Gallery(Enrollment, Identification):
    """People enrolled for one or more models, in a ``FaceStore`` (Chroma).

    Args:
        pipeline: the ``Pipeline`` that detects and embeds faces.
        store: where faces live (``open_store()``: Chroma on disk, in memory or a server).
        threshold: a fixed identification threshold (default: each model's calibrated one).

    Example:
        >>> gallery = Gallery(Pipeline(), open_store("gallery"))
        >>> gallery.enroll("Ada Lovelace", ["ada1.jpg", "ada2.jpg"])
        >>> [(m.name, m.distance) for m in gallery.identify("group.jpg").faces]
    """

    def __init__(self, pipeline: Pipeline, store: FaceStore, threshold: float | None = None):
        self.pipeline = pipeline
        self.store = store
        self._threshold = params.threshold(threshold)

    def model_name(self, model: str | None = None) -> str:
        return self.pipeline.spec(model).name

    def threshold(self, model: str | None = None, method: str = DEFAULT_METHOD, people: int | None = None) -> float:
        """The L2 distance beyond which a face is unknown (for the classifier method: 1 - the probability a
        person needs). A fixed ``threshold`` given to the gallery wins; else it follows the number of
        people enrolled (``people``, default this gallery's) so that about ``Settings.target_fpir`` of
        strangers get a name, from the method's calibrated impostor tail (``models.thresholds``); a model
        with no calibrated tail keeps its fixed 1:N threshold."""
        if self._threshold is not None:
            return float(self._threshold)
        name = self.model_name(model)
        if method == "classifier":
            return CLASSIFIER_LIMIT
        tail = self.impostor_tail(name, method)
        if tail is None:
            return self.pipeline.threshold(name, "identify")  # 1:N's stricter fixed threshold (models/thresholds.py)
        people = self.people_count(name) if people is None else people
        return open_set_threshold(tail, max(1, people), self.pipeline.settings.target_fpir)

    def flip(self, model: str | None = None) -> bool:
        """Whether faces are embedded with test-time flip for ``model`` in this gallery: the way its stored
        faces were (every vector compared with them must be made alike, so a changed setting or model
        default never breaks a gallery; it applies to collections still empty), else the pipeline's."""
        name = self.model_name(model)
        recorded = self.store.flip(name)
        return self.pipeline.flip(name) if recorded is None else recorded

    def impostor_tail(self, model: str, method: str) -> dict | None:
        """The calibrated impostor tail of a method's score (knn names by the nearest photos' distances)."""
        if method == "classifier":
            return None
        return impostor_tail(self.pipeline.spec(model), self.pipeline.settings.home, "nearest" if method == "knn" else method)

    def existing(self, model: str, shas: Sequence[str]) -> list[FaceRecord]:
        """The records of these photos (by the sha256 of their bytes) already stored for ``model``."""
        records: list[FaceRecord] = []
        unique = sorted(set(shas))
        for start in range(0, len(unique), 100):
            records += self.store.get(model, image_shas=unique[start : start + 100])[0]
        return records

    # people -------------------------------------------------------------------------------------
    def people(self, model: str | None = None) -> list[Person]:
        """Everyone in the gallery (for one model, or across all of them), with photo counts and a thumbnail."""
        models = [self.model_name(model)] if model else self.store.models()
        found: dict[str, dict] = defaultdict(lambda: {"shas": set(), "models": set(), "first": None})
        for m in models:
            records, _ = self.store.get(m)
            for r in sorted(records, key=lambda r: (r.enrolled_at, r.id)):
                entry = found[r.person]
                entry["shas"].add(r.image_sha)
                entry["models"].add(m)
                if entry["first"] is None:
                    entry["first"] = self.store.thumb_path(r.id)
        return [
            Person(name, len(e["shas"]), e["first"], tuple(sorted(e["models"])))
            for name, e in sorted(found.items(), key=lambda kv: kv[0].casefold())
        ]

    def _records_of(self, name: str) -> dict[str, list[FaceRecord]]:
        return {m: recs for m in self.store.models() if (recs := self.store.get(m, person=name)[0])}

    def delete(self, name: str) -> int:
        """Every embedding of this person in every model's collection, and every thumbnail; returns how many faces."""
        name = validate_name(name)
        with self.store.lock:
            owned = self._records_of(name)
            if not owned:
                raise UnknownPersonError(f"Nobody called '{name}' is in the gallery.")
            for model, records in owned.items():
                self.store.delete(model, [r.id for r in records])
                self.store.set_centroids(model, {name: None})
            self.store.erase(list(owned))  # gone from disk too, not only from Chroma's answers
        return sum(len(r) for r in owned.values())

    def rename(self, old: str, new: str) -> int:
        old, new = validate_name(old), validate_name(new)
        with self.store.lock:
            owned = self._records_of(old)
            if not owned:
                raise UnknownPersonError(f"Nobody called '{old}' is in the gallery.")
            if old == new:
                return sum(len(r) for r in owned.values())
            if self._records_of(new):
                raise GalleryError(f"'{new}' is already in the gallery; delete or rename that person first.")
            for model, records in owned.items():
                self.store.rename(model, records, new)
                self.store.set_centroids(model, {old: None})
                self.refresh_centroids(model, [new])
        return sum(len(r) for r in owned.values())

    def reindex(self, model: str | None = None) -> None:
        """Rebuild every person's centroid from the stored faces (after a crash, or a store edited by hand)."""
        with self.store.lock:
            models = [self.model_name(model)] if model else self.store.models()
            for m in models:
                names = {r.person for r in self.store.get(m)[0]}
                stale = set(self.store.centroid_people(m)) - names
                self.store.set_centroids(m, {p: None for p in stale})
                self.refresh_centroids(m, sorted(names))

    def clear(self) -> None:
        with self.store.lock:
            self.store.drop()

    def refresh_centroids(self, model: str, names: Sequence[str]) -> None:
        update = {}
        for name in names:
            _, vectors = self.store.get(model, person=name, embeddings=True)
            update[name] = centroid(vectors) if vectors is not None and len(vectors) else None
        if update:
            self.store.set_centroids(model, update)

    def embeddings(self, model: str | None = None) -> tuple[np.ndarray, list[str], list[str], list[Path | None]]:
        """Every stored vector of one model with its person, id and thumbnail (for the embedding explorer)."""
        model = self.model_name(model)
        records, vectors = self.store.get(model, embeddings=True)
        if not records:
            return np.zeros((0, self.pipeline.spec(model).dim), np.float32), [], [], []
        return vectors, [r.person for r in records], [r.id for r in records], [self.store.thumb_path(r.id) for r in records]


