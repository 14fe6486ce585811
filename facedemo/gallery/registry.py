"""People and their faces, for every model: the ``persons`` collection (each person's id and name) and the
``registry`` collection (each enrolled face: which photo, where in it, its five landmarks, and where its
stored face region is), with the faces' files beside them. The registry also records the layout's version.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from .chroma import check_text, chroma_errors
from .facefiles import FaceFiles
from .layout import BATCH, PERSONS, PLACEHOLDER, REGISTRY, SCHEMA, Collections
from .records import FaceRecord, PersonRecord


class Registry:
    """One namespace's people and faces."""

    def __init__(self, collections: Collections, files: FaceFiles):
        self.collections, self.files = collections, files

    def _upsert(self, collection: str, ids: list[str], metadatas: list[dict], doing: str) -> None:
        """Records with no vector of their own (a placeholder: Chroma wants one), in batches Chroma takes."""
        col = self.collections.get(None, collection)
        with chroma_errors(doing):
            for start in range(0, len(ids), BATCH):
                part = ids[start : start + BATCH]
                col.upsert(ids=part, embeddings=[PLACEHOLDER] * len(part), metadatas=metadatas[start : start + BATCH])

    # -- people -----------------------------------------------------------------------------------
    def persons(self, ids: Sequence[str] = ()) -> list[PersonRecord]:
        col = self.collections.get(None, PERSONS, create=False)
        if col is None:
            return []
        with chroma_errors("read the people"):
            got = col.get(ids=list(ids) or None, include=["metadatas"])
        return [
            PersonRecord(i, str(m.get("name", "")), str(m.get("created_at", "")))
            for i, m in zip(got["ids"], got["metadatas"])
        ]

    def person_count(self) -> int:
        col = self.collections.get(None, PERSONS, create=False)
        with chroma_errors("count the people"):
            return col.count() if col is not None else 0

    def put_persons(self, persons: Sequence[PersonRecord]) -> None:
        if not persons:
            return
        check_text([{"name": p.name} for p in persons])
        metadatas = [{"name": p.name, "created_at": p.created_at} for p in persons]
        self._upsert(PERSONS, [p.id for p in persons], metadatas, "store the people")

    def delete_persons(self, ids: Sequence[str]) -> None:
        col = self.collections.get(None, PERSONS, create=False)
        if col is not None and ids:
            with chroma_errors("delete people"):
                for start in range(0, len(ids), BATCH):
                    col.delete(ids=list(ids[start : start + BATCH]))

    # -- faces, for every model -------------------------------------------------------------------
    def faces(
        self, person_id: str | None = None, image_shas: Sequence[str] = (), ids: Sequence[str] = ()
    ) -> list[FaceRecord]:
        col = self.collections.get(None, REGISTRY, create=False)
        if col is None:
            return []
        where = (
            {"person_id": person_id}
            if person_id is not None
            else ({"image_sha": {"$in": list(image_shas)}} if image_shas else None)
        )
        with chroma_errors("read the gallery"):
            got = col.get(ids=list(ids) or None, where=where, include=["metadatas"])
        return [FaceRecord.from_metadata(i, m) for i, m in zip(got["ids"], got["metadatas"])]

    def face_count(self) -> int:
        col = self.collections.get(None, REGISTRY, create=False)
        with chroma_errors("count the faces"):
            return col.count() if col is not None else 0

    def put_faces(
        self, faces: Sequence[FaceRecord], thumbs: Sequence[Image.Image | None], regions: Sequence[Image.Image | None]
    ) -> None:
        """Thumbnails and regions are written first, so a record never lacks its files."""
        if not faces:
            return
        metadatas = [f.metadata() for f in faces]
        check_text(metadatas)  # before any file: a record Chroma refuses would leave files nothing deletes
        for face, thumb, region in zip(faces, thumbs, regions):
            self.files.write(face.id, thumb, region)
        self._upsert(REGISTRY, [f.id for f in faces], metadatas, "store the faces")

    def delete_faces(self, ids: Sequence[str]) -> None:
        """Thumbnails and regions go first: if the process dies half-way, the records are still there to delete again."""
        if not ids:
            return
        for fid in ids:
            self.files.remove(fid)
        col = self.collections.get(None, REGISTRY, create=False)
        if col is not None:
            with chroma_errors("delete faces"):
                for start in range(0, len(ids), BATCH):
                    col.delete(ids=list(ids[start : start + BATCH]))

    # -- the layout's version ----------------------------------------------------------------------------
    def schema(self) -> int:
        """2 once the registry exists (it is made at schema 2), 1 for a gallery with model collections only,
        2 for an empty one."""
        registry = self.collections.get(None, REGISTRY, create=False)
        if registry is not None:
            return int((registry.metadata or {}).get("schema", SCHEMA))
        return 1 if self.collections.models() else SCHEMA

    def set_schema(self, schema: int) -> None:
        col = self.collections.get(None, REGISTRY)
        with chroma_errors("record the gallery's layout"):
            col.modify(metadata={**(col.metadata or {}), "schema": int(schema)})
