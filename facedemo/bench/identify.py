"""``bench identify``: the identification methods on real photos: LFW people enrolled with a few photos
each, probed with their other photos and with photos of strangers; and ``--open-set``: NIST's FNIR at
FPIR (DET curves) for every decision rule at several gallery sizes, the size-following threshold against
the fixed one, and the impostor tails that threshold is derived from."""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import DataUnavailableError
from ..evaluation.embed import embed_images
from ..evaluation.openset import FPIR_TARGETS, NEVER, DetCurve, Searches, det, fit_impostor_tail, rule_det
from ..files import write_json
from ..gallery.classifier import train as train_classifier
from ..gallery.core import Gallery
from ..gallery.enroll import store_embedded
from ..gallery.store import open_store
from ..models import data
from ..models.thresholds import expected_fpir, open_set_threshold
from ..pipeline import EmbeddedFace, Pipeline
from ..rules import RULES, methods
from ..settings import SHARED_LFW
from ..vectors import centroid, distance_matrix
from ..vision.detect import Face, central_face
from ..vision.images import image_sha

Log = Callable[[str], None]


@dataclass
class MethodScore:
    method: str
    known: int = 0
    correct: int = 0
    wrong: int = 0  # a known face given someone else's name
    missed: int = 0  # a known face called unknown
    strangers: int = 0
    rejected: int = 0  # strangers called unknown
    top_k_hits: int = 0

    def to_json(self) -> dict:
        return {
            **self.__dict__,
            "rank1": self.rank1,
            "stranger_rejection": self.stranger_rejection,
            "open_set_accuracy": self.open_set,
        }

    @property
    def rank1(self) -> float:
        return self.correct / max(1, self.known)

    @property
    def stranger_rejection(self) -> float:
        return self.rejected / max(1, self.strangers)

    @property
    def open_set(self) -> float:
        return (self.correct + self.rejected) / max(1, self.known + self.strangers)


SWEEP = (0.30, 0.32, 0.34, 0.36, 0.38, 0.40, 0.42, 0.44, 0.46)


@dataclass
class IdentifyBench:
    model: str
    threshold: float
    people: int
    enrolled_photos: int
    scores: list[MethodScore]  # at the model's threshold
    sweep: dict[float, list[MethodScore]]  # the same at other thresholds
    seconds: float

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "threshold": self.threshold,
            "people": self.people,
            "enrolled_photos": self.enrolled_photos,
            "seconds": round(self.seconds, 1),
            "methods": [s.to_json() for s in self.scores],
            "sweep": {f"{t:.2f}": [s.to_json() for s in row] for t, row in self.sweep.items()},
        }

    def text(self) -> str:
        known = self.scores[0].known if self.scores else 0
        strangers = self.scores[0].strangers if self.scores else 0
        lines = [
            f"{self.people} people enrolled ({self.enrolled_photos} photos), {known} probes of them and {strangers} strangers; "
            f"model {self.model}, threshold {self.threshold:.3f} ({self.seconds:.0f} s)",
            f"{'method':<9} {'rank-1':>7} {'wrong':>6} {'missed':>7} {'top-3':>6} {'strangers rejected':>19} {'open-set acc':>12}",
        ]
        for s in self.scores:
            lines.append(
                f"{s.method:<9} {s.rank1:>7.3f} {s.wrong:>6} {s.missed:>7} {s.top_k_hits / max(1, s.known):>6.3f} "
                f"{s.rejected:>8}/{s.strangers:<4} ({s.stranger_rejection:.3f}) {s.open_set:>8.3f}"
            )
        lines.append("threshold sweep: rank-1 correct / strangers rejected / open-set accuracy")
        lines.append(f"{'threshold':>9}  " + "  ".join(f"{s.method:^20}" for s in self.scores))
        for t, row in self.sweep.items():
            lines.append(
                f"{t:>9.2f}  "
                + "  ".join(f"{s.rank1:.3f} / {s.stranger_rejection:.3f} / {s.open_set:.3f}" for s in row)
            )
        return "\n".join(lines)


def lfw_split(lfw: Path, people: int, enroll: int, strangers: int, probes_per_person: int = 5, seed: int = 0):
    """Enrolled people (>= enroll + 2 photos): ``enroll`` photos each to enroll, up to ``probes_per_person``
    others to probe; strangers: one photo each of other people."""
    folders = sorted(p for p in lfw.iterdir() if p.is_dir())
    if not folders:
        raise DataUnavailableError(f"'{lfw}' holds no LFW person folders.")
    photos = {p.name: sorted(p.glob("*.jpg")) for p in folders}
    rng = random.Random(seed)
    eligible = [n for n, f in photos.items() if len(f) >= enroll + 2]
    chosen = sorted(rng.sample(eligible, min(people, len(eligible))))
    others = sorted(set(photos) - set(chosen))
    enrolled = {n: photos[n][:enroll] for n in chosen}
    probes = [(f, n) for n in chosen for f in photos[n][enroll : enroll + probes_per_person]]
    probes += [(photos[n][0], None) for n in rng.sample(others, min(strangers, len(others)))]
    return enrolled, probes


def bench_identify(
    pipeline,
    lfw: str | Path | None = None,
    people: int = 40,
    enroll: int = 5,
    strangers: int = 150,
    model: str | None = None,
    top_k: int = 3,
    log: Log = lambda m: None,
) -> IdentifyBench:
    lfw = Path(lfw) if lfw else SHARED_LFW
    if not lfw.is_dir():
        raise DataUnavailableError(f"LFW is not at '{lfw}'; pass --lfw.")
    began = time.perf_counter()
    enrolled, probes = lfw_split(lfw, people, enroll, strangers)
    model = pipeline.spec(model).name
    with tempfile.TemporaryDirectory(prefix="facedemo-identify-") as tmp:
        gallery = Gallery.open(pipeline, open_store(tmp, namespace=None))
        # LFW photos often show a second face in the background; its subject is the central one.
        items = [(n, f) for n, files in enrolled.items() for f in files]
        log(f"embedding {len(items)} gallery photos and {len(probes)} probes ...")
        analysed = pipeline.analyze_many([f for _, f in items], model)
        rows = []
        for (name, path), result in zip(items, analysed):
            if result.faces:
                face = next(
                    f for f in result.faces if f.face == central_face([x.face for x in result.faces], result.image.size)
                )
                rows.append((name, path.name, image_sha(path), face.face.box, face.embedding))
        store_embedded(gallery, model, rows)
        probe_faces, truths = [], []
        for (_path, truth), result in zip(probes, pipeline.analyze_many([p for p, _ in probes], model)):
            if result.faces:
                probe_faces.append(
                    next(
                        f
                        for f in result.faces
                        if f.face == central_face([x.face for x in result.faces], result.image.size)
                    )
                )
                truths.append(truth)

        def score(method: str, threshold: float) -> MethodScore:
            out = MethodScore(method)
            result = gallery.match(probe_faces, model, top_k, method, threshold)
            for match, truth in zip(result.faces, truths):
                if truth is None:
                    out.strangers += 1
                    out.rejected += match.name is None
                    continue
                out.known += 1
                out.correct += match.name == truth
                out.wrong += match.name is not None and match.name != truth
                out.missed += match.name is None
                out.top_k_hits += truth in [c.name for c in match.candidates]
            return out

        limit = gallery.threshold(model)
        scores = [score(m, limit) for m in methods()]
        sweep = {t: [score(m, t) for m in methods()] for t in SWEEP}
    return IdentifyBench(model, limit, len(enrolled), len(rows), scores, sweep, time.perf_counter() - began)


# -- open-set identification at several gallery sizes (NIST's FNIR at FPIR) ---------------------------
@dataclass(frozen=True)
class OpenSetSplit:
    """LFW split for the open-set measurement, disjoint by person: ``gallery`` people (in a fixed random
    order, so a gallery of N is the first N), each enrolled with their first photo (two for the probed
    ones that have three or more); ``probes`` one other photo each of the first ``probed`` people;
    ``strangers`` one photo each of people with a single LFW photo; ``calibration`` more such strangers,
    used only to fit the impostor distribution and to train the classifier's "none of them" class."""

    gallery: dict[str, list[Path]]
    probes: dict[str, Path]
    strangers: list[Path]
    calibration: list[Path]

    def photos(self) -> list[Path]:
        """Every photo, in the order worth embedding first."""
        probed = [p for n in self.probes for p in self.gallery[n]] + list(self.probes.values())
        rest = [p for n, files in self.gallery.items() if n not in self.probes for p in files]
        return list(dict.fromkeys(probed + self.calibration + self.strangers + rest))


def open_set_split(
    lfw: Path, people: int = 1000, probed: int = 300, strangers: int = 600, calibration: int = 200, seed: int = 0
) -> OpenSetSplit:
    folders = sorted(p for p in Path(lfw).iterdir() if p.is_dir())
    if not folders:
        raise DataUnavailableError(f"'{lfw}' holds no LFW person folders.")
    photos = {p.name: sorted(p.glob("*.jpg")) for p in folders}
    rng = random.Random(seed)
    several = [n for n, f in photos.items() if len(f) >= 2]
    single = [n for n, f in photos.items() if len(f) == 1]
    rng.shuffle(several)
    rng.shuffle(single)
    chosen = several[:people]
    gallery, probes = {}, {}
    for i, name in enumerate(chosen):
        files = photos[name]
        enroll = 2 if i < probed and len(files) >= 3 else 1
        gallery[name] = files[:enroll]
        if i < probed:
            probes[name] = files[enroll]
    return OpenSetSplit(
        gallery,
        probes,
        [photos[n][0] for n in single[:strangers]],
        [photos[n][0] for n in single[strangers : strangers + calibration]],
    )


@dataclass
class OpenSetBench:
    model: str
    target_fpir: float
    sizes: list[int]
    tails: dict[str, dict]  # method -> the fitted impostor tail (models.thresholds.impostor_tail's record)
    curves: dict[int, list[DetCurve]]  # gallery size -> one DET curve per decision rule
    adaptive: list[dict]  # per size and method: the size-following threshold and the FPIR/FNIR it gave
    fixed: list[dict]  # the same at the model's fixed 1:N threshold
    in_gallery: list[dict]  # the size-following threshold through Gallery.match on a real Chroma gallery
    photos: int
    no_face: int
    seconds: float

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "target_fpir": self.target_fpir,
            "sizes": self.sizes,
            "tails": self.tails,
            "curves": {str(n): [c.to_json() for c in cs] for n, cs in self.curves.items()},
            "adaptive": self.adaptive,
            "fixed": self.fixed,
            "in_gallery": self.in_gallery,
            "photos": self.photos,
            "no_face": self.no_face,
            "seconds": round(self.seconds, 1),
        }

    def text(self) -> str:
        lines = [
            f"open-set identification, model {self.model}, {self.photos} LFW photos ({self.no_face} without a detected face: centre crop), "
            f"{self.seconds:.0f} s",
            "FNIR at FPIR (DET curves):",
            f"{'people':>7} {'rule':<18} {'mated':>6} {'strangers':>9} "
            + " ".join(f"{'@' + format(t, 'g'):>9}" for t in FPIR_TARGETS),
        ]
        for n, curves in self.curves.items():
            for c in curves:
                lines.append(
                    f"{n:>7} {c.label:<18} {c.mated:>6} {c.nonmated:>9} "
                    + " ".join(f"{c.fnir_at(t)[0]:>9.3f}" for t in FPIR_TARGETS)
                )
        lines.append(
            f"threshold that follows the gallery size (target FPIR {self.target_fpir:g}) vs the fixed 1:N threshold:"
        )
        lines.append(
            f"{'people':>7} {'method':<9} {'threshold':>9} {'FPIR':>7} {'FNIR':>7}   {'fixed':>6} {'FPIR':>7} {'FNIR':>7}"
        )
        for a, f in zip(self.adaptive, self.fixed):
            lines.append(
                f"{a['people']:>7} {a['method']:<9} {a['threshold']:>9.3f} {a['fpir']:>7.4f} {a['fnir']:>7.3f}   "
                f"{f['threshold']:>6.3f} {f['fpir']:>7.4f} {f['fnir']:>7.3f}"
            )
        for g in self.in_gallery:
            lines.append(
                f"through Gallery.match on Chroma, {g['people']} people, {g['method']}: threshold {g['threshold']:.3f}, "
                f"FPIR {g['fpir']:.4f}, FNIR {g['fnir']:.3f}"
            )
        return "\n".join(lines)


def bench_open_set(
    pipeline,
    lfw: str | Path | None = None,
    sizes: Sequence[int] = (10, 100, 1000),
    probed: int = 300,
    strangers: int = 600,
    calibration: int = 200,
    target_fpir: float | None = None,
    model: str | None = None,
    classifier: bool = True,
    log: Log = lambda m: None,
) -> OpenSetBench:
    """FNIR at FPIR for every decision rule of the table (``rules.py``) at several gallery sizes, on one LFW
    split (``open_set_split``): the impostor tails of the rules that fit their own are fitted on the
    calibration strangers, the curves measured on the others. It measures only: ``--save-calibration``
    hands the tails to ``evaluation.openset.save_open_set_calibration``."""
    lfw = Path(lfw) if lfw else SHARED_LFW
    if not lfw.is_dir():
        raise DataUnavailableError(f"LFW is not at '{lfw}'; pass --lfw.")
    began = time.perf_counter()
    target = pipeline.settings.target_fpir if target_fpir is None else float(target_fpir)
    spec = pipeline.spec(model)
    sizes = sorted({int(n) for n in sizes})
    split = open_set_split(lfw, max(sizes), probed, strangers, calibration)
    photos = split.photos()
    log(f"embedding {len(photos)} LFW photos with {spec.name} (cached in {pipeline.settings.home}) ...")
    embedded = embed_images(
        pipeline, photos, spec.name, progress=lambda d, t, m: log(f"{d}/{t} {m}") if d % 256 == 0 or d == t else None
    )
    vec = embedded.vectors
    pool = _GalleryPool.of(split, vec)
    calib = np.stack([vec[p] for p in split.calibration])
    distance_rules = [r for r in RULES.values() if r.from_distances]
    tails = _impostor_tails(pool, calib, distance_rules)
    probe_people = [n for n in split.probes]
    q_vectors = np.stack([vec[split.probes[n]] for n in probe_people] + [vec[p] for p in split.strangers])
    truth_all = np.array([pool.index[n] for n in probe_people] + [-1] * len(split.strangers))
    fixed_limit = pipeline.threshold(spec, "identify")
    curves, adaptive, fixed = {}, [], []
    for n in sizes:
        keep = truth_all < n  # mated searches of the first n people, and every stranger
        q, truth = q_vectors[keep], np.where(truth_all[keep] >= 0, truth_all[keep], -1)
        searched = {rule.name: pool.columns(rule, q, n) for rule in distance_rules}
        row = [rule_det(rule, *searched[rule.name], n, truth, fixed_limit) for rule in distance_rules]
        if classifier and "classifier" in RULES:
            row.append(_classifier_curve(pool, calib, q, truth, n, log))
        curves[n] = row
        for rule in (r for r in distance_rules if r.fits_tail):
            scores = rule.person_scores(*searched[rule.name], n)
            limit = open_set_threshold(tails[rule.name], n, target)
            for out, t in ((adaptive, limit), (fixed, fixed_limit)):
                out.append(_threshold_row(scores, truth, n, rule.name, tails[rule.name], t))
    in_gallery = _through_gallery(pipeline, spec.name, split, vec, sizes, tails, target, log)
    return OpenSetBench(
        spec.name,
        target,
        sizes,
        tails,
        curves,
        adaptive,
        fixed,
        in_gallery,
        len(photos),
        len(embedded.failures),
        time.perf_counter() - began,
    )


@dataclass(frozen=True)
class _GalleryPool:
    """The open-set gallery as arrays: every enrolled photo's vector and its person's index, and each
    person's centroid; a gallery of the first n people is the rows whose owner is below n."""

    names: list[str]
    index: dict[str, int]
    vectors: np.ndarray
    owner: np.ndarray
    centroids: np.ndarray

    @classmethod
    def of(cls, split: OpenSetSplit, vec: dict) -> _GalleryPool:
        names = list(split.gallery)
        index = {n: i for i, n in enumerate(names)}
        g_paths = [p for n in names for p in split.gallery[n]]
        g_vectors = np.stack([vec[p] for p in g_paths])
        g_owner = np.array([index[p.parent.name] for p in g_paths])
        centroids = np.stack([centroid(g_vectors[g_owner == i]) for i in range(len(names))])
        return cls(names, index, g_vectors, g_owner, centroids)

    def columns(self, rule, searches: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The distances of ``searches`` to what ``rule`` compares with among the first n people, and each
        column's person index."""
        if rule.compares_with == "centroids":
            return distance_matrix(searches, self.centroids[:n]), np.arange(n)
        kept = self.owner < n
        return distance_matrix(searches, self.vectors[kept]), self.owner[kept]


def _impostor_tails(pool: _GalleryPool, calib: np.ndarray, distance_rules: list) -> dict[str, dict]:
    """The impostor tails: calibration strangers against every person of the pool, for each rule that
    fits its own."""
    tails = {}
    for rule in (r for r in distance_rules if r.fits_tail):
        scores = rule.person_scores(*pool.columns(rule, calib, len(pool.names)), len(pool.names))
        tails[rule.name] = fit_impostor_tail(scores.ravel()).to_json()
    return tails


def _classifier_curve(
    pool: _GalleryPool, calib: np.ndarray, q: np.ndarray, truth: np.ndarray, n: int, log: Log
) -> DetCurve:
    """The classifier's DET curve on a gallery of the first n people, trained with the calibration
    strangers as its "none of them" class."""
    log(f"training the classifier on {n} people + {len(calib)} strangers ...")
    mated = truth >= 0
    cols = pool.owner < n
    trained = train_classifier(pool.vectors[cols], [pool.names[i] for i in pool.owner[cols]], calib)
    probs, none = trained.probabilities(q)
    order = np.array([pool.index[p] for p in trained.people])
    best = order[probs.argmax(1)]
    p_best = probs.max(1)
    score = np.where(p_best > none, 1.0 - p_best, NEVER)
    return det(Searches.of(score[mated], best[mated] == truth[mated], score[~mated]), "classifier")


def _threshold_row(scores: np.ndarray, truth: np.ndarray, n: int, method: str, tail: dict, t: float) -> dict:
    """What threshold ``t`` gives one rule on a gallery of n people: FPIR, FNIR and the tail's expected FPIR."""
    mated = truth >= 0
    best, score = scores.argmin(1), scores.min(1)
    s = Searches.of(score[mated], best[mated] == truth[mated], score[~mated])
    return {
        "people": n,
        "method": method,
        "threshold": round(t, 4),
        "fpir": round(s.fpir(t), 5),
        "fnir": round(s.fnir(t), 4),
        "expected_fpir": round(expected_fpir(tail, n, t), 5),
    }


def _through_gallery(pipeline, model, split, vec, sizes, tails, target, log) -> list[dict]:
    """The product's own path at the largest size: a Chroma gallery, ``Gallery.match`` with its default
    (size-following) threshold from these tails."""
    n = max(sizes)
    names = list(split.gallery)[:n]
    out = []
    with tempfile.TemporaryDirectory(prefix="facedemo-openset-") as tmp:
        home = Path(tmp) / "home"
        write_json(data.mine(home, "openset"), {model: {"tails": tails}})
        gallery = Gallery.open(
            Pipeline(replace(pipeline.settings, home=home, target_fpir=target)),
            open_store(Path(tmp) / "g", namespace=None),
        )
        rows = [
            (name, p.name, image_sha(p), (0.0, 0.0, 1.0, 1.0), vec[p]) for name in names for p in split.gallery[name]
        ]
        store_embedded(gallery, model, rows)
        probes = [(vec[p], n_) for n_, p in split.probes.items() if n_ in names] + [
            (vec[p], None) for p in split.strangers
        ]
        faces = [EmbeddedFace(Face((0.0, 0.0, 1.0, 1.0), 1.0, ((0.0, 0.0),) * 5), None, v) for v, _ in probes]
        for method in tails:  # the rules with a size-following threshold of their own
            log(f"Gallery.match with {method} on {len(names)} people ...")
            result = gallery.match(faces, model, 1, method)
            named = [m.name for m in result.faces]
            mated = [(got, want) for got, (_, want) in zip(named, probes) if want is not None]
            strangers_named = [got for got, (_, want) in zip(named, probes) if want is None and got is not None]
            out.append(
                {
                    "people": result.people,
                    "method": method,
                    "threshold": round(result.threshold, 4),
                    "fpir": round(len(strangers_named) / len(split.strangers), 5),
                    "fnir": round(sum(got != want for got, want in mated) / max(1, len(mated)), 4),
                }
            )
    return out
