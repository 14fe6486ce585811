"""Where a verification distance falls among a model's genuine and impostor distances.

``data/distributions.json`` holds, per model, histograms of same-person and different-person distances
on LFW View 1 (pairsDevTrain.txt), written by ``python -m facedemo calibrate``. The Verify tab draws the
pair's distance on them so a person sees how sure the answer is.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SHIPPED = Path(__file__).parent / "data" / "distributions.json"


def histogram_record(same: np.ndarray, different: np.ndarray, bins: int = 60, source: str = "") -> dict:
    edges = np.linspace(0.0, max(1.6, float(np.max(np.concatenate([same, different]))) + 0.05), bins + 1)
    return {
        "edges": [round(float(e), 4) for e in edges],
        "same": np.histogram(same, edges)[0].tolist(),
        "different": np.histogram(different, edges)[0].tolist(),
        "source": source,
    }


def load(model: str, home: Path | None = None) -> dict | None:
    for path in ([Path(home) / "distributions.json"] if home else []) + [SHIPPED]:
        try:
            record = json.loads(path.read_text()).get(model)
        except (FileNotFoundError, json.JSONDecodeError, OSError):
            continue
        if record:
            return record
    return None


def save(model: str, record: dict, home: Path) -> Path:
    path = Path(home) / "distributions.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        data = {}
    data[model] = record
    path.write_text(json.dumps(data))
    return path


def same_probability(record: dict, distance: float) -> float | None:
    """The share of LFW pairs at this distance that were the same person (from the histograms)."""
    edges = np.asarray(record["edges"])
    index = int(np.clip(np.searchsorted(edges, distance) - 1, 0, len(edges) - 2))
    same, diff = record["same"][index], record["different"][index]
    total_same, total_diff = max(sum(record["same"]), 1), max(sum(record["different"]), 1)
    # Normalise each class so the answer does not depend on how many pairs of each kind were counted.
    a, b = same / total_same, diff / total_diff
    return None if a + b == 0 else a / (a + b)


def verify_figure(model: str, distance: float, threshold: float, record: dict | None):
    """A plotly figure: the genuine and impostor histograms (if known), the threshold and this pair."""
    import plotly.graph_objects as go

    fig = go.Figure()
    top = 1.0
    if record:
        edges = np.asarray(record["edges"])
        centers = (edges[:-1] + edges[1:]) / 2
        for key, name, color in (("same", "same person", "#2e7d32"), ("different", "different people", "#c62828")):
            counts = np.asarray(record[key], dtype=float)
            density = counts / max(counts.sum(), 1) / np.diff(edges)
            top = max(top, float(density.max()))
            fig.add_bar(x=centers, y=density, name=f"{name} (LFW)", marker_color=color, opacity=0.55, width=float(np.diff(edges)[0]))
        fig.update_layout(barmode="overlay")
    fig.add_vline(x=threshold, line_dash="dash", line_color="#555", annotation_text=f"threshold {threshold:.2f}", annotation_position="bottom right")
    fig.add_vline(x=distance, line_width=4, line_color="#1565c0", annotation_text=f"this pair {distance:.2f}", annotation_position="top right")
    fig.update_layout(
        title=f"{model}: this pair among LFW pairs" if record else f"{model}: this pair and the threshold",
        xaxis_title="L2 distance between embeddings (smaller = more alike)",
        yaxis_title="density",
        height=320,
        margin=dict(l=40, r=20, t=50, b=40),
        legend=dict(orientation="h", y=-0.3),
    )
    fig.update_xaxes(range=[0, max(1.6, distance + 0.1)])
    return fig
