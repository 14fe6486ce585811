"""Enrollment: add one person's photos, or import a whole folder-per-identity tree, resumably.

Ids are derived from the model, the photo's bytes and the face box, so every write is an idempotent upsert:
an import killed half-way is simply run again, and photos already stored are recognised by their bytes
before any model runs.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from .. import params
from ..errors import (
    ArchiveError,
    GalleryError,
    ImageError,
    InvalidNameError,
    InvalidParameterError,
    ModelUnavailableError,
    NoFaceError,
    TooManyFacesError,
)
from ..files import scratch
from ..models.base import ModelSpec
from ..progress import Progress
from ..progress import report as report_progress
from ..vision.detect import Face
from ..vision.images import ImageInput, frames_note, identity_folders, image_sha, is_photo
from . import guards
from .archive import entry_cap, extract_images, identity_root, is_zip
from .names import box_json, shown_text, validate_name
from .regions import face_region, face_thumbnail, now
from .store import FaceRecord, PersonRecord, face_id


@dataclass(frozen=True)
class EnrolledFace:
    id: str
    image: str
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class Duplicate:
    image: str
    person: str  # who the photo is already enrolled as


@dataclass(frozen=True)
class Skipped:
    path: str  # as the user knows it: relative to the folder they gave, or the name inside their zip
    reason: str


@dataclass(frozen=True)
class EnrollResult:
    person: str
    model: str
    added: list[EnrolledFace]
    duplicates: list[Duplicate]
    notes: list[str] = field(default_factory=list)  # e.g. "'a.gif' has 12 frames; only the first was used."
    models: tuple[str, ...] = ()  # every model the faces were embedded with
    skipped: list[Skipped] = field(default_factory=list)  # photos not enrolled (no face, unreadable...), and why

    def to_json(self) -> dict:
        return {
            "person": self.person,
            "model": self.model,
            "models": list(self.models),
            "added": [{"id": a.id, "image": a.image, "box": box_json(a.box)} for a in self.added],
            "duplicates": [{"image": d.image, "person": d.person} for d in self.duplicates],
            "skipped": [{"image": s.path, "reason": s.reason} for s in self.skipped],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class FaceToEnroll:
    """One face found already, to be stored: the photo's label and the sha256 of its bytes (which, with
    the box, make the face's id), the decoded photo (for the thumbnail, the stored region and the models
    that have not embedded it yet), and the vectors some models made of it already (model -> vector)."""

    label: str
    image_sha: str
    face: Face
    image: Image.Image | None
    embeddings: dict = field(default_factory=dict)


@dataclass
class ImportReport:
    model: str
    total: int = 0  # image files seen
    enrolled: Counter = field(default_factory=Counter)  # person -> faces added this run
    duplicates: int = 0  # already in the gallery (a rerun after an interruption lands here)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # imported, but the user should know (same photo twice, ...)
    owners: dict = field(default_factory=dict, repr=False)  # image sha -> (person, shown path) seen this run

    @property
    def added(self) -> int:
        return sum(self.enrolled.values())

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "images": self.total,
            "added": self.added,
            "duplicates": self.duplicates,
            "people": dict(sorted(self.enrolled.items())),
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "warnings": list(self.warnings),
        }


def enroll(
    gallery,
    name: str,
    images: Sequence[ImageInput],
    model: str | None = None,
    face_index: int | None = None,
    labels: Sequence[str] | None = None,
    confirm: bool = False,
    odd_photos: str | None = None,
    searched: Sequence | None = None,
) -> EnrollResult:
    """Add photos of one person, embedded with every model the gallery enrolls with (``Gallery.enroll_models``;
    ``model`` is the one the result is reported for). ``labels`` names the photos in results and records (an
    upload's original file name rather than its temporary path).

    Enrollment takes what it can: a photo with several faces gives its largest face when that face is clearly
    the largest (``DOMINANT_AREA`` times the next; the photo of a person with others far behind them), with a
    note; a photo whose faces are alike in size, that has no face or cannot be read is skipped with its reason
    (``EnrollResult.skipped``), and the other photos enroll. Only when no photo can give a face is nothing
    stored and the first photo's error raised. ``face_index`` (counted left to right from 0) picks the face
    itself, in every photo, and then a photo without that face is an error.

    Before anything is stored, two questions (``guards.py``): photos whose face does not look like the others'
    (``odd_photos``: ``ask``, the default, refuses naming them; ``keep`` or ``drop`` them), then faces that the
    galleries ``searched`` (default: this one) already name as someone else (refused with the question unless
    ``confirm``)."""
    name = validate_name(name)
    face_index = params.face_index(face_index)
    odd_photos = guards.odd_choice(odd_photos)
    gallery.person_for(name, create=False)  # a name that clashes with someone's is said before any photo is read
    model = gallery.model_name(model)
    if not images:
        raise InvalidParameterError("Give at least one photo to enroll.")
    labels = (
        [shown_text(str(label)) for label in labels] if labels else [_label(src, i) for i, src in enumerate(images)]
    )
    if len(labels) != len(images):
        raise InvalidParameterError(f"{len(images)} photos were given but {len(labels)} labels.")
    found = detect_photos(gallery.pipeline, list(images))
    chosen, skipped, errors, notes = [], [], [], []
    for i, (image, faces, error) in enumerate(found):
        try:
            if error:
                raise ImageError(error)
            face, note = _pick(faces, labels[i], face_index)
            sha = image_sha(images[i])  # after loading, which explains a missing or unreadable file
        except (ImageError, NoFaceError, TooManyFacesError) as exc:
            if face_index is not None:  # the user picked the face: a photo without it is their mistake to see
                raise
            errors.append(exc)
            skipped.append(Skipped(labels[i], str(exc)))
            continue
        chosen.append(FaceToEnroll(labels[i], sha, face, image))
        notes += [n for n in (note, frames_note(image, f"'{labels[i]}'")) if n]
    if not chosen:
        if len(errors) == 1:
            raise errors[0]
        raise type(errors[0])(
            f"None of the {len(errors)} photos could be enrolled: " + " ".join(s.reason for s in skipped)
        )
    chosen, left_out = _guarded(gallery, name, chosen, model, confirm, odd_photos, searched)
    result = enroll_faces(gallery, name, chosen, model)
    return replace(result, notes=result.notes + notes, skipped=skipped + left_out)


def _guarded(gallery, name, chosen, model, confirm, odd, searched) -> tuple[list[FaceToEnroll], list[Skipped]]:
    """The faces to store once the guards have asked (``guards.py``), and the photos left out as odd. The
    vectors made for the checks travel on with the faces, so that storing them embeds nothing twice."""
    check_odd = len(chosen) > 1 and odd != "keep"
    if not check_odd and confirm:
        return chosen, []
    for m in gallery.enroll_models():
        spec = gallery.pipeline.spec(m)  # resolved once for the flip, the crops and the vectors
        try:
            made = _vectors(gallery, spec, chosen, gallery.flip(spec))
        except ModelUnavailableError:  # storing it says so; the checks use the models that can run
            continue
        chosen = [replace(item, embeddings={**item.embeddings, m: v}) for item, v in zip(chosen, made)]
    models = [m for m in gallery.enroll_models() if all(m in item.embeddings for item in chosen)]
    left_out = []
    if check_odd and models:
        vectors = {m: np.stack([item.embeddings[m] for item in chosen]) for m in models}
        odd_ones = guards.odd_photos(vectors, {m: gallery.pipeline.threshold(m) for m in models})
        if odd_ones and odd == "ask":
            raise guards.odd_question([item.label for item in chosen], odd_ones)
        left_out = [
            Skipped(chosen[i].label, "it does not look like the same person as the other photos, and was left out.")
            for i in odd_ones
        ]
        chosen = [item for i, item in enumerate(chosen) if i not in odd_ones]
        if not chosen:
            raise GalleryError(
                "None of the photos looks like the others, so none was enrolled: enroll each person under their own name."
            )
    # A face stored already is no question: it is not stored again, and the result says whose it is.
    stored = {f.id for f in gallery.store.faces(image_shas=sorted({i.image_sha for i in chosen})) if f.region}
    fresh = [item for item in chosen if face_id(item.image_sha, item.face.box) not in stored]
    if not confirm and fresh and models:
        matches = guards.look_alikes(
            gallery.pipeline,
            list(searched) if searched else [gallery],
            name,
            [item.face for item in fresh],
            {m: np.stack([item.embeddings[m] for item in fresh]) for m in models},
            [item.label for item in fresh],
            model,
        )
        if matches:
            raise guards.looks_like_question(name, matches, len(fresh))
    return chosen, left_out


def enroll_faces(gallery, name: str, faces: Sequence[FaceToEnroll], model: str | None = None) -> EnrollResult:
    """Store faces already found as one person, embedded with every model the gallery enrolls with (the
    vectors an item brings are used as they are: a clustered album names a whole group without running its
    model again). A face already stored (same photo bytes, same box) is reported as a duplicate."""
    name = validate_name(name)
    model = gallery.model_name(model)
    if not faces:
        raise InvalidParameterError("Give at least one face to enroll.")
    with gallery.store.lock:
        person = gallery.person_for(name, create=False)
        stored = {f.id: f for f in gallery.store.faces(image_shas=sorted({f.image_sha for f in faces}))}
        persons = gallery.persons()
        new, duplicates, seen = [], [], set()
        for item in faces:
            fid = face_id(item.image_sha, item.face.box)
            old = stored.get(fid)
            if fid in seen or (old is not None and old.region is not None):
                owner = persons[old.person_id].name if old is not None and old.person_id in persons else name
                duplicates.append(Duplicate(item.label, owner))
                continue
            seen.add(fid)
            new.append((item, old.person_id if old is not None else person.id))
        fresh = [person] if new and person.id not in persons and any(pid == person.id for _, pid in new) else []
        records, notes = write_faces(gallery, new, fresh)
    added = [EnrolledFace(r.id, r.image, r.box) for r in records]
    return EnrollResult(person.name, model, added, duplicates, notes, tuple(gallery.enroll_models()))


def write_faces(
    gallery, items: Sequence[tuple[FaceToEnroll, str]], persons: Sequence[PersonRecord] = ()
) -> tuple[list[FaceRecord], list[str]]:
    """Store faces of people (``(face, person id)``; ``persons``: the new ones among them), in the order that
    makes a crash at any point leave the gallery as before or as after (``ChromaStore.writing``): every
    model's vectors (made here unless the item brings them) first, then the new people, then the thumbnails,
    regions and registry rows, whose upsert is the commit point: a repair on the next open removes vectors,
    people and files that no registry row claims. The people index follows from the vectors. A model that
    cannot run now is left out with a note; ``Gallery.complete`` fills it in from the regions later."""
    if not items:
        return [], []
    records, thumbs, regions = [], [], []
    for item, pid in items:
        region, where = face_region(item.image, item.face) if item.image is not None else (None, None)
        landmarks = (
            tuple(tuple(float(v) for v in point) for point in item.face.landmarks) if item.image is not None else None
        )
        records.append(
            FaceRecord(
                face_id(item.image_sha, item.face.box),
                pid,
                item.label,
                item.image_sha,
                tuple(item.face.box),
                landmarks,
                where,
                now(),
            )
        )
        thumbs.append(face_thumbnail(item.image, item.face))
        regions.append(region)
    notes, embedded = [], {}
    for model in gallery.enroll_models():
        spec = gallery.pipeline.spec(model)  # resolved once for the flip, the crops and the vectors
        flip = gallery.flip(spec)
        try:
            embedded[model] = (_vectors(gallery, spec, [item for item, _ in items], flip), flip)
        except ModelUnavailableError as exc:
            notes.append(
                f"Not embedded with {model} yet ({exc}); it is filled in from the stored faces once it can run."
            )
            gallery.store.state.pop(("complete", gallery.store.namespace, model), None)
    with gallery.store.writing("enroll"):
        for model, (vectors, flip) in embedded.items():
            gallery.write_vectors(model, records, vectors, flip, centroids=False)
        gallery.store.put_persons(list(persons))
        gallery.store.put_faces(records, thumbs, regions)  # the commit point
        for model in embedded:
            gallery.refresh_centroids(model, sorted({r.person_id for r in records}))
    return records, notes


def store_embedded(gallery, model: str, rows: Sequence[tuple], flip: bool | None = None) -> list[FaceRecord]:
    """Faces whose vectors were made already, for one model, stored as they are (no photo, no thumbnail, no
    region): the benchmarks' galleries of LFW vectors and synthetic fillers. ``rows``: (person's name,
    photo label, photo sha256, box, vector). Other models cannot be filled in for these faces."""
    with gallery.store.writing("store faces"):
        persons = {p.name: p for p in gallery.store.persons()}
        fresh = [
            PersonRecord(uuid.uuid4().hex, n, now())
            for n in dict.fromkeys(validate_name(r[0]) for r in rows)
            if n not in persons
        ]
        gallery.store.put_persons(fresh)
        persons.update({p.name: p for p in fresh})
        records = [
            FaceRecord(
                face_id(sha, box),
                persons[validate_name(name)].id,
                label,
                sha,
                tuple(float(v) for v in box),
                enrolled_at=now(),
            )
            for name, label, sha, box, _ in rows
        ]
        gallery.store.put_faces(records, [None] * len(records), [None] * len(records))
        gallery.write_vectors(model, records, np.stack([r[4] for r in rows]), flip)
    return records


def _vectors(gallery, spec: ModelSpec, items: Sequence[FaceToEnroll], flip: bool) -> np.ndarray:
    """One model's vectors of the items: brought along, else aligned from the photo and embedded in batches."""
    pipeline = gallery.pipeline
    model = spec.name
    missing = [i for i, item in enumerate(items) if model not in item.embeddings]
    vectors: list = [items[i].embeddings.get(model) for i in range(len(items))]
    if missing:
        crops = [pipeline.aligned(items[i].image, items[i].face, spec) for i in missing]
        for i, vector in zip(missing, pipeline.embed_crops(spec, crops, flip)):
            vectors[i] = vector
    return np.stack(vectors)


def detect_photos(
    pipeline, sources: Sequence, chunk: int = 16
) -> list[tuple[Image.Image | None, list[Face], str | None]]:
    """Each photo decoded and its faces found (MTCNN on batches of photos): (image, faces, error). A photo
    that cannot be read gets its sentence; the others go on."""
    out: list = []
    for start in range(0, len(sources), chunk):
        loaded, part = [], []
        for source in sources[start : start + chunk]:
            try:
                loaded.append(pipeline.load(source))
                part.append(None)
            except ImageError as exc:
                part.append(str(exc))
        found = iter(pipeline.detector.detect_many(loaded))
        images = iter(loaded)
        out += [(next(images), next(found), None) if error is None else (None, [], error) for error in part]
    return out


def import_path(gallery, path: str | Path, model: str | None = None, progress: Progress | None = None) -> ImportReport:
    """Import a folder-per-identity tree, or a zip of one: the CLI and the dashboard both come here."""
    source = Path(path)
    if source.is_dir():
        return import_folder(gallery, source, model, progress)
    if is_zip(source) or (
        source.suffix.lower() == ".zip" and source.is_file()
    ):  # a damaged zip is still said to be one
        return import_archive(gallery, source, model, progress)
    if not source.exists():
        raise ArchiveError(f"'{source.name}' does not exist.")
    raise ArchiveError(
        f"'{source.name}' is neither a folder nor a zip file; give a folder (or a zip) with one sub-folder per person."
    )


def import_archive(
    gallery, archive: str | Path, model: str | None = None, progress: Progress | None = None, chunk: int | None = None
) -> ImportReport:
    """Import a zip of a folder-per-identity tree. It is unpacked entry by entry into a temporary folder
    (bounded sizes, see ``archive.py``) that is gone afterwards; what is reported is named as it is
    inside the zip, never by the server's temporary path."""
    model = gallery.model_name(model)
    with scratch(gallery.store.namespace, "import") as tmp:  # the visitor's own: gone with them after a crash too
        unpacked = extract_images(archive, Path(tmp), entry_cap(gallery.pipeline.settings.max_pixels))
        root = identity_root(Path(tmp))
        shown = PurePosixPath(*root.relative_to(tmp).parts)  # '.' when the zip has no top folder: never the temp path
        try:
            report = import_folder(gallery, root, model, progress, chunk, shown_as=shown)
        except EmptyImportError:
            if not unpacked.refused:
                raise
            report = ImportReport(model)  # every photo was refused: say why, entry by entry
    report.skipped[:0] = [Skipped(r.name, r.reason) for r in unpacked.refused]
    report.total += len(unpacked.refused)
    return report


class EmptyImportError(ArchiveError):
    """A folder with no identity folders of photos: nothing to import."""


def import_folder(
    gallery,
    folder: str | Path,
    model: str | None = None,
    progress: Progress | None = None,
    chunk: int | None = None,
    shown_as: str | PurePosixPath | None = None,
) -> ImportReport:
    """Enroll a folder-per-identity tree with every model the gallery enrolls with. Folders starting with
    '_' or '.' are not identities. Photos already in the gallery are recognised by their bytes before any
    model runs, so a rerun after an interruption only does the rest (and fills in any model that a kill
    left behind). Paths in the report are relative to ``folder``, prefixed with ``shown_as`` (default: the
    folder as given)."""
    root = Path(folder)
    if not root.is_dir():
        raise ArchiveError(f"'{root.name}' is not a folder.")
    prefix = PurePosixPath(str(folder)) if shown_as is None else PurePosixPath(shown_as)

    def shown(path: Path) -> str:
        return shown_text(
            str(prefix / PurePosixPath(*path.relative_to(root).parts))
        )  # a name not in UTF-8 is shown, not crashed on

    model = gallery.model_name(model)
    report = ImportReport(model)
    work: list[tuple[str, Path, str]] = []
    loose = sorted(p for p in root.iterdir() if is_photo(p))
    report.skipped += [
        Skipped(shown(p), "it is not inside a person's folder (one folder per person, photos inside).") for p in loose
    ]
    people: dict[str, str] = {}  # name -> person id, made as each folder's first face is stored
    for folder_name, photos in identity_folders(root):
        try:
            person = gallery.person_for(folder_name, create=False)
        except (InvalidNameError, GalleryError) as exc:
            report.skipped.append(Skipped(shown(root / folder_name), str(exc)))
            continue
        people[person.name] = person.id
        work += [(person.name, photo, shown(photo)) for photo in photos]
    report.total = len(work) + len(loose)
    if not work:
        if loose or report.skipped:
            return report
        raise EmptyImportError(
            f"'{root.name}' holds no identity folders with photos (one folder per person, photos inside)."
        )
    existing = {p.name for p in gallery.store.persons()}
    records = {p.name: p for p in gallery.store.persons()}
    done = 0
    report_progress(progress, 0, len(work))
    chunk = chunk or gallery.pipeline.photo_chunk
    for start in range(0, len(work), chunk):
        part = work[start : start + chunk]
        _import_chunk(gallery, part, report, people, records, existing)
        done += len(part)
        report_progress(progress, done, len(work), part[-1][0])
    with gallery.store.lock:  # a run killed between storing faces and their vectors is healed here
        gallery.fill_in(gallery.enroll_models())
    return report


def _import_chunk(gallery, part, report: ImportReport, people: dict, records: dict, existing: set) -> None:
    shas = []
    for _person, path, name in part:
        try:
            shas.append(image_sha(path))
        except (OSError, ImageError) as exc:
            shas.append(None)
            reason = str(exc) if isinstance(exc, ImageError) else f"it could not be read ({exc.strerror or exc})."
            report.skipped.append(Skipped(name, reason))
    stored_faces = gallery.store.faces(image_shas=sorted({s for s in shas if s}))
    persons = gallery.persons()
    stored = {
        f.image_sha: persons[f.person_id].name if f.person_id in persons else ""
        for f in stored_faces
        if f.region is not None
    }
    todo, copies = [], []
    for (person, path, name), sha in zip(part, shas):
        if sha is None:
            continue
        if sha in report.owners:  # the same photo twice in one run is stored once, under the first person
            copies.append((sha, person, name))
        elif sha in stored:
            report.owners[sha] = (stored[sha], name, None)
            if stored[sha] != person:
                report.warnings.append(
                    f"'{name}' is already in the gallery as {stored[sha]}: it was not added to {person}."
                )
            report.duplicates += 1
        else:
            report.owners[sha] = (person, name, None)
            todo.append((person, path, name, sha))
    _enroll_imported(gallery, todo, report, people, existing)
    for sha, person, name in copies:  # after the first copy's fate is known
        owner, first, reason = report.owners[sha]
        if owner is None:
            report.skipped.append(Skipped(name, f"it is the same photo as '{first}', which was skipped: {reason}"))
            continue
        report.duplicates += 1
        if owner != person:
            report.warnings.append(
                f"'{name}' is the same photo as '{first}': it stays with {owner} only, not {person}."
            )


def _enroll_imported(gallery, todo, report: ImportReport, people: dict, existing: set) -> None:
    if not todo:
        return
    found = detect_photos(gallery.pipeline, [path for _, path, _, _ in todo])
    items = []
    for (person, path, name, sha), (image, faces, error) in zip(todo, found):
        try:  # what enroll takes: the one face, or a face at least DOMINANT_AREA times the next one's area
            if error:
                raise ImageError(error)
            face, note = _pick(faces, f"'{name}'", None)
        except (ImageError, NoFaceError, TooManyFacesError) as exc:
            report.skipped.append(Skipped(name, str(exc)))
            report.owners[sha] = (None, name, str(exc))
            continue
        report.warnings += [n for n in (note, frames_note(image, f"'{name}'")) if n]
        items.append((person, FaceToEnroll(shown_text(path.name), sha, face, image)))
    if not items:
        return
    with gallery.store.lock:
        new = sorted({p for p, _ in items} - existing)
        fresh = [PersonRecord(people[p], p, now()) for p in new]
        _, notes = write_faces(gallery, [(item, people[p]) for p, item in items], fresh)
        existing.update(new)
    report.warnings += [n for n in notes if n not in report.warnings]
    report.enrolled.update(p for p, _ in items)


DOMINANT_AREA = 2.0  # a photo's largest face is taken for the person when it is this many times the next one


def _pick(faces: Sequence[Face], label: str, face_index: int | None) -> tuple[Face, str | None]:
    """The face a photo gives its person, and a note when it held others."""
    if not faces:
        raise NoFaceError(f"{label} has no face that could be detected; try a clearer, front-facing photo.")
    if face_index is not None:
        if not 0 <= face_index < len(faces):
            raise NoFaceError(
                f"{label} has no face number {face_index}: it holds {len(faces)} (numbered 0 to {len(faces) - 1}, left to right)."
            )
        return faces[face_index], None
    if len(faces) == 1:
        return faces[0], None
    first, second = sorted(faces, key=lambda f: f.area, reverse=True)[:2]
    if first.area < DOMINANT_AREA * second.area:
        raise TooManyFacesError(
            f"{label} holds {len(faces)} faces of similar size, so it is not clear which one is the person: "
            "use a photo of them alone, or pick the face in Identify's result (the CLI's --face and the API's "
            f"face_index count from 0 at the left: 0 to {len(faces) - 1})."
        )
    number = list(faces).index(first) + 1  # faces come left to right; a person counts them from 1
    return first, f"{label} holds {len(faces)} faces; the largest (face {number} from the left) was enrolled."


def _label(source: ImageInput, index: int) -> str:
    if isinstance(source, (str, Path)):
        return shown_text(Path(source).name)
    return f"photo {index + 1}"
