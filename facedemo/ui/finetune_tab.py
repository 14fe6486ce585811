"""Fine-tune: adapt a model to the gallery's own people and compare it with its base, in numbers and pictures."""

from __future__ import annotations

import gradio as gr

from ..training import finetune_gallery
from ..services import Services, on_gpu
from .common import default_model, model_choices, session_of, user_errors
from .explore_tab import ExplorerState

ROWS = ("loss", "mean_pos_distance", "mean_neg_distance", "val", "far", "auc", "threshold")


def render(services: Services, state: ExplorerState):
    gr.Markdown(
        "Train a small head on top of a model's embeddings with FaceNet's triplet loss and semi-hard mining, "
        "on the people in your gallery. A quarter of the people are held out: the table compares the model "
        "before and after **on people it never trained on**."
    )
    with gr.Row():
        base = gr.Dropdown(model_choices(services), value=default_model(services), label="Base model")
        name = gr.Textbox(label="New model name", placeholder="e.g. my-office-v1")
        epochs = gr.Slider(1, 100, value=30, step=1, label="Epochs (stops early when validation stops improving)")
        button = gr.Button("Fine-tune", variant="primary")
    note = gr.Markdown()
    table = gr.Dataframe(headers=["metric", "before", "after"], label="Held-out people: before and after", interactive=False)
    with gr.Row():
        map_before = gr.Plot(label="Before (base model)")
        map_after = gr.Plot(label="After (fine-tuned)")
    with gr.Row():
        hist_before = gr.Plot(label="Distances before")
        hist_after = gr.Plot(label="Distances after")
    report = gr.JSON(label="Report (as the CLI's --json)")

    @user_errors
    @on_gpu
    def run(base_name=None, new_name="", n_epochs=30, request: gr.Request = None, progress=gr.Progress()):
        gallery = services.gallery(session_of(request))
        result = finetune_gallery(
            gallery, base_name or None, new_name or "", int(n_epochs),
            progress=lambda done, total, message="": progress((done, total), desc=message),
        )
        rows = [[key, round(result.before[key], 4), round(result.after[key], 4)] for key in ROWS]
        before = state.explore(gallery, result.base, "auto")
        after = state.explore(gallery, result.name, before.method if before.method != "auto" else "pca")
        text = (
            f"Saved **{result.name}**: {result.train_people} people trained, {result.val_people} held out; "
            f"{result.epochs_run} epochs (best {result.best_epoch}). "
            + ("It is now in your model lists (and nobody else's) and identifies against your gallery; it is deleted with your gallery when you leave."
               if services.config.public else "It is now in every model list and identifies against this gallery.")
        )
        return text, rows, before.projection, after.projection, before.histogram, after.histogram, result.to_json()

    event = button.click(run, [base, name, epochs], [note, table, map_before, map_after, hist_before, hist_after, report], api_name="finetune")
    return base, event
