"""The gallery: enroll people, import a folder-per-identity tree, list/rename/delete people, and name
every face of a photo (1:N identification with "unknown").

``Gallery(pipeline, store)`` is built once and shared; writes take the store's lock so two people
clicking at once cannot interleave a duplicate check with an insert. Ids are derived from the model, the
photo's bytes and the face box, so every write is an idempotent upsert: an import killed half-way is
simply run again.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .detect import Face
from .errors import FaceDemoError, GalleryError, ImageError, InvalidNameError, NoFaceError, TooManyFacesError, UnknownPersonError
from .images import ImageInput
from .pipeline import AnalyzedImage, EmbeddedFace, Pipeline, analyze_many
from .store import FaceRecord, FaceStore, record_id

METHODS = ("centroid", "nearest", "knn")
DEFAULT_METHOD = "centroid"
KNN_K = 5  # neighbours that vote in the "knn" method
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".pgm", ".ppm"}
MAX_NAME = 100
Progress = Callable[[int, int, str], None]


# -- results ------------------------------------------------------------------------------------------
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

    def to_json(self) -> dict:
        return {
            "person": self.person, "model": self.model,
            "added": [{"id": a.id, "image": a.image, "box": _box(a.box)} for a in self.added],
            "duplicates": [{"image": d.image, "person": d.person} for d in self.duplicates],
        }


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class ImportReport:
    model: str
    total: int = 0  # image files seen
    enrolled: Counter = field(default_factory=Counter)  # person -> faces added this run
    duplicates: int = 0  # already in the gallery (a rerun after an interruption lands here)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def added(self) -> int:
        return sum(self.enrolled.values())

    def to_json(self) -> dict:
        return {
            "model": self.model, "images": self.total, "added": self.added, "duplicates": self.duplicates,
            "people": dict(sorted(self.enrolled.items())),
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
        }


@dataclass(frozen=True)
class Person:
    name: str
    images: int
    thumbnail: Path | None
    models: tuple[str, ...]

    def to_json(self) -> dict:
        return {"name": self.name, "images": self.images}


@dataclass(frozen=True)
class Candidate:
    name: str
    distance: float


@dataclass(frozen=True)
class FaceMatch:
    face: Face
    name: str | None  # None: farther than the threshold from everyone (unknown)
    distance: float | None
    candidates: list[Candidate]

    def to_json(self) -> dict:
        return {
            "box": _box(self.face.box), "name": self.name,
            "distance": None if self.distance is None else round(self.distance, 4),
            "candidates": [{"name": c.name, "distance": round(c.distance, 4)} for c in self.candidates],
        }


@dataclass(frozen=True)
class IdentifyResult:
    model: str
    method: str
    threshold: float
    faces: list[FaceMatch]

    def to_json(self) -> dict:
        return {"faces": [f.to_json() for f in self.faces]}


def _box(box) -> list[float]:
    return [round(float(v), 1) for v in box]


# -- names --------------------------------------------------------------------------------------------
def validate_name(name: str) -> str:
    """The one place a person's name is checked: stripped, 1-100 characters, Unicode welcome, nothing that
    could act as a path or hide in a terminal."""
    if not isinstance(name, str):
        raise InvalidNameError("A person's name must be text.")
    name = unicodedata.normalize("NFC", name.strip())
    if not name:
        raise InvalidNameError("A person's name cannot be empty.")
    if len(name) > MAX_NAME:
        raise InvalidNameError(f"A person's name can have at most {MAX_NAME} characters; this one has {len(name)}.")
    if "/" in name or "\\" in name or ".." in name or name.startswith("."):
        raise InvalidNameError(f"'{name}' cannot be a name: it must not contain '/', '\\' or '..', nor start with '.'.")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise InvalidNameError("A person's name cannot contain control or invisible formatting characters.")
    return name


# -- the service --------------------------------------------------------------------------------------
class Gallery:
    def __init__(self, pipeline: Pipeline, store: FaceStore, threshold: float | None = None):
        self.pipeline = pipeline
        self.store = store
        self._threshold = threshold

    def model_name(self, model: str | None = None) -> str:
        return self.pipeline.spec(model).name

    def threshold(self, model: str | None = None) -> float:
        """The L2 distance beyond which a face is unknown."""
        if self._threshold is not None:
            return float(self._threshold)
        name = self.model_name(model)
        return self.pipeline.threshold(name, "identify")  # 1:N's stricter threshold (facedemo/thresholds.py)

    # enrollment ----------------------------------------------------------------------------------
    def enroll(self, name: str, images: Sequence[ImageInput], model: str | None = None, face_index: int | None = None,
               labels: Sequence[str] | None = None) -> EnrollResult:
        """Add photos of one person. Every photo is checked before anything is stored: a photo must hold
        exactly one face (or ``face_index`` picks one, counted left to right from 0). ``labels`` names the
        photos in results and records (an upload's original file name rather than its temporary path)."""
        name = validate_name(name)
        model = self.model_name(model)
        if not images:
            raise FaceDemoError("Give at least one photo to enroll.")
        labels = list(labels) if labels else [_label(src, i) for i, src in enumerate(images)]
        if len(labels) != len(images):
            raise FaceDemoError(f"{len(images)} photos were given but {len(labels)} labels.")
        analyzed = analyze_many(self.pipeline, list(images), model)
        chosen: list[tuple[int, EmbeddedFace, Image.Image]] = []
        for i, result in enumerate(analyzed):
            if result.error:
                raise ImageError(result.error)
            chosen.append((i, _pick(result, labels[i], face_index), result.image))
        shas = [_sha(src) for src in images]  # after loading, which explains a missing or unreadable file
        with self.store.lock:
            records, vectors, thumbs, duplicates = [], [], [], []
            known = {r.id: r for r in self._existing(model, shas)}
            for i, face, image in chosen:
                rid = record_id(model, shas[i], face.face.box)
                if rid in known or rid in {r.id for r in records}:
                    duplicates.append(Duplicate(labels[i], known[rid].person if rid in known else name))
                    continue
                records.append(FaceRecord(rid, name, labels[i], shas[i], face.face.box, model, _now()))
                vectors.append(face.embedding)
                thumbs.append(_thumb(image, face.face))
            if records:
                self.store.add(model, records, np.stack(vectors), thumbs)
            self._refresh_centroids(model, [name])
        return EnrollResult(name, model, [EnrolledFace(r.id, r.image, r.box) for r in records], duplicates)

    def import_folder(self, folder: str | Path, model: str | None = None, progress: Progress | None = None, chunk: int = 16) -> ImportReport:
        """Enroll a folder-per-identity tree. Folders starting with '_' or '.' are not identities. Photos
        already in the gallery are recognised by their bytes before any model runs, so a rerun after an
        interruption only does the rest."""
        root = Path(folder)
        if not root.is_dir():
            raise FaceDemoError(f"'{root}' is not a folder.")
        model = self.model_name(model)
        report = ImportReport(model)
        work: list[tuple[str, Path]] = []
        for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
            try:
                person = validate_name(sub.name)
            except InvalidNameError as exc:
                report.skipped.append(Skipped(str(sub), str(exc)))
                continue
            work += [(person, f) for f in sorted(sub.iterdir()) if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES]
        report.total = len(work)
        if not work:
            raise FaceDemoError(f"'{root}' holds no identity folders with photos (one folder per person, photos inside).")
        done = 0
        if progress:
            progress(0, len(work), "")
        for start in range(0, len(work), chunk):
            part = work[start : start + chunk]
            self._import_chunk(model, part, report)
            done += len(part)
            if progress:
                progress(done, len(work), part[-1][0])
        with self.store.lock:  # a run killed between storing faces and updating centroids is healed here
            self._refresh_centroids(model, sorted({person for person, _ in work}))
        return report

    def _import_chunk(self, model: str, part: list[tuple[str, Path]], report: ImportReport) -> None:
        shas = []
        for person, path in part:
            try:
                shas.append(_sha(path))
            except OSError as exc:
                shas.append(None)
                report.skipped.append(Skipped(str(path), f"could not be read ({exc.strerror or exc})."))
        have = {r.image_sha for r in self._existing(model, [s for s in shas if s])}
        todo = []
        for (person, path), sha in zip(part, shas):
            if sha is None:
                continue
            if sha in have:
                report.duplicates += 1
            else:
                have.add(sha)  # the same photo twice in one run is stored once
                todo.append((person, path, sha))
        if not todo:
            return
        analyzed = analyze_many(self.pipeline, [path for _, path, _ in todo], model)
        records, vectors, thumbs = [], [], []
        for (person, path, sha), result in zip(todo, analyzed):
            if result.error or len(result.faces) != 1:
                reason = result.error or ("no face was detected." if not result.faces else f"it holds {len(result.faces)} faces; enroll it with a chosen face instead.")
                report.skipped.append(Skipped(str(path), reason))
                continue
            face = result.faces[0]
            records.append(FaceRecord(record_id(model, sha, face.face.box), person, path.name, sha, face.face.box, model, _now()))
            vectors.append(face.embedding)
            thumbs.append(_thumb(result.image, face.face))
        if records:
            with self.store.lock:
                self.store.add(model, records, np.stack(vectors), thumbs)
                self._refresh_centroids(model, sorted({r.person for r in records}))
            report.enrolled.update(r.person for r in records)

    def _existing(self, model: str, shas: Sequence[str]) -> list[FaceRecord]:
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
                self._refresh_centroids(model, [new])
        return sum(len(r) for r in owned.values())

    def reindex(self, model: str | None = None) -> None:
        """Rebuild every person's centroid from the stored faces (after a crash, or a store edited by hand)."""
        with self.store.lock:
            models = [self.model_name(model)] if model else self.store.models()
            for m in models:
                names = {r.person for r in self.store.get(m)[0]}
                stale = set(self.store.centroid_people(m)) - names
                self.store.set_centroids(m, {p: None for p in stale})
                self._refresh_centroids(m, sorted(names))

    def clear(self) -> None:
        with self.store.lock:
            self.store.drop()

    def _refresh_centroids(self, model: str, names: Sequence[str]) -> None:
        update = {}
        for name in names:
            _, vectors = self.store.get(model, person=name, embeddings=True)
            update[name] = _centroid(vectors) if vectors is not None and len(vectors) else None
        if update:
            self.store.set_centroids(model, update)

    # identification ------------------------------------------------------------------------------
    def identify(self, image: ImageInput, model: str | None = None, top_k: int = 3, method: str = DEFAULT_METHOD,
                 threshold: float | None = None) -> IdentifyResult:
        """Name every face in ``image``: the best person, their distance and the ``top_k`` closest people.
        A face farther than ``threshold`` (default: ``self.threshold(model)``) from every person is unknown (``name`` None)."""
        _check_method(method)
        model = self.model_name(model)
        if self.store.count(model) == 0:
            raise GalleryError(f"Nobody is enrolled for model '{model}' yet; enroll someone first.")
        _, faces = self.pipeline.analyze(image, model)
        if not faces:
            raise NoFaceError("The image has no face that could be detected; try a clearer, front-facing photo.")
        return self.match(faces, model, top_k, method, threshold)

    def match(self, faces: Sequence[EmbeddedFace], model: str, top_k: int = 3, method: str = DEFAULT_METHOD,
              threshold: float | None = None) -> IdentifyResult:
        """The decision for faces already embedded (the dashboard and the method benchmark reuse them)."""
        _check_method(method)
        limit = self.threshold(model) if threshold is None else float(threshold)
        if not faces:
            return IdentifyResult(model, method, limit, [])
        top_k = max(1, int(top_k))
        vectors = np.stack([f.embedding for f in faces])
        if method == "centroid":
            hits = self.store.query_centroids(model, vectors, top_k)
            if any(not row for row in hits):  # faces but no centroids: a store written before them, or edited by hand
                self.reindex(model)
                hits = self.store.query_centroids(model, vectors, top_k)
            ranked = [[Candidate(h.person, h.distance) for h in row] for row in hits]
            winners = [row[0] if row else None for row in ranked]
        else:
            rows = self.store.query(model, vectors, max(KNN_K, 8 * top_k))
            ranked = [_per_person(row) for row in rows]
            winners = [(_vote(row, limit) if method == "knn" else (ranked[i][0] if ranked[i] else None)) for i, row in enumerate(rows)]
        matches = []
        for face, best, cands in zip(faces, winners, ranked):
            known = best is not None and best.distance <= limit
            matches.append(FaceMatch(face.face, best.name if known else None, best.distance if known else None, cands[:top_k]))
        return IdentifyResult(model, method, limit, matches)

    def embeddings(self, model: str | None = None) -> tuple[np.ndarray, list[str], list[str], list[Path | None]]:
        """Every stored vector of one model with its person, id and thumbnail (for the embedding explorer)."""
        model = self.model_name(model)
        records, vectors = self.store.get(model, embeddings=True)
        if not records:
            return np.zeros((0, self.pipeline.spec(model).dim), np.float32), [], [], []
        return vectors, [r.person for r in records], [r.id for r in records], [self.store.thumb_path(r.id) for r in records]


# -- decisions ----------------------------------------------------------------------------------------
def _check_method(method: str) -> None:
    if method not in METHODS:
        raise FaceDemoError(f"Unknown identification method '{method}': use one of {', '.join(METHODS)}.")


def _per_person(hits) -> list[Candidate]:
    best: dict[str, float] = {}
    for h in hits:
        if h.record.person not in best or h.distance < best[h.record.person]:
            best[h.record.person] = h.distance
    return [Candidate(n, d) for n, d in sorted(best.items(), key=lambda kv: kv[1])]


def _vote(hits, limit: float) -> Candidate | None:
    """The person most often among the k nearest faces within the threshold; ties go to the closer person."""
    near = [h for h in hits[:KNN_K] if h.distance <= limit]
    if not near:
        return Candidate(hits[0].record.person, hits[0].distance) if hits else None
    votes: dict[str, list[float]] = defaultdict(list)
    for h in near:
        votes[h.record.person].append(h.distance)
    name = min(votes, key=lambda n: (-len(votes[n]), min(votes[n])))
    return Candidate(name, min(votes[name]))


def _centroid(vectors: np.ndarray) -> np.ndarray:
    mean = np.asarray(vectors, dtype=np.float64).mean(axis=0)
    return (mean / max(np.linalg.norm(mean), 1e-12)).astype(np.float32)


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


def _sha(source: ImageInput) -> str:
    """sha256 of the photo's bytes (of its pixels when it is already decoded)."""
    digest = hashlib.sha256()
    if isinstance(source, (str, Path)):
        with open(source, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    elif isinstance(source, (bytes, bytearray)):
        digest.update(source)
    elif isinstance(source, Image.Image):
        digest.update(f"{source.mode}{source.size}".encode())
        digest.update(source.tobytes())
    else:
        array = np.ascontiguousarray(source)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _thumb(image: Image.Image | None, face: Face) -> Image.Image | None:
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


# -- drawing ------------------------------------------------------------------------------------------
def annotate(image: ImageInput | Image.Image, result: IdentifyResult) -> Image.Image:
    """A copy of the image with a box and a label per face: green for a name, red for unknown."""
    from .images import load_image

    canvas = (image if isinstance(image, Image.Image) else load_image(image)).convert("RGB").copy()
    draw = ImageDraw.Draw(canvas)
    size = max(12, round(max(canvas.size) / 50))
    font = ImageFont.load_default(size=size)
    width = max(2, round(max(canvas.size) / 400))
    for match in result.faces:
        x1, y1, x2, y2 = match.face.box
        colour = (40, 200, 80) if match.name else (230, 50, 50)
        label = f"{match.name} ({match.distance:.2f})" if match.name else "unknown"
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=width)
        _, _, text_w, text_h = draw.textbbox((0, 0), label, font=font)
        tag_h = text_h + 2 * width
        ty = y1 - tag_h if y1 - tag_h >= 0 else y2  # above the box, or below it at the top edge
        draw.rectangle((x1, ty, x1 + text_w + 2 * width, ty + tag_h), fill=colour)
        draw.text((x1 + width, ty + width), label, fill=(255, 255, 255), font=font)
    return canvas
