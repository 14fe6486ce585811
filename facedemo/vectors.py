"""Embedding arithmetic, in one place: unit normalisation, L2 distance, cosine similarity, centroids.

Distances everywhere in facedemo are Euclidean distances between L2-normalised embeddings (0 = identical,
2 = opposite); the cosine similarity of two unit vectors is ``1 - d**2 / 2``. Pure numpy.
"""

from __future__ import annotations

import numpy as np


def l2_normalise(vectors) -> np.ndarray:
    """Rows scaled to unit length, as float32; a single vector comes back as one row."""
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim == 1:
        v = v[None, :]
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def l2_distance(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def cosine_similarity(a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def distance_matrix(a, b) -> np.ndarray:
    """Pairwise L2 distances between the rows of two sets of unit vectors."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    squared = np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0.0)
    return np.sqrt(squared)


def centroid(vectors) -> np.ndarray:
    """The re-normalised mean direction of some unit vectors (a person's summary embedding)."""
    mean = np.asarray(vectors, dtype=np.float64).mean(axis=0)
    return (mean / max(np.linalg.norm(mean), 1e-12)).astype(np.float32)


def cosine_to_l2(c) -> np.ndarray:
    """Chroma's cosine distance ``1 - cos`` between unit vectors, as the L2 distance ``sqrt(2c)``."""
    return np.sqrt(np.clip(2.0 * np.asarray(c, dtype=np.float64), 0.0, 4.0))
