"""An unlabelled album grouped into people: every face of every photo (a folder, a zip or a list of
uploads) detected and embedded, grouped by ``cluster.py``, then corrected and named by a person.

An ``Album`` belongs to one user: the dashboard keeps it in that browser session's state, never in a
process-wide place. The files it unpacked or wrote (a zip's photos, face thumbnails) live in a folder of
its own that ``close()`` deletes, which the dashboard does when the session ends.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import params
from ..errors import ArchiveError, ImageError, InvalidParameterError
from ..files import make_scratch
from ..progress import Progress, report
from ..vision.detect import Face
from ..vision.images import image_sha, is_photo, list_images
from .archive import extract_images
from .cluster import DEFAULT_CLUSTER_METHOD, check_method, cluster_threshold, cluster_vectors, ordered_labels
from .enroll import EnrollResult, FaceToEnroll
from .identify import identify_faces
from .names import box_json, shown_text
from .regions import face_thumbnail

THUMB_SIZE = 112


@dataclass
class AlbumFace:
    index: int  # the face's number in the album, stable while the album lives
    image: str  # the photo, relative to the album (a folder's or a zip's root, or the upload's name)
    path: Path  # the photo on disk
    image_sha: str
    face: Face
    embedding: np.ndarray
    thumbnail: Path | None = None
    person: str | None = None  # the enrolled person this face matches, or the name given to its group here
    distance: float | None = None  # to that person (None when named here)

    def to_json(self) -> dict:
        return {
            "face": self.index,
            "image": self.image,
            "box": box_json(self.face.box),
            "person": self.person,
            "distance": None if self.distance is None else round(self.distance, 4),
        }


@dataclass(frozen=True)
class Group:
    id: int  # 0 is the largest group; singletons come last
    faces: list[AlbumFace]

    @property
    def person(self) -> str | None:
        """The enrolled person that more than half of its faces are named as by Identify, else None: one face
        of a group that Identify happens to name (a stranger near someone enrolled) does not name the group."""
        names = Counter(f.person for f in self.faces if f.person)
        if not names:
            return None
        name, count = names.most_common(1)[0]
        return name if 2 * count > len(self.faces) else None

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "size": len(self.faces),
            "person": self.person,
            "faces": [f.to_json() for f in self.faces],
        }


@dataclass(frozen=True)
class SkippedPhoto:
    image: str
    reason: str


class Album:
    """Faces and their groups. ``groups()`` is the current grouping, largest first; ``merge``,
    ``take_out`` and ``name`` change it. Group ids are renumbered after every change (the largest is 0)."""

    def __init__(
        self,
        model: str,
        method: str,
        threshold: float,
        images: int,
        faces: list[AlbumFace],
        labels: Sequence[int],
        skipped: list[SkippedPhoto],
        workdir: Path | None = None,
    ):
        self.model = model
        self.method = method
        self.threshold = threshold
        self.images = images
        self.faces = faces
        self.labels = ordered_labels(labels) if len(faces) else np.zeros(0, dtype=int)
        self.skipped = skipped
        self.workdir = workdir  # deleted by close()

    # -- reading ------------------------------------------------------------------------------------
    def groups(self) -> list[Group]:
        members: dict[int, list[AlbumFace]] = {}
        for face, label in zip(self.faces, self.labels):
            members.setdefault(int(label), []).append(face)
        return [Group(i, members[i]) for i in sorted(members)]

    def group(self, group_id) -> Group:
        groups = self.groups()
        index = params.number(group_id, "The group number", 0, 1_000_000, integer=True)  # not True, not 1.5
        if not 0 <= index < len(groups):
            raise InvalidParameterError(
                f"There is no group {index}: this album has {len(groups)} group(s), numbered 0 to {len(groups) - 1}."
            )
        return groups[index]

    def face(self, face_index) -> AlbumFace:
        index = params.number(face_index, "The face number", 0, 1_000_000, integer=True)
        if not 0 <= index < len(self.faces):
            raise InvalidParameterError(
                f"There is no face {index}: this album has {len(self.faces)} face(s), numbered 0 to {len(self.faces) - 1}."
            )
        return self.faces[index]

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "method": self.method,
            "threshold": round(self.threshold, 4),
            "images": self.images,
            "ids_from": 0,  # group ids and face indices count from 0 here (the page and the CLI's text: from 1)
            "clusters": [g.to_json() for g in self.groups()],
            "skipped": [{"image": s.image, "reason": s.reason} for s in self.skipped],
        }

    # -- correcting and naming ------------------------------------------------------------------------
    def merge(self, first, second) -> None:
        """Put two groups together (say, the same person with and without glasses)."""
        a, b = self.group(first), self.group(second)
        if a.id == b.id:
            raise InvalidParameterError("Pick two different groups to merge.")
        labels = self.labels.copy()
        labels[labels == b.id] = a.id
        self.labels = ordered_labels(labels)

    def take_out(self, face_index) -> None:
        """Move a face that does not belong out of its group, into a group of its own."""
        face = self.face(face_index)
        label = self.labels[face.index]
        if (self.labels == label).sum() == 1:
            raise InvalidParameterError(f"Face {face.index} is already alone in its group.")
        labels = self.labels.copy()
        labels[face.index] = labels.max() + 1
        self.labels = ordered_labels(labels)

    def name(self, group_id, name: str, gallery) -> EnrollResult:
        """Enroll every face of a group under ``name`` (a new person or one already in ``gallery``), from
        the embeddings already computed: the models do not run again."""
        group = self.group(group_id)
        items = []
        for face in group.faces:
            image = gallery.pipeline.load(face.path)
            items.append(FaceToEnroll(face.image, face.image_sha, face.face, image, {self.model: face.embedding}))
        result = gallery.enroll_faces(name, items, self.model)
        for face in group.faces:
            face.person, face.distance = result.person, None
        return result

    # -- the files it owns --------------------------------------------------------------------------
    def close(self) -> None:
        """Delete the album's own folder: unpacked photos and thumbnails."""
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> Album:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def album_photos(source: str | Path | Sequence[str | Path], workdir: Path) -> list[tuple[Path, str]]:
    """(photo on disk, its name in the album) for a folder (every photo below it), a zip (unpacked into
    ``workdir``) or a list of photo files (uploads, named by their file names)."""
    if isinstance(source, (str, Path)):
        source = Path(source)
        if source.is_dir():
            root = source
        elif source.is_file() and source.suffix.lower() == ".zip":
            root = workdir / "photos"
            root.mkdir(parents=True, exist_ok=True)
            extract_images(source, root)
        elif source.is_file():
            return album_photos([source], workdir)
        else:
            raise ArchiveError(f"'{source}' does not exist; give a folder of photos or a zip of them.")
        photos = [(p, shown_text(p.relative_to(root).as_posix())) for p in list_images(root)]
        if not photos:
            raise ArchiveError(f"'{source.name}' holds no photos (JPEG, PNG, WebP, BMP, TIFF, GIF).")
        return photos
    photos, seen = [], Counter()
    for item in source:
        path = Path(item)
        if path.suffix.lower() == ".zip":
            photos += album_photos(path, workdir / f"zip{len(photos)}")
            continue
        if not is_photo(path):
            raise ImageError(f"'{path.name}' is not a photo (JPEG, PNG, WebP, BMP, TIFF, GIF) or a zip of photos.")
        name = shown_text(path.name)
        seen[name] += 1
        label = name if seen[name] == 1 else f"{seen[name]}/{name}"  # two uploads with one name
        photos.append((path, label))
    if not photos:
        raise InvalidParameterError("Add some photos (or a zip of them) first.")
    return photos


def cluster_album(
    pipeline,
    source,
    model: str | None = None,
    method: str = DEFAULT_CLUSTER_METHOD,
    threshold: float | None = None,
    galleries: Sequence = (),
    thumbnails: bool = False,
    progress: Progress | None = None,
    chunk: int | None = None,
) -> Album:
    """Every face of every photo of ``source`` (a folder, a zip, or a list of photo files), embedded
    with ``model`` and grouped into people by ``method`` at ``threshold`` (default: the model's
    verification threshold). Faces that match someone enrolled in one of ``galleries`` are labelled
    with that person. A photo that cannot be read, or holds no face, is listed in ``skipped``. Faces are
    embedded the way the first gallery's are (``Gallery.flip``), the one the album's groups are named into."""
    check_method(method)
    spec = pipeline.spec(model)
    flip = galleries[0].flip(spec.name) if galleries else None
    limit = cluster_threshold(pipeline, spec) if threshold is None else float(threshold)
    # The photos unpacked and the thumbnails drawn live in the visitor's own scratch folder (the shared one
    # outside public mode): they go with the album, or with the visitor when they expire.
    workdir = make_scratch(galleries[0].store.namespace if galleries else None, "album")
    try:
        photos = album_photos(source, workdir)
        faces, skipped, embedded = [], [], []
        report(progress, 0, len(photos), "finding faces")
        chunk = chunk or pipeline.photo_chunk
        for start in range(0, len(photos), chunk):
            part = photos[start : start + chunk]
            for (path, label), result in zip(part, pipeline.analyze_many([p for p, _ in part], spec, flip=flip)):
                if result.error or not result.faces:
                    skipped.append(SkippedPhoto(label, result.error or "no face was detected."))
                    continue
                sha = image_sha(path)
                for found in result.faces:
                    face = AlbumFace(len(faces), label, path, sha, found.face, found.embedding)
                    if thumbnails:
                        face.thumbnail = _save_thumbnail(
                            result.image, found.face, workdir / "thumbs" / f"{face.index}.jpg"
                        )
                    faces.append(face)
                    embedded.append(found)
            report(progress, start + len(part), len(photos), f"{len(faces)} faces found")
        _label_enrolled(pipeline, faces, embedded, galleries, spec.name)
        # two faces of one photo are two people: never one group
        vectors = np.stack([f.embedding for f in faces]) if faces else None
        labels = cluster_vectors(vectors, limit, method, apart=[str(f.path) for f in faces]) if faces else []
        return Album(spec.name, method, limit, len(photos), faces, labels, skipped, workdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _label_enrolled(pipeline, faces: list[AlbumFace], embedded: list, galleries: Sequence, model: str) -> None:
    """Each face named the way Identify would name it: the same identification, threshold and open-set rule,
    over every gallery searched as one."""
    if not faces or not galleries:
        return
    result = identify_faces(pipeline, galleries, None, [e.face for e in embedded], model, embedded=embedded)
    for face, match in zip(faces, result.faces):
        if match.name is not None:
            face.person, face.distance = match.name, match.distance


def _save_thumbnail(image, face: Face, path: Path) -> Path | None:
    crop = face_thumbnail(image, face)
    if crop is None:
        return None
    crop.thumbnail((THUMB_SIZE, THUMB_SIZE))
    path.parent.mkdir(parents=True, exist_ok=True)
    crop.save(path, "JPEG", quality=85)
    return path
