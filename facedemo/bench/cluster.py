"""``bench cluster``: the clustering methods on an unlabelled album made of LFW photos (a few hundred
people, many of them with one photo), scored against the true people with pairwise precision/recall
and BCubed F, at thresholds that are multiples of the model's verification threshold."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataUnavailableError, InvalidParameterError
from ..evaluation.clustering import ClusteringScores, clustering_scores
from ..evaluation.embed import embed_images
from ..gallery.cluster import CLUSTER_METHODS, DEFAULT_CLUSTER_METHOD, DEFAULT_SCALE, cluster_vectors
from ..progress import Progress
from ..settings import SHARED_LFW

Log = Callable[[str], None]
SCALES = (0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1)


@dataclass(frozen=True)
class ClusterRun:
    method: str
    scale: float
    threshold: float
    seconds: float
    scores: ClusteringScores

    def to_json(self) -> dict:
        return {
            "method": self.method,
            "scale": self.scale,
            "threshold": round(self.threshold, 4),
            "seconds": round(self.seconds, 4),
            **self.scores.to_json(),
        }


@dataclass(frozen=True)
class ClusterBench:
    model: str
    verify_threshold: float
    photos: int
    people: int
    single_photo_people: int
    no_face: int  # photos where MTCNN found no face (a centre crop was embedded, as in the LFW protocol)
    embed_seconds: float
    runs: list[ClusterRun]

    def best(self, method: str) -> ClusterRun:
        return max((r for r in self.runs if r.method == method), key=lambda r: r.scores.bcubed_f)

    def default(self) -> ClusterRun | None:
        return next((r for r in self.runs if r.method == DEFAULT_CLUSTER_METHOD and r.scale == DEFAULT_SCALE), None)

    def to_json(self) -> dict:
        methods = sorted({r.method for r in self.runs}, key=list(CLUSTER_METHODS).index)
        default = self.default()
        return {
            "model": self.model,
            "verify_threshold": round(self.verify_threshold, 4),
            "photos": self.photos,
            "people": self.people,
            "single_photo_people": self.single_photo_people,
            "no_face": self.no_face,
            "embed_seconds": round(self.embed_seconds, 1),
            "runs": [r.to_json() for r in self.runs],
            "best": {m: self.best(m).to_json() for m in methods},
            "default": default.to_json() if default else None,
        }

    def text(self) -> str:
        lines = [
            f"{self.photos} LFW photos of {self.people} people ({self.single_photo_people} with one photo), model {self.model}, "
            f"verification threshold {self.verify_threshold:.4f}; {self.no_face} photo(s) without a detected face; "
            f"embedding {self.embed_seconds:.0f} s",
            f"{'method':<17} {'scale':>5} {'thresh':>6} {'groups':>6} {'single':>6} {'pair P':>7} {'pair R':>7} {'pair F':>7} "
            f"{'B3 P':>6} {'B3 R':>6} {'B3 F':>6} {'ARI':>6} {'ms':>7}",
        ]
        for r in self.runs:
            s = r.scores
            lines.append(
                f"{r.method:<17} {r.scale:>5.2f} {r.threshold:>6.3f} {s.clusters:>6} {s.singletons:>6} {s.pairwise_precision:>7.3f} "
                f"{s.pairwise_recall:>7.3f} {s.pairwise_f:>7.3f} {s.bcubed_precision:>6.3f} {s.bcubed_recall:>6.3f} "
                f"{s.bcubed_f:>6.3f} {s.ari:>6.3f} {r.seconds * 1000:>7.1f}"
            )
        lines.append(
            "best BCubed F per method: "
            + ", ".join(
                f"{m} {self.best(m).scores.bcubed_f:.3f} at {self.best(m).scale:.2f}x"
                for m in dict.fromkeys(r.method for r in self.runs)
            )
        )
        return "\n".join(lines)


def lfw_album(
    lfw: Path, people: int = 300, singles: int = 150, max_photos: int = 8, seed: int = 0
) -> list[tuple[Path, str]]:
    """(photo, person) for ``people`` LFW people: ``singles`` of them with exactly one photo, the others
    with two or more (up to ``max_photos`` of theirs, picked at random), chosen at random with ``seed``."""
    folders = sorted(p for p in lfw.iterdir() if p.is_dir())
    if not folders:
        raise DataUnavailableError(f"'{lfw}' holds no LFW person folders.")
    if not 0 <= singles <= people:
        raise InvalidParameterError(f"--singles must be between 0 and --people ({people}), not {singles}.")
    photos = {p.name: sorted(p.glob("*.jpg")) for p in folders}
    rng = random.Random(seed)
    ones = sorted(n for n, f in photos.items() if len(f) == 1)
    many = sorted(n for n, f in photos.items() if len(f) >= 2)
    chosen = rng.sample(ones, min(singles, len(ones))) + rng.sample(many, min(people - singles, len(many)))
    album = []
    for name in sorted(chosen):
        files = photos[name]
        picked = sorted(rng.sample(files, min(max_photos, len(files))))
        album += [(f, name) for f in picked]
    return album


def bench_cluster(
    pipeline,
    lfw: str | Path | None = None,
    people: int = 300,
    singles: int = 150,
    max_photos: int = 8,
    model: str | None = None,
    methods: Sequence[str] = tuple(CLUSTER_METHODS),
    scales: Sequence[float] = SCALES,
    seed: int = 0,
    progress: Progress | None = None,
    log: Log = lambda m: None,
) -> ClusterBench:
    lfw = Path(lfw) if lfw else SHARED_LFW
    if not lfw.is_dir():
        raise DataUnavailableError(f"LFW is not at '{lfw}'; pass --lfw.")
    spec = pipeline.spec(model)
    album = lfw_album(lfw, people, singles, max_photos, seed)
    paths = [p for p, _ in album]
    truth = [n for _, n in album]
    log(f"embedding {len(paths)} photos of {len(set(truth))} people (cached after the first run) ...")
    began = time.perf_counter()
    embedded = embed_images(pipeline, paths, spec, progress=progress)
    embed_seconds = time.perf_counter() - began
    vectors = np.stack([embedded.vectors[p] for p in paths])
    base = pipeline.threshold(spec, "verify")
    runs = []
    for method in methods:
        for scale in scales:
            start = time.perf_counter()
            labels = cluster_vectors(vectors, base * scale, method)
            seconds = time.perf_counter() - start
            runs.append(ClusterRun(method, float(scale), base * scale, seconds, clustering_scores(truth, labels)))
    counts = {n: truth.count(n) for n in set(truth)}
    return ClusterBench(
        spec.name,
        base,
        len(paths),
        len(counts),
        sum(c == 1 for c in counts.values()),
        len(embedded.failures),
        embed_seconds,
        runs,
    )
