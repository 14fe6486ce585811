"""Each person's centroid for one model, recomputed from their stored vectors: what identification by
centroid compares a face with, refreshed after every write that changes a person's faces."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from ..vectors import centroid


def refresh_centroids(gallery, model: str, person_ids: Sequence[str]) -> None:
    persons = gallery.persons()
    wanted = set(person_ids)
    if len(wanted) > 20:  # many people (an import, a migration): one read of the model's vectors, grouped
        records, vectors = gallery.store.vectors(model, embeddings=True)
        grouped: dict[str, list] = defaultdict(list)
        for r, v in zip(records, vectors):
            if r.person_id in wanted:
                grouped[r.person_id].append(v)
        held = {pid: np.stack(vs) for pid, vs in grouped.items()}
    else:
        held = {pid: gallery.vectors_of(model, pid) for pid in wanted}
    update = {}
    for pid in person_ids:
        vectors = held.get(pid)
        update[pid] = (
            (persons[pid].name, centroid(vectors)) if pid in persons and vectors is not None and len(vectors) else None
        )
    if update:
        gallery.store.set_centroids(model, update)
