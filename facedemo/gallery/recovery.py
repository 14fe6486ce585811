"""Crash safety: a write cut short by a killed process is finished or undone before anyone reads.

Every multi-step write runs inside ``writing()``, which leaves a marker file beside the thumbnails
(``thumbs/<namespace>.pending.json``: which process, doing what) for as long as it runs. A process killed
in the middle leaves the marker behind, and the next open (``check``) sees it and puts the gallery right
(``repair``) before anyone reads it. Each write is ordered so that one Chroma call is its commit point
and whatever precedes it is swept by the repair (the gallery as before) and whatever follows is derived
from it (the gallery as after): an enrollment's registry rows, a delete's ``persons`` row, a rename's.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..files import alive
from ..vectors import centroid
from .layout import SCHEMA


@dataclass(frozen=True)
class Repair:
    """What opening a gallery found out of step with its people and faces, and put right."""

    rebuilds: int = 0  # collections whose rebuild a killed process left half-way, finished
    faces: int = 0  # registry faces of a person no longer there (a delete cut short), removed
    persons: int = 0  # people with no face (an enrollment cut short before its faces were recorded), removed
    vectors: int = 0  # model vectors of no recorded face, removed
    centroids: int = 0  # people-index rows rewritten or removed to match the vectors
    files: int = 0  # thumbnails, regions and half-written files with no record, deleted
    erased: bool = False  # the collections rebuilt and the file vacuumed (a delete or rename cut short)

    @property
    def changed(self) -> bool:
        return bool(self.rebuilds or self.faces or self.persons or self.vectors or self.centroids or self.files)


class WriteMarker:
    """The marker file of one namespace's writes (``path`` None: a store with no files, and no marker), and
    what this process is writing now: ``state[("writing", namespace)]``, the depth of nested writes."""

    def __init__(self, path: Path | None, namespace: str | None, state: dict):
        self.path, self.namespace, self.state = path, namespace, state

    def read(self) -> dict | None:
        path = self.path
        if path is None or not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {"what": "unknown", "erase": True}  # a marker cut short: assume the worst
        return dict(data) if isinstance(data, dict) else {"what": "unknown", "erase": True}

    def writer(self) -> bool:
        """Whether a write of this namespace is running now: in this process (another thread, while this one
        reads) or in another process that is still alive. Its half-done state is not to be repaired."""
        if self.state.get(("writing", self.namespace), 0):
            return True
        marker = self.read()
        pid = marker.get("pid") if marker else None
        return isinstance(pid, int) and pid != os.getpid() and alive(pid)

    def write(self, data: dict) -> None:
        """Written in place, not atomically: a marker cut short still marks the gallery (as "erase", to be safe)."""
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))

    def remove(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class Recovery:
    """``writing``, ``check`` and ``repair`` for one namespace of a ``ChromaStore`` (``chroma``), written in
    terms of the store's own operations: the registry rows are the truth, everything else is derived."""

    def __init__(self, chroma, marker: WriteMarker):
        self.chroma, self.marker = chroma, marker

    @contextlib.contextmanager
    def writing(self, what: str, erase: bool = False) -> Iterator[None]:
        """Hold the write lock and mark the gallery as being written for the length of the block (nested
        blocks share the outer one's marker). ``erase``: the write removes personal data, so a repair after a
        crash must also make the removal physical (``erase``). A block that fails is repaired at once; one
        that inherits the marker of a killed process repairs what that process left before it ends."""
        marker, state = self.marker, self.chroma.state
        with self.chroma.lock:
            key = ("writing", marker.namespace)
            depth = state.get(key, 0)
            path = marker.path
            inherited = None
            if path is not None and depth == 0:
                inherited = marker.read()
                marker.write(
                    {
                        "pid": os.getpid(),
                        "what": what,
                        "erase": erase or bool(inherited and inherited.get("erase")),
                        "since": time.time(),
                    }
                )
            elif path is not None and erase:
                current = marker.read() or {"pid": os.getpid(), "what": what}
                if not current.get("erase"):
                    marker.write({**current, "erase": True})
            state[key] = depth + 1
            failed = True
            try:
                yield
                failed = False
            finally:
                state[key] = depth
                if path is not None and depth == 0:
                    left = marker.read() or {}
                    try:
                        if failed or inherited:
                            self.repair(erase=bool(left.get("erase")))
                    except Exception:
                        if not failed:
                            raise
                    else:
                        path.unlink(missing_ok=True)

    def check(self) -> Repair | None:
        """On opening the gallery: finish what a killed process left, so that every reader sees the gallery
        as it was before that process's command or as it would be after it, never in between. Cheap when
        nothing happened: one list of the collections, the marker file, a few counts and one directory
        listing; a full ``repair`` only when a marker was left or the counts disagree. Once per process and
        namespace; skipped while a live process is writing the gallery (its work is not half-done, only
        unfinished)."""
        chroma, marker = self.chroma, self.marker
        key = ("checked", marker.namespace)
        if chroma.state.get(key) or marker.writer():
            return None
        with chroma.lock:
            if marker.writer():
                return None
            rebuilds = chroma.collections.finish_rebuilds()
            left = marker.read()
            if chroma.schema() != SCHEMA:  # a gallery of the old layout is migrated first, then checked
                return None
            repaired = None
            if left is not None or not self.agrees():
                repaired = self.repair(erase=bool(left and left.get("erase")))
                if left is not None:
                    marker.remove()
            chroma.state[key] = True
        if repaired is None:
            return Repair(rebuilds=rebuilds) if rebuilds else None
        return replace(repaired, rebuilds=rebuilds)

    def agrees(self) -> bool:
        """Whether the counts say that the derived data and the files match the faces: no model holds more
        vectors than there are faces; a model holding every face has a centroid for every person; no more
        thumbnails or regions than faces, and no half-written file."""
        chroma = self.chroma
        faces = chroma.face_count()
        people = chroma.registry.person_count()
        for model in chroma.models():
            held, centroids = chroma.count(model), chroma.centroid_count(model)
            if held > faces or centroids > people or (held == faces and centroids != people):
                return False
        files = chroma.files.listing()
        return not files["part"] and len(files["thumbs"]) <= faces and len(files["regions"]) <= faces

    def repair(self, erase: bool = False) -> Repair:
        """Make everything derived agree with the people and their faces again (the registry rows are the
        truth: a face is enrolled once its row is written, a person is deleted once their ``persons`` row is):
        registry faces of a person who is gone are removed with their files; a person with no face left (an
        enrollment killed before its faces were recorded) is removed; each model's vectors of no recorded
        face are removed, and its people index is rewritten where it differs from the mean of each person's
        vectors (names included); files with no record are deleted. With ``erase``, or when anything personal
        was removed, the collections are rebuilt and the folder vacuumed, as a delete does."""
        chroma = self.chroma
        with chroma.lock:
            persons = {p.id: p for p in chroma.persons()}
            faces = chroma.faces()
            orphans = [f.id for f in faces if f.person_id not in persons]
            chroma.delete_faces(orphans)
            live = {f.id: f for f in faces if f.person_id in persons}
            holders = {f.person_id for f in live.values()}
            faceless = [pid for pid in persons if pid not in holders]
            chroma.delete_persons(faceless)
            for pid in faceless:
                persons.pop(pid)
            models = chroma.models()
            vectors = centroids = 0
            for model in models:
                stray, update = self._model_repair(model, live, persons)
                vectors += stray
                centroids += update
            files = 0
            found = chroma.files.listing()
            for path in found["part"] + [p for p in found["thumbs"] + found["regions"] if p.stem not in live]:
                path.unlink(missing_ok=True)
                files += 1
            if orphans or faceless or vectors or centroids or files:
                chroma.classifiers.forget(chroma.namespace)
            erase = erase or bool(orphans or faceless or vectors)  # their data is still in Chroma's files
            if erase:
                chroma.erase(models)
            return Repair(0, len(orphans), len(faceless), vectors, centroids, files, erase)

    def _model_repair(self, model: str, live: dict, persons: dict) -> tuple[int, int]:
        """One model's part of ``repair``: its vectors of no recorded face removed, its people index
        rewritten where it differs; returns (vectors removed, people-index rows changed)."""
        chroma = self.chroma
        records, embedded = chroma.vectors(model, embeddings=True)
        stray = [r.id for r in records if r.face_id not in live or live[r.face_id].person_id != r.person_id]
        chroma.delete_vectors(model, stray)
        grouped: dict[str, list] = defaultdict(list)
        for r, v in zip(records, embedded):
            if r.id not in stray:
                grouped[r.person_id].append(v)
        want = {pid: (persons[pid].name, centroid(np.stack(vs))) for pid, vs in grouped.items()}
        have = chroma.centroids.centroid_rows(model)
        update: dict = {pid: None for pid in have if pid not in want}
        for pid, (name, vector) in want.items():
            old = have.get(pid)
            if old is None or old[0] != name or float(np.max(np.abs(old[1] - vector))) > 1e-4:
                update[pid] = (name, vector)
        if update:
            chroma.set_centroids(model, update)
        return len(stray), len(update)
