"""The embedding explorer: a gallery's embeddings per model, turned into metrics and figures.

Without a pairs file, every pair of faces in the gallery is a labelled pair (same person or not), so the
histograms, ROC and metrics describe how well each model separates the gallery's own people.
``python -m facedemo explore`` calls ``gallery_views`` then ``write_report``; the dashboard goes through
``exploration.explore`` (one model at a time) which uses the same pieces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from ..errors import GalleryError
from ..evaluation.metrics import PairMetrics, accuracy_at, pair_count, pair_metrics, some_pairs
from .figures import distance_histogram, embedding_map, map_points, metrics_table, report_html, roc_figure


@dataclass(frozen=True)
class ModelView:
    """One model's view of a gallery."""

    model: str
    vectors: np.ndarray
    names: list[str]
    ids: list[str]
    thumbs: list[Path | None]
    threshold: float  # the model's threshold in force (calibrated or default)
    distances: np.ndarray  # every pair of faces
    labels: np.ndarray  # True where the pair is the same person
    metrics: PairMetrics | None  # None when the gallery lacks same-person or different-person pairs
    note: str | None = None  # why there are no metrics
    all_pairs: int = 0  # how many pairs the gallery has: more than ``len(distances)`` when they were sampled

    @property
    def sampled(self) -> bool:
        return self.all_pairs > len(self.distances)

    def row(self) -> dict:
        """This model's line in the metrics table."""
        row = {
            "model": self.model,
            "faces": len(self.names),
            "people": len(set(self.names)),
            "threshold": self.threshold,
        }
        if self.metrics is None:
            return {**row, "note": self.note}
        m = self.metrics
        return {
            **row,
            "accuracy at threshold": accuracy_at(self.distances, self.labels, self.threshold),
            "best accuracy": m.cv.accuracy,
            "auc": m.roc.auc,
            "val": m.at_far.val,
            "far": m.at_far.far,
            "mean distance same": m.stats.mean_pos,
            "mean distance different": m.stats.mean_neg,
            "loss": m.loss,
            "pairs": m.pairs,
        }


MAX_PAIRS = 250_000  # pairs a view measures: beyond, a uniform sample of this many (~0.5 CPU s of metrics)


def model_view(
    model: str,
    vectors,
    names,
    ids=None,
    thumbs=None,
    threshold: float = 1.0,
    far: float = 1e-3,
    max_pairs: int | None = MAX_PAIRS,
) -> ModelView:
    vectors = np.asarray(vectors, dtype=np.float32)
    names = [str(n) for n in names]
    ids = list(ids) if ids is not None else [str(i) for i in range(len(names))]
    thumbs = list(thumbs) if thumbs is not None else [None] * len(names)
    if len(vectors) < 2:
        d, same = np.zeros(0), np.zeros(0, dtype=bool)
    else:
        d, same = some_pairs(vectors, names, max_pairs or pair_count(len(names)))
    metrics, note = None, None
    if not same.any():
        note = "no person has two faces, so there are no same-person pairs"
    elif same.all():
        note = "only one person, so there are no different-person pairs"
    else:
        metrics = pair_metrics(d, same, far=far)
    return ModelView(
        model, vectors, names, ids, thumbs, float(threshold), d, same, metrics, note, pair_count(len(names))
    )


def gallery_views(gallery, models: Sequence[str] | None = None) -> list[ModelView]:
    """A ``ModelView`` for each model (default: every model the gallery has embeddings for)."""
    names = list(models) if models else list(gallery.store.models())
    if not names:
        raise GalleryError("The gallery is empty; enroll or import some people first.")
    views = []
    for name in names:
        spec = gallery.pipeline.spec(name)  # resolved once for the vectors and the threshold
        vectors, people, ids, thumbs = gallery.embeddings(spec)
        if len(vectors) == 0:
            raise GalleryError(
                f"Nobody in the gallery is embedded with {name} yet: enroll someone, and every available model embeds them."
            )
        views.append(model_view(spec.name, vectors, people, ids, thumbs, gallery.pipeline.threshold(spec)))
    return views


@dataclass(frozen=True)
class ExplorerFigures:
    maps: dict[str, go.Figure]  # model -> embedding map
    histograms: dict[str, go.Figure] = field(default_factory=dict)  # model -> distance histogram
    roc: go.Figure | None = None  # every model with metrics, on one chart
    table: go.Figure | None = None

    def points(self) -> list[dict]:
        """Every face on every map, as drawn: model, person, face id, x, y (``explore --json``)."""
        return [p for model, fig in self.maps.items() for p in map_points(fig, model)]

    def projections(self) -> dict[str, dict]:
        """What each map is: the method and its parameters."""
        return {model: dict(fig.layout.meta) for model, fig in self.maps.items()}

    def all(self) -> list[go.Figure]:
        figures = [f for f in (self.table, self.roc) if f is not None]
        for model in self.maps:
            figures.append(self.maps[model])
            if model in self.histograms:
                figures.append(self.histograms[model])
        return figures


def explorer_figures(views: Sequence[ModelView], method: str = "umap") -> ExplorerFigures:
    """Use ``method="pca"`` for an instant picture while UMAP (seconds, more on first use) is computed."""
    maps, histograms, curves = {}, {}, {}
    everyone = sorted({str(n) for v in views for n in v.names})  # one colour per person on every map
    for v in views:
        hover = [str(t.name) if t else "" for t in v.thumbs]
        maps[v.model] = embedding_map(
            v.vectors, v.names, method, hover=hover, ids=v.ids, title=f"{v.model}: embeddings", people=everyone
        )
        if len(v.distances):
            histograms[v.model] = distance_histogram(
                v.distances, v.labels, v.threshold, title=f"{v.model}: distances between gallery faces", model=v.model
            )
        if v.metrics is not None:
            curves[v.model] = v.metrics.roc
    return ExplorerFigures(
        maps=maps,
        histograms=histograms,
        roc=roc_figure(curves, title="ROC on every pair of gallery faces") if curves else None,
        table=metrics_table([v.row() for v in views]),
    )


def write_report(
    views: Sequence[ModelView],
    out: Path,
    method: str = "umap",
    title: str = "facedemo: embedding explorer",
    figures: ExplorerFigures | None = None,
) -> Path:
    """``figures``: the ``explorer_figures`` of ``views`` when the caller has them (a projection is not free)."""
    figures = figures or explorer_figures(views, method)
    notes = [
        "Every pair of faces in the gallery is a labelled pair; distances are L2 between L2-normalised embeddings "
        "(0..2, smaller = more alike). 'best accuracy' uses the best threshold on these same pairs (optimistic); "
        "'accuracy at threshold' uses the model's threshold in force.",
        *(f"{v.model}: {v.note}." for v in views if v.note),
    ]
    return report_html(out, figures.all(), title, notes)
