"""Verify (1:1): two photos, the two aligned faces side by side, the distance on the model's distribution."""

from __future__ import annotations

import html
from types import SimpleNamespace

import gradio as gr
from PIL import Image

from ..explorer.figures import compare_figure, occlusion_figure, verify_figure
from ..services import Services, usecases
from .common import (
    PROGRESS_ROOM,
    clear_on_change,
    default_model,
    gpu_bound,
    model_choices,
    page_json,
    photo_input,
    require_image,
    session_of,
    shown_reason,
)
from .compare_view import score_sentence, score_text, verify_rows


def verdict_html(result) -> str:
    color, word = ("#2e7d32", "Same person") if result.same_person else ("#c62828", "Different people")
    notes = "".join(f"<div style='opacity:.8'>{n}</div>" for n in result.notes)
    return (
        f"<div class='verdict' style='border-left:6px solid {color};padding:8px 14px'>"
        f"<div style='font-size:1.6em;font-weight:700;color:{color}'>{word}</div>"
        f"<div>distance <b>{result.distance:.3f}</b> {'≤' if result.same_person else '>'} threshold {result.threshold:.3f} · "
        f"cosine similarity {result.similarity:.3f} · model {result.model}</div>"
        f"<div>score: stranger pairs this close {score_text(result.score)}</div>{notes}</div>"
    )


def compare_html(comparison) -> str:
    """A row per model: verdict, common score, margin to its threshold, time per face; one line first when
    the verdicts split; the models that could not run, and why."""
    missing = "".join(
        f"<div style='opacity:.7'>{html.escape(m)}: {html.escape(shown_reason(why))}</div>"
        for m, why in comparison.unavailable.items()
    )
    # What every model's verdict says (which faces were compared) once; what one model says of itself (a
    # declared model's "uncalibrated" and the command that calibrates it) under its name.
    shared = [
        n
        for n in (comparison.results[0].notes if comparison.results else ())
        if all(n in r.notes for r in comparison.results)
    ]
    own = [f"{r.model}: {n}" for r in comparison.results for n in r.notes if n not in shared]
    notes = "".join(f"<div style='opacity:.8'>{html.escape(n)}</div>" for n in shared + own)
    return (
        f"<div class='verdict' style='padding:8px 14px'>{verify_rows(comparison)}"
        f"{score_sentence()}{notes}{missing}</div>"
    )


def explain_caption(explanation) -> str:
    """What the occlusion maps show, in words: which face the square went over, what red and blue mean, and
    each model's own verdict on the pair."""
    hidden = explanation.maps[0].occluded.upper()
    other = "B" if hidden == "A" else "A"
    lines = [
        f"A grey square slid over **face {hidden}** (each model's own alignment of it); face {other}, below, was "
        "left as it is. **Red**: hiding that spot pushed the two faces apart, so the model relies on it to find "
        "them alike. **Blue**: hiding it drew them together, so that spot made them look different. Each map has "
        "its own colour scale, since the models' distances differ."
    ]
    for m in explanation.maps:
        verdict = "same person" if m.same_person else "different people"
        lines.append(
            f"- **{html.escape(m.model)}**: distance {m.base_distance:.3f}, {verdict} at its threshold "
            f"{m.threshold:.3f} ({m.grid} x {m.grid} positions of the square)"
        )
    if explanation.unavailable:
        names = ", ".join(html.escape(n) for n in explanation.unavailable)
        lines.append(f"\nNot shown: {names}, which cannot run here (the Models list at the top says why).")
    lines += [f"\n{html.escape(n)}" for n in explanation.notes]  # each a paragraph, not a model's line continued
    return "\n".join(lines)


def side_by_side(a: Image.Image, b: Image.Image, size: int = 224) -> Image.Image:
    canvas = Image.new("RGB", (2 * size + 12, size), (255, 255, 255))
    canvas.paste(a.resize((size, size)), (0, 0))
    canvas.paste(b.resize((size, size)), (size + 12, 0))
    return canvas


def calibrated_if_blank(limit):
    """The field's rule: blank or 0 means the model's calibrated threshold; anything else is checked by the core."""
    if limit in (None, ""):
        return None
    try:
        return None if float(limit) == 0 else limit
    except (TypeError, ValueError):
        return limit


def verify(services: Services, a, b, model_name=None, limit=None, request: gr.Request = None):
    a, b = require_image(a, "photo A"), require_image(b, "photo B")
    pipeline = services.pipeline_for(session_of(request))
    done = usecases.verify(pipeline, a, b, model_name or None, calibrated_if_blank(limit))
    result = done.result
    figure = verify_figure(result.model, result.distance, result.threshold, done.distributions)
    return verdict_html(result), side_by_side(done.first.crop, done.second.crop), figure, result.to_json()


def compare(services: Services, a, b, request: gr.Request = None):
    """Every available model on the same two faces: a row per model, a distribution panel per model."""
    a, b = require_image(a, "photo A"), require_image(b, "photo B")
    result, records = usecases.compare_verify(services.pipeline_for(session_of(request)), a, b)
    rows = [(r.model, r.distance, r.threshold, records[r.model]) for r in result.results]
    return (
        compare_html(result),
        side_by_side(result.first.crop, result.second.crop),
        compare_figure(rows),
        page_json(result.to_json()),
    )


def explain(services: Services, a, b, request: gr.Request = None):
    """Every model this visitor can use, its occlusion map of the pair (the square over face A)."""
    a, b = require_image(a, "photo A"), require_image(b, "photo B")
    explanation = usecases.explain(services.pipeline_for(session_of(request)), a, b)
    return explain_caption(explanation), occlusion_figure(explanation), explanation.to_json()


def inputs_layout(services: Services, examples: dict) -> SimpleNamespace:
    """The two photos, the model and threshold, the three buttons and the examples."""
    with gr.Row():
        image_a = photo_input("Photo A", "verify-a")
        image_b = photo_input("Photo B", "verify-b")
    with gr.Row():
        model = gr.Dropdown(model_choices(services), value=default_model(services), label="Model", scale=2)
        threshold = gr.Number(
            value=None, minimum=0, maximum=2, label="Threshold (blank or 0: the model's calibrated one)", scale=1
        )
        button = gr.Button("Verify", variant="primary", scale=1)
        compare_button = gr.Button("Compare every model", scale=1)
        explain_button = gr.Button("Where does each model look?", scale=1, elem_id="verify-explain")
    # The occlusion maps are drawn far below; their progress shows here, by the button (#35: the spinner was
    # 1,500 px below it), and then says where the maps are.
    explain_status = gr.Markdown(elem_id="verify-explain-status", min_height=PROGRESS_ROOM)
    if examples.get("verify"):
        gr.Examples(examples["verify"], inputs=[image_a, image_b], label="Examples")
    return SimpleNamespace(
        image_a=image_a,
        image_b=image_b,
        model=model,
        threshold=threshold,
        button=button,
        compare_button=compare_button,
        explain_button=explain_button,
        explain_status=explain_status,
    )


def results_layout() -> SimpleNamespace:
    """The verdict, the aligned faces, the distribution and the JSON; then the occlusion maps."""
    verdict = gr.HTML(elem_id="verify-verdict")
    with gr.Row():
        crops = gr.Image(
            label="The faces compared, aligned as the model sees them",
            elem_id="verify-crops",
            type="pil",
            height=260,
            interactive=False,
            min_width=340,
        )
        plot = gr.Plot(label="Distance on the model's genuine / impostor distribution", min_width=340)
    result_json = gr.JSON(label="Result (as the CLI's --json)")
    with gr.Accordion("Where each model looks: occlusion maps", open=True):
        gr.Markdown(
            "**Where does each model look?** hides one small square of face A at a time and measures, for every "
            "model, how much the distance between the two faces moves: the regions each model's verdict rests on."
        )
        explain_note = gr.Markdown(elem_id="verify-explain-note")
        explain_plot = gr.Plot(label="Occlusion maps: one column per model", elem_id="verify-explain-plot")
        explain_json = gr.JSON(label="Occlusion maps (JSON)")
    return SimpleNamespace(results=[verdict, crops, plot, result_json], maps=[explain_note, explain_plot, explain_json])


def wire(services: Services, ui: SimpleNamespace, out: SimpleNamespace) -> None:
    photos = [ui.image_a, ui.image_b]
    verified = ui.button.click(
        gpu_bound(verify, services),
        [*photos, ui.model, ui.threshold],
        out.results,
        api_name="verify",
        preprocess=False,
    )
    compared = ui.compare_button.click(
        gpu_bound(compare, services), photos, out.results, api_name="compare", preprocess=False
    )
    # A new photo, example, model or threshold: the verdict shown was another pair's, so it goes.
    clear_on_change([*photos, ui.model, ui.threshold], out.results, ["", None, None, None], [verified, compared])
    explained = ui.explain_button.click(
        gpu_bound(explain, services),
        photos,
        out.maps,
        api_name="explain",
        preprocess=False,
        show_progress_on=[ui.explain_status],
    )
    explained.success(
        lambda: "The occlusion maps are below, under **Where each model looks**.",
        None,
        ui.explain_status,
        api_visibility="private",
        queue=False,
    )
    # The maps cover every model at its calibrated threshold: only another photo makes them another pair's.
    clear_on_change(photos, [*out.maps, ui.explain_status], ["", None, None, ""], [explained])


def render(services: Services, examples: dict) -> None:
    ui = inputs_layout(services, examples)
    wire(services, ui, results_layout())
    return ui.model
