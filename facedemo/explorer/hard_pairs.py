"""The gallery's own labelled pairs, for a Space without LFW: every same-person pair of enrolled faces and a
sample of different-person pairs, with each model's distances from the vectors the gallery already holds
(nothing is embedded again), judged by ``evaluation.disagreement.compare_verdicts``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import combinations

import numpy as np

from ..errors import GalleryError
from ..evaluation.disagreement import DEFAULT_HARDEST, Disagreements, LabelledPair, compare_verdicts

DEFAULT_DIFFERENT = 500  # different-person pairs sampled: enough for the closest impostors to show up


@dataclass(frozen=True)
class GalleryPairs:
    pairs: list[LabelledPair]  # a and b are face ids; images their thumbnails
    distances: dict[str, np.ndarray]  # model -> one distance per pair
    unavailable: dict[str, str]  # model -> why it has no distances (nobody embedded with it)


def gallery_pairs(
    gallery, models: Sequence[str] | None = None, different: int = DEFAULT_DIFFERENT, seed: int = 0
) -> GalleryPairs:
    """Every same-person pair among the faces every model has embedded, and ``different`` different-person
    pairs drawn at random (``seed``; all of them when there are fewer), with each model's distances."""
    names = [gallery.pipeline.spec(m).name for m in models] if models else list(gallery.store.models())
    per_model, unavailable = {}, {}
    for name in names:
        vectors, people, ids, thumbs = gallery.embeddings(name)
        if len(ids) == 0:
            unavailable[name] = f"nobody in the gallery is embedded with {name} yet"
            continue
        per_model[name] = (dict(zip(ids, vectors)), dict(zip(ids, people)), dict(zip(ids, thumbs)))
    if not per_model:
        raise GalleryError("The gallery is empty; enroll or import some people first.")
    first = next(iter(per_model.values()))
    faces = [f for f in first[0] if all(f in rows[0] for rows in per_model.values())]  # embedded by every model
    person, thumb = first[1], first[2]
    same, other = [], []
    for i, j in combinations(range(len(faces)), 2):
        (same if person[faces[i]] == person[faces[j]] else other).append((i, j))
    if len(other) > different:
        picked = np.random.default_rng(seed).choice(len(other), size=different, replace=False)
        other = [other[k] for k in sorted(picked)]
    chosen = same + other
    pairs = [
        LabelledPair(
            faces[i],
            faces[j],
            person[faces[i]] == person[faces[j]],
            (person[faces[i]], person[faces[j]]),
            tuple(str(thumb[f]) if thumb[f] else None for f in (faces[i], faces[j])),
        )
        for i, j in chosen
    ]
    distances = {}
    for name, (vectors, _, _) in per_model.items():
        a = np.array([vectors[faces[i]] for i, _ in chosen], dtype=np.float64).reshape(len(chosen), -1)
        b = np.array([vectors[faces[j]] for _, j in chosen], dtype=np.float64).reshape(len(chosen), -1)
        distances[name] = np.linalg.norm(a - b, axis=1)
    return GalleryPairs(pairs, distances, unavailable)


def gallery_disagreements(
    gallery,
    models: Sequence[str] | None = None,
    hardest: int = DEFAULT_HARDEST,
    different: int = DEFAULT_DIFFERENT,
    seed: int = 0,
) -> Disagreements:
    """The gallery's own pairs (``gallery_pairs``) judged by every model the gallery holds (or ``models``)
    at its own verification threshold: each model's hardest mistakes and where the models disagree."""
    found = gallery_pairs(gallery, models, different, seed)
    if not any(p.same for p in found.pairs):
        raise GalleryError("No person in the gallery has two faces, so there are no same-person pairs to judge.")
    thresholds = {m: gallery.pipeline.threshold(m) for m in found.distances}
    result = compare_verdicts(found.pairs, found.distances, thresholds, hardest, "gallery")
    return replace(result, unavailable=found.unavailable)
