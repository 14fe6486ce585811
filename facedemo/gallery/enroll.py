"""Enrollment: add one person's photos, or import a whole folder-per-identity tree, resumably.

Ids are derived from the model, the photo's bytes and the face box, so every write is an idempotent upsert:
an import killed half-way is simply run again, and photos already stored are recognised by their bytes
before any model runs.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Sequence

import numpy as np
from PIL import Image

from .. import params
from ..errors import FaceDemoError, ImageError, InvalidNameError, NoFaceError, TooManyFacesError
from ..pipeline import AnalyzedImage, EmbeddedFace
from ..progress import Progress, report as report_progress
from ..vision.detect import Face
from ..vision.images import ImageInput, frames_note, identity_folders, image_sha, is_photo
from .archive import entry_cap, extract_images, identity_root, is_zip
from .names import box_json, validate_name
from .store import FaceRecord, record_id


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
class EnrollResult:
    person: str
    model: str
    added: list[EnrolledFace]
    duplicates: list[Duplicate]
    notes: list[str] = field(default_factory=list)  # e.g. "'a.gif' has 12 frames; only the first was used."

    def to_json(self) -> dict:
        return {
            "person": self.person, "model": self.model,
            "added": [{"id": a.id, "image": a.image, "box": box_json(a.box)} for a in self.added],
            "duplicates": [{"image": d.image, "person": d.person} for d in self.duplicates],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class FaceToEnroll:
    """One face found and embedded already, to be stored: the photo's label and the sha256 of its bytes
    (which, with the box, make the record's id), and the decoded photo for the thumbnail (or None)."""

    label: str
    image_sha: str
    face: Face
    embedding: np.ndarray
    image: Image.Image | None


@dataclass(frozen=True)
class Skipped:
    path: str  # as the user knows it: relative to the folder they gave, or the name inside their zip
    reason: str


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
            "model": self.model, "images": self.total, "added": self.added, "duplicates": self.duplicates,
            "people": dict(sorted(self.enrolled.items())),
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "warnings": list(self.warnings),
        }


class Enrollment:
    """The enrollment half of ``Gallery`` (which provides ``pipeline``, ``store``, ``model_name``,
    ``existing`` and ``refresh_centroids``)."""

    def enroll(self, name: str, images: Sequence[ImageInput], model: str | None = None, face_index: int | None = None,
               labels: Sequence[str] | None = None) -> EnrollResult:
        """Add photos of one person. Every photo is checked before anything is stored: a photo must hold
        exactly one face (or ``face_index`` picks one, counted left to right from 0). ``labels`` names the
        photos in results and records (an upload's original file name rather than its temporary path)."""
        name = validate_name(name)
        face_index = params.face_index(face_index)
        model = self.model_name(model)
        if not images:
            raise FaceDemoError("Give at least one photo to enroll.")
        labels = list(labels) if labels else [_label(src, i) for i, src in enumerate(images)]
        if len(labels) != len(images):
            raise FaceDemoError(f"{len(images)} photos were given but {len(labels)} labels.")
        analyzed = self.pipeline.analyze_many(list(images), model, flip=self.flip(model))
        chosen: list[tuple[int, EmbeddedFace, Image.Image]] = []
        for i, result in enumerate(analyzed):
            if result.error:
                raise ImageError(result.error)
            chosen.append((i, _pick(result, labels[i], face_index), result.image))
        shas = [image_sha(src) for src in images]  # after loading, which explains a missing or unreadable file
        faces = [FaceToEnroll(labels[i], shas[i], face.face, face.embedding, image) for i, face, image in chosen]
        result = self.enroll_faces(name, faces, model)
        notes = [n for i, _, image in chosen if (n := frames_note(image, f"'{labels[i]}'"))]
        return replace(result, notes=notes) if notes else result

    def enroll_faces(self, name: str, faces: Sequence[FaceToEnroll], model: str | None = None) -> EnrollResult:
        """Store faces already found and embedded (by ``model``, with ``self.flip(model)``) as one person: what
        ``enroll`` does once it has picked them, and how a clustered album names a whole group without running
        the models again.
        A face already stored (same photo bytes, same box) is reported as a duplicate, not stored twice."""
        name = validate_name(name)
        model = self.model_name(model)
        if not faces:
            raise FaceDemoError("Give at least one face to enroll.")
        with self.store.lock:
            records, vectors, thumbs, duplicates = [], [], [], []
            known = {r.id: r for r in self.existing(model, [f.image_sha for f in faces])}
            for item in faces:
                rid = record_id(model, item.image_sha, item.face.box)
                if rid in known or rid in {r.id for r in records}:
                    duplicates.append(Duplicate(item.label, known[rid].person if rid in known else name))
                    continue
                records.append(FaceRecord(rid, name, item.label, item.image_sha, item.face.box, model, _now()))
                vectors.append(item.embedding)
                thumbs.append(face_thumbnail(item.image, item.face))
            if records:
                self.store.add(model, records, np.stack(vectors), thumbs, self.flip(model))
            self.refresh_centroids(model, [name])
        return EnrollResult(name, model, [EnrolledFace(r.id, r.image, r.box) for r in records], duplicates)

    def import_path(self, path: str | Path, model: str | None = None, progress: Progress | None = None) -> ImportReport:
        """Import a folder-per-identity tree, or a zip of one: the CLI and the dashboard both come here."""
        source = Path(path)
        if source.is_dir():
            return self.import_folder(source, model, progress)
        if is_zip(source) or (source.suffix.lower() == ".zip" and source.is_file()):  # a damaged zip is still said to be one
            return self.import_archive(source, model, progress)
        if not source.exists():
            raise FaceDemoError(f"'{source.name}' does not exist.")
        raise FaceDemoError(f"'{source.name}' is neither a folder nor a zip file; give a folder (or a zip) with one sub-folder per person.")

    def import_archive(self, archive: str | Path, model: str | None = None, progress: Progress | None = None,
                       chunk: int = 16) -> ImportReport:
        """Import a zip of a folder-per-identity tree. It is unpacked entry by entry into a temporary folder
        (bounded sizes, see ``archive.py``) that is gone afterwards; what is reported is named as it is
        inside the zip, never by the server's temporary path."""
        model = self.model_name(model)
        with tempfile.TemporaryDirectory(prefix="facedemo-import-") as tmp:
            unpacked = extract_images(archive, Path(tmp), entry_cap(self.pipeline.settings.max_pixels))
            root = identity_root(Path(tmp))
            shown = PurePosixPath(*root.relative_to(tmp).parts)  # '.' when the zip has no top folder: never the temp path
            try:
                report = self.import_folder(root, model, progress, chunk, shown_as=shown)
            except FaceDemoError:
                if not unpacked.refused:
                    raise
                report = ImportReport(model)  # every photo was refused: say why, entry by entry
        report.skipped[:0] = [Skipped(r.name, r.reason) for r in unpacked.refused]
        report.total += len(unpacked.refused)
        return report

    def import_folder(self, folder: str | Path, model: str | None = None, progress: Progress | None = None, chunk: int = 16,
                      shown_as: str | PurePosixPath | None = None) -> ImportReport:
        """Enroll a folder-per-identity tree. Folders starting with '_' or '.' are not identities. Photos
        already in the gallery are recognised by their bytes before any model runs, so a rerun after an
        interruption only does the rest. Paths in the report are relative to ``folder``, prefixed with
        ``shown_as`` (default: the folder as given)."""
        root = Path(folder)
        if not root.is_dir():
            raise FaceDemoError(f"'{root.name}' is not a folder.")
        prefix = PurePosixPath(str(folder)) if shown_as is None else PurePosixPath(shown_as)

        def shown(path: Path) -> str:
            return str(prefix / PurePosixPath(*path.relative_to(root).parts))

        model = self.model_name(model)
        report = ImportReport(model)
        work: list[tuple[str, Path, str]] = []
        loose = sorted(p for p in root.iterdir() if is_photo(p))
        report.skipped += [Skipped(shown(p), "it is not inside a person's folder (one folder per person, photos inside).") for p in loose]
        for folder_name, photos in identity_folders(root):
            try:
                person = validate_name(folder_name)
            except InvalidNameError as exc:
                report.skipped.append(Skipped(shown(root / folder_name), str(exc)))
                continue
            work += [(person, photo, shown(photo)) for photo in photos]
        report.total = len(work) + len(loose)
        if not work:
            if loose:
                return report
            raise FaceDemoError(f"'{root.name}' holds no identity folders with photos (one folder per person, photos inside).")
        done = 0
        report_progress(progress, 0, len(work))
        for start in range(0, len(work), chunk):
            part = work[start : start + chunk]
            self._import_chunk(model, part, report)
            done += len(part)
            report_progress(progress, done, len(work), part[-1][0])
        with self.store.lock:  # a run killed between storing faces and updating centroids is healed here
            self.refresh_centroids(model, sorted({person for person, _, _ in work}))
        return report

    def _import_chunk(self, model: str, part: list[tuple[str, Path, str]], report: ImportReport) -> None:
        shas = []
        for person, path, name in part:
            try:
                shas.append(image_sha(path))
            except (OSError, FaceDemoError) as exc:
                shas.append(None)
                reason = str(exc) if isinstance(exc, FaceDemoError) else f"it could not be read ({exc.strerror or exc})."
                report.skipped.append(Skipped(name, reason))
        stored = {r.image_sha: r.person for r in self.existing(model, [s for s in shas if s])}
        todo, copies = [], []
        for (person, path, name), sha in zip(part, shas):
            if sha is None:
                continue
            if sha in report.owners:  # the same photo twice in one run is stored once, under the first person
                copies.append((sha, person, name))
            elif sha in stored:
                report.owners[sha] = (stored[sha], name, None)
                if stored[sha] != person:
                    report.warnings.append(f"'{name}' is already in the gallery as {stored[sha]}: it was not added to {person}.")
                report.duplicates += 1
            else:
                report.owners[sha] = (person, name, None)
                todo.append((person, path, name, sha))
        self._enroll_imported(model, todo, report)
        for sha, person, name in copies:  # after the first copy's fate is known
            owner, first, reason = report.owners[sha]
            if owner is None:
                report.skipped.append(Skipped(name, f"it is the same photo as '{first}', which was skipped: {reason}"))
                continue
            report.duplicates += 1
            if owner != person:
                report.warnings.append(f"'{name}' is the same photo as '{first}': it stays with {owner} only, not {person}.")

    def _enroll_imported(self, model: str, todo: list[tuple[str, Path, str, str]], report: ImportReport) -> None:
        if not todo:
            return
        flip = self.flip(model)
        analyzed = self.pipeline.analyze_many([path for _, path, _, _ in todo], model, flip=flip)
        records, vectors, thumbs = [], [], []
        for (person, path, name, sha), result in zip(todo, analyzed):
            if result.error or len(result.faces) != 1:
                reason = result.error or ("no face was detected." if not result.faces else f"it holds {len(result.faces)} faces; enroll it with a chosen face instead.")
                report.skipped.append(Skipped(name, reason))
                report.owners[sha] = (None, name, reason)
                continue
            if note := frames_note(result.image, f"'{name}'"):
                report.warnings.append(note)
            face = result.faces[0]
            records.append(FaceRecord(record_id(model, sha, face.face.box), person, path.name, sha, face.face.box, model, _now()))
            vectors.append(face.embedding)
            thumbs.append(face_thumbnail(result.image, face.face))
        if records:
            with self.store.lock:
                self.store.add(model, records, np.stack(vectors), thumbs, flip)
                self.refresh_centroids(model, sorted({r.person for r in records}))
            report.enrolled.update(r.person for r in records)


def _pick(result: AnalyzedImage, label: str, face_index: int | None) -> EmbeddedFace:
    faces = result.faces
    if not faces:
        raise NoFaceError(f"{label} has no face that could be detected; try a clearer, front-facing photo.")
    if face_index is not None:
        if not 0 <= face_index < len(faces):
            raise NoFaceError(f"{label} has no face number {face_index}: it holds {len(faces)} (numbered 0 to {len(faces) - 1}, left to right).")
        return faces[face_index]
    if len(faces) > 1:
        raise TooManyFacesError(f"{label} holds {len(faces)} faces; choose one (face 0 to {len(faces) - 1}, left to right) or use a photo of this person alone.")
    return faces[0]


def _label(source: ImageInput, index: int) -> str:
    if isinstance(source, (str, Path)):
        return Path(source).name
    return f"photo {index + 1}"


def face_thumbnail(image: Image.Image | None, face: Face) -> Image.Image | None:
    """The face box with a quarter of its size as margin, clipped to the image."""
    if image is None:
        return None
    x1, y1, x2, y2 = face.box
    mx, my = (x2 - x1) * 0.25, (y2 - y1) * 0.25
    box = (max(0, int(x1 - mx)), max(0, int(y1 - my)), min(image.width, int(x2 + mx)), min(image.height, int(y2 + my)))
    if box[2] <= box[0] or box[3] <= box[1]:
        return None
    return image.crop(box)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


