"""Fine-tune: adapt a model to the gallery's own people and compare it with its base, in numbers and pictures."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from .. import params
from ..explorer import explore
from ..explorer.figures import training_curves_figure
from ..services import Services, lfw, usecases
from ..training import LOSSES
from ..vision.degrade import CONDITIONS, SEVERITIES
from ..words import counted
from .common import PROGRESS_ROOM, bound, default_model, gpu_bound, model_choices, session_of, user_errors
from .explore_tab import ExplorerState

ROWS = ("loss", "mean_pos_distance", "mean_neg_distance", "accuracy", "val", "far", "val_at_far", "auc", "threshold")
SLICE_ROWS = ("accuracy", "auc", "val_at_far", "mean_pos_distance", "mean_neg_distance")
NO_CONDITION = "none (clean faces only)"


# Each metric as a person says it; the report's JSON keeps the short names.
METRIC_NAMES = {
    "loss": "Loss on the held-out pairs (contrastive)",
    "mean_pos_distance": "Mean distance, same person",
    "mean_neg_distance": "Mean distance, different people",
    "accuracy": "Accuracy at the threshold",
    "val": "Same-person pairs accepted (VAL)",
    "far": "Different-person pairs accepted (FAR)",
    "val_at_far": "Same-person pairs accepted at FAR 1 in 1,000",
    "auc": "AUC (1 is perfect, 0.5 is chance)",
    "threshold": "Threshold (distance)",
}


def degraded(name: str) -> str:
    """A metric's name after "Degraded: " (an abbreviation such as AUC keeps its capitals)."""
    return name if name[:2].isupper() else name[0].lower() + name[1:]


def report_rows(before: dict, after: dict) -> list[list]:
    """The before/after table: clean held-out people, then their degraded slice when there is one."""
    rows = [[METRIC_NAMES[key], round(before[key], 4), round(after[key], 4)] for key in ROWS]
    if "slice" in before:
        rows += [
            [
                f"Degraded: {degraded(METRIC_NAMES[key])}",
                round(before["slice"][key], 4),
                round(after["slice"][key], 4),
            ]
            for key in SLICE_ROWS
        ]
    return rows


def trained(result) -> str:
    """How training went, in words: "12 epochs, the best after epoch 7." """
    epochs = counted(result.epochs_run, "epoch")
    if result.best_epoch:
        return f"{epochs}, the best after epoch {result.best_epoch}."
    return f"{epochs}; none did better on the held-out people than where it started, so it is kept as it started."


def fine_tune(
    services: Services,
    base_name=None,
    new_name="",
    n_epochs=30,
    loss_name="triplet",
    condition_name=NO_CONDITION,
    level=3,
    request: gr.Request = None,
    progress=gr.Progress(),
):
    # The event runs with preprocess=False: gradio's Slider compares a text epoch count with its bounds and
    # fails with a TypeError; these give the sentence. Text inputs arrive raw too, so anything else an API
    # client sends (a list, a number) is read as text, which the core then refuses by name.
    base_name, new_name, loss_name, condition_name = (
        None if v is None else str(v) for v in (base_name, new_name, loss_name, condition_name)
    )
    n_epochs = params.epochs(n_epochs)
    augment = None
    if condition_name and condition_name != NO_CONDITION:
        level = params.number(level, "The severity", SEVERITIES[0], SEVERITIES[-1], integer=True)
        augment = f"{condition_name}:{level}"
    session = session_of(request)
    answer = usecases.finetune(
        services.request(session),
        base_name or None,
        new_name or "",
        n_epochs,
        loss=loss_name or "triplet",
        augment=augment,
        progress=lambda done, total, message="": progress((done, total), desc=message),
        lfw_root=services.lfw_root,
    )
    result, gallery = answer.result, services.gallery(session)
    # the people it never trained on, and only them: a face it trained on says nothing of what it learnt
    before = explore(gallery, result.base, "auto", people=result.held_out)
    after = explore(gallery, result.name, before.method, people=result.held_out)
    text = (
        f"Saved **{result.name}** ({result.loss} loss{', for ' + augment if augment else ''}): {result.train_people} people trained, "
        f"{result.val_people} held out; {trained(result)} "
        + (
            "It is now in your model lists (and nobody else's) and identifies against your gallery; it is deleted with your gallery (after your time on the demo, or with **Delete everything of mine**)."
            if services.public
            else "It is now in every model list and identifies against this gallery."
        )
    )
    if result.verdict():
        text += f"\n\nOn the held-out people: {result.verdict()}"
    versus = result.versus_base()
    judged = f"**{versus['text']}**"
    if lfw.lfw_test_pairs(services.lfw_root) is None:
        judged += " LFW is not on this machine, so this compares them on the held-out people only."
    if answer.notes:
        text += "\n\n" + " ".join(answer.notes)
    saved_json = result.to_json()  # the figures as they are saved with the model, so both views agree
    saved_json.pop("saved_in", None)  # a server path: the page names the model, not its folder
    figure = training_curves_figure(saved_json["history"], f"{result.name}: training curves", result.best_epoch)
    return (
        judged + "\n\n" + text,  # the verdict first: what a person came to learn
        report_rows(saved_json["before"], saved_json["after"]),
        figure,
        before.projection,
        after.projection,
        before.histogram,
        after.histogram,
        gr.update(choices=usecases.fine_tuned(gallery.pipeline), value=result.name),
        saved_json,
    )


@user_errors
def curves_of(services: Services, model_name=None, request: gr.Request = None):
    saved_json = usecases.fine_tune_report(services.pipeline_for(session_of(request)), model_name or "")
    figure = training_curves_figure(
        saved_json.get("history", []), f"{model_name}: training curves", saved_json.get("best_epoch")
    )
    return figure, report_rows(saved_json["before"], saved_json["after"])


def layout(services: Services) -> SimpleNamespace:
    """What to train and how, the before/after figures and the report; a saved model's curves below."""
    gr.Markdown(
        "Train a small head on top of a model's embeddings on the people in your gallery, with FaceNet's triplet "
        "loss (semi-hard mining) or ArcFace's angular margin, optionally **for a condition** (darkness, blur, "
        "a mask...): the faces are also seen degraded. A quarter of the people are held out: the table, the maps "
        "and the histograms compare the model before and after **on those people only, whom it never trained "
        "on**, clean and, for a condition, degraded; where LFW is on this machine it is also compared with its "
        "base on LFW's test pairs, and the verdict says which is better."
    )
    with gr.Row():
        base = gr.Dropdown(model_choices(services), value=default_model(services), label="Base model")
        name = gr.Textbox(label="New model name", placeholder="e.g. my-office-v1")
        epochs = gr.Slider(1, 100, value=30, step=1, label="Epochs (stops early when validation stops improving)")
    with gr.Row():
        loss = gr.Radio(list(LOSSES), value="triplet", label="Loss")
        condition = gr.Dropdown([NO_CONDITION, *CONDITIONS], value=NO_CONDITION, label="Train for a condition")
        severity = gr.Slider(1, 5, value=3, step=1, label="Severity (1 mild - 5 harsh)")
        button = gr.Button("Fine-tune", variant="primary")
    note = gr.Markdown(elem_id="finetune-note", min_height=PROGRESS_ROOM)  # its progress, by the button
    table = gr.Dataframe(
        headers=["metric", "before", "after"], label="Held-out people: before and after", interactive=False
    )
    curves = gr.Plot(label="Training curves: loss, and the held-out people's mean distances, per epoch")
    with gr.Row():
        map_before = gr.Plot(label="Before (base model), held-out people only", min_width=340)
        map_after = gr.Plot(label="After (fine-tuned), held-out people only", min_width=340)
    with gr.Row():
        hist_before = gr.Plot(label="Distances before, held-out people only", min_width=340)
        hist_after = gr.Plot(label="Distances after, held-out people only", min_width=340)
    report = gr.JSON(label="Report (as the CLI's --json)")
    with gr.Accordion("A saved fine-tuned model's curves", open=False):
        with gr.Row():
            saved = gr.Dropdown(
                usecases.fine_tuned(services.pipeline), label="Fine-tuned model", allow_custom_value=True
            )
            show = gr.Button("Show its curves")
        saved_curves = gr.Plot(label="Training curves")
        saved_table = gr.Dataframe(headers=["metric", "before", "after"], label="Its report", interactive=False)
    return SimpleNamespace(
        inputs=[base, name, epochs, loss, condition, severity],
        button=button,
        results=[note, table, curves, map_before, map_after, hist_before, hist_after, saved, report],
        saved=saved,
        show=show,
        saved_results=[saved_curves, saved_table],
    )


def render(services: Services, state: ExplorerState):
    ui = layout(services)
    event = ui.button.click(
        gpu_bound(fine_tune, services), ui.inputs, ui.results, api_name="finetune", preprocess=False
    )
    ui.show.click(bound(curves_of, services), [ui.saved], ui.saved_results, api_name="finetune_curves")
    return ui.inputs[0], event
