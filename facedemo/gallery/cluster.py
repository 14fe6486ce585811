"""Clustering faces into people: the grouping itself (dlib's Chinese whispers or scikit-learn's
agglomerative clustering / DBSCAN, on L2 distances between unit embeddings), with the distance
threshold tied to the model's calibrated verification threshold.

Which method and threshold are the default was decided by ``python -m facedemo bench cluster`` on LFW
(docs/GALLERY.md, "Clustering an album"). The album itself (every face of every photo, groups a person
can name, merge and correct) is ``album.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InvalidParameterError

# name -> what it does, as the CLI's and the dashboard's help say it
CLUSTER_METHODS = {
    "chinese-whispers": "dlib's Chinese whispers on the graph of faces closer than the threshold",
    "average": "scikit-learn agglomerative clustering, average linkage, cut at the threshold",
    "complete": "scikit-learn agglomerative clustering, complete linkage (every pair within the threshold)",
    "single": "scikit-learn agglomerative clustering, single linkage (connected components of the graph)",
    "dbscan": "scikit-learn DBSCAN, eps = the threshold, 2 neighbours to be a core face; noise faces stay alone",
}
# Chosen on LFW (300 people, 150 of them with one photo; docs/GALLERY.md): average linkage at 0.9x the
# verification threshold had the best BCubed F (0.964), and stayed >= 0.948 from 0.85x to 0.95x where
# Chinese whispers fell from 0.958 to 0.804: an album's threshold is never exactly right, so the flatter wins.
DEFAULT_CLUSTER_METHOD = "average"
# The clustering threshold is this multiple of the model's verification (1:1) threshold: a little
# stricter, because one wrong link joins two people's whole groups.
DEFAULT_SCALE = 0.9
# The distance two faces of one photo are given for the agglomerative methods: far past any threshold, and
# still past it averaged with the distances of a million other pairs.
APART = 1e9


def check_method(method: str) -> str:
    if method not in CLUSTER_METHODS:
        raise InvalidParameterError(f"Unknown clustering method '{method}': use one of {', '.join(CLUSTER_METHODS)}.")
    return method


def cluster_threshold(pipeline, model=None, scale: float = DEFAULT_SCALE) -> float:
    """The L2 distance under which two faces are linked: ``scale`` x the model's verification threshold."""
    return float(pipeline.threshold(model, "verify")) * float(scale)


def cluster_vectors(
    vectors: np.ndarray, threshold: float, method: str = DEFAULT_CLUSTER_METHOD, apart: Sequence | None = None
) -> np.ndarray:
    """One group label per row of ``vectors`` (unit embeddings), numbered so that group 0 is the largest
    and singletons come last; ties keep the order in which their first face appears.

    ``apart``: one key per row (the photo a face was found in): rows with the same key never share a group,
    since one photo rarely shows one person twice. The agglomerative methods see such pairs at a distance no
    linkage joins (``APART``: average and complete linkage never merge across it); after any method, a group
    still holding two faces of one photo (single linkage's chains, Chinese whispers, DBSCAN) keeps the one
    nearest its mean and each other becomes a group of its own."""
    check_method(method)
    vectors = np.asarray(vectors, dtype=np.float64)
    if len(vectors) == 0:
        return np.zeros(0, dtype=int)
    if threshold <= 0:
        raise InvalidParameterError(f"The clustering threshold must be a positive distance, not {threshold}.")
    if len(vectors) == 1:
        return np.zeros(1, dtype=int)
    keys = None if apart is None else np.unique(np.asarray([str(k) for k in apart]), return_inverse=True)[1]
    if keys is not None and len(keys) != len(vectors):
        raise InvalidParameterError(f"There are {len(vectors)} faces but {len(keys)} photo keys to keep apart.")
    together = keys is not None and len(np.unique(keys)) < len(keys)  # some photo holds two faces or more
    if method == "chinese-whispers":
        import dlib

        raw = np.asarray(dlib.chinese_whispers_clustering([dlib.vector(v.tolist()) for v in vectors], float(threshold)))
    elif method == "dbscan":
        from sklearn.cluster import DBSCAN

        raw = DBSCAN(eps=threshold, min_samples=2).fit_predict(vectors)
        noise = raw < 0  # DBSCAN's noise: each such face is a group of its own
        raw[noise] = raw.max() + 1 + np.arange(noise.sum())
    else:
        from sklearn.cluster import AgglomerativeClustering
        from sklearn.metrics import pairwise_distances

        data, metric = vectors, "euclidean"
        if together:  # two faces of one photo: a distance no average or complete linkage merges across
            data, metric = pairwise_distances(vectors), "precomputed"
            data[(keys[:, None] == keys[None, :]) & ~np.eye(len(keys), dtype=bool)] = APART
        raw = AgglomerativeClustering(
            n_clusters=None, distance_threshold=threshold, linkage=method, metric=metric
        ).fit_predict(data)
    return ordered_labels(_split_photos(raw, vectors, keys) if together else raw)


def _split_photos(labels: np.ndarray, vectors: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Each group holding several faces of one photo keeps the one nearest its mean; the others go alone."""
    labels = np.asarray(labels).copy()
    fresh = labels.max() + 1
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        if len(np.unique(keys[rows])) == len(rows):
            continue
        mean = vectors[rows].mean(axis=0)
        nearest_first = rows[np.argsort(np.linalg.norm(vectors[rows] - mean, axis=1), kind="stable")]
        seen = set()
        for row in nearest_first:
            if keys[row] in seen:
                labels[row], fresh = fresh, fresh + 1
            seen.add(keys[row])
    return labels


def ordered_labels(labels: Sequence[int]) -> np.ndarray:
    """Relabel groups 0..k-1, largest first, ties by first appearance."""
    labels = np.asarray(labels)
    groups, first, sizes = np.unique(labels, return_index=True, return_counts=True)
    order = sorted(range(len(groups)), key=lambda i: (-sizes[i], first[i]))
    new = np.empty(len(groups), dtype=int)
    new[order] = np.arange(len(groups))
    return new[np.searchsorted(groups, labels)]
