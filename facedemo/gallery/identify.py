"""Identification (1:N): name every face of a photo against the gallery's people, with "unknown" for
strangers, by one of four decision methods (centroid, nearest photo, k-NN vote, a classifier); the same
photo by every model side by side; and draw the answer on the photo."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .. import params
from ..errors import GalleryError, ModelUnavailableError, NoFaceError
from ..models.base import ModelSpec
from ..models.distributions import CommonScore, common_score
from ..models.thresholds import expected_fpir, impostor_tail, open_set_threshold, threshold_for
from ..pipeline import EmbeddedFace
from ..rules import DEFAULT_METHOD, RULES, Candidate, DecisionRule, titled
from ..rules import rule as rule_named
from ..vectors import centroid, l2_distance
from ..vision.detect import Face
from ..vision.images import ImageInput, frames_note, load_image
from .names import box_json


@dataclass(frozen=True)
class FaceMatch:
    face: Face
    name: str | None  # None: farther than the threshold from everyone (unknown)
    distance: float | None
    candidates: list[Candidate]
    score: CommonScore | None = None  # the named distance (an unknown face: its nearest's) on the common scale
    margin: float | None = None  # that distance minus the threshold (None: the classifier's threshold is no distance)
    gallery: str | None = None  # the named person's gallery, when several are searched with labels (public mode)

    @property
    def who(self) -> str | None:
        """The name as a page shows it (``rules.titled``); None for an unknown face."""
        return None if self.name is None else titled(self.name, self.gallery)

    @property
    def label(self) -> str:
        """The face's label on a photo: "Raj (0.31)", "Raj (demo gallery, 0.31)" or "unknown"."""
        if self.name is None:
            return "unknown"
        return f"{self.name} ({self.gallery + ', ' if self.gallery else ''}{self.distance:.2f})"

    @property
    def nearest(self) -> Candidate | None:
        """An unknown face's closest person, and how close: what "unknown" was decided against."""
        return self.candidates[0] if self.name is None and self.candidates else None

    def to_json(self) -> dict:
        nearest = self.nearest
        return {
            "box": box_json(self.face.box),
            "name": self.name,
            **({"gallery": self.gallery} if self.gallery else {}),  # public mode: whose person it is
            "distance": None if self.distance is None else round(self.distance, 4),
            "nearest": None if nearest is None else candidate_json(nearest),
            "margin": None if self.margin is None else round(self.margin, 4),
            "score": None if self.score is None else self.score.to_json(),
            "candidates": [candidate_json(c) for c in self.candidates],
        }


def candidate_json(candidate: Candidate) -> dict:
    out = {"name": candidate.name, "distance": round(candidate.distance, 4)}
    return out | ({"gallery": candidate.gallery} if candidate.gallery else {})


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
    ms_per_face: float | None = None  # aligning and embedding one face in this request (None: none embedded)

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "faces": [f.to_json() for f in self.faces],
            "method": self.method,
            "threshold": round(self.threshold, 4),
            "people": self.people,
            "ms_per_face": None if self.ms_per_face is None else round(self.ms_per_face, 1),
            "expected_fpir": None if self.expected_fpir is None else round(self.expected_fpir, 5),
            "note": self.note,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class IdentifyComparison:
    """The same photo identified by every model that has people enrolled: one ``IdentifyResult`` per model
    that ran (the faces found once, in the same order in each), and why each other model did not."""

    results: list[IdentifyResult]
    unavailable: dict[str, str]  # model -> the reason, in words (unavailable here, or nobody enrolled for it)
    image: Image.Image  # the photo as decoded, for drawing
    notes: tuple[str, ...] = ()  # about the photo, e.g. "The photo has 12 frames; only the first was used."

    @property
    def disagreements(self) -> list[int]:
        """The faces (numbered from 1, as on the page) the models name differently, "unknown" counting as an
        answer: one model says Raj and another unknown is a disagreement."""
        return [
            i
            for i, matches in enumerate(zip(*(r.faces for r in self.results)), 1)
            if len({(m.name, m.gallery) for m in matches}) > 1
        ]

    def to_json(self) -> dict:
        split = self.disagreements
        return {
            "models": [r.to_json() for r in self.results],
            "agree": not split,
            "disagree": split,
            "unavailable": [{"model": m, "reason": r} for m, r in self.unavailable.items()],
            "notes": list(self.notes),
        }


def nobody_enrolled(model: str) -> str:
    return (
        f"Nobody is enrolled for model '{model}' yet, so every face found is unknown: "
        "name a face from this result to enroll it."
    )


@dataclass(frozen=True)
class SearchContext:
    """What one identification request needs to know, resolved once and passed down: the model, the
    decision method, how each searched gallery embeds (flip) and how many people it holds, and the
    threshold that follows from them."""

    model: str
    spec: ModelSpec
    method: str
    rule: DecisionRule
    counts: tuple[int, ...]  # people with a centroid, per gallery searched
    flips: tuple[bool, ...]  # how each gallery's vectors were made
    people: int  # how many people the threshold is set for (strangers are compared with all of them)
    threshold: float
    expected_fpir: float | None  # the share of strangers expected to get a name at this threshold and size


def search_context(
    pipeline,
    galleries: Sequence,
    model,
    method: str = DEFAULT_METHOD,
    threshold: float | None = None,
    people: int | None = None,
) -> SearchContext:
    """Resolve a request once: the spec, each gallery's people count (one Chroma call each) and flip (read
    from the collection opened already), and the threshold. A fixed ``threshold`` (or one a gallery was
    built with) wins; a rule with a limit of its own (the classifier's) uses it; else it follows the number
    of people searched so that about ``Settings.target_fpir`` of strangers get a name, from the rule's
    calibrated impostor tail; a model with no calibrated tail keeps its fixed 1:N threshold."""
    rule = rule_named(method)
    threshold = params.threshold(threshold)
    spec = pipeline.spec(model)
    home = pipeline.settings.home
    counts = tuple(g.people_count(spec.name) for g in galleries)
    flips = tuple(g.flip(spec) for g in galleries)
    total = sum(counts) if people is None else int(people)
    fixed = (
        threshold
        if threshold is not None
        else next((g.fixed_threshold for g in galleries if g.fixed_threshold is not None), None)
    )
    tail = None if rule.tail is None else impostor_tail(spec, home, rule.tail)
    if fixed is not None:
        limit = float(fixed)
    elif rule.fixed_limit is not None:
        limit = rule.fixed_limit
    elif tail is None:
        limit = threshold_for(spec, home, "identify")  # 1:N's stricter fixed threshold (models/thresholds.py)
    else:
        limit = open_set_threshold(tail, max(1, total), pipeline.settings.target_fpir)
    fpir = None if tail is None else expected_fpir(tail, total, limit)
    return SearchContext(spec.name, spec, method, rule, counts, flips, total, limit, fpir)


def load_faces(pipeline, image: ImageInput) -> tuple[Image.Image, list[Face]]:
    """A photo decoded and its faces found, or NoFaceError."""
    picture = pipeline.load(image)
    faces = pipeline.detect(picture)
    if not faces:
        raise NoFaceError("The image has no face that could be detected; try a clearer, front-facing photo.")
    return picture, faces


def identify_image(
    pipeline,
    galleries: Sequence,
    image: ImageInput,
    model=None,
    top_k: int = 3,
    method: str = DEFAULT_METHOD,
    threshold: float | None = None,
) -> IdentifyResult:
    """Name every face of a photo against ``galleries`` searched as one (see ``identify_faces``)."""
    rule_named(method)
    top_k, threshold = params.top_k(top_k), params.threshold(threshold)  # refused before any model runs
    picture, faces = load_faces(pipeline, image)
    result = identify_faces(pipeline, galleries, picture, faces, model, top_k, method, threshold)
    note = frames_note(picture, "The photo")
    return replace(result, notes=(note,)) if note else result


def identify_faces(
    pipeline,
    galleries: Sequence,
    picture: Image.Image | None,
    faces: Sequence[Face],
    model=None,
    top_k: int = 3,
    method: str = DEFAULT_METHOD,
    threshold: float | None = None,
    embedded: Sequence[EmbeddedFace] | None = None,
    people: int | None = None,
    strangers: np.ndarray | None = None,
) -> IdentifyResult:
    """The one identification: the CLI, the dashboard, the album's labels and the benchmarks all come here.

    Faces found in ``picture`` (or already ``embedded``), named by ``model`` against several galleries
    searched as one (public mode: the visitor's and the shared one). They are embedded once per way the
    galleries were enrolled (flip); the threshold follows the people of every gallery searched (or
    ``people``); the answers are merged. Galleries with nobody enrolled for the model are left out; when
    all are empty every face is unknown, with a note, ready to be named. With the centroid method one
    gallery costs two Chroma calls: its people count and one query.

    ``strangers``: the classifier method's "none of them" faces (default: ``Settings.strangers``)."""
    top_k = params.top_k(top_k)
    ctx = search_context(pipeline, galleries, model, method, threshold, people)
    if not any(ctx.counts):
        healed = [
            g for g in galleries if g.writable and g.store.count(ctx.model)
        ]  # faces but no centroids: a store edited by hand
        for gallery in healed:
            gallery.reindex(ctx.model)
        if healed:
            ctx = search_context(pipeline, galleries, ctx.spec, method, threshold, people)
    active = [(g, n, flip) for g, n, flip in zip(galleries, ctx.counts, ctx.flips) if n > 0]
    if not active:
        return IdentifyResult(
            ctx.model,
            method,
            ctx.threshold,
            [FaceMatch(f, None, None, []) for f in faces],
            0,
            nobody_enrolled(ctx.model),
        )
    own = sum(n for _, n, _ in active)
    if not faces:
        return IdentifyResult(ctx.model, method, ctx.threshold, [], own, None, ctx.expected_fpir)
    ms = None
    if embedded is not None:
        vectors = {flip: np.stack([e.embedding for e in embedded]) for _, _, flip in active}
    else:
        vectors, ms = {}, 0.0
        for flip in dict.fromkeys(flip for _, _, flip in active):
            done, took = pipeline.timed_embed_faces(picture, faces, ctx.spec, flip=flip)
            vectors[flip], ms = np.stack([e.embedding for e in done]), ms + took
    results = [_decide(g, n, ctx, vectors[flip], faces, top_k, strangers) for g, n, flip in active]
    result = results[0] if len(results) == 1 else merge_results(results, top_k)
    return scored(result, pipeline.read_distributions(ctx.spec), ms)


def scored(result: IdentifyResult, record: dict | None, ms_per_face: float | None = None) -> IdentifyResult:
    """Each face's distance (an unknown face's: its nearest person's) on the common scale and against the
    threshold, and the time per face: what lets two models' answers be read side by side."""
    faces = []
    for match in result.faces:
        near = match.distance if match.name is not None else (match.nearest.distance if match.nearest else None)
        margin = None if near is None or result.method == "classifier" else near - result.threshold
        faces.append(
            replace(match, score=None if near is None else common_score(record, near, result.model), margin=margin)
        )
    return replace(result, faces=faces, ms_per_face=ms_per_face)


def _decide(
    gallery,
    count: int,
    ctx: SearchContext,
    vectors: np.ndarray,
    faces: Sequence[Face],
    top_k: int,
    strangers: np.ndarray | None,
) -> IdentifyResult:
    """One gallery's answer for the faces' vectors, by the context's rule and threshold: the search the
    rule compares with (each person's centroid, or the nearest enrolled faces), then its decision."""
    model, rule, limit = ctx.model, ctx.rule, ctx.threshold
    if rule.compares_with == "centroids":
        rows = gallery.store.query_centroids(model, vectors, rule.neighbours_needed(top_k), people=count)
        names = {c.person_id: c.name for row in rows for c in row}  # no second Chroma call for the names
        neighbours = [[(c.person_id, c.distance) for c in row] for row in rows]
    else:
        hits = gallery.store.query(model, vectors, rule.neighbours_needed(top_k))
        names = {p.id: p.name for p in gallery.store.persons()}
        neighbours = [[(h.record.person_id, h.distance) for h in row] for row in hits]
    decided = [rule.decide(row, names, limit) for row in neighbours]
    if not rule.from_distances:  # the classifier: a model trained on the gallery picks among the people
        ranked = [r for _, r in decided]
        winners = classify(gallery, model, vectors, ranked, limit, strangers)
        decided = [(best if rule.named(best, limit) else None, r) for best, r in zip(winners, ranked)]
    matches = []
    label = gallery.label
    for face, (best, cands) in zip(faces, decided):
        cands = [replace(c, gallery=label) for c in cands[:top_k]] if label else cands[:top_k]
        matches.append(
            FaceMatch(
                face,
                None if best is None else best.name,
                None if best is None else best.distance,
                cands,
                gallery=label if best is not None else None,
            )
        )
    return IdentifyResult(model, ctx.method, limit, matches, count, None, ctx.expected_fpir)


def classify(
    gallery,
    model: str,
    vectors: np.ndarray,
    ranked: list[list[Candidate]],
    limit: float,
    strangers: np.ndarray | None = None,
) -> list[Candidate | None]:
    """The classifier's choice per face: the most probable person when their probability is at least
    ``1 - limit`` and beats "none of them"; their distance is the one to that person's centroid."""
    classifier = gallery.store.classifiers.get(gallery, model, strangers)
    probs, none = classifier.probabilities(vectors)
    ids = {p.name: p.id for p in gallery.store.persons()}
    out = []
    for i, row in enumerate(probs):
        best = int(np.argmax(row))
        name = classifier.people[best]
        if row[best] < max(none[i], 1.0 - limit):
            out.append(None)
            continue
        distance = next((c.distance for c in ranked[i] if c.name == name), None)
        if distance is None:
            distance = l2_distance(vectors[i], centroid(gallery.vectors_of(model, ids[name])))
        out.append(Candidate(name, distance, ids.get(name, "")))
    return out


def compare_models(
    pipeline,
    galleries: Sequence,
    image: ImageInput,
    top_k: int = 3,
    method: str = DEFAULT_METHOD,
    models: Sequence[str] | None = None,
) -> IdentifyComparison:
    """Identify the same photo with every available model that has people enrolled in ``galleries`` (or
    with ``models``), each at its own threshold: the faces are found once and embedded by each model.

    Raises:
        NoFaceError: the photo has no face. GalleryError: no model has anyone enrolled (or could run).
    """
    rule_named(method)
    top_k = params.top_k(top_k)
    picture, faces = load_faces(pipeline, image)
    specs, unavailable = pipeline.models_to_run(list(dict.fromkeys(models)) if models else None)
    results = []
    for spec in specs:
        if not any(g.people_count(spec.name) or g.store.count(spec.name) for g in galleries):
            unavailable[spec.name] = "nobody is enrolled for this model"
        else:
            try:
                results.append(identify_faces(pipeline, galleries, picture, faces, spec, top_k, method))
            except ModelUnavailableError as exc:
                unavailable[spec.name] = str(exc)
    if not results:
        raise GalleryError(
            "No model has anyone enrolled to compare (enroll people first): "
            + "; ".join(f"{m}: {r}" for m, r in unavailable.items())
        )
    note = frames_note(picture, "The photo")
    return IdentifyComparison(results, unavailable, picture, (note,) if note else ())


def merge_results(results: Sequence[IdentifyResult], top_k: int) -> IdentifyResult:
    """The answers of several galleries for the same faces as one: per face, the closest name within its
    gallery's threshold, and the closest candidates over all of them."""
    first = results[0]
    faces = []
    for matches in zip(*(r.faces for r in results)):
        best: dict[tuple, Candidate] = {}  # one per person of each gallery: two galleries may share a name
        for match in matches:
            for c in match.candidates:
                key = (c.name, c.gallery)
                if key not in best or c.distance < best[key].distance:
                    best[key] = c
        ranked = sorted(best.values(), key=lambda c: c.distance)[:top_k]
        known = [m for m in matches if m.name is not None]
        winner = min(known, key=lambda m: m.distance) if known else None
        faces.append(
            FaceMatch(
                matches[0].face,
                winner.name if winner else None,
                winner.distance if winner else None,
                ranked,
                gallery=winner.gallery if winner else None,
            )
        )
    return IdentifyResult(
        first.model,
        first.method,
        first.threshold,
        faces,
        sum(r.people for r in results),
        first.note,
        first.expected_fpir,
    )


def size_note(result: IdentifyResult, target: float | None = None) -> str:
    """What the gallery's size means for strangers, in words ("with 40 people enrolled, about 1 stranger in
    100 gets a name"); ``target``: the share of strangers the size-following threshold was set for (None:
    the caller chose the threshold). A model without open-set calibration is said to have none."""
    if result.people == 0:
        return ""
    if result.expected_fpir is None:
        rule = RULES.get(result.method)
        if target is None or (rule is not None and rule.fixed_limit is not None):  # chosen, or the rule's own limit
            return ""
        return (
            f"{result.model} has not been calibrated for identification, so its threshold "
            f"({result.threshold:.3f}) is a fixed guess that does not follow the gallery's size: the more people "
            "are enrolled, the more strangers get a name."
        )
    rate = result.expected_fpir
    share = (
        "almost no stranger gets a name"
        if rate < 1e-4
        else f"about 1 stranger in {max(1, round(1 / rate)):,} gets a name"
    )
    who = "person" if result.people == 1 else "people"
    text = f"With {result.people:,} {who} enrolled, {share} (threshold {result.threshold:.3f}"
    return text + (f", set for {target:.1%} of strangers)." if target is not None else ").")


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
        label = match.label
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=width)
        _, _, text_w, text_h = draw.textbbox((0, 0), label, font=font)
        tag_h = text_h + 2 * width
        ty = y1 - tag_h if y1 - tag_h >= 0 else y2  # above the box, or below it at the top edge
        draw.rectangle((x1, ty, x1 + text_w + 2 * width, ty + tag_h), fill=colour)
        draw.text((x1 + width, ty + width), label, fill=(255, 255, 255), font=font)
    return canvas
