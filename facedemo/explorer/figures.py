"""The explorer's pictures, as plotly figures built without any UI: a 2-D map of embeddings coloured by
person, same/different distance histograms with the threshold, ROC curves of several models, a metrics
table, one standalone HTML report holding them (plotly's JS embedded, so it opens offline), and the Verify
tab's picture of where a pair's distance falls among LFW's genuine and impostor distances."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from ..errors import FaceDemoError
from ..evaluation.metrics import RocCurve
from ..evaluation.pairs import describe_pairs
from ..words import faces_of_people
from .colours import model_colour, person_colours

DASHES = ("solid", "dash", "dot", "dashdot", "longdash")  # one per decision rule when models share a DET figure
SAME_COLOUR, DIFFERENT_COLOUR = "#2e7d32", "#c62828"  # a pair's class, in every figure that draws pairs
UMAP_MIN_POINTS = 10  # below this UMAP's neighbour graph is meaningless: PCA is used instead
METHODS = ("umap", "pca")


class FigureError(FaceDemoError):
    """There is nothing (or not enough) to draw."""


UMAP_MAX_NEIGHBOURS = 15  # umap-learn's default: the most a neighbourhood holds, however many faces a person has


def umap_neighbours(names: Sequence[str] | None, count: int) -> int:
    """UMAP's ``n_neighbors`` (the point itself included) for a gallery: about the faces a person has. With 3
    faces a person and the default 15, 12 of a face's 14 neighbours are strangers, and UMAP lays a person's
    faces out among them; with the person's own faces as its neighbourhood, they stay together. Without
    names, or when people have a single face (nothing to keep together), umap-learn's default."""
    per_person = sorted(Counter(map(str, names)).values()) if names else []
    typical = per_person[len(per_person) // 2] if per_person else 0  # the median, a whole number of faces
    wanted = UMAP_MAX_NEIGHBOURS if typical < 2 else min(typical, UMAP_MAX_NEIGHBOURS)
    return max(2, min(wanted, count - 1))


def project(vectors, method: str = "umap", seed: int = 0, names: Sequence[str] | None = None) -> tuple[np.ndarray, str]:
    """2-D coordinates of the rows of ``vectors`` and the method actually used ("umap" or "pca"). UMAP runs
    on cosine distance (the models compare L2-normalised vectors, so it ranks neighbours as they do) with
    ``umap_neighbours(names)`` neighbours."""
    if method not in METHODS:
        raise FigureError(f"Unknown projection '{method}': use 'umap' or 'pca'.")
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 2 or len(v) == 0:
        raise FigureError("There are no embeddings to draw; enroll some faces first.")
    if len(v) < UMAP_MIN_POINTS:
        method = "pca"
    if method == "umap":
        import umap  # imported here: it compiles with numba on first use, which takes a while

        reducer = umap.UMAP(
            n_neighbors=umap_neighbours(names, len(v)), min_dist=0.1, metric="cosine", random_state=seed, n_jobs=1
        )
        return np.asarray(reducer.fit_transform(v), dtype=np.float64), "umap"
    from sklearn.decomposition import PCA

    k = min(2, len(v), v.shape[1])
    coords = np.zeros((len(v), 2))
    if len(v) > 1:
        coords[:, :k] = PCA(n_components=k, random_state=seed).fit_transform(v)
    # Two faces span one direction: the second component is rounding noise (1e-17), and plotly labelled
    # that axis "7.764069909936053x10^-17".
    coords[np.abs(coords) < 1e-9 * max(1.0, float(np.abs(coords).max()))] = 0.0
    return coords, "pca"


def embedding_map(
    vectors,
    names: Sequence[str],
    method: str = "umap",
    hover: Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
    title: str | None = None,
    seed: int = 0,
    people: Sequence[str] | None = None,
) -> go.Figure:
    """One marker per face, one trace (colour and legend entry) per person; hover shows the name (and
    ``hover``), each point's ``customdata`` is its id so a UI can tell which face was clicked. ``people``:
    every name the maps shown side by side may hold, so a person has the same colour in each (default:
    the names here)."""
    if len(names) != len(vectors):
        raise FigureError(f"There are {len(vectors)} embeddings but {len(names)} names.")
    names = [str(n) for n in names]
    coords, used = project(vectors, method, seed, names)
    extra = list(hover) if hover is not None else [""] * len(names)
    keys = list(ids) if ids is not None else [str(i) for i in range(len(names))]
    fig = go.Figure()
    colours = person_colours([*map(str, people or ()), *names])
    for person in sorted(set(names)):
        rows = [i for i, n in enumerate(names) if n == person]
        fig.add_trace(
            go.Scatter(
                x=coords[rows, 0],
                y=coords[rows, 1],
                mode="markers",
                name=person,
                text=[f"{person}<br>{extra[i]}" if extra[i] else person for i in rows],
                customdata=[keys[i] for i in rows],
                hovertemplate="%{text}<extra></extra>",
                marker={
                    "size": 9,
                    "color": colours[person],
                    "line": {"width": 0.5, "color": "white"},
                },
            )
        )
    label = used.upper()
    meta = {"method": used, **PROJECTION[used]}
    if used == "umap":
        meta["n_neighbors"] = umap_neighbours(names, len(names))
    fig.update_layout(
        title=title or f"Embeddings ({label}, {faces_of_people(len(names), len(set(names)))})",
        xaxis_title=f"{label} 1",
        yaxis_title=f"{label} 2",
        legend_title="person",
        legend={"orientation": "h", "y": -0.2},  # below the map: beside it, it took half a phone's width
        meta=meta,
        template="plotly_white",
    )
    return fig


PROJECTION = {"umap": {"metric": "cosine", "min_dist": 0.1}, "pca": {}}  # what ``project`` ran, for the record


def projection_text(meta: Mapping) -> str:
    """What a map draws, in words (``embedding_map``'s ``layout.meta``)."""
    if meta.get("method") != "umap":
        return "PCA: the two directions in which the faces' embeddings vary most (distances are only roughly kept)"
    return (
        f"UMAP on cosine distance with {meta['n_neighbors']} neighbours per face (about the faces a person has, so "
        "a person's faces stay together): near on the map means near for the model; far apart means only 'not near'"
    )


def map_points(fig: go.Figure, model: str) -> list[dict]:
    """Every face an ``embedding_map`` draws: its model, person, id and 2-D coordinates, as drawn."""
    return [
        {"model": model, "person": t.name, "face": str(face), "x": round(float(x), 5), "y": round(float(y), 5)}
        for t in fig.data
        for face, x, y in zip(t.customdata, t.x, t.y)
    ]


def distance_histogram(
    distances,
    labels,
    threshold: float | None,
    title: str | None = None,
    bins: int = 50,
    of_pairs: int | None = None,
    model: str | None = None,
) -> go.Figure:
    """Same-person and different-person distances (each normalised to sum 1, since different pairs far
    outnumber same ones), with the threshold as a dashed vertical line, in ``model``'s colour when given.
    Binned here, not in the browser: the figure carries ``bins`` bars per class whatever the number of pairs
    (every distance of a 10,000-face gallery was 730 MB). ``of_pairs``: how many pairs the gallery has, when
    ``distances`` are a sample of them."""
    d = np.asarray(distances, dtype=np.float64)
    same = np.asarray(labels).astype(bool)
    if d.size == 0:
        raise FigureError("There are no pairs to draw.")
    end = max(float(d.max()), float(threshold or 0.0)) * 1.02 + 1e-9
    edges = np.linspace(0.0, end, bins + 1)
    centers, width = (edges[:-1] + edges[1:]) / 2, float(edges[1] - edges[0])
    fig = go.Figure()
    # the pairs' classes in the Verify figure's green and red, never a model's colour
    for mask, name, colour in ((same, "same person", SAME_COLOUR), (~same, "different people", DIFFERENT_COLOUR)):
        counts = np.histogram(d[mask], bins=edges)[0].astype(np.float64)
        fig.add_trace(
            go.Bar(
                x=centers,
                y=counts / max(counts.sum(), 1.0),
                width=width,
                name=f"{name} ({int(mask.sum()):,})",
                opacity=0.6,
                marker_color=colour,
                customdata=counts.astype(int),
                hovertemplate="%{x:.3f}: %{customdata:,} pairs (%{y:.1%})<extra></extra>",
            )
        )
    if threshold is not None:
        fig.add_vline(
            x=float(threshold),
            line_dash="dash",
            line_width=2.5 if model else 1,
            line_color=model_colour(model) if model else "black",
            annotation_text=f"{model + ' ' if model else ''}threshold {threshold:.3f}",
        )
    title = title or "Distances between pairs"
    if of_pairs and of_pairs > d.size:
        title += (
            f"<br><sup>{d.size:,} of the {of_pairs:,} pairs: every same-person pair, a random sample of the rest</sup>"
        )
    fig.update_layout(
        title=title,
        barmode="overlay",
        bargap=0,
        xaxis_title="L2 distance (smaller = more alike)",
        yaxis_title="share of pairs",
        legend={"orientation": "h", "y": -0.25},
        template="plotly_white",
    )
    return fig


def roc_figure(curves: Mapping[str, RocCurve], title: str = "ROC", log_far: bool = False) -> go.Figure:
    """One ROC curve per model (legend: name and AUC), and the chance diagonal."""
    if not curves:
        raise FigureError("There is no ROC curve to draw.")
    fig = go.Figure()
    for name, curve in curves.items():
        fig.add_trace(
            go.Scatter(
                x=curve.fpr,
                y=curve.tpr,
                mode="lines",
                name=f"{name} (AUC {curve.auc:.4f})",
                line={"color": model_colour(name)},
                meta={"model": name},
            )
        )
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"dash": "dot", "color": "grey"}))
    fig.update_layout(
        title=title,
        xaxis_title="false accept rate (FAR)",
        yaxis_title="validation rate (VAL)",
        legend={"orientation": "h", "y": -0.25},
        template="plotly_white",
        xaxis_type="log" if log_far else "linear",
    )
    return fig


def metrics_table(rows: Sequence[Mapping], title: str = "Metrics") -> go.Figure:
    """A table with a row per metric and a column per model (each row's "model", else its position): two
    or three narrow columns read at any width, where a column per metric was cut to slivers on a phone."""
    if not rows:
        raise FigureError("There are no metrics to tabulate.")
    keys = [k for k in rows[0] if k != "model"]

    def cell(value):
        if isinstance(value, float):
            return f"{value:.4f}"
        return "" if value is None else str(value)

    models = [str(r.get("model", i + 1)) for i, r in enumerate(rows)]
    values = [keys, *[[cell(r.get(k)) for k in keys] for r in rows]]
    # relative widths from each column's longest text, so a model's name is not cut ("llib-resne") beside a
    # column of numbers (plotly's default gives every column the same width)
    header = ["metric", *models]
    widths = [max([len(h), *(len(v) for v in col)]) + 2 for h, col in zip(header, values)]
    fig = go.Figure(go.Table(columnwidth=widths, header={"values": header}, cells={"values": values}))
    fig.update_layout(title=title, height=110 + 28 * len(keys), margin={"t": 50, "b": 10, "l": 10, "r": 10})
    return fig


def report_html(
    path: Path, figures: Sequence[go.Figure], title: str = "facedemo report", notes: Sequence[str] = ()
) -> Path:
    """One HTML file with every figure; plotly's JS is embedded once so it works offline."""
    if not figures:
        raise FigureError("There are no figures to put in the report.")
    parts = [fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(figures)]
    paragraphs = "".join(f"<p>{html.escape(n)}</p>" for n in notes)
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body style='font-family:sans-serif'><h1>{html.escape(title)}</h1>{paragraphs}"
        + "".join(f"<div>{part}</div>" for part in parts)
        + "</body></html>"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def verify_figure(model: str, distance: float, threshold: float, record: dict | None) -> go.Figure:
    """A plotly figure: the genuine and impostor histograms (if known), the threshold and this pair."""
    return compare_figure([(model, distance, threshold, record)])


def compare_figure(rows: Sequence[tuple[str, float, float, dict | None]]) -> go.Figure:
    """One panel per model (``(model, distance, threshold, LFW histograms or None)``): where this pair's
    distance falls among the model's same-person and different-people distances, and its threshold."""
    from plotly.subplots import make_subplots

    titles = [f"{m}: this pair among LFW pairs" if r else f"{m}: this pair and the threshold" for m, _, _, r in rows]
    fig = make_subplots(rows=len(rows), cols=1, subplot_titles=titles, vertical_spacing=0.12 if len(rows) > 1 else 0.0)
    for row, (model, distance, threshold, record) in enumerate(rows, start=1):
        if record:
            edges = np.asarray(record["edges"])
            centers = (edges[:-1] + edges[1:]) / 2
            for key, name, color in (
                ("same", "same person", SAME_COLOUR),
                ("different", "different people", DIFFERENT_COLOUR),
            ):
                counts = np.asarray(record[key], dtype=float)
                density = counts / max(counts.sum(), 1) / np.diff(edges)
                fig.add_bar(
                    x=centers,
                    y=density,
                    name=f"{name} (LFW)",
                    marker_color=color,
                    opacity=0.55,
                    width=float(np.diff(edges)[0]),
                    showlegend=row == 1,
                    legendgroup=key,
                    row=row,
                    col=1,
                )
        fig.add_vline(
            x=threshold,
            line_dash="dash",
            line_color="#555",
            annotation_text=f"threshold {threshold:.2f}",
            annotation_position="bottom right",
            row=row,
            col=1,
        )
        fig.add_vline(
            x=distance,
            line_width=4,
            line_color=model_colour(model),
            annotation_text=f"this pair {distance:.2f}",
            annotation_position="top right",
            row=row,
            col=1,
        )
        # wide enough for the whole distribution (CASIA's impostors reach 1.66) and the pair
        reach = float(np.asarray(record["edges"])[-1]) if record else 0.0
        fig.update_xaxes(range=[0, max(1.6, distance + 0.1, threshold + 0.1, reach)], row=row, col=1)
        fig.update_yaxes(title_text="density", row=row, col=1)
    fig.update_xaxes(title_text="L2 distance (smaller = more alike)", row=len(rows), col=1)
    fig.update_layout(
        barmode="overlay",
        height=80 + 260 * len(rows),
        margin=dict(l=40, r=20, t=50, b=40),
        legend=dict(orientation="h", y=-0.3 / len(rows)),
    )
    if len(rows) == 1:  # the panel title becomes the figure's; assigned, not updated (update_layout merges the
        # list element by element and left a second "threshold" label on top of the first)
        fig.layout.annotations = [a for a in fig.layout.annotations if a.text != titles[0]]
        fig.update_layout(title=titles[0])
    return fig


def det_figure(
    curves: Sequence[Mapping], title: str = "Open-set identification (DET)", target: float | None = None
) -> go.Figure:
    """NIST-style DET curves: FNIR (enrolled people not named correctly) against FPIR (strangers given a
    name) on a log axis, one line per decision rule; ``curves`` are ``DetCurve.to_json()`` records. A record
    with a ``model`` is drawn in that model's colour, one dash per decision rule, so several models share
    one figure."""
    if not curves:
        raise FigureError(
            "There is no open-set curve to draw; run `bench identify --open-set --save-calibration` first."
        )
    fig = go.Figure()
    rules = list(dict.fromkeys(c["label"] for c in curves))
    for c in curves:
        fpir, fnir = np.asarray(c["det"]["fpir"], float), np.asarray(c["det"]["fnir"], float)
        keep = fpir > 0  # a log axis has no 0
        at = c.get("fnir_at_fpir", {}).get("0.01", {}).get("fnir")
        model = c.get("model")
        label = f"{model}: {c['label']}" if model else c["label"]
        name = label + (f" (FNIR {at:.3f} at FPIR 0.01)" if at is not None else "")
        style = {"color": model_colour(model), "dash": DASHES[rules.index(c["label"]) % len(DASHES)]} if model else {}
        fig.add_trace(
            go.Scatter(
                x=fpir[keep],
                y=fnir[keep],
                mode="lines",
                name=name,
                line=style,
                meta={"model": model, "method": c["label"]},
                hovertemplate="FPIR %{x:.4f}<br>FNIR %{y:.3f}<extra>" + html.escape(label) + "</extra>",
            )
        )
    if target:
        fig.add_vline(x=target, line={"dash": "dot", "color": "grey"}, annotation_text=f"target FPIR {target:g}")
    fig.update_layout(
        title=title,
        xaxis_title="FPIR: strangers given a name",
        yaxis_title="FNIR: enrolled people not named correctly",
        xaxis_type="log",
        template="plotly_white",
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


ROBUSTNESS_METRICS = {
    "accuracy": "accuracy at the calibrated threshold",
    "detection_rate": "share of degraded photos with a face found",
    "auc": "AUC",
    "val": "VAL at the FAR target",
    "mean_pos_distance": "mean same-person distance",
}


def robustness_figure(result, metric: str = "accuracy", columns: int = 3) -> go.Figure:
    """A ``RobustnessResult`` (``evaluation.robustness``) as curves of ``metric`` against severity: one panel
    per condition, one line per model in each (each model in its own colour), severity 0 = clean. Only the
    severities measured for every model in a panel are drawn (``RobustnessResult.compared``), so no model
    looks more robust where the other simply has no point."""
    from plotly.subplots import make_subplots

    from ..vision.degrade import CONDITIONS

    if metric not in ROBUSTNESS_METRICS:
        raise FigureError(f"Unknown robustness figure '{metric}': use one of {', '.join(ROBUSTNESS_METRICS)}.")
    models = result.models
    compared = result.compared()
    names = [c for c in CONDITIONS if c in compared]
    if not names:
        raise FigureError(
            "No robustness figures are saved for these pairs yet: they come from a run on LFW's photos, which "
            "docs/EVALUATION.md describes."
        )

    def value(m, metrics) -> float:
        return m.detection_rate(metrics) if metric == "detection_rate" else getattr(metrics, metric)

    rows = -(-len(names) // columns)
    fig = make_subplots(
        rows=rows,
        cols=min(columns, len(names)),
        subplot_titles=names,
        shared_yaxes=True,
        horizontal_spacing=0.04,
        vertical_spacing=0.5 / rows,
    )
    for i, name in enumerate(names):
        row, col = i // columns + 1, i % columns + 1
        common = compared[name]["levels"]
        for model, m in models.items():
            levels = m.conditions.get(name)
            if not levels:
                continue
            xs = [0, *common]
            ys = [value(m, m.clean), *(value(m, levels[s]) for s in common)]
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines+markers",
                    name=model,
                    legendgroup=model,
                    showlegend=i == 0,
                    line={"color": model_colour(model)},
                    meta={"condition": name, "model": model},
                    hovertemplate=f"{model}<br>{name} severity %{{x}}<br>{metric} %{{y:.4f}}<extra></extra>",
                ),
                row=row,
                col=col,
            )
        fig.update_xaxes(
            tickvals=[0, 1, 2, 3, 4, 5],
            ticktext=["clean", "1", "2", "3", "4", "5"],
            range=[-0.3, 5.3],
            row=row,
            col=col,
        )
    fig.update_yaxes(matches="y")  # one scale in every panel, so conditions compare at a glance
    fig.update_yaxes(title_text=ROBUSTNESS_METRICS[metric], col=1)
    fig.update_xaxes(title_text="severity", row=rows)
    fig.update_layout(
        title=f"{ROBUSTNESS_METRICS[metric].capitalize()} against severity ({describe_pairs(result.pairs_file)}, {result.pairs:,} pairs, "
        "the second photo degraded)",
        height=120 + 260 * rows,
        template="plotly_white",
        legend={"orientation": "h", "y": -0.08},
        margin={"t": 80, "l": 50, "r": 20, "b": 40},
    )
    return fig


def training_curves_figure(
    history: Sequence[Mapping], title: str = "Training curves", best_epoch: int | None = None
) -> go.Figure:
    """A fine-tune's per-epoch curves (``FinetuneResult.history``): the training loss and the held-out
    people's loss on the left, their mean same-person and different-person distance on the right (the
    source studies' picture: a fine-tune should pull the first down and push the second up)."""
    from plotly.subplots import make_subplots

    if not history or "val_mean_pos_distance" not in history[0]:
        raise FigureError("This model has no training curves: it was fine-tuned before they were recorded.")
    epochs = [h["epoch"] for h in history]
    loss = history[0].get("loss", "triplet")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss (lower is better)", "Held-out people: mean distance"))
    fig.add_trace(
        go.Scatter(
            x=epochs,
            y=[h["train_loss"] for h in history],
            mode="lines+markers",
            name=f"training ({'ArcFace' if loss == 'arcface' else 'triplet'} loss)",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=epochs,
            y=[h["val_loss"] for h in history],
            mode="lines+markers",
            name="held-out people (loss on their pairs)",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=epochs,
            y=[h["val_mean_pos_distance"] for h in history],
            mode="lines+markers",
            name="same person",
            line={"color": "#2e7d32"},
        ),
        row=1,
        col=2,
    )
    fig.add_trace(
        go.Scatter(
            x=epochs,
            y=[h["val_mean_neg_distance"] for h in history],
            mode="lines+markers",
            name="different people",
            line={"color": "#c62828"},
        ),
        row=1,
        col=2,
    )
    if best_epoch:
        for col in (1, 2):  # one label: an annotation with no text shows plotly's placeholder, "new text"
            label = {"annotation_text": "kept"} if col == 1 else {}
            fig.add_vline(x=best_epoch, line_dash="dot", line_color="grey", row=1, col=col, **label)
    fig.update_xaxes(title_text="epoch", dtick=1 if len(epochs) <= 20 else None)
    fig.update_yaxes(title_text="loss", row=1, col=1)
    fig.update_yaxes(title_text="L2 distance", row=1, col=2)
    fig.update_layout(title=title, template="plotly_white", legend={"orientation": "h", "y": -0.25}, height=380)
    return fig


# -- why models decide as they do (#23) ------------------------------------------------------------------------
def occlusion_figure(explanation, title: str | None = None) -> go.Figure:
    """Each model's occlusion map (``Pipeline.explain``) over the chip it occluded, one column per model, the
    face it was compared with below: red where hiding a region pushed the faces apart (it made them look
    alike), blue where hiding it drew them together. Each map has its own scale (the models' distances differ)."""
    from plotly.subplots import make_subplots

    maps = list(getattr(explanation, "maps", explanation))
    if not maps:
        raise FigureError("There is no occlusion map to draw.")
    titles = [
        f"{m.model}<br>distance {m.base_distance:.2f} ({'same' if m.same_person else 'different'} at {m.threshold:.2f})"
        for m in maps
    ] + [f"compared with face {'B' if m.occluded == 'a' else 'A'}" for m in maps]
    fig = make_subplots(rows=2, cols=len(maps), subplot_titles=titles, row_heights=[0.62, 0.38], vertical_spacing=0.08)
    for caption, m in zip(fig.layout.annotations, maps):  # each model's name in its colour, as in every figure
        caption.font = {"color": model_colour(m.model)}
    for col, m in enumerate(maps, start=1):
        centres = [i * m.stride + m.patch / 2 for i in range(m.grid)]
        reach = max(max(abs(v) for row in m.values for v in row), 1e-6)
        if m.chip is not None:
            fig.add_trace(go.Image(z=np.asarray(m.chip.convert("RGB")), hoverinfo="skip"), row=1, col=col)
        fig.add_trace(
            go.Heatmap(
                x=centres,
                y=centres,
                z=m.values,
                zmin=-reach,
                zmax=reach,
                colorscale="RdBu_r",
                opacity=0.55,
                showscale=False,
                hovertemplate="hiding here moves the distance by %{z:+.3f}<extra>" + html.escape(m.model) + "</extra>",
            ),
            row=1,
            col=col,
        )
        if m.other is not None:
            fig.add_trace(go.Image(z=np.asarray(m.other.convert("RGB")), hoverinfo="skip"), row=2, col=col)
        fig.update_xaxes(visible=False, range=[0, m.chip_size[0]], row=1, col=col)
        fig.update_yaxes(
            visible=False, range=[m.chip_size[1], 0], scaleanchor=f"x{col if col > 1 else ''}", row=1, col=col
        )
        fig.update_xaxes(visible=False, row=2, col=col)
        fig.update_yaxes(visible=False, row=2, col=col)
    fig.update_layout(
        title=title or "Where each model looks: how much hiding each region moves the distance",
        height=560,
        width=max(420, 330 * len(maps)),
        margin=dict(l=20, r=20, t=100, b=20),
        template="plotly_white",
    )
    return fig


def verdicts_figure(result, x_model: str | None = None, y_model: str | None = None) -> go.Figure:
    """Two models' distances on the same labelled pairs (``Disagreements``), one point per pair coloured by
    its label, their thresholds as lines: the pairs in the off-diagonal quadrants are the disagreements."""
    models = list(result.models)
    if len(models) < 2 and not (x_model and y_model):
        raise FigureError("Comparing verdicts needs two models that ran on the same pairs.")
    x_model, y_model = x_model or models[0], y_model or models[1]
    every = {(p.pair.a, p.pair.b): p for p in result.disagreements}
    for h in result.hardest.values():
        every.update({(p.pair.a, p.pair.b): p for p in h.false_accepts + h.false_rejects})
    points = result.judged or list(every.values())  # every pair, where the result kept them
    split = {(p.pair.a, p.pair.b) for p in result.disagreements}
    fig = go.Figure()
    for same, name, color in ((True, "same person", SAME_COLOUR), (False, "different people", DIFFERENT_COLOUR)):
        for disagree in (False, True):
            rows = [p for p in points if p.pair.same == same and ((p.pair.a, p.pair.b) in split) == disagree]
            if not rows:
                continue
            fig.add_trace(
                go.Scatter(
                    x=[p.distances[x_model] for p in rows],
                    y=[p.distances[y_model] for p in rows],
                    mode="markers",
                    name=f"{name}{': the models disagree' if disagree else ''}",
                    marker=dict(
                        color=color,
                        size=9 if disagree else 5,
                        opacity=0.9 if disagree else 0.35,
                        symbol="x" if disagree else "circle",
                    ),
                    text=[f"{p.pair.names[0]} | {p.pair.names[1]}" for p in rows],
                    hovertemplate="%{text}<br>"
                    + html.escape(x_model)
                    + " %{x:.3f}<br>"
                    + html.escape(y_model)
                    + " %{y:.3f}<extra></extra>",
                )
            )
    fig.add_vline(
        x=result.thresholds[x_model],
        line_dash="dash",
        line_color=model_colour(x_model),
        annotation_text=f"{x_model} threshold {result.thresholds[x_model]:.2f}",
    )
    fig.add_hline(
        y=result.thresholds[y_model],
        line_dash="dash",
        line_color=model_colour(y_model),
        annotation_text=f"{y_model} threshold {result.thresholds[y_model]:.2f}",
        annotation_position="top left",
    )
    fig.update_layout(
        title=f"{describe_pairs(result.source)} ({result.pairs:,}): {len(result.disagreements)} on which the verdicts differ",
        xaxis_title={"text": f"{x_model} distance", "font": {"color": model_colour(x_model)}},
        yaxis_title={"text": f"{y_model} distance", "font": {"color": model_colour(y_model)}},
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
        height=520,
    )
    return fig


def pair_caption(pair, models: Sequence[str]) -> str:
    """``Ada Lovelace | Ada Lovelace (same person): dlib-resnet 0.52 different, facenet-casia-webface 0.81 same``
    (LFW's folder names with spaces)."""
    label = "same person" if pair.pair.same else "different people"
    names = " | ".join(n.replace("_", " ") for n in pair.pair.names)
    verdicts = [f"{m} {pair.distances[m]:.2f} {'same' if pair.same_person[m] else 'different'}" for m in models]
    return f"{names} ({label}): {', '.join(verdicts)}"
