"""A model that came after the faces were enrolled: every face it holds no vector of is embedded from the
face region the gallery kept (no original photo is needed), and reported."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ModelUnavailableError
from ..progress import Progress
from ..progress import report as report_progress
from .regions import region_face


@dataclass(frozen=True)
class BackfillReport:
    """A model filled in from the stored face regions."""

    model: str
    added: int = 0
    without_region: int = 0  # faces enrolled before regions were kept: their photos must be imported again
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.added / self.seconds if self.seconds > 0 else 0.0

    def note(self) -> str | None:
        if not self.without_region:
            return None
        return (
            f"{self.without_region} face(s) were enrolled before facedemo kept face regions, so {self.model} cannot embed them "
            "without their photos: import those photos again to add them."
        )

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "added": self.added,
            "without_region": self.without_region,
            "seconds": round(self.seconds, 3),
            "faces_per_s": round(self.rate, 2),
            "note": self.note(),
        }


def backfill(gallery, model=None, progress: Progress | None = None, batch: int = 32) -> BackfillReport:
    """Embed with ``model`` (a name or spec) every enrolled face of ``gallery`` it holds no vector of, from
    the stored face regions: a fine-tuned model, the CASIA model after its conversion, or facenet-vggface2
    once its weights are there."""
    spec = gallery.pipeline.spec(model)  # resolved once: every face below is aligned and embedded with it
    model = spec.name
    started = time.perf_counter()
    with gallery.store.lock:
        held = {r.face_id for r in gallery.store.vectors(model)[0]}
        todo = [f for f in gallery.store.faces() if f.id not in held]
    with_region = [f for f in todo if f.region is not None and f.landmarks]
    report = BackfillReport(model, 0, len(todo) - len(with_region))
    if not with_region:
        return report
    gallery.pipeline.embedder(spec)  # unavailable: ModelUnavailableError before any work
    flip = gallery.flip(spec)
    report_progress(progress, 0, len(with_region), f"adding faces to {model}")
    done = 0
    for start in range(0, len(with_region), batch):
        part = with_region[start : start + batch]
        kept, crops = [], []
        for f in part:
            region = gallery.store.region(f.id)
            if region is None:
                report = BackfillReport(model, report.added, report.without_region + 1)
                continue
            crops.append(gallery.pipeline.aligned(region, region_face(f), spec))
            kept.append(f)
        if kept:
            vectors = gallery.pipeline.embed_crops(spec, crops, flip)
            with gallery.store.lock:
                gallery.write_vectors(model, kept, vectors, flip)
            report = BackfillReport(model, report.added + len(kept), report.without_region)
        done += len(part)
        report_progress(progress, done, len(with_region), f"{model}: {done} of {len(with_region)} faces")
    return BackfillReport(model, report.added, report.without_region, time.perf_counter() - started)


def fill_in(gallery, models: Sequence[str], progress: Progress | None = None) -> dict[str, BackfillReport]:
    """Fill in every model of ``models`` that lacks faces (``Gallery.backfill``); unavailable ones are left out."""
    done = {}
    for model in models:
        if gallery.missing(model):
            try:
                done[model] = gallery.backfill(model, progress)
            except ModelUnavailableError:
                continue
    return done
