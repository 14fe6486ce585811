"""``bench identify``: the identification methods on real photos: LFW people enrolled with a few photos
each, probed with their other photos and with photos of strangers."""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import FaceDemoError
from ..gallery.core import Gallery
from ..gallery.identify import METHODS
from ..gallery.store import FaceRecord, open_store, record_id
from ..settings import SHARED_LFW
from ..vision.detect import central_face
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
        return {**self.__dict__, "rank1": self.rank1, "stranger_rejection": self.stranger_rejection, "open_set_accuracy": self.open_set}

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
        return {"model": self.model, "threshold": self.threshold, "people": self.people, "enrolled_photos": self.enrolled_photos,
                "seconds": round(self.seconds, 1), "methods": [s.to_json() for s in self.scores],
                "sweep": {f"{t:.2f}": [s.to_json() for s in row] for t, row in self.sweep.items()}}

    def text(self) -> str:
        known = self.scores[0].known if self.scores else 0
        strangers = self.scores[0].strangers if self.scores else 0
        lines = [f"{self.people} people enrolled ({self.enrolled_photos} photos), {known} probes of them and {strangers} strangers; "
                 f"model {self.model}, threshold {self.threshold:.3f} ({self.seconds:.0f} s)",
                 f"{'method':<9} {'rank-1':>7} {'wrong':>6} {'missed':>7} {'top-3':>6} {'strangers rejected':>19} {'open-set acc':>12}"]
        for s in self.scores:
            lines.append(f"{s.method:<9} {s.rank1:>7.3f} {s.wrong:>6} {s.missed:>7} {s.top_k_hits / max(1, s.known):>6.3f} "
                         f"{s.rejected:>8}/{s.strangers:<4} ({s.stranger_rejection:.3f}) {s.open_set:>8.3f}")
        lines.append("threshold sweep: rank-1 correct / strangers rejected / open-set accuracy")
        lines.append(f"{'threshold':>9}  " + "  ".join(f"{s.method:^20}" for s in self.scores))
        for t, row in self.sweep.items():
            lines.append(f"{t:>9.2f}  " + "  ".join(f"{s.rank1:.3f} / {s.stranger_rejection:.3f} / {s.open_set:.3f}" for s in row))
        return "\n".join(lines)


def lfw_split(lfw: Path, people: int, enroll: int, strangers: int, probes_per_person: int = 5, seed: int = 0):
    """Enrolled people (>= enroll + 2 photos): ``enroll`` photos each to enroll, up to ``probes_per_person``
    others to probe; strangers: one photo each of other people."""
    folders = sorted(p for p in lfw.iterdir() if p.is_dir())
    if not folders:
        raise FaceDemoError(f"'{lfw}' holds no LFW person folders.")
    photos = {p.name: sorted(p.glob("*.jpg")) for p in folders}
    rng = random.Random(seed)
    eligible = [n for n, f in photos.items() if len(f) >= enroll + 2]
    chosen = sorted(rng.sample(eligible, min(people, len(eligible))))
    others = sorted(set(photos) - set(chosen))
    enrolled = {n: photos[n][:enroll] for n in chosen}
    probes = [(f, n) for n in chosen for f in photos[n][enroll : enroll + probes_per_person]]
    probes += [(photos[n][0], None) for n in rng.sample(others, min(strangers, len(others)))]
    return enrolled, probes


def bench_identify(pipeline, lfw: str | Path | None = None, people: int = 40, enroll: int = 5, strangers: int = 150,
                   model: str | None = None, top_k: int = 3, log: Log = lambda m: None) -> IdentifyBench:
    lfw = Path(lfw) if lfw else SHARED_LFW
    if not lfw.is_dir():
        raise FaceDemoError(f"LFW is not at '{lfw}'; pass --lfw.")
    began = time.perf_counter()
    enrolled, probes = lfw_split(lfw, people, enroll, strangers)
    model = pipeline.spec(model).name
    with tempfile.TemporaryDirectory(prefix="facedemo-identify-") as tmp:
        gallery = Gallery(pipeline, open_store(tmp, namespace=None))
        # LFW photos often show a second face in the background; its subject is the central one.
        items = [(n, f) for n, files in enrolled.items() for f in files]
        log(f"embedding {len(items)} gallery photos and {len(probes)} probes ...")
        analysed = pipeline.analyze_many([f for _, f in items], model)
        records, vectors = [], []
        for (name, path), result in zip(items, analysed):
            if result.faces:
                face = next(f for f in result.faces if f.face == central_face([x.face for x in result.faces], result.image.size))
                sha = image_sha(path)
                records.append(FaceRecord(record_id(model, sha, face.face.box), name, path.name, sha, face.face.box, model, ""))
                vectors.append(face.embedding)
        gallery.store.add(model, records, np.stack(vectors), [None] * len(records))
        gallery.reindex(model)
        probe_faces, truths = [], []
        for (path, truth), result in zip(probes, pipeline.analyze_many([p for p, _ in probes], model)):
            if result.faces:
                probe_faces.append(next(f for f in result.faces if f.face == central_face([x.face for x in result.faces], result.image.size)))
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
        scores = [score(m, limit) for m in METHODS]
        sweep = {t: [score(m, t) for m in METHODS] for t in SWEEP}
    return IdentifyBench(model, limit, len(enrolled), len(records), scores, sweep, time.perf_counter() - began)
