"""One model's exploration of a gallery, for the dashboard's Explorer tab: the embedding map, the
distance histogram and a summary. ``method="auto"`` shows PCA at once and UMAP once numba has compiled it
(``warm_up_umap`` starts that in the background at start-up).

Built on ``views`` (views and metrics) and ``figures`` (plotly); no gradio here.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from ..errors import InvalidParameterError
from ..words import faces_of_people
from .figures import distance_histogram, embedding_map, project, projection_text
from .views import ModelView, gallery_views, model_view

MAX_POINTS = 2_000  # faces a map draws: beyond, a random sample of this many (UMAP of 2,000 is seconds, not a minute)

# numba's compiled code is process-wide, so "UMAP is warm" is a fact about the process, not a model or client.
_UMAP_READY = threading.Event()
_WARMING = threading.Lock()


def _warm() -> None:
    try:
        project(np.random.default_rng(0).normal(size=(32, 8)), "umap")
    finally:
        _UMAP_READY.set()  # even on failure: do not leave the tab waiting for a UMAP that cannot come


def warm_up_umap(block: bool = False) -> None:
    """Compile UMAP once in a background thread (``block=True`` waits for it)."""
    if not _UMAP_READY.is_set() and _WARMING.acquire(blocking=False):
        threading.Thread(target=_warm, name="umap-warm-up", daemon=True).start()
    if block:
        _UMAP_READY.wait()


def umap_ready() -> bool:
    return _UMAP_READY.is_set()


@dataclass(frozen=True)
class Exploration:
    model: str
    method: str  # the projection actually drawn: "umap" or "pca"
    projection: go.Figure
    histogram: go.Figure | None  # None with fewer than two faces
    note: str
    view: ModelView

    def to_json(self) -> dict:
        row = self.view.row()
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in {**row, "projection": self.method}.items()}


def explore(gallery, model: str | None = None, method: str = "auto", people=None) -> Exploration:
    """``people``: only their faces (a fine-tune's held-out people), else everyone's."""
    if method not in ("auto", "umap", "pca"):
        raise InvalidParameterError(f"Unknown projection '{method}': use auto, umap or pca.")
    name = gallery.pipeline.spec(model).name
    (view,) = gallery_views(gallery, [name])
    if people is not None:
        keep = [i for i, n in enumerate(view.names) if n in set(people)]
        view = model_view(
            name,
            view.vectors[keep],
            [view.names[i] for i in keep],
            [view.ids[i] for i in keep],
            [view.thumbs[i] for i in keep],
            view.threshold,
        )
    waiting = method == "auto" and not umap_ready()
    if waiting:
        warm_up_umap()
    wanted = "pca" if waiting or method == "pca" else "umap"
    faces = len(view.names)
    shown = np.arange(faces)
    if faces > MAX_POINTS:  # the same faces each time for the same gallery: the seed is fixed
        shown = np.sort(np.random.default_rng(0).choice(faces, MAX_POINTS, replace=False))
    sampled = f"<br><sup>a random sample of {len(shown):,} of the {faces:,} faces</sup>" if faces > MAX_POINTS else ""
    projection = embedding_map(
        view.vectors[shown],
        [view.names[i] for i in shown],
        wanted,
        hover=[view.thumbs[i].name if view.thumbs[i] else "" for i in shown],
        ids=[view.ids[i] for i in shown],
        title=f"{name}: embeddings" + (" of the held-out people" if people is not None else "") + sampled,
        people=[p.name for p in gallery.people()],  # every model's map of this gallery colours a person alike
    )
    used = projection.layout.meta["method"]
    histogram = None
    if len(view.distances):
        histogram = distance_histogram(
            view.distances,
            view.labels,
            view.threshold,
            title=f"{name}: distances between "
            + ("the held-out people's faces" if people is not None else "gallery faces"),
            model=name,
            of_pairs=view.all_pairs,
        )
    parts = [f"{name}: {faces_of_people(faces, len(set(view.names)))}, {used.upper()}"]
    if faces > MAX_POINTS:
        parts.append(f"the map draws a random sample of {MAX_POINTS:,} faces")
    if view.sampled:
        parts.append(
            f"the distances and metrics come from {len(view.distances):,} of the {view.all_pairs:,} pairs: "
            f"{int(view.labels.sum()):,} of one person (all of them, up to half the sample) and the rest of two "
            "people drawn at random"
        )
    if waiting:
        parts.append("UMAP is still warming up, so PCA is shown; press Explore again in a few seconds")
    elif used != wanted:
        parts.append("PCA because UMAP needs at least 10 faces")
    if view.note:
        parts.append(view.note)
    parts.append(f"the map: {projection_text(projection.layout.meta)}")
    return Exploration(name, used, projection, histogram, "; ".join(parts) + ".", view)


def gallery_digest(gallery, model: str) -> str:
    """What a model's figures depend on in the gallery: the exact stored faces, their people's names and the
    model's threshold (a cache of figures keys on it, so any change invalidates them)."""
    records = gallery.store.vectors(model)[0] if gallery.store.count(model) else []
    names = {p.id: p.name for p in gallery.store.persons()} if records else {}
    faces = ",".join(sorted(f"{r.id}:{names.get(r.person_id, '')}" for r in records))
    return hashlib.sha256(f"{faces}|{gallery.pipeline.threshold(model)!r}".encode()).hexdigest()


def held_models(gallery, models) -> list[str]:
    """The models of ``models`` that hold faces of ``gallery``."""
    return [m for m in models if gallery.store.count(m)]
