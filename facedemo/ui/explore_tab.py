"""Explorer: the gallery's embedding space (UMAP / PCA), distance histograms, ROC and a metrics table,
for one model or two side by side; the open-set DET curves and the robustness curves measured on LFW.

UMAP costs ~16 s of numba JIT the first time in a process on 2 cores: ``ExplorerState.warm_up`` compiles
it in the background at start-up, "auto" shows PCA until then, and figures are cached until the gallery
changes (the key is the exact set of stored face ids).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from types import SimpleNamespace

import gradio as gr

from .. import params
from ..errors import GalleryError, InvalidParameterError
from ..evaluation.pairs import describe_pairs
from ..explorer import (
    ROBUSTNESS_METRICS,
    Exploration,
    det_figure,
    explore,
    gallery_digest,
    held_models,
    metrics_table,
    robustness_figure,
    roc_figure,
    umap_ready,
    warm_up_umap,
)
from ..explorer.figures import verdicts_figure
from ..services import Services, lfw, usecases
from ..words import counted
from . import scoreboard
from .common import (
    PROGRESS_ROOM,
    bound,
    clear_on_change,
    default_model,
    gpu_bound,
    gradio_progress,
    model_choices,
    page_json,
    session_of,
    shown_reason,
    user_errors,
)
from .disagreements import (
    DISAGREEMENT_SOURCES,
    NO_LFW,
    disagreement_json,
    disagreement_note,
    disagreement_tiles,
    gallery_empty_state,
)

EMPTY_NOTE = (
    "**Nobody is enrolled yet**, so there is nothing to map. Enroll two or more people on the **Gallery** tab "
    "(a few photos each), or group an album on the **Album** tab and name its groups; then press **Explore**."
)


def left_out_lines(result) -> list[str]:
    """The robustness note's lines on fairness: which severities a panel leaves out, and why."""
    gaps = {name: c["left_out"] for name, c in result.compared().items() if c["left_out"]}
    if not gaps:
        return ["Every model in a panel is drawn at the same severities."]
    lines = [
        "Each panel compares the models only at the severities measured for all of them; these were measured for "
        "some of the models only, so they are left out (a point one model lacks would read as that model "
        "holding up):"
    ]
    for name, left in gaps.items():
        lines.append(
            f"- {name}: " + "; ".join(f"{model} at severity {', '.join(map(str, s))}" for model, s in left.items())
        )
    return lines


class ExplorerState:
    """The tab's cache: explorations keyed by the exact set of stored faces, so any change invalidates them."""

    def __init__(self, size: int = 32):
        self._cache: OrderedDict = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    @staticmethod
    def warm_up() -> None:
        warm_up_umap(block=True)

    @staticmethod
    def ready() -> bool:
        return umap_ready()

    def forget(self, namespace: str) -> None:
        """Drop a departed visitor's explorations (their people's names and embeddings) from memory."""
        with self._lock:
            for key in [k for k in self._cache if k[0] == namespace]:
                del self._cache[key]

    def namespaces(self) -> set:
        with self._lock:
            return {k[0] for k in self._cache}

    def _cached(self, key, compute, keep: bool = True):
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        result = compute()
        if keep:
            with self._lock:
                self._cache[key] = result
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        return result

    def explore(self, gallery, model: str, method: str) -> Exploration:
        wanted = method if method != "auto" else ("umap" if umap_ready() else "auto")
        key = (getattr(gallery.store, "namespace", None), model, wanted, gallery_digest(gallery, model))
        # an "auto" answer may be a stop-gap PCA: do not keep it
        return self._cached(key, lambda: explore(gallery, model, wanted), keep=wanted != "auto")

    def scoreboard(self, services: Services, session: str | None, method: str, progress=None):
        """Every model scored on the visitor's own gallery (``usecases.scoreboard``), kept until it changes."""
        visit = services.request(session)
        gallery = visit.gallery
        models = usecases.available_models(visit)
        usecases.fill_in([gallery], models, progress)  # first, so that the key is the gallery as scored
        key = (getattr(gallery.store, "namespace", None), "scoreboard", method)
        key += tuple((m, gallery_digest(gallery, m)) for m in held_models(gallery, models))
        return self._cached(key, lambda: usecases.scoreboard(visit, None, method, progress))


def explore_gallery(
    services: Services,
    state: ExplorerState,
    names=None,
    how="auto",
    source="yours",
    request: gr.Request = None,
    progress=gr.Progress(),
):
    """The models picked (none: the default one) on the visitor's gallery or, in public mode, the demo
    gallery: the maps, the histograms, the ROC, the metrics and the summary."""
    names = [n for n in (names or [default_model(services)]) if n][:2]
    if source not in (None, "", "yours", "demo"):
        raise InvalidParameterError("The gallery to explore is 'yours' or 'demo'.")
    visit = services.request(session_of(request))
    chosen = usecases.gallery_to_explore(visit, names, source == "demo", gradio_progress(progress))
    gallery, names, people = chosen.gallery, chosen.models, counted(chosen.people, "person", "people")
    lead = {
        "yours": "",
        "demo": f"The shared demo gallery ({people}).  \n",
        "demo instead": f"Your own gallery is empty, so this is the shared demo gallery ({people}); "
        "enroll people on the Gallery tab to explore yours.  \n",
    }[chosen.which]
    if not chosen.complete:
        return (EMPTY_NOTE, *[None] * 6, {})
    views = [state.explore(gallery, n, how or "auto") for n in names]
    maps = [v.projection for v in views] + [None]
    hists = [v.histogram for v in views] + [None]
    curves = {v.model: v.view.metrics.roc for v in views if v.view.metrics is not None}
    roc = roc_figure(curves, title="ROC on every pair of gallery faces") if curves else None
    table = metrics_table([v.view.row() for v in views])
    return (
        lead + "  \n".join(v.note for v in views),
        maps[0],
        maps[1],
        hists[0],
        hists[1],
        roc,
        table,
        {v.model: v.to_json() for v in views},
    )


@user_errors
def open_set(services: Services, names=None, size="1000"):
    """Every model picked (none: every model with curves) in one DET figure at one gallery size: a colour
    per model, a dash per decision method."""
    size = params.number(size or 1000, "The number of people enrolled", 1, 10**6, integer=True)
    curves, note = lfw.open_set_comparison(services.pipeline, int(size), [n for n in (names or []) if n])
    drawn = ", ".join(dict.fromkeys(c["model"] for c in curves))
    return note, det_figure(
        curves,
        f"Open-set identification with {int(size):,} people enrolled: {drawn}",
        services.settings.target_fpir,
    )


@user_errors
def robustness(services: Services, metric="accuracy"):
    result = lfw.robustness(services.pipeline)
    lines = [
        f"{describe_pairs(result.pairs_file)} ({result.pairs:,}), the second photo of each degraded before detection; "
        "accuracy at each model's calibrated threshold (measured once and shipped with facedemo, or this "
        "machine's own run)."
    ]
    lines += [f"- **{name}**: {shown_reason(reason)}" for name, reason in result.unavailable.items()]
    lines += left_out_lines(result)
    # each model's reason as the page says it: no download URL, server path or setting name (#35)
    return "\n".join(lines), robustness_figure(result, metric or "accuracy"), page_json(result.to_json())


def disagreements(services: Services, source="gallery", hardest=10, request: gr.Request = None, progress=gr.Progress()):
    """The gallery's own pairs (a visitor's own in public mode) or LFW View 1's test pairs, judged by every
    model: a note, two models' distances, the hardest pairs and the disagreements, the JSON."""
    hardest = params.hardest(10 if hardest in (None, "") else hardest)
    if source not in DISAGREEMENT_SOURCES:
        raise InvalidParameterError(
            f"Pick the pairs to judge: {' or '.join(repr(k) for k in DISAGREEMENT_SOURCES)}, not {str(source)[:40]!r}."
        )
    session = session_of(request)
    if source == "lfw":
        if not lfw.has_lfw():
            return NO_LFW, None, "", None
        bar = gradio_progress(progress)  # the first run embeds 2,000 photos per model: minutes on a CPU

        def per_model(label):
            return lambda done, total, message="": bar(done, total, f"{label}: {message}" if message else label)

        result = lfw.lfw_disagreements(
            services.pipeline, services.flights, services.public, hardest=hardest, progress_for=per_model
        )
    else:
        visit = services.request(session)
        empty = gallery_empty_state(visit.gallery.people(), services.public)
        if empty:
            return empty, None, "", None
        try:
            result = usecases.gallery_disagreements(visit, hardest=hardest)
        except GalleryError as exc:  # nothing to judge yet: say what to enroll, without an error badge
            return (
                f"{exc} Enroll at least two people, each with two photos or more, on the Gallery tab.",
                None,
                "",
                None,
            )
    figure = verdicts_figure(result) if len(result.models) >= 2 else None
    return disagreement_note(result), figure, disagreement_tiles(result, hardest), disagreement_json(result)


def cost_note(services: Services, source="gallery"):
    """Before the click: what the LFW pairs will cost when their embeddings are not cached yet."""
    photos, seconds = lfw.lfw_cost(services.pipeline) if source == "lfw" else (0, 0.0)
    if seconds <= 10:
        return ""
    if services.public and seconds > params.MAX_REQUEST_CPU_S:
        return f"LFW's pairs are not embedded on this server yet ({photos:,} photo embeddings), so they cannot be judged here."
    return (
        f"**This takes a while**: the first run embeds {photos:,} LFW photos (counted once per model), about "
        f"{seconds:.0f} s of CPU on this machine; after that it answers in a second, for everyone."
    )


def maps_layout(services: Services, choices) -> SimpleNamespace:
    """The models, projection and gallery to explore; the maps, histograms, ROC, metrics and summary."""
    default = default_model(services)
    with gr.Row():
        models = gr.Dropdown(
            choices,
            value=[default] if default else [],
            multiselect=True,
            max_choices=2,
            label="Models (pick two to compare)",
            scale=3,
        )
        method = gr.Radio(
            ["auto", "umap", "pca"],
            value="auto",
            label="Projection",
            info="auto: PCA at once, UMAP once it is compiled",
            scale=2,
        )
        # Public mode: the visitor's own people or the shared demo gallery's (each explored on its own: the
        # two are embedded and thresholded apart).
        which = gr.Radio(
            [("Your gallery", "yours"), ("The demo gallery", "demo")],
            value="yours",
            label="Gallery",
            visible=services.public,
            scale=2,
        )
        button = gr.Button("Explore", variant="primary", scale=1, elem_id="explore-run")
    note = gr.Markdown("Press **Explore** to map the gallery's faces with the models picked.", elem_id="explore-note")
    with gr.Row():
        map_a = gr.Plot(label="Embedding space", min_width=340)
        map_b = gr.Plot(label="Second model", visible=True, min_width=340)
    with gr.Row():
        hist_a = gr.Plot(label="Distances", min_width=340)
        hist_b = gr.Plot(label="Distances (second model)", min_width=340)
    with gr.Row():
        roc = gr.Plot(label="ROC on every pair of gallery faces", min_width=340)
        table = gr.Plot(label="Metrics", min_width=340)
    summary = gr.JSON(label="Summary")
    return SimpleNamespace(
        inputs=[models, method, which],
        button=button,
        shown=[note, map_a, map_b, hist_a, hist_b, roc, table, summary],
    )


def open_set_layout(services: Services, choices) -> SimpleNamespace:
    """The DET curves measured on LFW, every model picked in one figure."""
    with gr.Accordion("Open-set identification on LFW: FNIR at FPIR for each decision method", open=False):
        with gr.Row():
            det_models = gr.Dropdown(
                choices,
                value=services.available_models(),
                multiselect=True,
                label="Models (every one by default, one colour each)",
                scale=3,
                elem_id="det-models",
            )
            det_size = gr.Radio(["10", "100", "1000"], value="1000", label="People enrolled", scale=2)
            det_button = gr.Button("Show the DET curves", scale=1)
        det_note = gr.Markdown(min_height=PROGRESS_ROOM)
        det_plot = gr.Plot(label="DET: strangers named (FPIR) against enrolled people missed or misnamed (FNIR)")
    return SimpleNamespace(inputs=[det_models, det_size], button=det_button, shown=[det_note, det_plot])


def robustness_layout() -> SimpleNamespace:
    """The robustness curves measured on LFW."""
    with gr.Accordion(
        "Robustness on LFW: every model under blur, darkness, low resolution, JPEG, occlusion, grayscale, noise",
        open=False,
    ):
        with gr.Row():
            rob_metric = gr.Radio(
                [(label, key) for key, label in ROBUSTNESS_METRICS.items()], value="accuracy", label="Curve", scale=3
            )
            rob_button = gr.Button("Show the robustness curves", scale=1)
        rob_note = gr.Markdown(min_height=PROGRESS_ROOM)
        rob_plot = gr.Plot(label="One panel per condition, one line per model; severity 0 is the clean pairs")
        rob_json = gr.JSON(label="Figures (as `eval robustness --json`)")
    return SimpleNamespace(inputs=[rob_metric], button=rob_button, shown=[rob_note, rob_plot, rob_json])


def disagreements_layout(services: Services) -> SimpleNamespace:
    """Where the models disagree, on the gallery's pairs or LFW's; what LFW's first run costs, said before."""
    with gr.Accordion(
        "Where the models disagree: each model's hardest mistakes, and the pairs they judge differently", open=False
    ):
        lfw_here = lfw.has_lfw()
        sources = [(label, key) for key, label in DISAGREEMENT_SOURCES.items() if key == "gallery" or lfw_here]
        with gr.Row():
            dis_source = gr.Radio(
                sources,
                value="gallery",
                label="Pairs",
                info=None if lfw_here else NO_LFW,
                scale=3,
                elem_id="dis-source",
            )
            dis_hardest = gr.Number(
                value=10, minimum=1, maximum=params.MAX_HARDEST, precision=0, label="Hardest pairs to show", scale=1
            )
            dis_button = gr.Button("Find where they disagree", scale=1)
        gr.Markdown(
            "Every model judges the same pairs at its own calibrated threshold. The gallery's pairs are every two "
            "faces of one person and a sample of two different people"
            + (", your own gallery's in this public demo." if services.public else ".")
        )
        dis_cost = gr.Markdown(elem_id="dis-cost")  # said before the click when the work takes more than 10 s
        dis_note = gr.Markdown(elem_id="dis-note", min_height=PROGRESS_ROOM)  # the progress, by the button
        dis_plot = gr.Plot(label="Two models' distances on the same pairs: the crosses are where their verdicts differ")
        dis_tiles = gr.HTML(elem_id="dis-tiles")
        dis_json = gr.JSON(label="Disagreements (JSON)")

    return SimpleNamespace(
        inputs=[dis_source, dis_hardest],
        button=dis_button,
        cost=dis_cost,
        shown=[dis_note, dis_plot, dis_tiles, dis_json],
    )


def wire(services: Services, state: ExplorerState, maps, det, rob, dis) -> None:
    explored = maps.button.click(
        gpu_bound(explore_gallery, services, state), maps.inputs, maps.shown, api_name="explore"
    )
    clear_on_change(maps.inputs, maps.shown, ["", *[None] * 7], [explored])
    det.button.click(bound(open_set, services), det.inputs, det.shown, api_name="open_set")
    rob.button.click(bound(robustness, services), rob.inputs, rob.shown, api_name="robustness")
    judged = dis.button.click(
        gpu_bound(disagreements, services), dis.inputs, dis.shown, api_name="disagreements", preprocess=False
    )
    clear_on_change(dis.inputs, dis.shown, ["", None, "", None], [judged])
    source = dis.inputs[0]
    source.change(bound(cost_note, services), source, dis.cost, api_visibility="private", queue=False)


def render(services: Services, state: ExplorerState) -> None:
    scoreboard.render(services, state)  # first on the tab: which model wins on what, on this gallery
    choices = model_choices(services)
    maps = maps_layout(services, choices)
    det = open_set_layout(services, choices)
    rob = robustness_layout()
    dis = disagreements_layout(services)
    wire(services, state, maps, det, rob, dis)
    return maps.inputs[0]
