"""The Gradio dashboard: one module per tab, each a ``render(services, ...)``; this module lays them out.

Only this package imports gradio. Handlers validate, call the core through ``Services`` and render.
"""

from __future__ import annotations

import threading
from pathlib import Path

import gradio as gr

from ..services import SWEEP_S, Services
from . import album_tab, explore_tab, finetune_tab, gallery_tab, identify_tab, verify_tab
from .common import atomic_output_cache, model_choices, models_note, session_of
from .refusals import refuse_in_words, refuse_missing_values

EXAMPLES_DIR = Path(__file__).parent / "examples"
UPLOAD_TTL_S = 86400  # outside public mode, how long gradio keeps an upload or an output file

CSS = """
.verdict { border-radius: 6px; background: var(--block-background-fill); }
footer { opacity: .6 }
"""


READY = "**Ready**"


def readiness_note(services: Services, explorer: explore_tab.ExplorerState) -> str:
    """One line: what has loaded since start-up (``warm_up`` loads it in the background) and what has not."""
    parts = services.pipeline.readiness()
    parts["UMAP"] = explorer.ready()
    waiting = [name for name, done in parts.items() if not done]
    if not waiting:
        return f"{READY}: the face detector and {', '.join(n for n in parts if n not in ('face detector', 'UMAP'))} are loaded."
    done = [name for name, ok in parts.items() if ok]
    later = {"UMAP": "UMAP (the Explorer shows PCA until then)"}
    return (
        "**Getting ready** (a minute or two after start on a small machine): "
        + (f"{', '.join(done)} loaded; " if done else "")
        + f"still loading {', '.join(later.get(n, n) for n in waiting)}. Anything you ask now waits for it."
    )


def examples() -> dict:
    e = {name: str(EXAMPLES_DIR / name) for name in ("astronaut.jpg", "astronaut_2.jpg", "hopper.jpg", "group.jpg")}
    return {
        "verify": [[e["astronaut.jpg"], e["astronaut_2.jpg"]], [e["astronaut.jpg"], e["hopper.jpg"]]],
        "identify": [[e["group.jpg"]], [e["hopper.jpg"]]],
    }


# One message at a time (#35, item 4): an error's toast stays long enough to be read (USER_ERROR_S), so it
# sat over the result of the next action that worked; now the next click on any button of the page (the next
# action, or another tab) dismisses it, and a new error shows its own.
ONE_MESSAGE_AT_A_TIME = """() => {
  if (window.facedemoToasts) return;
  window.facedemoToasts = true;
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button || button.closest(".toast-wrap")) return;
    document.querySelectorAll('.toast-wrap button[aria-label="Close"]').forEach((close) => close.click());
  }, true);
}"""


def theme() -> gr.Theme:
    return gr.themes.Soft(primary_hue="indigo", neutral_hue="slate")


def build_app(services: Services, explorer: explore_tab.ExplorerState | None = None) -> gr.Blocks:
    explorer = explorer or explore_tab.ExplorerState()
    atomic_output_cache()  # two identical outputs at once must not rewrite a file being served
    refuse_in_words()  # gradio's refusals of an input file (a URL, /etc/passwd) become sentences
    public = services.public
    # gradio's own cache cleanup deletes uploads and the copies of thumbnails and results it served once they
    # are older than a visitor's time to live in public mode (Services sweeps the galleries on the same clock),
    # a day otherwise: an uploaded photo does not stay in GRADIO_TEMP_DIR for as long as the app runs. (A
    # deleted person's files go at once: gallery_tab's delete.)
    # A visitor's uploads are at most as old as their last request, so with a sweep every SWEEP_S they go within
    # a minute after their time to live, with their gallery.
    ttl = int(services.settings.visitor_ttl_s) if public else UPLOAD_TTL_S
    cleanup = (max(1, int(min(ttl // 4, SWEEP_S if public else 3600))), ttl)
    with gr.Blocks(title="facedemo: see how a face model behaves", delete_cache=cleanup) as demo:
        gr.Markdown(
            "# facedemo\nVerify two faces, name every face in a group photo, enroll people and look inside the "
            f"embedding space. Device: **{services.pipeline.device.description}**."
        )
        readiness = gr.Markdown(readiness_note(services, explorer), elem_id="readiness")
        with gr.Accordion("Models", open=False):
            gr.Markdown(models_note(services))
        people_changed = gr.State(0.0)
        with gr.Tabs(overflow_behavior="wrap"):  # at 400 px every tab shows (on two lines), none behind "..."
            with gr.Tab("Verify", id="verify"):
                dropdowns = [verify_tab.render(services, examples())]
            with gr.Tab("Identify", id="identify"):
                dropdowns.append(identify_tab.render(services, examples(), people_changed))
            with gr.Tab("Gallery", id="gallery") as gallery:
                gallery_tab.render(services, people_changed, gallery)
            with gr.Tab("Album", id="album"):
                dropdowns.append(album_tab.render(services, people_changed))
            with gr.Tab("Explorer", id="explorer"):
                dropdowns.append(explore_tab.render(services, explorer))
            with gr.Tab("Fine-tune", id="finetune"):
                base, finetuned = finetune_tab.render(services, explorer)
                dropdowns.append(base)

        def refresh_models(request: gr.Request = None):
            """Model lists are read when a page opens and after a fine-tune, so new models appear everywhere
            (in public mode, a visitor's own models only on their page)."""
            choices = model_choices(services, session_of(request))
            return [gr.update(choices=choices)] * len(dropdowns)

        demo.load(refresh_models, None, dropdowns, api_visibility="private")
        demo.load(None, None, None, js=ONE_MESSAGE_AT_A_TIME, api_visibility="private")
        # The status line updates itself until everything is loaded, then its timer stops.
        ticker = gr.Timer(2.0)

        def tick():
            text = readiness_note(services, explorer)
            return text, gr.Timer(active=not text.startswith(READY))

        ticker.tick(tick, None, [readiness, ticker], api_visibility="private", queue=False, show_progress="hidden")
        finetuned.then(refresh_models, None, dropdowns, api_visibility="private")

        def forget(request: gr.Request):
            services.forget(session_of(request))

        if public:
            demo.unload(forget)
    if public:
        services.on_forget(explorer.forget)  # the Explorer's cache holds visitors' maps: they go with them
        services.start_expiry()  # purges what an earlier run left, then sweeps idle visitors
    refuse_missing_values(demo)  # a request short of values gets the inputs it takes, not {"error": null}
    return demo


def file_paths(services: Services) -> dict:
    """What gradio may serve from disk besides its cache and the temp dir: nothing of the gallery folder.
    Thumbnails travel inline in the answer (``ui.common.inline_tiles``), so no file URL of a face exists, and
    the folder holds the Chroma database and the face regions; it is blocked even where it lies in the
    working directory (the default ``gallery/``)."""
    return {"blocked_paths": [str(Path(services.settings.gallery_dir).resolve())]}


def serve(demo: gr.Blocks, services: Services, **options):
    """Queue and launch the dashboard as ``python app.py`` does (the tests launch it the same way)."""
    options = {**file_paths(services), **options}
    return demo.queue(default_concurrency_limit=services.settings.concurrency).launch(**options)


def warm_up(services: Services, explorer: explore_tab.ExplorerState) -> threading.Thread:
    """Load the default model and JIT-compile UMAP in the background, so the first page is up at once
    and the first Explorer click does not wait ~16 s for numba."""

    def run():
        try:
            services.pipeline.embedder()
            _ = services.pipeline.detector  # built now, not on the first request
            for name, done in services.pipeline.readiness().items():  # every enrollment embeds with each
                if not done and name != "face detector":
                    services.pipeline.embedder(name)
            explorer.warm_up()
        except Exception:  # warming is best effort; the real call reports any error to the user
            pass

    thread = threading.Thread(target=run, name="facedemo-warm-up", daemon=True)
    thread.start()
    return thread
