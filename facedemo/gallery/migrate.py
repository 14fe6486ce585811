"""An old gallery upgraded in place, once: schema 1 (a person was a name inside each model's collection,
so each model had its own people) to schema 2 (persons and a face registry shared by every model).

Every step is an idempotent upsert keyed by ids derived from the data, so a migration killed at any point
(kill -9) is simply run again the next time the gallery opens, and loses nothing:
1. the registry is marked as being at schema 1 before any row moves;
2. per model: each distinct name becomes a person (an id derived from the name, so a rerun finds the same
   one), each face a registry record (an id from its photo and box), its thumbnail is renamed after the
   face, and the model's rows are rewritten with the person's and face's ids instead of the name;
3. every model's people index is rebuilt from its vectors;
4. the registry is marked as schema 2.
Faces of schema 1 have no stored face region, so a model added later cannot embed them without their
photos; ``Gallery.backfill`` says so, and importing the photos again adds them.
"""

from __future__ import annotations

import hashlib
import logging

from .store import SCHEMA, FaceRecord, ModelRecord, PersonRecord, face_id

log = logging.getLogger("facedemo.gallery")


def legacy_person_id(name: str) -> str:
    return hashlib.sha256(f"schema-1 person|{name}".encode()).hexdigest()[:32]


def migrate_if_needed(gallery) -> bool:
    """Migrate ``gallery``'s store if it is of schema 1; checked once per process and namespace."""
    store = gallery.store
    key = ("schema", store.namespace)
    if store.state.get(key):
        return False
    with store.lock:
        migrated = store.schema() < SCHEMA
        if migrated:
            with store.writing("migrate"):
                migrate(gallery)
        store.state[key] = True
    return migrated


def migrate(gallery) -> dict[str, int]:
    """Upgrade the store of ``gallery`` to schema 2; returns the faces moved per model."""
    store = gallery.store
    store.begin_migration()
    moved = {}
    persons = {p.name: p for p in store.persons()}
    for model in store.models():
        ids, metas, vectors = store.legacy_rows(model)
        moved[model] = len(ids)
        if not ids:
            continue
        new = sorted({str(m["person"]) for m in metas} - set(persons))
        fresh = [
            PersonRecord(legacy_person_id(n), n, min(str(m.get("enrolled_at", "")) for m in metas if m["person"] == n))
            for n in new
        ]
        store.put_persons(fresh)
        persons.update({p.name: p for p in fresh})
        known = {f.id for f in store.faces(image_shas=sorted({str(m.get("image_sha", "")) for m in metas}))}
        faces, rows = {}, []
        for rid, meta in zip(ids, metas):
            box = tuple(float(meta.get(k, 0.0)) for k in ("x1", "y1", "x2", "y2"))
            fid = face_id(str(meta.get("image_sha", "")), box)
            pid = persons[str(meta["person"])].id
            if fid not in known and fid not in faces:
                faces[fid] = FaceRecord(
                    fid,
                    pid,
                    str(meta.get("image", "")),
                    str(meta.get("image_sha", "")),
                    box,
                    enrolled_at=str(meta.get("enrolled_at", "")),
                )
            rows.append(ModelRecord(rid, fid, pid))
        store.put_faces(list(faces.values()), [None] * len(faces), [None] * len(faces))
        for row in rows:
            store.move_thumb(row.id, row.face_id)
        store.put_vectors(model, rows, vectors, bool(store.flip(model)))
        store.strip_legacy(model, [r.id for r in rows])
        log.info(
            "migrated %d %s faces of %d people to the shared gallery layout",
            len(rows),
            model,
            len({r.person_id for r in rows}),
        )
    for model in store.models():
        store.replace_centroids(model)
        gallery.refresh_centroids(model, sorted({r.person_id for r in store.vectors(model)[0]}))
    store.set_schema(SCHEMA)
    return moved
