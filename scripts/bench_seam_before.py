"""`bench seam`'s identify figures for the tree before "one gallery, every model" (f5e73aa): run it from a checkout
of that commit, `cd BEFORE && PYTHONPATH=. python /path/to/scripts/bench_seam_before.py 10,1000,10000 5`, beside
`python -m facedemo bench seam` here (docs/BENCHMARKS.md)."""

import statistics
import sys
import time
import uuid

import numpy as np

from facedemo.gallery import ChromaStore, FaceRecord, Gallery, make_client, record_id
from facedemo.pipeline import Pipeline
from facedemo.settings import SHARED_FACES, Settings
from facedemo.vision.images import identity_folders


class Counting:
    def __init__(self, t, calls):
        self._t, self._c = t, calls

    def __getattr__(self, n):
        v = getattr(self._t, n)
        if not callable(v):
            return v

        def call(*a, **k):
            self._c.append(n)
            out = v(*a, **k)
            return Counting(out, self._c) if type(out).__name__ == "Collection" else out

        return call


sizes = [int(s) for s in sys.argv[1].split(",")]
repeats = int(sys.argv[2])
pipeline = Pipeline(Settings.from_env(model="dlib-resnet"))
model = "dlib-resnet"
cast = SHARED_FACES / "bbt_faceapi"
photo = pipeline.load(cast / "_group_photos" / "bbt4.jpg")
faces = pipeline.detect(photo)
rng = np.random.default_rng(0)
print(f"before: identify bbt4.jpg ({len(faces)} faces) with {model}")
for size in sizes:
    calls = []
    store = ChromaStore(Counting(make_client(ephemeral=True), calls), None, "b" + uuid.uuid4().hex[:12])
    g = Gallery(pipeline, store)
    people = identity_folders(cast)
    for name, files in people:
        for path in files[:5]:
            try:
                g.enroll(name, [path], model)
            except Exception:
                pass
    n = max(0, size - len(people))
    vec = rng.normal(size=(n, 128)).astype(np.float32)
    recs = [
        FaceRecord(
            record_id(model, f"{i:064x}", (0, 0, 1, 1)),
            f"synthetic {i}",
            f"s{i}.jpg",
            f"{i:064x}",
            (0.0, 0.0, 1.0, 1.0),
            model,
            "",
        )
        for i in range(n)
    ]
    for st in range(
        0, n, 5000
    ):  # the old set_centroids sends every person in one call, which Chroma refuses past ~5,400
        part = recs[st : st + 5000]
        store.add(model, part, vec[st : st + 5000], [None] * len(part))
        g.refresh_centroids(model, sorted({r.person for r in part}))
    emb = pipeline.embed_faces(photo, faces, model, flip=g.flip(model))
    g.identify(photo, model)
    secs, match, counted = [], [], []
    for _ in range(repeats):
        calls.clear()
        t = time.perf_counter()
        g.identify(photo, model)
        secs.append(time.perf_counter() - t)
        counted.append(len(calls))
        t = time.perf_counter()
        g.match(emb, model)
        match.append(time.perf_counter() - t)
    print(f"{size:>8} {statistics.median(secs):>11.3f} {statistics.median(match) * 1000:>9.1f} {max(counted):>13}")
    store.drop(compact=False)
