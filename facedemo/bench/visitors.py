"""``bench visitors``: what a public demo keeps of its visitors. Waves of visitors each store a small
private gallery (people, faces with their thumbnails and regions, one model's vectors and its people index)
through ``Services`` in public mode, then expire; the resident memory of the process is read after each
wave. No model runs (the vectors are synthetic), so what grows is the store's and the services' own.

``--live N``: N visitors are live at once (each has stored a face and none has left): the process's open
files, threads and resident memory at the peak, and its memory once they have all expired."""

from __future__ import annotations

import gc
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InvalidParameterError
from ..gallery.store import FaceRecord, ModelRecord, PersonRecord, face_id, record_id
from ..settings import Settings

Log = Callable[[str], None]
MODEL = "dlib-resnet"  # only the name and its 128 dimensions are used: no model is loaded


def resident_mb() -> float | None:
    """This process's resident memory in MB (Linux's /proc), or None where it cannot be read."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def open_files() -> int | None:
    """How many files this process holds open (Linux's /proc), or None where it cannot be read."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def threads() -> int | None:
    """How many threads this process runs (Linux's /proc), or None where it cannot be read."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


@dataclass
class Wave:
    visitors: int
    seconds: float
    resident_mb: float | None  # after the wave expired
    stored_namespaces: int  # left in the store after expiry (0 when expiry works)
    tracked: int  # visitors the services still keep a last-request time for


@dataclass
class VisitorsReport:
    per_wave: int
    people: int
    faces: int
    waves: list[Wave] = field(default_factory=list)

    @property
    def growth(self) -> float | None:
        """Resident memory after the last wave over after the first."""
        first, last = self.waves[0].resident_mb, self.waves[-1].resident_mb
        return None if not first or last is None else last / first

    def to_json(self) -> dict:
        return {**asdict(self), "growth": self.growth}

    def text(self) -> str:
        lines = [
            f"{len(self.waves)} waves of {self.per_wave} visitors, each storing {self.people} people x {self.faces} faces "
            f"({MODEL} vectors, thumbnails, regions), then expired",
            f"{'wave':>4} {'visitors':>9} {'seconds':>8} {'resident MB':>12} {'left in store':>14} {'tracked':>8}",
        ]
        total = 0
        for i, w in enumerate(self.waves, 1):
            total += w.visitors
            rss = f"{w.resident_mb:.0f}" if w.resident_mb is not None else "n/a"
            lines.append(f"{i:>4} {total:>9} {w.seconds:>8.1f} {rss:>12} {w.stored_namespaces:>14} {w.tracked:>8}")
        if self.growth is not None:
            lines.append(f"resident memory after the last wave / after the first: {self.growth:.2f}x")
        return "\n".join(lines)


def _visit(services, session: str, people: int, faces: int, rng: np.random.Generator, thumb: Image.Image) -> None:
    store = services.gallery(session).store
    persons = [PersonRecord(uuid.uuid4().hex, f"Visitor person {i}") for i in range(people)]
    store.put_persons(persons)
    records, models, vectors = [], [], []
    for person in persons:
        centre = rng.standard_normal(128)
        for _ in range(faces):
            sha = uuid.uuid4().hex
            box = (10.0, 10.0, 90.0, 90.0)
            fid = face_id(sha, box)
            records.append(FaceRecord(fid, person.id, f"{sha[:8]}.jpg", sha, box))
            models.append(ModelRecord(record_id(MODEL, sha, box), fid, person.id))
            vectors.append(centre + 0.1 * rng.standard_normal(128))
    store.put_faces(records, [thumb] * len(records), [thumb] * len(records))
    store.put_vectors(MODEL, models, np.asarray(vectors, np.float32))
    vecs = np.asarray(vectors, np.float32).reshape(people, faces, 128).mean(axis=1)
    store.set_centroids(MODEL, {p.id: (p.name, v) for p, v in zip(persons, vecs)})
    store.query(MODEL, vecs[:1], 3)


def bench_visitors(
    waves: int = 5,
    per_wave: int = 100,
    people: int = 2,
    faces: int = 3,
    gallery: str | Path | None = None,
    log: Log | None = None,
    *,
    make_services: Callable[[Settings], object],
) -> VisitorsReport:
    """``make_services`` builds the public-mode services from their settings (the CLI passes ``Services``:
    a bench sits below the services layer and never imports it)."""
    if waves < 1 or per_wave < 1 or people < 1 or faces < 1:
        raise InvalidParameterError("--waves, --visitors, --people and --faces must each be at least 1.")
    with tempfile.TemporaryDirectory(prefix="facedemo-bench-visitors-") as scratch:
        folder = Path(gallery) if gallery else Path(scratch) / "gallery"
        settings = Settings.from_env(public=True, gallery_dir=folder, home=Path(scratch) / "home")
        services = make_services(settings)
        report = VisitorsReport(per_wave, people, faces)
        rng = np.random.default_rng(0)
        thumb = Image.new("RGB", (112, 112), (128, 96, 80))
        for wave in range(waves):
            start = time.perf_counter()
            sessions = [uuid.uuid4().hex for _ in range(per_wave)]
            for session in sessions:
                _visit(services, session, people, faces, rng, thumb)
            services.visitors.expire(0.0)
            gc.collect()
            row = Wave(
                per_wave,
                time.perf_counter() - start,
                resident_mb(),
                len(services.store.namespaces()),
                services.visitors.count(),
            )
            report.waves.append(row)
            if log:
                log(f"wave {wave + 1}/{waves}: {row.resident_mb or 0:.0f} MB resident, {row.seconds:.1f} s")
        return report


@dataclass
class Sample:
    live: int  # visitors with a gallery and no expiry yet
    open_files: int | None
    threads: int | None
    resident_mb: float | None
    open_clients: int  # visitors' Chroma clients open at this moment


@dataclass
class LiveReport:
    live: int
    people: int
    faces: int
    seconds: float
    before: Sample  # after a warm-up of a few visitors who came and left
    samples: list[Sample] = field(default_factory=list)  # as visitors arrive
    after: Sample | None = None  # once every one expired
    stored_namespaces: int = 0  # left in the store after expiry

    @property
    def peak_open_files(self) -> int | None:
        return max((s.open_files for s in self.samples if s.open_files is not None), default=None)

    @property
    def peak_threads(self) -> int | None:
        return max((s.threads for s in self.samples if s.threads is not None), default=None)

    @property
    def memory_back(self) -> float | None:
        """Resident memory once they left over before they came."""
        if not self.after or not self.after.resident_mb or not self.before.resident_mb:
            return None
        return self.after.resident_mb / self.before.resident_mb

    def to_json(self) -> dict:
        return {
            **asdict(self),
            "peak_open_files": self.peak_open_files,
            "peak_threads": self.peak_threads,
            "memory_back": self.memory_back,
        }

    def text(self) -> str:
        def row(label: str, s: Sample) -> str:
            rss = f"{s.resident_mb:.0f}" if s.resident_mb is not None else "n/a"
            return f"{label:>14} {s.live:>6} {s.open_files or 0:>10} {s.threads or 0:>8} {rss:>12} {s.open_clients:>13}"

        lines = [
            f"{self.live} visitors live at once, each storing {self.people} people x {self.faces} faces, "
            f"in {self.seconds:.0f} s; then all expired",
            f"{'':>14} {'live':>6} {'open files':>10} {'threads':>8} {'resident MB':>12} {'open clients':>13}",
            row("before", self.before),
            *(row("arriving", s) for s in self.samples),
        ]
        if self.after:
            lines.append(row("after expiry", self.after))
        lines.append(f"peak: {self.peak_open_files} open files, {self.peak_threads} threads")
        if self.memory_back is not None:
            lines.append(f"resident memory after they left / before they came: {self.memory_back:.2f}x")
        lines.append(f"visitor namespaces left in the store: {self.stored_namespaces}")
        return "\n".join(lines)


def _sample(services, live: int) -> Sample:
    visitors = getattr(services.store, "visitors", None)
    return Sample(live, open_files(), threads(), resident_mb(), visitors.open_count() if visitors else 0)


def bench_live(
    live: int = 1000,
    people: int = 1,
    faces: int = 1,
    gallery: str | Path | None = None,
    log: Log | None = None,
    *,
    make_services: Callable[[Settings], object],
    every: int = 100,
) -> LiveReport:
    """``live`` public visitors who each store ``people`` x ``faces`` and stay (none expires until all have
    come): open files, threads and resident memory as they arrive, then after they all expire."""
    if live < 1 or people < 1 or faces < 1:
        raise InvalidParameterError("--live, --people and --faces must each be at least 1.")
    with tempfile.TemporaryDirectory(prefix="facedemo-bench-visitors-") as scratch:
        folder = Path(gallery) if gallery else Path(scratch) / "gallery"
        settings = Settings.from_env(public=True, gallery_dir=folder, home=Path(scratch) / "home")
        services = make_services(settings)
        rng = np.random.default_rng(0)
        thumb = Image.new("RGB", (112, 112), (128, 96, 80))
        for _ in range(10):  # Chroma's libraries and the first caches are loaded before "before"
            _visit(services, uuid.uuid4().hex, people, faces, rng, thumb)
        services.visitors.expire(0.0)
        gc.collect()
        report = LiveReport(live, people, faces, 0.0, _sample(services, 0))
        start = time.perf_counter()
        for n in range(1, live + 1):
            _visit(services, uuid.uuid4().hex, people, faces, rng, thumb)
            if n % every == 0 or n == live:
                report.samples.append(_sample(services, n))
                if log:
                    s = report.samples[-1]
                    log(f"{n} live: {s.open_files} open files, {s.threads} threads, {s.resident_mb or 0:.0f} MB")
        report.seconds = time.perf_counter() - start
        services.visitors.expire(0.0)
        gc.collect()
        report.after = _sample(services, 0)
        report.stored_namespaces = len(services.store.namespaces())
        return report
