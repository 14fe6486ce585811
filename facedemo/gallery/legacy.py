"""What only the migration from schema 1 asks of the store (``migrate.py``): in schema 1 a person was a
name inside each row of each model's collection, and a thumbnail was named after a model's record."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from .chroma import chroma_errors
from .facefiles import FaceFiles
from .layout import BATCH, PEOPLE, Collections
from .registry import Registry


class Legacy:
    """One namespace's schema-1 rows and files, read and rewritten in place."""

    def __init__(self, collections: Collections, registry: Registry, files: FaceFiles):
        self.collections, self.registry, self.files = collections, registry, files

    def begin_migration(self) -> None:
        """Record schema 1 in the registry before any row of a schema-1 gallery moves, so that a migration
        cut short is seen as unfinished when the gallery is opened again."""
        self.registry.set_schema(1)

    def legacy_rows(self, model: str) -> tuple[list[str], list[dict], np.ndarray]:
        """A model collection's rows still in schema 1's shape (the person's name in each row):
        (ids, metadatas, vectors)."""
        col = self.collections.get(model, create=False)
        if col is None:
            return [], [], np.zeros((0, 0), np.float32)
        with chroma_errors("read the gallery"):
            got = col.get(include=["metadatas", "embeddings"])
        rows = [(i, m, v) for i, m, v in zip(got["ids"], got["metadatas"], got["embeddings"]) if "person" in (m or {})]
        if not rows:
            return [], [], np.zeros((0, 0), np.float32)
        return [r[0] for r in rows], [r[1] for r in rows], np.asarray([r[2] for r in rows], dtype=np.float32)

    def strip_legacy(self, model: str, ids: Sequence[str]) -> None:
        """Remove schema 1's keys (the person's name among them) from a model's migrated rows: Chroma's
        upsert merges metadata, so rewriting a row leaves the old keys unless they are set to None."""
        col = self.collections.get(model, create=False)
        if col is None or not ids:
            return
        blank = {k: None for k in ("person", "image", "image_sha", "enrolled_at", "x1", "y1", "x2", "y2")}
        with chroma_errors("migrate the gallery"):
            for start in range(0, len(ids), BATCH):
                part = list(ids[start : start + BATCH])
                col.update(ids=part, metadatas=[dict(blank) for _ in part])

    def replace_centroids(self, model: str) -> None:
        """Drop a model's people index (rebuilt from its vectors by the caller)."""
        name = self.collections.name(model, PEOPLE)
        with chroma_errors("rebuild the people index"):
            if name in self.collections.names():
                self.collections.client.delete_collection(name)
        self.collections.forget(name)

    def move_thumb(self, old_id: str, new_id: str) -> None:
        """Schema 1 named thumbnails after a model's record; schema 2 after the face (one for every model)."""
        old, new = self.files.thumb_file(old_id), self.files.thumb_file(new_id)
        if old is None or new is None or not old.exists():
            return
        if new.exists():
            old.unlink(missing_ok=True)
        else:
            os.replace(old, new)
