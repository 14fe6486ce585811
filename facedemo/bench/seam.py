"""The gallery seam's own costs: identify latency on a group photo against galleries of many people and the
Chroma calls one identify makes (``bench seam``), enrollment with every model against one model, and the
rate at which a model added later is filled in from the stored face regions.

The galleries are real Chroma (in memory) holding one synthetic unit vector per person plus the people who
appear in the photo, enrolled from their own photos, so the photo's faces are named as in a real gallery.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ImageError, NoFaceError, TooManyFacesError
from ..gallery.core import Gallery
from ..gallery.enroll import store_embedded
from ..gallery.store import ChromaStore, make_client
from ..models.registry import base_models
from ..pipeline import Pipeline

Log = Callable[[str], None]


class CountingClient:
    """A Chroma client (or collection) that counts the calls made on it and on the collections it returns."""

    def __init__(self, target, calls: list):
        self._target, self._calls = target, calls

    def __getattr__(self, name):
        value = getattr(self._target, name)
        if not callable(value):
            return value

        def call(*args, **kwargs):
            self._calls.append(name)
            out = value(*args, **kwargs)
            return CountingClient(out, self._calls) if type(out).__name__ == "Collection" else out

        return call


@dataclass
class SeamReport:
    model: str
    photo: str
    faces: int
    identify: dict = field(default_factory=dict)  # people -> {"seconds", "match_seconds", "chroma_calls"}
    enroll: dict = field(default_factory=dict)  # "one model" / "every model" -> seconds per photo
    backfill: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "photo": self.photo,
            "faces": self.faces,
            "identify": self.identify,
            "enroll": self.enroll,
            "backfill": self.backfill,
        }

    def text(self) -> str:
        lines = [
            f"identify {self.photo} ({self.faces} faces) with {self.model}, centroid method, median of the runs:",
            f"{'people':>8} {'identify s':>11} {'match ms':>9} {'chroma calls':>13}",
        ]
        for n, row in self.identify.items():
            lines.append(
                f"{n:>8} {row['seconds']:>11.3f} {row['match_seconds'] * 1000:>9.1f} {row['chroma_calls']:>13}"
            )
        if self.enroll:
            e = self.enroll
            lines.append(
                f"enroll, s per photo: one model {e['one model']:.3f}, every model ({', '.join(e['models'])}) "
                f"{e['every model']:.3f}: {e['every model'] / e['one model']:.2f}x"
            )
        if self.backfill:
            b = self.backfill
            lines.append(
                f"backfill {b['model']}: {b['added']} faces in {b['seconds']:.2f} s = {b['faces_per_s']:.1f} faces/s"
            )
        return "\n".join(lines)


def bench_seam(
    pipeline: Pipeline,
    photo: Path,
    people_photos: dict[str, Sequence[Path]],
    sizes: Sequence[int] = (10, 1000, 10000),
    repeats: int = 5,
    enroll_photos: Sequence[Path] = (),
    log: Log = lambda m: None,
) -> SeamReport:
    model = pipeline.spec(None).name
    picture = pipeline.load(photo)
    faces = pipeline.detect(picture)
    report = SeamReport(model, Path(photo).name, len(faces))
    dim = pipeline.spec(model).dim
    rng = np.random.default_rng(0)
    for size in sizes:
        calls: list = []
        store = ChromaStore(CountingClient(make_client(ephemeral=True), calls), None, "b" + uuid.uuid4().hex[:12])
        gallery = Gallery.open(pipeline, store, models=(model,))
        for name, files in people_photos.items():
            for path in files:
                try:
                    gallery.enroll(name, [path], model, confirm=True)  # the cost of storing, as before the guards
                except (
                    ImageError,
                    NoFaceError,
                    TooManyFacesError,
                ):  # a cast photo without a clear single face: the others suffice
                    continue
        fillers = max(0, size - len(people_photos))
        log(f"{size:,} people: {fillers:,} synthetic ...")
        vectors = rng.normal(size=(fillers, dim)).astype(np.float32)
        rows = [(f"synthetic {i}", f"s{i}.jpg", f"{i:064x}", (0.0, 0.0, 1.0, 1.0), vectors[i]) for i in range(fillers)]
        for start in range(0, len(rows), 5000):
            store_embedded(gallery, model, rows[start : start + 5000])
        embedded = pipeline.embed_faces(picture, faces, model, flip=gallery.flip(model))
        gallery.identify(picture, model)  # warm: the collections are opened
        seconds, matched, counted = [], [], []
        for _ in range(repeats):
            calls.clear()
            began = time.perf_counter()
            gallery.identify(picture, model)
            seconds.append(time.perf_counter() - began)
            counted.append(len(calls))
            began = time.perf_counter()
            gallery.match(embedded, model)
            matched.append(time.perf_counter() - began)
        report.identify[size] = {
            "seconds": statistics.median(seconds),
            "match_seconds": statistics.median(matched),
            "chroma_calls": max(counted),
        }
        store.drop(compact=False)
    if enroll_photos:
        report.enroll, report.backfill = _enroll_costs(pipeline, list(enroll_photos), log)
    return report


def _enroll_costs(pipeline: Pipeline, photos: list[Path], log: Log) -> tuple[dict, dict]:
    """Seconds per photo to enroll with one model and with every available one, in turn, then the
    backfill rate of the second model into the one-model gallery."""
    base = base_models(pipeline.settings)  # built-in and declared models, not fine-tuned ones
    every = [s.name for s in pipeline.models() if s.available and s.name in base]
    first = pipeline.spec(None).name
    timings: dict[str, list] = {"one model": [], "every model": []}
    galleries = {}
    for label, models in (("one model", (first,)), ("every model", tuple(every))):
        folder = Path(tempfile.mkdtemp(prefix="facedemo-bench-"))
        galleries[label] = Gallery.open(
            pipeline, ChromaStore(make_client(ephemeral=True), folder, "e" + uuid.uuid4().hex[:12]), models=models
        )
    for model in every:  # loaded before any timing
        pipeline.embedder(model)
    for i, path in enumerate(photos):
        for label in ("one model", "every model") if i % 2 else ("every model", "one model"):  # alternate the order
            began = time.perf_counter()
            try:
                galleries[label].enroll(f"person {i}", [path], first, confirm=True)
            except (ImageError, NoFaceError, TooManyFacesError):
                continue
            timings[label].append(time.perf_counter() - began)
    enroll = {label: statistics.median(t) for label, t in timings.items()} | {"models": every, "photos": len(photos)}
    log("backfilling ...")
    later = [m for m in every if m != first]
    backfill = galleries["one model"].backfill(later[0]).to_json() if later else {}
    for g in galleries.values():
        g.store.drop(compact=False)
        shutil.rmtree(g.store.thumbs_dir.parent, ignore_errors=True)
    return enroll, backfill
