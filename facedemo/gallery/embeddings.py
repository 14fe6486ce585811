"""Each model's vectors: its ``faces`` collection (one vector per registry face, naming the face and the
person by id only) and its ``people`` collection (one re-normalised mean vector per person, with the
person's name, so "nearest person" is one query that needs nothing else). Renaming a person changes their
centroid rows, never a model's vectors.

Chroma's cosine distance ``c`` and the project's L2 distance between unit vectors ``d`` relate as
``d = sqrt(2c)``; everything leaving this module is ``d``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import GalleryError
from ..rules import Candidate
from ..vectors import cosine_to_l2, l2_normalise
from .chroma import chroma_errors
from .layout import BATCH, PEOPLE, Collections
from .records import Hit, ModelRecord


class Embeddings:
    """One namespace's vectors, per model."""

    def __init__(self, collections: Collections):
        self.collections = collections

    def count(self, model: str) -> int:
        col = self.collections.get(model, create=False)
        with chroma_errors("count the faces"):
            return col.count() if col is not None else 0

    def flip(self, model: str) -> bool | None:
        """Whether the vectors stored for ``model`` were made with test-time flip (face and mirror image
        averaged), as recorded with the first of them; None while the model has no collection. A
        collection written before the option existed holds unflipped vectors, so a missing record reads
        as False (migration writes it down)."""
        col = self.collections.get(model, create=False)
        if col is None:
            return None
        meta = col.metadata or {}
        if "flip" in meta:
            return bool(meta["flip"])
        with chroma_errors("read the collection"):
            return False if col.count() else None

    def put_vectors(self, model: str, records: Sequence[ModelRecord], vectors: np.ndarray, flip: bool = False) -> None:
        """Upsert one model's vectors. ``flip``: how they were made; the collection records it with its first
        vectors and refuses vectors made the other way (distances between the two kinds mean less)."""
        if not records:
            return
        recorded = self.flip(model)
        if recorded is not None and recorded != flip:
            raise GalleryError(
                f"The gallery's {model} faces were embedded {'with' if recorded else 'without'} test-time flip and these "
                f"{'with' if flip else 'without'} it; the two cannot be mixed in one collection."
            )
        col = self.collections.get(model)
        meta = col.metadata or {}
        if "flip" not in meta:
            with chroma_errors("record how the faces were embedded"):
                col.modify(metadata={**meta, "flip": bool(flip)})
        vectors = l2_normalise(np.asarray(vectors, dtype=np.float32))
        with chroma_errors("store the faces"):
            for start in range(0, len(records), BATCH):
                part = records[start : start + BATCH]
                col.upsert(
                    ids=[r.id for r in part],
                    embeddings=vectors[start : start + len(part)],
                    metadatas=[r.metadata(model) for r in part],
                )

    def vectors(
        self, model: str, person_id: str | None = None, face_ids: Sequence[str] = (), embeddings: bool = False
    ) -> tuple[list[ModelRecord], np.ndarray | None]:
        col = self.collections.get(model, create=False)
        if col is None:
            return [], (np.zeros((0, 0), np.float32) if embeddings else None)
        where = (
            {"person_id": person_id}
            if person_id is not None
            else ({"face_id": {"$in": list(face_ids)}} if face_ids else None)
        )
        include = ["metadatas", "embeddings"] if embeddings else ["metadatas"]
        with chroma_errors("read the gallery"):
            got = col.get(where=where, include=include)
        records = [
            ModelRecord(i, str(m.get("face_id", "")), str(m.get("person_id", "")))
            for i, m in zip(got["ids"], got["metadatas"])
        ]
        out = None
        if embeddings:
            raw = got.get("embeddings")
            out = np.asarray(raw, dtype=np.float32) if raw is not None and len(raw) else np.zeros((0, 0), np.float32)
        return records, out

    def query(self, model: str, vectors: np.ndarray, k: int) -> list[list[Hit]]:
        col = self.collections.get(model, create=False)
        if col is None or k <= 0:
            return [[] for _ in range(len(vectors))]
        with chroma_errors("search the gallery"):
            n = min(k, col.count())
            if n == 0:
                return [[] for _ in range(len(vectors))]
            got = col.query(query_embeddings=l2_normalise(vectors), n_results=n, include=["metadatas", "distances"])
        return [
            [
                Hit(ModelRecord(i, str(m.get("face_id", "")), str(m.get("person_id", ""))), float(d))
                for i, m, d in zip(ids, metas, cosine_to_l2(dists))
            ]
            for ids, metas, dists in zip(got["ids"], got["metadatas"], got["distances"])
        ]

    def delete_vectors(self, model: str, ids: Sequence[str]) -> None:
        col = self.collections.get(model, create=False)
        if col is not None and ids:
            with chroma_errors("delete faces"):
                for start in range(0, len(ids), BATCH):
                    col.delete(ids=list(ids[start : start + BATCH]))


class Centroids:
    """One namespace's people index, per model: a mean vector per person."""

    def __init__(self, collections: Collections):
        self.collections = collections

    def set_centroids(self, model: str, centroids: dict[str, tuple[str, np.ndarray] | None]) -> None:
        """``{person_id: (name, unit vector)}`` upserts; ``{person_id: None}`` removes that person's centroid."""
        col = self.collections.get(model, PEOPLE)
        gone = [p for p, v in centroids.items() if v is None]
        keep = [(p, v) for p, v in centroids.items() if v is not None]
        with chroma_errors("update the people index"):  # in batches: Chroma refuses more than ~5,400 rows a call
            for start in range(0, len(gone), BATCH):
                col.delete(ids=gone[start : start + BATCH])
            for start in range(0, len(keep), BATCH):
                part = keep[start : start + BATCH]
                col.upsert(
                    ids=[p for p, _ in part],
                    embeddings=l2_normalise(np.stack([v for _, (_, v) in part])),
                    metadatas=[{"person_id": p, "person": name} for p, (name, _) in part],
                )

    def rename_centroids(self, model: str, person_id: str, name: str) -> None:
        col = self.collections.get(model, PEOPLE, create=False)
        if col is not None:
            with chroma_errors("rename"):
                if col.get(ids=[person_id], include=[])["ids"]:
                    col.update(ids=[person_id], metadatas=[{"person_id": person_id, "person": name}])

    def centroid_count(self, model: str) -> int:
        col = self.collections.get(model, PEOPLE, create=False)
        with chroma_errors("count the people"):
            return col.count() if col is not None else 0

    def centroid_people(self, model: str) -> dict[str, str]:
        col = self.collections.get(model, PEOPLE, create=False)
        if col is None:
            return {}
        with chroma_errors("read the people index"):
            got = col.get(include=["metadatas"])
        return {i: str(m.get("person", "")) for i, m in zip(got["ids"], got["metadatas"])}

    def centroid_rows(self, model: str) -> dict[str, tuple[str, np.ndarray]]:
        """Every person's row of the index: ``{person_id: (name, vector)}``."""
        col = self.collections.get(model, PEOPLE, create=False)
        if col is None:
            return {}
        with chroma_errors("read the people index"):
            got = col.get(include=["metadatas", "embeddings"])
        return {
            i: (str(m.get("person", "")), np.asarray(v, dtype=np.float32))
            for i, m, v in zip(got["ids"], got["metadatas"], got["embeddings"])
        }

    def query_centroids(
        self, model: str, vectors: np.ndarray, k: int, people: int | None = None
    ) -> list[list[Candidate]]:
        """The ``k`` nearest people of each vector. ``people``: the centroid count when the caller has it
        already (one Chroma call fewer)."""
        col = self.collections.get(model, PEOPLE, create=False)
        if col is None or k <= 0:
            return [[] for _ in range(len(vectors))]
        with chroma_errors("search the people index"):
            n = min(k, col.count() if people is None else people)
            if n == 0:
                return [[] for _ in range(len(vectors))]
            got = col.query(query_embeddings=l2_normalise(vectors), n_results=n, include=["metadatas", "distances"])
        return [
            [Candidate(str(m.get("person", "")), float(d), i) for i, m, d in zip(ids, metas, cosine_to_l2(dists))]
            for ids, metas, dists in zip(got["ids"], got["metadatas"], got["distances"])
        ]
