"""The Identify tab's "Detectors" section: one photo's faces found by every face detector, drawn side by side,
with each detector's time and face count (``usecases.compare_detectors``)."""

from __future__ import annotations

import gradio as gr

from ..services import Services, usecases
from .common import gpu_bound, page_json, photo_input, require_image, session_of, shown_reason


def detector_caption(run) -> str:
    if run.error:
        return f"{run.detector}: not run ({shown_reason(run.error)})"
    return f"{run.detector}: {len(run.faces)} face(s) in {run.ms:.0f} ms"


def compare_detectors(services: Services, path, request: gr.Request = None):
    """Every detector on the photo: the drawn photos with their captions, a table, and the JSON."""
    path = require_image(path, "a photo")
    comparison = usecases.compare_detectors(services.pipeline_for(session_of(request)), path)
    pictures = [(picture, detector_caption(run)) for picture, run in zip(comparison.pictures, comparison.runs)]
    rows = ["| detector | faces | ms |", "|---|---:|---:|"]
    rows += [f"| {r.detector} | {'not run' if r.error else len(r.faces)} | {r.ms:.0f} |" for r in comparison.runs]
    return pictures, "\n".join(rows), page_json(comparison.to_json())


def render(services: Services) -> None:
    """An accordion with its own photo, so it compares detectors whatever the Identify panel holds."""
    with gr.Accordion("Detectors: every face detector on one photo, side by side", open=False):
        with gr.Row():
            with gr.Column(scale=1):
                image = photo_input("Photo", "detectors-image", height=260)
                button = gr.Button("Compare the detectors", elem_id="detectors-compare")
                table = gr.Markdown(elem_id="detectors-table")
            with gr.Column(scale=3):
                gallery = gr.Gallery(label="Faces found by each detector", columns=3, height=360)
        result = gr.JSON(label="Detectors (as the CLI's detect --compare --json)")
    button.click(
        gpu_bound(compare_detectors, services),
        [image],
        [gallery, table, result],
        api_name="compare_detectors",
        preprocess=False,
    )
