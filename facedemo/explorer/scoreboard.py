"""The scoreboard: every available model measured now on the gallery's own enrolled faces, one row per
measure, the best of each row marked and a sentence saying what it means.

* Identification, leave one out: each enrolled face is taken out and identified against everyone else,
  its person's centroid recomputed without it, with the model's own identification threshold and the
  chosen decision method (``rules.DecisionRule.decide_matrix``: the rules Identify uses). The right
  answer is the face's person; for a face whose person has no other face it is "unknown" (the gallery
  without it does not hold that person, so the face is a stranger to it). Each face counts once: right
  answer, wrong name (someone else's, or any name for such a stranger), or unknown though its person is
  enrolled.
* Verification on every pair of enrolled faces (scikit-learn): AUC, accuracy at the model's verification
  threshold, and TAR at FAR 1e-3 when there are at least 1,000 pairs of different people.
* Milliseconds per face on this machine: a few stored face regions aligned and embedded one at a time.
* The LFW figures that ship with the model's calibration, labelled as LFW.

Only the faces every compared model holds are scored, so the models answer the same questions. The
vectors are the ones the gallery stores; nothing is embedded again except the few faces that are timed.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import params
from ..errors import GalleryError, InvalidParameterError, ModelUnavailableError
from ..evaluation.metrics import accuracy_at, all_pairs, roc, val_at_far
from ..gallery.regions import region_face
from ..models.base import ModelSpec
from ..models.thresholds import calibration
from ..progress import Progress
from ..progress import report as report_progress
from ..rules import DEFAULT_METHOD, distance_methods, methods, rule
from ..vectors import centroid, distance_matrix

FAR = 1e-3
MIN_DIFFERENT = 1000  # different-person pairs needed before a FAR of 1e-3 means anything (one false accept)
TIMED_FACES = 5  # stored face regions aligned and embedded one at a time per model


@dataclass(frozen=True)
class Identification:
    """Leave-one-out identification: each face named against the gallery without it."""

    correct: int
    wrong: int
    unknown: int  # said unknown although the face's person has other faces enrolled
    faces: int
    strangers: int  # faces whose person has no other face: their right answer is "unknown"
    threshold: float
    answers: tuple[str | None, ...] = ()  # the name given to each face, in order (None: unknown)

    def to_json(self) -> dict:
        return {
            "correct": self.correct,
            "wrong": self.wrong,
            "unknown": self.unknown,
            "faces": self.faces,
            "strangers": self.strangers,
            "threshold": round(self.threshold, 4),
        }


@dataclass(frozen=True)
class Verification:
    """Every pair of the scored faces, same person or not, at the model's verification threshold."""

    pairs: int
    same: int
    different: int
    threshold: float
    auc: float
    accuracy: float
    tar_at_far: float | None  # None: too few different-person pairs (``tar_note`` says so)
    tar_note: str | None = None

    def to_json(self) -> dict:
        return {
            "pairs": self.pairs,
            "same_pairs": self.same,
            "different_pairs": self.different,
            "threshold": round(self.threshold, 4),
            "auc": round(self.auc, 4),
            "accuracy": round(self.accuracy, 4),
            "far": FAR,
            "tar_at_far": None if self.tar_at_far is None else round(self.tar_at_far, 4),
            "tar_note": self.tar_note,
        }


@dataclass(frozen=True)
class ModelScore:
    model: str
    identification: Identification | None  # None: the gallery is too small (``Scoreboard.notes``)
    verification: Verification | None
    ms_per_face: float | None
    timed: int  # faces timed
    lfw: dict | None  # the shipped calibration's LFW figures: accuracy, tar_at_far, source, pairs
    flip: bool = False  # whether each timed face was embedded with its mirror image too (the gallery's way)

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "identification": None if self.identification is None else self.identification.to_json(),
            "verification": None if self.verification is None else self.verification.to_json(),
            "ms_per_face": None if self.ms_per_face is None else round(self.ms_per_face, 1),
            "faces_timed": self.timed,
            "flip": self.flip,
            "lfw": self.lfw,
        }


@dataclass(frozen=True)
class Row:
    """One measure across the models: each model's value (None: not measured), the best marked."""

    key: str
    label: str
    values: dict[str, float | None]
    best: tuple[str, ...]  # the models with the best value (empty with fewer than two values, or all equal)
    sentence: str
    higher_is_better: bool = True
    kind: str = "score"  # how a value reads: "count", "score" (0..1), "share" (a percentage) or "ms"

    def shown(self, model: str) -> str:
        """A value as a person reads it ("37", "0.9681", "98.71%", "35.2 ms"), or a dash when not measured."""
        value = self.values.get(model)
        if value is None:
            return "—"
        return {
            "count": f"{value:.0f}",
            "score": f"{value:.4f}",
            "share": f"{value:.2%}",
            "ms": f"{value:.1f} ms",
        }[self.kind]

    def to_json(self) -> dict:
        return {
            "row": self.key,
            "label": self.label,
            "values": {m: (None if v is None else round(v, 4)) for m, v in self.values.items()},
            "best": list(self.best),
            "higher_is_better": self.higher_is_better,
            "kind": self.kind,
            "sentence": self.sentence,
        }


@dataclass(frozen=True)
class FaceAnswers:
    """A face the models name differently in the leave-one-out identification."""

    face_id: str
    person: str
    answers: dict[str, str | None]  # model -> the name given (None: unknown)
    thumb: Path | None

    def to_json(self) -> dict:
        return {"face": self.face_id, "person": self.person, "answers": self.answers}


@dataclass(frozen=True)
class Scoreboard:
    method: str
    faces: int
    people: int
    models: list[ModelScore]
    rows: list[Row]
    disagreements: list[FaceAnswers]
    unavailable: dict[str, str] = field(default_factory=dict)  # model -> why it is not on the board
    notes: tuple[str, ...] = ()  # what the gallery is too small for, and faces left out
    face_ids: tuple[str, ...] = ()  # the faces scored, in the order of ``Identification.answers``

    def to_json(self) -> dict:
        return {
            "method": self.method,
            "faces": self.faces,
            "people": self.people,
            "models": [m.to_json() for m in self.models],
            "rows": [r.to_json() for r in self.rows],
            "disagreements": [d.to_json() for d in self.disagreements],
            "unavailable": [{"model": m, "reason": r} for m, r in self.unavailable.items()],
            "notes": list(self.notes),
        }


def sample_people(faces: list[str], owner_of: dict[str, str], most: int, seed: int = 0) -> tuple[list[str], str]:
    """``faces`` as they are when there are ``most`` or fewer; else every face of people drawn at random (whole
    people, so that each face is still identified among its own person's others) until ``most``, and the
    sentence that says so. The same gallery draws the same people every time."""
    if len(faces) <= most:
        return faces, ""
    size = Counter(owner_of[f] for f in faces)  # in the order people first appear
    people = list(size)
    chosen, taken = set(), 0
    for i in np.random.default_rng(seed).permutation(len(people)):
        if taken + size[people[i]] <= most:
            chosen.add(people[i])
            taken += size[people[i]]
    kept = [f for f in faces if owner_of[f] in chosen]
    return kept, (
        f"Scored on {len(kept):,} faces of {len(chosen):,} people drawn at random from the {len(faces):,} faces of "
        f"{len(people):,} people: every face against every other is about {params.MAX_REQUEST_CPU_S:.0f} s of CPU "
        "at this size, what one request may take here."
    )


# -- the measures ---------------------------------------------------------------------------------------
def leave_one_out(
    vectors: np.ndarray, owners: Sequence[str], names: dict[str, str], method: str, threshold_for
) -> Identification:
    """Each row of ``vectors`` (person id ``owners[i]``) identified against the others by ``method``.
    ``threshold_for(people)``: the model's identification threshold for a gallery of that many people (a
    face whose person has no other face leaves one person fewer)."""
    v = np.asarray(vectors, dtype=np.float32)
    owner = np.asarray(owners, dtype=object)
    people = list(dict.fromkeys(owners))
    rows = {p: np.flatnonzero(owner == p) for p in people}
    if rule(method).compares_with == "centroids":
        columns = list(people)
        held = np.stack([centroid(v[rows[p]]) for p in people])
        d = distance_matrix(v, held)
        for i, p in enumerate(owners):  # the face's own person, recomputed without it
            others = rows[p][rows[p] != i]
            d[i, columns.index(p)] = np.linalg.norm(v[i] - centroid(v[others])) if others.size else np.inf
    else:
        columns = list(owners)
        d = distance_matrix(v, v)
        np.fill_diagonal(d, np.inf)
    alone = np.array([rows[p].size == 1 for p in owners], dtype=bool)
    limits = {n: threshold_for(n) for n in {len(people), len(people) - 1} if n > 0}
    answers = [None] * len(v)
    for lonely in (False, True):
        picked = np.flatnonzero(alone == lonely)
        if picked.size == 0:
            continue
        limit = limits[len(people) - int(lonely)]
        for i, best in zip(picked, rule(method).decide_matrix(d[picked], columns, names, limit)):
            answers[i] = best
    correct = wrong = unknown = 0
    for i, best in enumerate(answers):
        if best is None:
            correct += int(alone[i])
            unknown += int(not alone[i])
        elif best.person_id == owners[i]:
            correct += 1
        else:
            wrong += 1
    given = tuple(None if best is None else best.name for best in answers)
    return Identification(correct, wrong, unknown, len(v), int(alone.sum()), float(limits[len(people)]), given)


def verification(vectors: np.ndarray, owners: Sequence[str], threshold: float) -> Verification | None:
    """Every pair of faces (``metrics.all_pairs``): AUC and accuracy at ``threshold`` by scikit-learn, TAR
    at FAR 1e-3 when there are ``MIN_DIFFERENT`` different-person pairs; None without pairs of both kinds."""
    if len(vectors) < 2:
        return None
    d, same = all_pairs(vectors, list(owners))
    if same.all() or not same.any():
        return None
    different = int((~same).sum())
    tar, note = None, None
    if different >= MIN_DIFFERENT:
        tar = val_at_far(d, same, FAR).val
    else:
        note = (
            f"There are {different:,} pairs of different people; a false accept rate of 1 in 1,000 needs at least "
            f"{MIN_DIFFERENT:,} (enroll more people or more faces each)."
        )
    return Verification(
        int(d.size),
        int(same.sum()),
        different,
        float(threshold),
        roc(d, same).auc,
        accuracy_at(d, same, threshold),
        tar,
        note,
    )


def ms_per_face(
    gallery, model: str | ModelSpec, face_ids: Sequence[str], count: int = TIMED_FACES
) -> tuple[float | None, int]:
    """The median time to align and embed one face (with the gallery's flip for the model), over up to
    ``count`` stored face regions, one at a time, after one untimed face (the model's first call loads it)."""
    pipeline = gallery.pipeline
    spec = pipeline.spec(model)  # resolved once for every face timed
    records = {f.id: f for f in gallery.store.faces(ids=list(face_ids[: 4 * (count + 1)]))}  # a few are enough
    flip = gallery.flip(spec)
    regions = []
    for fid in face_ids:
        record = records.get(fid)
        if record is None or record.region is None or not record.landmarks:
            continue
        region = gallery.store.region(fid)
        if region is not None:
            regions.append((region, region_face(record)))
        if len(regions) > count:
            break
    if len(regions) < 2:
        return None, 0
    pipeline.embed_crops(spec, [pipeline.aligned(regions[0][0], regions[0][1], spec)], flip)  # untimed
    times = []
    for image, face in regions[1:]:
        started = time.perf_counter()
        pipeline.embed_crops(spec, [pipeline.aligned(image, face, spec)], flip)
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times), len(times)


def lfw_figures(pipeline, model: str | ModelSpec) -> dict | None:
    """The LFW figures of the model's calibration in force (shipped in ``facedemo/data``, or this machine's
    own ``calibrate`` run): accuracy at the best threshold and TAR at FAR 1e-3 on LFW View 1's pairs."""
    record = calibration(pipeline.spec(model), pipeline.settings.home)
    if not record or not isinstance(record.get("accuracy"), (int, float)):
        return None
    tar = record.get("val_at_far_target") if record.get("far_target") == FAR else None
    return {
        "accuracy": record["accuracy"],
        "tar_at_far": tar,
        "pairs": record.get("pairs"),
        "source": source if str(source := record.get("source", "LFW")).startswith("LFW") else f"LFW, {source}",
        "date": record.get("date"),
    }


# -- the board --------------------------------------------------------------------------------------------
def check_method(method) -> str:
    """``method`` when the board can identify with it, else InvalidParameterError with the reason."""
    if method not in distance_methods():
        raise InvalidParameterError(
            f"The scoreboard identifies with the {', '.join(distance_methods())} methods, not {str(method)[:40]!r} "
            + (
                f"(the {method} would have to be trained again for every face left out)."
                if method in methods()
                else "(no such method)."
            )
        )
    return method


def scoreboard(
    gallery,
    models: Sequence[str] | None = None,
    method: str = DEFAULT_METHOD,
    progress: Progress | None = None,
    timed: int = TIMED_FACES,
) -> Scoreboard:
    """Every available model with faces in ``gallery`` (or ``models``) scored on the faces they all hold.

    Raises:
        GalleryError: no model holds any face. InvalidParameterError: a method the board cannot run."""
    check_method(method)
    pipeline = gallery.pipeline
    specs, unavailable = pipeline.models_to_run(list(dict.fromkeys(models)) if models else None)
    held, spec_of = {}, {spec.name: spec for spec in specs}
    for spec in specs:
        vectors, _, ids, _ = gallery.embeddings(spec.name)
        if not ids:
            unavailable[spec.name] = "nobody is enrolled for this model"
        else:
            held[spec.name] = dict(zip(ids, vectors))
    if not held:
        raise GalleryError("Nobody is enrolled yet, so there is nothing to score: enroll two or more people first.")
    names = {p.id: p.name for p in gallery.store.persons()}
    owner_of = {f.id: f.person_id for f in gallery.store.faces()}
    first = next(iter(held.values()))
    faces = [f for f in first if all(f in rows for rows in held.values()) and f in owner_of]
    if not faces:
        raise GalleryError("No enrolled face is held by every model yet; enroll the faces again to score them.")
    notes = []
    left = len(set().union(*held.values())) - len(faces)
    if left:
        notes.append(f"{left} face(s) that not every model holds are left out, so every model answers the same faces.")
    faces, sampled = sample_people(faces, owner_of, params.scored_faces(len(held)))
    if sampled:
        notes.append(sampled)
    owners = [owner_of[f] for f in faces]
    counts = {p: owners.count(p) for p in set(owners)}
    can_identify = len(counts) >= 2 and max(counts.values()) >= 2
    if not can_identify:
        notes.append(_too_small(counts))
    scores = []
    total = len(held)
    for step, (model, rows) in enumerate(held.items()):
        report_progress(progress, step, total, f"{model}: leave-one-out and every pair")
        spec = spec_of[model]  # resolved once for the thresholds, the timing and the figures
        v = np.stack([rows[f] for f in faces]).astype(np.float32)
        ident = None
        if can_identify:
            ident = leave_one_out(v, owners, names, method, lambda n, m=spec: gallery.threshold(m, method, people=n))
        ver = verification(v, owners, pipeline.threshold(spec))
        report_progress(progress, step, total, f"{model}: timing {timed} faces")
        try:
            ms, n = ms_per_face(gallery, spec, faces, timed)
        except ModelUnavailableError:
            ms, n = None, 0
        scores.append(ModelScore(model, ident, ver, ms, n, lfw_figures(pipeline, spec), gallery.flip(spec)))
    report_progress(progress, total, total, "done")
    if not any(s.timed for s in scores):
        notes.append("No stored face region could be timed (faces enrolled before regions were kept).")
    rows = _rows(scores, len(faces), method, None if can_identify else _too_small(counts))
    split = []
    if len(scores) >= 2 and can_identify:
        for i, f in enumerate(faces):
            given = {s.model: s.identification.answers[i] for s in scores}
            if len(set(given.values())) > 1:
                split.append(FaceAnswers(f, names.get(owners[i], ""), given, gallery.store.thumb_path(f)))
    return Scoreboard(method, len(faces), len(counts), scores, rows, split, unavailable, tuple(notes), tuple(faces))


ROWS = (  # key, label, kind, higher is better
    ("correct", "Named right (leave one out)", "count", True),
    ("wrong", "Named as someone else", "count", False),
    ("unknown", "Unknown though enrolled", "count", False),
    ("auc", "AUC on every pair", "score", True),
    ("accuracy", "Accuracy at its threshold", "share", True),
    ("tar_at_far", "TAR at FAR 1 in 1,000", "share", True),
    ("ms_per_face", "Milliseconds per face, this machine", "ms", False),
    ("lfw_accuracy", "LFW accuracy (shipped, not your gallery)", "share", True),
    ("lfw_tar_at_far", "LFW TAR at FAR 1 in 1,000 (shipped)", "share", True),
)


def _rows(scores: Sequence[ModelScore], faces: int, method: str, too_small: str | None) -> list[Row]:
    """The board's rows; ``too_small``: the sentence the identification and pair rows carry instead of numbers."""
    ident = next((s.identification for s in scores if s.identification), None)
    ver = next((s.verification for s in scores if s.verification), None)
    timed = max((s.timed for s in scores), default=0)
    about = {
        "correct": (
            f"Each of the {faces} faces was taken out and identified against everyone else ({method} method, each "
            "model's own identification threshold): how many got the right answer, their person's name"
            + (
                f", or unknown for the {ident.strangers} face(s) whose person has no other face (a stranger to the "
                "gallery without it)."
                if ident and ident.strangers
                else "."
            )
        ),
        "wrong": "Faces given another person's name (or any name, for a face whose person has no other face): "
        "the mistake that lets the wrong person in.",
        "unknown": "Faces whose person has other faces enrolled but that came back unknown: the threshold was too "
        "strict for them.",
        "auc": (
            f"How well the distances separate the {ver.same:,} same-person pairs from the {ver.different:,} "
            "different-person pairs, whatever the threshold: 1 is perfect, 0.5 is chance."
            if ver
            else ""
        ),
        "accuracy": (
            f"The share of the {ver.pairs:,} pairs judged right at each model's own verification threshold: "
            "what Verify would say on these faces."
            if ver
            else ""
        ),
        "tar_at_far": (
            "The share of same-person pairs accepted at the threshold where at most 1 pair of different people in "
            "1,000 is taken for one person."
            if ver and ver.tar_note is None
            else (ver.tar_note if ver else "")
        ),
        "ms_per_face": (
            f"The median time to align and embed one face here ({timed} faces one at a time, after a first untimed "
            "one): what every face of a photo costs."
            if timed
            else "No stored face region could be timed (faces enrolled before regions were kept)."
        ),
        "lfw_accuracy": "Measured on LFW View 1's pairs when the model was calibrated and shipped with facedemo "
        "(its best threshold on those pairs): a public benchmark of strangers' photos, not your gallery.",
        "lfw_tar_at_far": "The same LFW pairs: the share of same-person pairs accepted at a false accept rate of 1 "
        "in 1,000.",
    }
    rows = []
    for key, label, kind, higher in ROWS:
        values = {s.model: _value(s, key) for s in scores}
        sentence = about[key]
        if (key in ("correct", "wrong", "unknown") and ident is None) or (
            key in ("auc", "accuracy", "tar_at_far") and ver is None
        ):
            sentence = too_small or "The gallery is too small for this row."
        shown = [v for v in values.values() if v is not None]
        best = ()
        if len({round(v, 4) for v in shown}) >= 2:  # a row where every model ties has no winner to mark
            top = max(shown) if higher else min(shown)
            best = tuple(m for m, v in values.items() if v is not None and round(v, 4) == round(top, 4))
        rows.append(Row(key, label, values, best, sentence, higher, kind))
    return rows


def _value(score: ModelScore, key: str) -> float | None:
    i, v, lfw = score.identification, score.verification, score.lfw or {}
    if key in ("correct", "wrong", "unknown"):
        return None if i is None else float(getattr(i, key))
    if key in ("auc", "accuracy", "tar_at_far"):
        return None if v is None else getattr(v, key)
    if key == "ms_per_face":
        return score.ms_per_face
    return lfw.get(key.removeprefix("lfw_"))


def _too_small(counts: dict[str, int]) -> str:
    what = "identification and the pair measures"
    if len(counts) < 2:
        return (
            f"Only one person is enrolled, so {what} cannot be measured: enroll a second person "
            "(two photos or more) so that there are different people to tell apart."
        )
    return (
        f"Nobody has two faces enrolled, so {what} cannot be measured: add a second photo of someone, so that "
        "there are faces of the same person to match."
    )
