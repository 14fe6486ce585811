"""Identify (1:N): every face in a photo boxed and named, and an unknown face enrolled from the result; or the
same photo identified by every model with people enrolled, a row per model and face."""

from __future__ import annotations

import time
from types import SimpleNamespace

import gradio as gr

from .. import params
from ..errors import InvalidParameterError, LooksLikeSomeoneError
from ..gallery.identify import size_note
from ..rules import DEFAULT_METHOD, described, methods
from ..services import Services, usecases
from . import detectors_view
from .common import (
    clear_on_change,
    default_model,
    gpu_bound,
    gradio_progress,
    model_choices,
    page_json,
    photo_input,
    require_image,
    session_of,
    shown_reason,
)
from .compare_view import identify_comparison, identify_table


def face_label(index: int, match) -> str:
    return f"{index}. {match.label}"


def result_note(result, target: float | None = None) -> str:
    if result.note:
        return f"**{result.note}**"
    return size_note(result, target)


def shown_box(box, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A face's box in whole pixels, clipped to the photo: MTCNN's box of a face at the edge starts outside
    it (x = -17.9 on bbt2), and gradio's AnnotatedImage slices its mask with the raw numbers, so a negative
    one drew stray lines on the other side of the photo."""
    width, height = size
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, x2 = max(0, min(x1, width - 1)), max(1, min(x2, width))
    y1, y2 = max(0, min(y1, height - 1)), max(1, min(y2, height))
    return x1, y1, max(x1 + 1, x2), max(y1 + 1, y2)


def compare_boxes(comparison) -> list[tuple[tuple[int, ...], str]]:
    """Each face boxed once, labelled with its number and every model's answer (≠ where they differ)."""
    first, split = comparison.results[0], set(comparison.disagreements)
    return [
        (
            shown_box(match.face.box, comparison.image.size),
            f"{i}. {'≠ ' if i in split else ''}"
            + " / ".join(f"{r.model}: {r.faces[i - 1].who or 'unknown'}" for r in comparison.results),
        )
        for i, match in enumerate(first.faces, 1)
    ]


def compare_note(comparison) -> str:
    lines = [f"- **{m}** not run: {shown_reason(why)}" for m, why in comparison.unavailable.items()]
    return "\n".join(list(comparison.notes) + lines)


def identify(
    services: Services,
    path,
    model_name=None,
    k=3,
    how=DEFAULT_METHOD,
    request: gr.Request = None,
    progress=gr.Progress(),
):
    path = require_image(path, "a photo")
    visit = services.request(session_of(request))
    picture, result = usecases.identify(
        visit,
        path,
        model_name or None,
        3 if k in (None, "") else k,
        how or DEFAULT_METHOD,
        progress=gradio_progress(progress),
    )
    boxes = [(shown_box(m.face.box, picture.size), face_label(i, m)) for i, m in enumerate(result.faces, 1)]
    unknown_first = sorted(range(len(result.faces)), key=lambda i: result.faces[i].name is not None)
    choices = [(face_label(i + 1, result.faces[i]), i) for i in unknown_first]
    people = [p.name for p in visit.gallery.people()]
    # The picker starts on an unknown face, never on one the gallery names (the user picks that one).
    unknown = [i for i in unknown_first if result.faces[i].name is None]
    return (
        (picture, boxes),
        identify_table(result),
        gr.update(choices=choices, value=unknown[0] if unknown else None),
        gr.update(choices=people),
        result_note(result, services.settings.target_fpir),
        result.to_json(),
    )


def compare(services: Services, path, k=3, how=DEFAULT_METHOD, request: gr.Request = None, progress=gr.Progress()):
    """Every model with people enrolled on the same photo: a row per model and face."""
    path = require_image(path, "a photo")
    comparison = usecases.compare_identify(
        services.request(session_of(request)),
        path,
        3 if k in (None, "") else k,
        how or DEFAULT_METHOD,
        progress=gradio_progress(progress),
    )
    return (
        (comparison.image, compare_boxes(comparison)),
        identify_comparison(comparison),
        compare_note(comparison),
        page_json(comparison.to_json()),
    )


def enrolled(services: Services, path, index, person, request, confirm: bool) -> str:
    path = require_image(path, "a photo")
    if index in (None, ""):
        raise InvalidParameterError("Identify the photo first, then pick the face to enroll.")
    index = params.face_index(index)
    result = usecases.enroll(
        services.request(session_of(request)),
        person or "",
        [path],
        face_index=index,
        labels=["identify upload"],
        confirm=confirm,
    )
    if result.duplicates:
        return f"That face is already enrolled as **{result.duplicates[0].person}**."
    notes = "".join(f" {n}" for n in result.notes)  # e.g. the demo gallery has someone of that name too
    return f"Enrolled face {index + 1} as **{result.person}**. Identify again to see the name.{notes}"


def people_changed_value():
    return time.time()


def enroll_face(services: Services, path, index, person, model_name=None, confirm=False, request: gr.Request = None):
    """The API's enroll: refused with the question when the gallery names the face as someone else,
    unless ``confirm``."""
    sure = confirm is not None and params.boolean(confirm, "The confirmation")
    try:
        return enrolled(services, path, index, person, request, sure), people_changed_value()
    except LooksLikeSomeoneError as exc:
        raise LooksLikeSomeoneError(f"{exc} (send confirm=true to enroll it anyway)", exc.matches) from None


def ask_or_enroll(services: Services, path, index, person, model_name=None, request: gr.Request = None):
    """The page's enroll: a face the gallery names as someone else is asked about under the button."""
    try:
        return (
            enrolled(services, path, index, person, request, False),
            people_changed_value(),
            gr.update(visible=False),
        )
    except LooksLikeSomeoneError as exc:
        return (
            f"**{exc}**",
            gr.skip(),
            gr.update(visible=True, value=f"Enroll it as {(person or '').strip()} anyway"),
        )


def enroll_anyway(services: Services, path, index, person, model_name=None, request: gr.Request = None):
    return enrolled(services, path, index, person, request, True), people_changed_value(), gr.update(visible=False)


def photo_layout(services: Services, examples: dict) -> SimpleNamespace:
    """The photo and what to identify it with on the left, the faces found on the right."""
    with gr.Row():
        with gr.Column(scale=1):
            image = photo_input("Photo (one face or a group)", "identify-image")
            with gr.Row():
                model = gr.Dropdown(model_choices(services), value=default_model(services), label="Model")
                top_k = gr.Slider(1, 10, value=3, step=1, label="Top candidates")
            method = gr.Radio(
                list(methods()),
                value=DEFAULT_METHOD,
                label="Decide by",
                info=described(),
            )
            with gr.Row():
                button = gr.Button("Identify", variant="primary")
                compare_button = gr.Button("Compare every model")
            if examples.get("identify"):
                gr.Examples(examples["identify"], inputs=[image], label="Examples")
        with gr.Column(scale=2):
            annotated = gr.AnnotatedImage(label="Faces found", height=420)
            table = gr.HTML(label="Faces", elem_id="identify-table")  # rows that stack at 400 px (compare_view)
            note = gr.Markdown(elem_id="identify-note")
    return SimpleNamespace(
        image=image,
        model=model,
        top_k=top_k,
        method=method,
        button=button,
        compare_button=compare_button,
        annotated=annotated,
        table=table,
        note=note,
    )


def enroll_layout() -> SimpleNamespace:
    """Enroll a face of the result (e.g. an unknown one), and the result's JSON."""
    with gr.Accordion("Enroll a face from this result (e.g. an unknown one)", open=False):
        with gr.Row():
            face_pick = gr.Dropdown([], label="Face", scale=1, elem_id="enroll-face-pick")
            name = gr.Dropdown(
                [],
                label="Name (new, or pick an existing person)",
                allow_custom_value=True,
                scale=2,
                elem_id="enroll-face-name",
            )
            enroll_button = gr.Button("Enroll this face", scale=1, elem_id="enroll-face")
        enroll_note = gr.Markdown(elem_id="enroll-face-note")
        # A face the gallery names as someone else is asked about first; this button is the answer.
        anyway_button = gr.Button("Enroll it anyway", visible=False, variant="stop", elem_id="enroll-face-anyway")
        # The API's enroll takes the answer as a boolean (`/enroll_face`, as the CLI's --confirm).
        api_confirm = gr.Checkbox(value=False, visible=False)
        api_enroll = gr.Button(visible=False)
    result_json = gr.JSON(label="Result (as the CLI's --json)")
    return SimpleNamespace(
        face_pick=face_pick,
        name=name,
        enroll_button=enroll_button,
        enroll_note=enroll_note,
        anyway_button=anyway_button,
        api_confirm=api_confirm,
        api_enroll=api_enroll,
        result_json=result_json,
    )


def wire_identify(services: Services, ui: SimpleNamespace):
    """Identify and Compare every model; returns their events, which a new photo or setting cancels."""
    identified = ui.button.click(
        gpu_bound(identify, services),
        [ui.image, ui.model, ui.top_k, ui.method],
        [ui.annotated, ui.table, ui.face_pick, ui.name, ui.note, ui.result_json],
        api_name="identify",
        preprocess=False,
        show_progress_on=[ui.annotated, ui.table, ui.note],  # not over the face and name pickers below
    )
    compared = ui.compare_button.click(
        gpu_bound(compare, services),
        [ui.image, ui.top_k, ui.method],
        [ui.annotated, ui.table, ui.note, ui.result_json],
        api_name="identify_compare",
        preprocess=False,
    )
    return identified, compared


def wire_enroll(services: Services, ui: SimpleNamespace, people_changed: gr.State) -> None:
    ui.api_enroll.click(
        gpu_bound(enroll_face, services),
        [ui.image, ui.face_pick, ui.name, ui.model, ui.api_confirm],
        [ui.enroll_note, people_changed],
        api_name="enroll_face",
        preprocess=False,
    )
    panel = [ui.image, ui.face_pick, ui.name, ui.model]
    answer = [ui.enroll_note, people_changed, ui.anyway_button]
    ui.enroll_button.click(
        gpu_bound(ask_or_enroll, services), panel, answer, api_visibility="private", preprocess=False
    )
    ui.anyway_button.click(
        gpu_bound(enroll_anyway, services), panel, answer, api_visibility="private", preprocess=False
    )


def wire_clearing(ui: SimpleNamespace, running) -> None:
    """What goes when what it was computed from changes (``running``: the events it cancels)."""
    # The question was about this face under this name: another face, name or photo takes it back.
    clear_on_change([ui.face_pick, ui.name], [ui.enroll_note, ui.anyway_button], ["", gr.update(visible=False)])
    ui.image.change(
        lambda: gr.update(value=None), None, ui.name, api_visibility="private", queue=False, show_progress="hidden"
    )  # a name typed for the last photo is not this one's
    # Another photo, model, method or number of candidates: the faces shown were found for the old ones.
    clear_on_change(
        [ui.image, ui.model, ui.method, ui.top_k],
        [ui.annotated, ui.table, ui.face_pick, ui.note, ui.enroll_note, ui.anyway_button, ui.result_json],
        [None, "", gr.update(choices=[], value=None), "", "", gr.update(visible=False), None],
        running,
    )


def render(services: Services, examples: dict, people_changed: gr.State) -> None:
    ui = SimpleNamespace(**vars(photo_layout(services, examples)), **vars(enroll_layout()))
    running = wire_identify(services, ui)
    wire_enroll(services, ui, people_changed)
    wire_clearing(ui, list(running))
    detectors_view.render(services)
    return ui.model
