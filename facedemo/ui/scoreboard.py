"""The Explorer's scoreboard, first on the tab: every model measured on the visitor's own gallery (a table
with the best of each row marked and what each row means), the faces the models name differently as inline
thumbnails (never a file URL), and the JSON of ``python -m facedemo scoreboard --json``."""

from __future__ import annotations

import html

import gradio as gr

from ..explorer.scoreboard import check_method
from ..rules import distance_methods
from ..services import Services
from .common import clear_on_change, gpu_bound, gradio_progress, inline_tiles, page_json, session_of, shown_reason

BEST = "★"
INTRO = (
    "Every model measured now on the faces enrolled in "
    "{whose}: each face identified against the gallery without it, every pair of faces judged, and the time "
    "one face takes here. {best} marks the best of each row."
)


def scoreboard_note(board) -> str:
    lines = [
        f"**{board.faces}** faces of **{board.people}** people, identified by the **{board.method}** method at "
        "each model's own threshold."
    ]
    lines += [f"- {html.escape(n)}" for n in board.notes]
    return "\n".join(lines)


def scoreboard_table(board) -> str:
    """One row per measure, one column per model, the best value of a row bold with a star, and under each
    row its sentence across the whole table (readable at 400 px); then the models not on the board and why.
    Scrolls sideways inside itself, never the page."""
    models = [m.model for m in board.models]
    head = "".join(f"<th scope='col' style='text-align:right;padding:4px 6px'>{html.escape(m)}</th>" for m in models)
    rows = []
    for r in board.rows:
        cells = []
        for m in models:
            best = m in r.best
            text = html.escape(r.shown(m))
            cells.append(
                f"<td data-row='{r.key}' data-model='{html.escape(m)}' class='{'best' if best else ''}' "
                f"style='text-align:right;white-space:nowrap;padding:4px 6px;border:none;"
                f"{'font-weight:700' if best else ''}'>" + (f"{BEST} {text}" if best else text) + "</td>"
            )
        rows.append(
            "<tr style='border:none'><th scope='row' style='text-align:left;font-weight:600;padding:6px 6px 0;"
            f"border:none'>{html.escape(r.label)}</th>" + "".join(cells) + "</tr>"
            f"<tr><td colspan='{len(models) + 1}' style='font-size:.85em;opacity:.8;padding:0 6px 6px;"
            f"border-left:none;border-right:none;border-top:none'>{html.escape(r.sentence)}</td></tr>"
        )
    table = (
        "<div style='overflow-x:auto;max-width:100%'><table style='width:100%;border-collapse:collapse'>"
        f"<thead><tr><th scope='col' style='text-align:left;padding:4px 6px'>Measure</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
    if board.unavailable:
        items = "".join(
            f"<li>{html.escape(m)}: {html.escape(shown_reason(r))}</li>" for m, r in board.unavailable.items()
        )
        table += f"<p style='margin-top:8px'>Not on the board:</p><ul>{items}</ul>"
    return table


def scoreboard_tiles(board) -> str:
    """The faces the models name differently, each with every model's answer under it."""
    if len(board.models) < 2:
        return ""
    if not board.disagreements:
        identified = all(m.identification is not None for m in board.models)
        return "<p>Every model gives every face the same answer.</p>" if identified else ""
    items = [
        (
            d.thumb,
            f"{d.person}: " + "; ".join(f"{m} says {n or 'unknown'}" for m, n in d.answers.items()),
        )
        for d in board.disagreements
        if d.thumb is not None
    ]
    title = f"<h4>The models answer {len(board.disagreements)} face(s) differently</h4>"
    return title + inline_tiles(items, "No thumbnail of these faces is kept.")


def gallery_words(services: Services) -> str:
    return "your private gallery" if services.public else "the gallery"


def score(services: Services, state, how=None, request: gr.Request = None, progress=gr.Progress()):
    """Every model scored on the visitor's gallery (``state``, the Explorer's cache, keeps the board)."""
    how = check_method(how or distance_methods()[0])  # refused before anything is read or measured
    session = session_of(request)
    if not services.gallery(session).people():
        return (
            f"Nobody is enrolled in {gallery_words(services)} yet. Enroll two or more people, a few photos each, "
            "on the Gallery tab; then every model is scored on their faces.",
            "",
            "",
            None,
        )
    board = state.scoreboard(services, session, how, gradio_progress(progress))
    return scoreboard_note(board), scoreboard_table(board), scoreboard_tiles(board), page_json(board.to_json())


def render(services: Services, state) -> None:
    """The scoreboard's controls and results; ``state`` (the Explorer's cache) keeps a board until the
    gallery changes."""
    gr.Markdown("### Scoreboard: every model on " + ("your gallery" if services.public else "the gallery"))
    with gr.Row():
        method = gr.Radio(
            list(distance_methods()),
            value=distance_methods()[0],
            label="Decision method of the identification",
            scale=3,
        )
        button = gr.Button("Score every model", variant="primary", scale=1)
    whose = gallery_words(services)
    note = gr.Markdown(INTRO.format(whose=whose, best=BEST), elem_id="scoreboard-note")
    table = gr.HTML(elem_id="scoreboard-table")
    tiles = gr.HTML(elem_id="scoreboard-tiles")
    with gr.Accordion("Scoreboard (JSON, as `scoreboard --json`)", open=False):
        record = gr.JSON(label="Scoreboard")
    shown = [note, table, tiles, record]
    # preprocess=False: an API caller's method that is not a choice gets the core's sentence, not gradio's
    scored = button.click(gpu_bound(score, services, state), [method], shown, api_name="scoreboard", preprocess=False)
    clear_on_change([method], shown, [INTRO.format(whose=whose, best=BEST), "", "", None], [scored])
