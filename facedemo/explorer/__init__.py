"""The embedding explorer: a gallery's embeddings per model as views (vectors, pair distances, metrics),
their plotly figures (UMAP/PCA maps, distance histograms, ROC, tables), the standalone HTML report, and the
dashboard's one-model exploration."""

from .exploration import Exploration, explore, gallery_digest, held_models, umap_ready, warm_up_umap
from .figures import (
    ROBUSTNESS_METRICS,
    FigureError,
    compare_figure,
    det_figure,
    distance_histogram,
    embedding_map,
    metrics_table,
    project,
    report_html,
    robustness_figure,
    roc_figure,
    verify_figure,
)
from .views import ExplorerFigures, ModelView, explorer_figures, gallery_views, model_view, write_report

__all__ = [
    "ROBUSTNESS_METRICS",
    "Exploration",
    "ExplorerFigures",
    "FigureError",
    "ModelView",
    "compare_figure",
    "det_figure",
    "distance_histogram",
    "embedding_map",
    "explore",
    "explorer_figures",
    "gallery_views",
    "metrics_table",
    "model_view",
    "project",
    "report_html",
    "robustness_figure",
    "roc_figure",
    "gallery_digest",
    "held_models",
    "umap_ready",
    "verify_figure",
    "warm_up_umap",
    "write_report",
]
