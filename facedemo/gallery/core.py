"""The gallery: people enrolled once and seen by every model.

``GalleryView`` reads (people, faces, embeddings, identification); ``Gallery`` is a view that also writes
(enroll, import, rename, delete, fill a model in from the stored faces, migrate an old layout). Public
mode's shared gallery is handed to visitors as a ``GalleryView``: its write methods do not exist. Both are
thin: enrollment lives in ``enroll.py``, identification in ``identify.py``, the layout upgrade in
``migrate.py``; this module holds the people themselves.

A person has a stable id and a display name (``store.PersonRecord``); every face they have is in the
model-independent registry, and each model holds one vector per registry face. Writes take the store's
lock so that two people clicking at once cannot interleave a duplicate check with an insert.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import params
from ..errors import GalleryError, UnknownPersonError
from ..models.registry import base_models
from ..pipeline import ModelRef, Pipeline
from ..progress import Progress
from ..rules import DEFAULT_METHOD
from ..vision.images import ImageInput, image_sha
from . import backfill
from . import enroll as enrollment
from .backfill import BackfillReport
from .centroids import refresh_centroids
from .identify import (
    IdentifyComparison,
    IdentifyResult,
    compare_models,
    identify_faces,
    identify_image,
    search_context,
)
from .names import box_json, name_key, validate_name
from .regions import now
from .store import FaceRecord, FaceStore, ModelRecord, PersonRecord, record_id
from .trained import drop_trained_on


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    images: int  # photos enrolled
    thumbnail: Path | None
    faces: dict[str, int] = field(default_factory=dict)  # model -> faces it holds of this person

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(sorted(m for m, n in self.faces.items() if n))

    def to_json(self) -> dict:
        return {"name": self.name, "images": self.images, "faces": dict(sorted(self.faces.items()))}


@dataclass(frozen=True)
class Deletion:
    """What deleting a person removed: their faces, and the fine-tuned models trained on them."""

    name: str
    faces: int
    models: tuple[str, ...] = ()
    # sha256 of every file that held their faces (the photos as enrolled, their thumbnails and regions): how
    # a copy elsewhere (a web server's upload cache) is found and removed too.
    hashes: frozenset[str] = frozenset()

    def text(self) -> str:
        gone = f"Deleted {self.name}: {self.faces} face(s), their embeddings and thumbnails are gone."
        if self.models:
            gone += f" The model(s) fine-tuned on their faces went with them: {', '.join(self.models)}."
        return gone

    def to_json(self) -> dict:
        return {"deleted": self.name, "faces": self.faces, "models_deleted": list(self.models)}


@dataclass(frozen=True)
class GalleryFace:
    """An enrolled face with its person's name, as a caller sees it."""

    id: str
    person: str
    image: str
    image_sha: str
    box: tuple[float, float, float, float]
    enrolled_at: str = ""
    thumbnail: Path | None = None  # filled in for one person's faces (``GalleryView.faces(person=...)``)
    models: tuple[str, ...] = ()  # the models holding a vector of it (idem)

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "person": self.person,
            "image": self.image,
            "box": box_json(self.box),
            "enrolled_at": self.enrolled_at,
            "models": list(self.models),
        }


@dataclass(frozen=True)
class FaceRemoval:
    """What removing one face of a person took with it: the face in every model, and the fine-tuned models
    trained on that person (their weights were learnt from their faces, this one among them)."""

    person: str
    face: str  # its id
    image: str  # the photo it came from, as enrolled
    left: int  # the person's faces that remain
    models: tuple[str, ...] = ()
    hashes: frozenset[str] = frozenset()  # as Deletion.hashes: the files that held the face

    def text(self) -> str:
        gone = (
            f"Removed the face from '{self.image}' from {self.person}: its embeddings, region and thumbnail are gone; "
            f"{self.left} face(s) of {self.person} remain."
        )
        if self.models:
            gone += f" The model(s) fine-tuned on {self.person}'s faces went with it: {', '.join(self.models)}."
        return gone

    def to_json(self) -> dict:
        return {
            "person": self.person,
            "removed": self.face,
            "image": self.image,
            "faces_left": self.left,
            "models_deleted": list(self.models),
        }


class GalleryView:
    """A gallery read, never written: its people, faces and embeddings, and identification against it.

    Args:
        pipeline: the ``Pipeline`` that detects and embeds faces.
        store: where faces live (``open_store()``: Chroma on disk, in memory or a server).
        threshold: a fixed identification threshold (default: one that follows the gallery's size).
    """

    writable = False
    label: str | None = None  # where its names come from, in words, when results mix galleries (public mode)

    def __init__(self, pipeline: Pipeline, store: FaceStore, threshold: float | None = None):
        self.pipeline = pipeline
        self.store = store
        self.fixed_threshold = params.threshold(threshold)

    def model_name(self, model: ModelRef = None) -> str:
        return self.pipeline.spec(model).name

    # -- how this gallery embeds -------------------------------------------------------------------
    def flip(self, model: ModelRef = None) -> bool:
        """Whether faces are embedded with test-time flip for ``model`` in this gallery: the way its stored
        vectors were (every vector compared with them must be made alike), else the pipeline's."""
        # a spec stays a spec: the shared gallery's pipeline may not know a visitor's model
        spec = self.pipeline.spec(model)
        recorded = self.store.flip(spec.name)
        return self.pipeline.flip(spec) if recorded is None else recorded

    def people_count(self, model: str) -> int:
        """People with at least one face embedded by ``model`` (one Chroma call)."""
        return self.store.centroid_count(model)

    def missing(self, model: str) -> int:
        """Enrolled faces that ``model`` holds no vector of yet (a model added after they were enrolled)."""
        return max(0, self.store.face_count() - self.store.count(model))

    # -- people ------------------------------------------------------------------------------------
    def persons(self) -> dict[str, PersonRecord]:
        return {p.id: p for p in self.store.persons()}

    def person(self, name: str) -> PersonRecord:
        """The person called exactly ``name`` (after normalisation), or UnknownPersonError."""
        name = validate_name(name)
        for p in self.store.persons():
            if p.name == name:
                return p
        raise UnknownPersonError(f"Nobody called '{name}' is in the gallery.")

    def people(self, model: str | None = None) -> list[Person]:
        """Everyone in the gallery (or only those ``model`` holds), with photo counts, faces per model and a thumbnail."""
        persons = self.persons()
        faces = self.store.faces()
        photos: dict[str, set] = defaultdict(set)
        first: dict[str, FaceRecord] = {}
        for f in sorted(faces, key=lambda f: (f.enrolled_at, f.id)):
            photos[f.person_id].add(f.image_sha)
            first.setdefault(f.person_id, f)
        counts: dict[str, Counter] = defaultdict(Counter)
        models = self.store.models()
        for m in models:
            for r in self.store.vectors(m)[0]:
                counts[r.person_id][m] += 1
        wanted = None if model is None else self.model_name(model)  # resolved once, not once per person
        people = []
        for pid, p in persons.items():
            per_model = {m: counts[pid][m] for m in models}
            if wanted is not None and not per_model.get(wanted):
                continue
            thumb = self.store.thumb_path(first[pid].id) if pid in first else None
            people.append(Person(pid, p.name, len(photos[pid]), thumb, per_model))
        return sorted(people, key=lambda p: (p.name.casefold(), p.name))

    def faces(self, model: str | None = None, person: str | None = None) -> list[GalleryFace]:
        """Every enrolled face (or those ``model`` holds, or one person's), with the person's name."""
        persons = self.persons()
        pid = self.person(person).id if person is not None else None
        registry = self.store.faces(person_id=pid)
        if model is not None:
            held = {r.face_id for r in self.store.vectors(self.model_name(model), person_id=pid)[0]}
            registry = [f for f in registry if f.id in held]
        holders: dict[str, list[str]] = defaultdict(list)
        if pid is not None:  # one person's faces, as the Gallery tab lists them: which models hold each, a thumbnail
            for m in self.store.models():
                for r in self.store.vectors(m, person_id=pid)[0]:
                    holders[r.face_id].append(m)
        return [
            GalleryFace(
                f.id,
                persons[f.person_id].name if f.person_id in persons else "",
                f.image,
                f.image_sha,
                f.box,
                f.enrolled_at,
                self.store.thumb_path(f.id) if pid is not None else None,
                tuple(holders.get(f.id, ())),
            )
            for f in sorted(registry, key=lambda f: (f.enrolled_at, f.image, f.id))
        ]

    def embeddings(self, model: ModelRef = None) -> tuple[np.ndarray, list[str], list[str], list[Path | None]]:
        """Every stored vector of one model with its person's name, its face id and thumbnail (the explorer's)."""
        spec = self.pipeline.spec(model)
        records, vectors = self.store.vectors(spec.name, embeddings=True)
        if not records:
            return np.zeros((0, spec.dim), np.float32), [], [], []
        names = self.persons()
        return (
            vectors,
            [names[r.person_id].name if r.person_id in names else "" for r in records],
            [r.face_id for r in records],
            [self.store.thumb_path(r.face_id) for r in records],
        )

    def vectors_of(self, model: str, person_id: str) -> np.ndarray:
        _, vectors = self.store.vectors(model, person_id=person_id, embeddings=True)
        return vectors

    # -- identification (identify.py) ------------------------------------------------------------------
    def threshold(self, model: ModelRef = None, method: str = DEFAULT_METHOD, people: int | None = None) -> float:
        """The threshold an identification with ``method`` uses here (see ``identify.search_context``)."""
        return search_context(self.pipeline, [self], model, method, people=people).threshold

    def identify(
        self,
        image: ImageInput,
        model: str | None = None,
        top_k: int = 3,
        method: str = DEFAULT_METHOD,
        threshold: float | None = None,
    ) -> IdentifyResult:
        """Name every face in ``image``: the best person, their distance and the ``top_k`` closest people.
        A face farther than the threshold from every person is unknown (``name`` None)."""
        return identify_image(self.pipeline, [self], image, model, top_k, method, threshold)

    def match(
        self,
        faces,
        model: str,
        top_k: int = 3,
        method: str = DEFAULT_METHOD,
        threshold: float | None = None,
        people: int | None = None,
        strangers: np.ndarray | None = None,
    ) -> IdentifyResult:
        """The decision for faces already embedded (``EmbeddedFace``s: the benchmarks and the album reuse them)."""
        return identify_faces(
            self.pipeline,
            [self],
            None,
            [f.face for f in faces],
            model,
            top_k,
            method,
            threshold,
            embedded=list(faces),
            people=people,
            strangers=strangers,
        )

    def compare_models(
        self, image: ImageInput, top_k: int = 3, method: str = DEFAULT_METHOD, models: Sequence[str] | None = None
    ) -> IdentifyComparison:
        return compare_models(self.pipeline, [self], image, top_k, method, models)


class Gallery(GalleryView):
    """A gallery that is also written: people enrolled once, embedded with every available model.

    Example:
        >>> gallery = Gallery.open(Pipeline(), open_store("gallery"))
        >>> gallery.enroll("Ada Lovelace", ["ada1.jpg", "ada2.jpg"])
        >>> [(m.name, m.distance) for m in gallery.identify("group.jpg").faces]
    """

    writable = True

    def __init__(
        self,
        pipeline: Pipeline,
        store: FaceStore,
        threshold: float | None = None,
        models: Sequence[str] | None = None,
    ):
        """Reads and writes nothing: ``Gallery.open`` is the way in that also brings the store up to date."""
        super().__init__(pipeline, store, threshold)
        self.models = (
            tuple(models) if models else None
        )  # the built-in models to enroll with (default: Settings.gallery_models)

    @classmethod
    def open(
        cls,
        pipeline: Pipeline,
        store: FaceStore,
        threshold: float | None = None,
        models: Sequence[str] | None = None,
    ) -> Gallery:
        """A gallery ready to use, its store brought up to date first (``prepare``)."""
        gallery = cls(pipeline, store, threshold, models)
        gallery.prepare()
        return gallery

    def prepare(self) -> None:
        """Upgrade a store of an old layout in place (``migrate.py``), then finish what a killed process left
        half-done before anyone reads (``FaceStore.check``); each once per process and namespace."""
        from .migrate import migrate_if_needed

        migrate_if_needed(self)
        self.store.check()

    def read_only(self) -> GalleryView:
        return GalleryView(self.pipeline, self.store, self.fixed_threshold)

    # -- which models a face is embedded with ----------------------------------------------------------
    def enroll_models(self) -> list[str]:
        """Every available built-in or declared model (or those ``Settings.gallery_models`` names) and every other
        model this gallery already holds (a fine-tuned one in use), so that each of them sees every face."""
        statuses = {s.name: s for s in self.pipeline.models()}
        wanted = self.models or self.pipeline.settings.gallery_models
        base = base_models(self.pipeline.settings)
        builtin = [n for n, s in statuses.items() if s.available and n in base and (not wanted or n in wanted)]
        held = [m for m in self.store.models() if m in statuses and statuses[m].available]
        return list(dict.fromkeys(builtin + held)) or [self.model_name()]

    # -- enrollment (enroll.py) -----------------------------------------------------------------------
    def enroll(
        self,
        name: str,
        images: Sequence[ImageInput],
        model: str | None = None,
        face_index: int | None = None,
        labels: Sequence[str] | None = None,
        confirm: bool = False,
        odd_photos: str | None = None,
        searched: Sequence[GalleryView] | None = None,
    ):
        """``enroll.enroll``: asks first (refuses with the question) about photos that are not one person and
        faces the gallery (or ``searched``) names as someone else, unless ``odd_photos``/``confirm`` answer."""
        return enrollment.enroll(self, name, images, model, face_index, labels, confirm, odd_photos, searched)

    def enroll_faces(self, name: str, faces, model: str | None = None):
        return enrollment.enroll_faces(self, name, faces, model)

    def import_path(self, path, model: str | None = None, progress: Progress | None = None):
        return enrollment.import_path(self, path, model, progress)

    def import_archive(
        self, archive, model: str | None = None, progress: Progress | None = None, chunk: int | None = None
    ):
        return enrollment.import_archive(self, archive, model, progress, chunk)

    def import_folder(
        self,
        folder,
        model: str | None = None,
        progress: Progress | None = None,
        chunk: int | None = None,
        shown_as=None,
    ):
        return enrollment.import_folder(self, folder, model, progress, chunk, shown_as)

    # -- people ------------------------------------------------------------------------------------
    def person_for(self, name: str, create: bool = True) -> PersonRecord:
        """The person called ``name``, made when new. A name that differs from someone's only in case is
        refused (two people "raj" and "Raj" are one person typed twice)."""
        name = validate_name(name)
        for p in self.store.persons():
            if p.name == name:
                return p
            if name_key(p.name) == name_key(name):
                raise GalleryError(
                    f"'{name}' differs from '{p.name}', who is in the gallery, only in case; use '{p.name}' to add photos "
                    "to that person, or another name."
                )
        record = PersonRecord(uuid.uuid4().hex, name, now())
        if create:
            self.store.put_persons([record])
        return record

    def delete(self, name: str) -> Deletion:
        """The person in every model, every face and region, every thumbnail; gone from disk too. A model
        fine-tuned on this gallery with the person among its training people goes as well (its weights were
        learnt from their faces): its folder, its vectors, its loaded copy."""
        with self.store.lock:
            person = self.person(name)  # a refusal changes nothing: before the write begins
            with self.store.writing("delete", erase=True):
                faces = self.store.faces(person_id=person.id)
                hashes = {f.image_sha for f in faces} | {
                    image_sha(p) for f in faces for p in self.store.face_files(f.id)
                }
                trained = drop_trained_on(self, person.id)
                # The commit point: once the person's row is gone they are gone for every reader, and what
                # follows (their faces, vectors, centroids, files) is what a repair on the next open removes too.
                self.store.delete_persons([person.id])
                self.store.classifiers.forget(self.store.namespace)
                models = self.store.models()
                for model in models:
                    records, _ = self.store.vectors(model, person_id=person.id)
                    self.store.delete_vectors(model, [r.id for r in records])
                    self.store.set_centroids(model, {person.id: None})
                self.store.delete_faces([f.id for f in faces])
                self.store.erase(models)  # gone from disk too, not only from Chroma's answers
        return Deletion(person.name, len(faces), tuple(sorted(s.name for s in trained)), frozenset(hashes))

    def remove_face(self, name: str, face: str) -> FaceRemoval:
        """One face of a person, erased as a deleted person is: its vector in every model (and the person's
        centroids recomputed without it), its registry record, thumbnail and region, gone from disk too; the
        fine-tuned models trained on the person go as ``delete`` takes them. The person's last face is not
        removed this way: deleting the person says what that means."""
        with self.store.lock:
            person = self.person(name)
            wellformed = isinstance(face, str) and re.fullmatch(r"[0-9a-f]{32}", face)
            found = [f for f in self.store.faces(ids=[face]) if f.person_id == person.id] if wellformed else []
            if not found:
                raise UnknownPersonError(f"{person.name} has no enrolled face with that id; list their faces again.")
            record = found[0]
            remaining = [f for f in self.store.faces(person_id=person.id) if f.id != record.id]
            if not remaining:
                raise GalleryError(
                    f"That is the only face of {person.name}; delete {person.name} to remove it with everything else."
                )
            with self.store.writing("remove a face", erase=True):
                hashes = {record.image_sha} | {image_sha(p) for p in self.store.face_files(record.id)}
                trained = drop_trained_on(self, person.id)
                # The commit point, as in ``delete``: once the face's registry row is gone it is gone for every
                # reader, and its vectors, files and the person's stale centroids are what a repair removes too.
                self.store.delete_faces([record.id])
                self.store.classifiers.forget(self.store.namespace)
                models = self.store.models()
                for model in models:
                    records, _ = self.store.vectors(model, face_ids=[record.id])
                    self.store.delete_vectors(model, [r.id for r in records])
                    self.refresh_centroids(model, [person.id])
                self.store.erase(models)  # gone from disk too, not only from Chroma's answers
        return FaceRemoval(
            person.name,
            record.id,
            record.image,
            len(remaining),
            tuple(sorted(s.name for s in trained)),
            frozenset(hashes),
        )

    def rename(self, old: str, new: str) -> int:
        """One person's new name, in every model at once; the old name leaves the files as a deleted one does."""
        new = validate_name(new)
        with self.store.lock:  # a refusal changes nothing: checked before the write begins
            person = self.person(old)
            faces = self.store.faces(person_id=person.id)
            if person.name == new:
                return len(faces)
            for p in self.store.persons():
                if p.id != person.id and (p.name == new or name_key(p.name) == name_key(new)):
                    raise GalleryError(
                        f"'{new}' is already in the gallery{'' if p.name == new else f' as {p.name}'}; delete or rename that person first."
                    )
            with self.store.writing("rename", erase=True):
                # The commit point; the people index's names follow (a repair rewrites them from here too).
                self.store.put_persons([PersonRecord(person.id, new, person.created_at)])
                models = self.store.models()
                for model in models:
                    self.store.rename_centroids(model, person.id, new)
                self.store.classifiers.forget(self.store.namespace)
                self.store.erase(models, people=True)  # the old name is personal data too
        return len(faces)

    def reindex(self, model: str | None = None) -> None:
        """Rebuild every person's centroid from the stored vectors (after a crash, or a store edited by hand)."""
        with self.store.writing("reindex"):
            models = [self.model_name(model)] if model else self.store.models()
            for m in models:
                held = {r.person_id for r in self.store.vectors(m)[0]}
                stale = set(self.store.centroid_people(m)) - held
                self.store.set_centroids(m, {p: None for p in stale})
                self.refresh_centroids(m, sorted(held))

    def refresh_centroids(self, model: str, person_ids: Sequence[str]) -> None:
        """Recompute these people's centroids for ``model`` from their stored vectors (``centroids.py``)."""
        refresh_centroids(self, model, person_ids)

    def clear(self) -> None:
        with self.store.lock:
            self.store.drop()

    # -- a model that came later ----------------------------------------------------------------------
    def backfill(self, model: ModelRef = None, progress: Progress | None = None, batch: int = 32) -> BackfillReport:
        """Embed with ``model`` every enrolled face it holds no vector of (``backfill.backfill``)."""
        return backfill.backfill(self, model, progress, batch)

    def write_vectors(
        self,
        model: str,
        faces: Sequence[FaceRecord],
        vectors: np.ndarray,
        flip: bool | None = None,
        centroids: bool = True,
    ) -> None:
        """Store one model's vectors of registry faces (enrollment, backfill, a fine-tune's adapted vectors)
        and refresh the centroids of their people (``centroids=False``: the caller does, once its faces are
        recorded; an enrollment writes the vectors before the registry rows that commit them)."""
        if not faces:
            return
        flip = self.flip(model) if flip is None else flip
        records = [ModelRecord(record_id(model, f.image_sha, f.box), f.id, f.person_id) for f in faces]
        with self.store.writing("store vectors"):
            self.store.put_vectors(model, records, np.asarray(vectors), flip)
            if centroids:
                self.refresh_centroids(model, sorted({f.person_id for f in faces}))

    def fill_in(self, models: Sequence[str], progress: Progress | None = None) -> dict[str, BackfillReport]:
        """Fill in every model of ``models`` that lacks faces (``backfill.fill_in``); unavailable ones are left out."""
        return backfill.fill_in(self, models, progress)
