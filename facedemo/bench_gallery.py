"""Gallery benchmarks.

``bench_gallery``: fill a Chroma collection with synthetic 128-d unit vectors (clusters of ten "photos"
around random "people", spread like dlib embeddings, or uniform on the sphere) and measure single-query
latency and recall@1 against exact numpy search, embedded (PersistentClient) and through a local
``chroma run`` server.

``bench_identify``: the three identification methods on real photos: LFW people enrolled with a few
photos each, probed with their other photos and with photos of strangers.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .errors import FaceDemoError, GalleryError
from .settings import REPO_ROOT

Log = Callable[[str], None]
SHARED_LFW = REPO_ROOT.parent / "shared" / "faces" / "lfw"


# -- a local Chroma server ----------------------------------------------------------------------------
def chroma_command() -> str | None:
    """The `chroma` CLI of this environment (beside the interpreter), else one on PATH."""
    import sys

    beside = Path(sys.executable).parent / "chroma"
    return str(beside) if beside.exists() else shutil.which("chroma")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def chroma_server(path: str | Path, timeout_s: float = 60.0) -> Iterator[tuple[str, int]]:
    """``chroma run`` on a free loopback port for the duration of the block; yields (host, port)."""
    command = chroma_command()
    if command is None:
        raise GalleryError("The `chroma` command is not installed; `pip install chromadb` provides it.")
    port = free_port()
    log = open(Path(path).parent / f"chroma-{port}.log", "wb") if Path(path).parent.exists() else subprocess.DEVNULL
    process = subprocess.Popen([command, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise GalleryError(f"`chroma run` exited with status {process.returncode} before it was ready.")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise GalleryError(f"`chroma run` did not answer on port {port} within {timeout_s:.0f} s.")
            time.sleep(0.2)
        yield "127.0.0.1", port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log is not subprocess.DEVNULL:
            log.close()


# -- synthetic scale benchmark ------------------------------------------------------------------------
def synthetic_vectors(n: int, dim: int = 128, per_person: int = 10, spread: float = 0.025, uniform: bool = False, seed: int = 0) -> np.ndarray:
    """Unit vectors; clustered by default: ``per_person`` around each random centre, ~0.38 apart within a
    cluster (like dlib photos of one person) and ~1.4 between clusters."""
    rng = np.random.default_rng(seed)
    if uniform:
        v = rng.standard_normal((n, dim))
    else:
        centres = rng.standard_normal((max(1, n // per_person), dim))
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        v = centres[np.arange(n) % len(centres)] + spread * rng.standard_normal((n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _queries(data: np.ndarray, count: int, spread: float, seed: int) -> np.ndarray:
    """New photos of stored people: a stored vector moved by the same noise as the clusters."""
    rng = np.random.default_rng(seed + 1)
    picks = data[rng.integers(0, len(data), count)]
    q = picks + spread * rng.standard_normal(picks.shape)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


@dataclass
class ScaleRow:
    backend: str
    size: int
    fill_s: float
    p50_ms: float
    p99_ms: float
    recall_at_1: float
    numpy_p50_ms: float


@dataclass
class ScaleReport:
    rows: list[ScaleRow] = field(default_factory=list)
    queries: int = 0
    distribution: str = "clustered"

    def to_json(self) -> dict:
        return {"queries": self.queries, "distribution": self.distribution, "rows": [r.__dict__ for r in self.rows]}

    def text(self) -> str:
        lines = [f"{self.queries} single queries (n_results=1) per size, {self.distribution} 128-d unit vectors",
                 f"{'backend':<9} {'size':>7} {'fill s':>7} {'p50 ms':>7} {'p99 ms':>7} {'recall@1':>8} {'numpy p50 ms':>12}"]
        for r in self.rows:
            lines.append(f"{r.backend:<9} {r.size:>7} {r.fill_s:>7.1f} {r.p50_ms:>7.2f} {r.p99_ms:>7.2f} {r.recall_at_1:>8.3f} {r.numpy_p50_ms:>12.2f}")
        return "\n".join(lines)


def _measure(client, backend: str, size: int, queries: int, uniform: bool, log: Log) -> ScaleRow:
    spread = 0.025
    data = synthetic_vectors(size, uniform=uniform)
    probe = _queries(data, queries, spread, seed=size) if not uniform else synthetic_vectors(queries, uniform=True, seed=size + 7)
    np_times = []  # before the fill: a server indexes in the background afterwards
    for q in probe[:50]:
        t = time.perf_counter()
        int(np.argmax(data @ q))
        np_times.append(time.perf_counter() - t)
    name = f"bench-{size}"
    with contextlib.suppress(Exception):
        client.delete_collection(name)
    col = client.create_collection(name, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None)
    batch = min(5000, client.get_max_batch_size())
    start = time.perf_counter()
    for i in range(0, size, batch):
        col.add(ids=[str(j) for j in range(i, min(size, i + batch))], embeddings=data[i : i + batch])
    fill = time.perf_counter() - start
    log(f"{backend} {size}: filled in {fill:.1f} s")
    for q in probe[:10]:  # warm-up
        col.query(query_embeddings=q[None, :], n_results=1, include=["distances"])
    times, hits = [], 0
    exact = np.argmax(probe @ data.T, axis=1)
    for q, truth in zip(probe, exact):
        t = time.perf_counter()
        got = col.query(query_embeddings=q[None, :], n_results=1, include=["distances"])
        times.append(time.perf_counter() - t)
        hits += int(got["ids"][0][0]) == int(truth)
    client.delete_collection(name)
    ms = np.array(times) * 1000
    return ScaleRow(backend, size, round(fill, 2), round(float(np.percentile(ms, 50)), 3), round(float(np.percentile(ms, 99)), 3),
                    round(hits / len(probe), 4), round(float(np.median(np_times) * 1000), 3))


def bench_gallery(sizes: list[int], backends: list[str], queries: int = 200, uniform: bool = False, log: Log = lambda m: None) -> ScaleReport:
    from .store import make_client

    unknown = set(backends) - {"embedded", "server"}
    if unknown or not backends:
        raise FaceDemoError("--backends takes 'embedded', 'server' or both.")
    if any(s < 1 for s in sizes) or queries < 1:
        raise FaceDemoError("Sizes and the number of queries must be positive.")
    report = ScaleReport(queries=queries, distribution="uniform" if uniform else "clustered")
    with tempfile.TemporaryDirectory(prefix="facedemo-bench-") as tmp:
        if "embedded" in backends:
            client = make_client(Path(tmp) / "embedded")
            for size in sizes:
                report.rows.append(_measure(client, "embedded", size, queries, uniform, log))
        if "server" in backends:
            (Path(tmp) / "server").mkdir()
            with chroma_server(Path(tmp) / "server" / "db") as (host, port):
                client = make_client(host=host, port=port)
                for size in sizes:
                    report.rows.append(_measure(client, "server", size, queries, uniform, log))
    return report


# -- identification methods on real photos --------------------------------------------------------------
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
    from .detect import central_face
    from .gallery import METHODS, Gallery, _sha
    from .pipeline import analyze_many
    from .store import FaceRecord, open_store, record_id

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
        analysed = analyze_many(pipeline, [f for _, f in items], model)
        records, vectors = [], []
        for (name, path), result in zip(items, analysed):
            if result.faces:
                face = next(f for f in result.faces if f.face == central_face([x.face for x in result.faces], result.image.size))
                sha = _sha(path)
                records.append(FaceRecord(record_id(model, sha, face.face.box), name, path.name, sha, face.face.box, model, ""))
                vectors.append(face.embedding)
        gallery.store.add(model, records, np.stack(vectors), [None] * len(records))
        gallery.reindex(model)
        probe_faces, truths = [], []
        for (path, truth), result in zip(probes, analyze_many(pipeline, [p for p, _ in probes], model)):
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
