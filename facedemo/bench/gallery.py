"""``bench gallery``: fill a Chroma collection with synthetic 128-d unit vectors (clusters of ten "photos"
around random "people", spread like dlib embeddings, or uniform on the sphere) and measure single-query
latency and recall@1 against exact numpy search, embedded (PersistentClient) and through a local
``chroma run`` server."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InvalidParameterError
from ..gallery.server import chroma_server
from ..gallery.store import make_client

Log = Callable[[str], None]


def synthetic_vectors(
    n: int, dim: int = 128, per_person: int = 10, spread: float = 0.025, uniform: bool = False, seed: int = 0
) -> np.ndarray:
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
        lines = [
            f"{self.queries} single queries (n_results=1) per size, {self.distribution} 128-d unit vectors",
            f"{'backend':<9} {'size':>7} {'fill s':>7} {'p50 ms':>7} {'p99 ms':>7} {'recall@1':>8} {'numpy p50 ms':>12}",
        ]
        for r in self.rows:
            lines.append(
                f"{r.backend:<9} {r.size:>7} {r.fill_s:>7.1f} {r.p50_ms:>7.2f} {r.p99_ms:>7.2f} {r.recall_at_1:>8.3f} {r.numpy_p50_ms:>12.2f}"
            )
        return "\n".join(lines)


def _measure(client, backend: str, size: int, queries: int, uniform: bool, log: Log) -> ScaleRow:
    spread = 0.025
    data = synthetic_vectors(size, uniform=uniform)
    probe = (
        _queries(data, queries, spread, seed=size)
        if not uniform
        else synthetic_vectors(queries, uniform=True, seed=size + 7)
    )
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
    return ScaleRow(
        backend,
        size,
        round(fill, 2),
        round(float(np.percentile(ms, 50)), 3),
        round(float(np.percentile(ms, 99)), 3),
        round(hits / len(probe), 4),
        round(float(np.median(np_times) * 1000), 3),
    )


def bench_gallery(
    sizes: list[int], backends: list[str], queries: int = 200, uniform: bool = False, log: Log = lambda m: None
) -> ScaleReport:
    unknown = set(backends) - {"embedded", "server"}
    if unknown or not backends:
        raise InvalidParameterError("--backends takes 'embedded', 'server' or both.")
    if any(s < 1 for s in sizes) or queries < 1:
        raise InvalidParameterError("Sizes and the number of queries must be positive.")
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
