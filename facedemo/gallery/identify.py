"""Identification (1:N): name every face of a photo against the gallery's people, with "unknown" for
strangers, by one of four decision methods (centroid, nearest photo, k-NN vote, a classifier); the same
photo by every model side by side; and draw the answer on the photo."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .. import params
from ..errors import FaceDemoError, GalleryError, ModelUnavailableError, NoFaceError
from ..models.thresholds import expected_fpir
from ..vectors import centroid, l2_distance
from ..pipeline import EmbeddedFace
from ..vision.detect import Face
from ..vision.images import ImageInput, frames_note, load_image
from .names import box_json
from .store import Candidate

METHODS = ("centroid", "nearest", "knn", "classifier")
DEFAULT_METHOD = "centroid"
KNN_K = 5  # neighbours that vote in the "knn" method
CLASSIFIER_LIMIT = 0.5  # the classifier names a face when its person's probability is at least 1 - this


@dataclass(frozen=True)
class FaceMatch:
    face: Face
    name: str | None  # None: farther than the threshold from everyone (unknown)
    distance: float | None
    candidates: list[Candidate]

    def to_json(self) -> dict:
        return {
            "box": box_json(self.face.box), "name": self.name,
            "distance": None if self.distance is None else round(self.distance, 4),
            "candidates": [{"name": c.name, "distance": round(c.distance, 4)} for c in self.candidates],
        }


@dataclass(frozen=True)
class IdentifyResult:
    model: str
    method: str
    threshold: float
    faces: list[FaceMatch]
    people: int = 0  # people enrolled for this model, searched
    note: str | None = None  # what the user should know about the answer (e.g. nobody is enrolled yet)
    expected_fpir: float | None = None  # the share of strangers expected to get a name at this threshold and size
    notes: tuple[str, ...] = ()  # about the photo, e.g. "The photo has 12 frames; only the first was used."

    def to_json(self) -> dict:
        return {"model": self.model, "faces": [f.to_json() for f in self.faces], "method": self.method, "threshold": round(self.threshold, 4),
                "people": self.people, "expected_fpir": None if self.expected_fpir is None else round(self.expected_fpir, 5),
                "note": self.note, "notes": list(self.notes)}


@dataclass(frozen=True)
class IdentifyComparison:
    """The same photo identified by every model that has people enrolled: one ``IdentifyResult`` per model
    that ran (the faces found once, in the same order in each), and why each other model did not."""

    results: list[IdentifyResult]
    unavailable: dict[str, str]  # model -> the reason, in words (unavailable here, or nobody enrolled for it)
    image: Image.Image  # the photo as decoded, for drawing
    notes: tuple[str, ...] = ()  # about the photo, e.g. "The photo has 12 frames; only the first was used."

    def to_json(self) -> dict:
        return {"models": [r.to_json() for r in self.results],
                "unavailable": [{"model": m, "reason": r} for m, r in self.unavailable.items()],
                "notes": list(self.notes)}


def nobody_enrolled(model: str) -> str:
    return (f"Nobody is enrolled for model '{model}' yet, so every face found is unknown: "
            "name a face from this result to enroll it.")


class Identification:
    """The identification half of ``Gallery`` (which provides ``pipeline``, ``store``, ``model_name``,
    ``threshold``, ``impostor_tail`` and ``reindex``)."""

    def identify(self, image: ImageInput, model: str | None = None, top_k: int = 3, method: str = DEFAULT_METHOD,
                 threshold: float | None = None) -> IdentifyResult:
        """Name every face in ``image``: the best person, their distance and the ``top_k`` closest people.
        A face farther than ``threshold`` from every person is unknown (``name`` None); by default the
        threshold follows the number of people enrolled (``Gallery.threshold``)."""
        _check_method(method)
        top_k, threshold = params.top_k(top_k), params.threshold(threshold)  # refused before any model runs
        model = self.model_name(model)
        picture, faces = self.pipeline.analyze(image, model, flip=self.flip(model))
        if not faces:
            raise NoFaceError("The image has no face that could be detected; try a clearer, front-facing photo.")
        result = self.match(faces, model, top_k, method, threshold)
        note = frames_note(picture, "The photo")
        return replace(result, notes=(note,)) if note else result

    def match(self, faces: Sequence[EmbeddedFace], model: str, top_k: int = 3, method: str = DEFAULT_METHOD,
              threshold: float | None = None, people: int | None = None, strangers: np.ndarray | None = None) -> IdentifyResult:
        """The decision for faces already embedded (the dashboard and the benchmarks reuse them).

        ``people``: how many people the search covers, for the threshold (default: this gallery's);
        ``strangers``: the classifier method's "none of them" faces (default: ``Settings.strangers``)."""
        _check_method(method)
        top_k, threshold = params.top_k(top_k), params.threshold(threshold)
        if self.store.count(model) == 0:  # an empty gallery: every face is a stranger, ready to be named
            limit = self.threshold(model, method, 0) if threshold is None else threshold
            return IdentifyResult(model, method, limit, [FaceMatch(f.face, None, None, []) for f in faces], 0, nobody_enrolled(model))
        own = self.people_count(model)
        people = own if people is None else people
        limit = self.threshold(model, method, people) if threshold is None else threshold
        tail = self.impostor_tail(model, method)
        fpir = None if tail is None else expected_fpir(tail, people, limit)
        if not faces:
            return IdentifyResult(model, method, limit, [], own, None, fpir)
        vectors = np.stack([f.embedding for f in faces])
        if method in ("centroid", "classifier"):
            ranked = self.store.query_centroids(model, vectors, top_k)
            if any(not row for row in ranked):  # faces but no centroids: a store written before them, or edited by hand
                self.reindex(model)
                ranked = self.store.query_centroids(model, vectors, top_k)
            winners = [row[0] if row else None for row in ranked]
            if method == "classifier":
                winners = self.classify(model, vectors, ranked, limit, strangers)
        else:
            rows = self.store.query(model, vectors, max(KNN_K, 8 * top_k))
            ranked = [_per_person(row) for row in rows]
            winners = [(_vote(row, limit) if method == "knn" else (ranked[i][0] if ranked[i] else None)) for i, row in enumerate(rows)]
        matches = []
        for face, best, cands in zip(faces, winners, ranked):
            known = best is not None and (method == "classifier" or best.distance <= limit)
            matches.append(FaceMatch(face.face, best.name if known else None, best.distance if known else None, cands[:top_k]))
        return IdentifyResult(model, method, limit, matches, own, None, fpir)

    def compare_models(self, image: ImageInput, top_k: int = 3, method: str = DEFAULT_METHOD,
                       models: Sequence[str] | None = None) -> IdentifyComparison:
        """Identify ``image`` with every model that has people enrolled here (or ``models``): see
        ``compare_models``."""
        return compare_models(self.pipeline, [self], image, top_k, method, models)

    def people_count(self, model: str) -> int:
        return len(self.store.centroid_people(model))

    def classify(self, model: str, vectors: np.ndarray, ranked: list[list[Candidate]], limit: float,
                 strangers: np.ndarray | None = None) -> list[Candidate | None]:
        """The classifier's choice per face: the most probable person when their probability is at least
        ``1 - limit`` and beats "none of them"; their distance is the one to that person's centroid."""
        classifier = self.store.classifiers.get(self, model, strangers)
        probs, none = classifier.probabilities(vectors)
        out = []
        for i, row in enumerate(probs):
            best = int(np.argmax(row))
            name = classifier.people[best]
            if row[best] < max(none[i], 1.0 - limit):
                out.append(None)
                continue
            distance = next((c.distance for c in ranked[i] if c.name == name), None)
            if distance is None:
                distance = l2_distance(vectors[i], self.store_centroid(model, name))
            out.append(Candidate(name, distance))
        return out

    def store_centroid(self, model: str, name: str) -> np.ndarray:
        _, vectors = self.store.get(model, person=name, embeddings=True)
        return centroid(vectors)


def identify_faces(pipeline, galleries: Sequence, picture: Image.Image, faces: Sequence[Face], model: str, top_k: int = 3,
                   method: str = DEFAULT_METHOD) -> IdentifyResult:
    """Faces already found in ``picture``, named by ``model`` against several galleries searched as one (public
    mode: the visitor's and the shared one). They are embedded once per way the galleries were enrolled
    (``Gallery.flip``), the threshold follows the people of every gallery searched (strangers are compared
    with all of them), and the answers are merged. Galleries with nobody enrolled for ``model`` are left out,
    unless all are: then every face is unknown, with a note, ready to be named."""
    galleries = [g for g in galleries if g.store.count(model) > 0] or list(galleries[:1])
    flips = [g.flip(model) for g in galleries]  # each reads its collection's record once
    embedded = {flip: pipeline.embed_faces(picture, faces, model, flip=flip) for flip in set(flips)}
    people = sum(g.people_count(model) for g in galleries)
    results = [g.match(embedded[flip], model, top_k, method, people=people) for g, flip in zip(galleries, flips)]
    return results[0] if len(results) == 1 else merge_results(results, top_k)


def compare_models(pipeline, galleries: Sequence, image: ImageInput, top_k: int = 3, method: str = DEFAULT_METHOD,
                   models: Sequence[str] | None = None) -> IdentifyComparison:
    """Identify the same photo with every available model that has people enrolled in ``galleries`` (or
    with ``models``), each at its own threshold: the faces are found once and embedded by each model.

    Raises:
        NoFaceError: the photo has no face. GalleryError: no model has anyone enrolled (or could run).
    """
    _check_method(method)
    top_k = params.top_k(top_k)
    picture = pipeline.load(image)
    faces = pipeline.detect(picture)
    if not faces:
        raise NoFaceError("The image has no face that could be detected; try a clearer, front-facing photo.")
    statuses = {s.name: s for s in pipeline.models()}
    results, unavailable = [], {}
    for name in dict.fromkeys(models or statuses):
        spec = pipeline.spec(name)
        status = statuses.get(spec.name)
        if status is not None and not status.available:
            unavailable[spec.name] = status.reason or "unavailable"
        elif not any(g.store.count(spec.name) for g in galleries):
            unavailable[spec.name] = "nobody is enrolled for this model"
        else:
            try:
                results.append(identify_faces(pipeline, galleries, picture, faces, spec.name, top_k, method))
            except ModelUnavailableError as exc:
                unavailable[spec.name] = str(exc)
    if not results:
        raise GalleryError("No model has anyone enrolled to compare (enroll people first): "
                           + "; ".join(f"{m}: {r}" for m, r in unavailable.items()))
    note = frames_note(picture, "The photo")
    return IdentifyComparison(results, unavailable, picture, (note,) if note else ())


def merge_results(results: Sequence[IdentifyResult], top_k: int) -> IdentifyResult:
    """The answers of several galleries for the same faces as one: per face, the closest name within its
    gallery's threshold, and the closest candidates over all of them."""
    first = results[0]
    faces = []
    for matches in zip(*(r.faces for r in results)):
        best: dict[str, float] = {}
        for match in matches:
            for c in match.candidates:
                best[c.name] = min(best.get(c.name, c.distance), c.distance)
        ranked = [Candidate(n, d) for n, d in sorted(best.items(), key=lambda kv: kv[1])][:top_k]
        known = [m for m in matches if m.name is not None]
        winner = min(known, key=lambda m: m.distance) if known else None
        faces.append(FaceMatch(matches[0].face, winner.name if winner else None, winner.distance if winner else None, ranked))
    return IdentifyResult(first.model, first.method, first.threshold, faces, sum(r.people for r in results), first.note, first.expected_fpir)


def size_note(result: IdentifyResult, target: float | None = None) -> str:
    """What the gallery's size means for strangers, in words ("with 40 people enrolled, about 1 stranger in
    100 gets a name")."""
    if result.expected_fpir is None or result.people == 0:
        return ""
    rate = result.expected_fpir
    share = "almost no stranger gets a name" if rate < 1e-4 else f"about 1 stranger in {max(1, round(1 / rate)):,} gets a name"
    who = "person" if result.people == 1 else "people"
    text = f"With {result.people:,} {who} enrolled, {share} (threshold {result.threshold:.3f}"
    return text + (f", set for {target:.1%} of strangers)." if target is not None else ").")


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


# -- drawing ------------------------------------------------------------------------------------------
def annotate(image: ImageInput | Image.Image, result: IdentifyResult) -> Image.Image:
    """A copy of the image with a box and a label per face: green for a name, red for unknown."""
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
