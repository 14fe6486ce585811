"""The Gradio dashboard: one module per tab, each a ``render(services, ...)``; this module lays them out.

Only this package imports gradio. Handlers validate, call the core through ``Services`` and render.
"""

from __future__ import annotations

import threading
from pathlib import Path

import gradio as gr

from ..services import SWEEP_S, Services
from . import album_tab, explore_tab, finetune_tab, gallery_tab, identify_tab, verify_tab
from .common import atomic_output_cache, bound, model_choices, models_note, session_of
from .refusals import refuse_in_words, refuse_missing_values

EXAMPLES_DIR = Path(__file__).parent / "examples"
UPLOAD_TTL_S = 86400  # outside public mode, how long gradio keeps an upload or an output file

CSS = """
.verdict { border-radius: 6px; background: var(--block-background-fill); }
/* gradio's JSON viewer colours its keys and strings 2.5-3:1 on white; these are 4.5:1 or more (WCAG AA) */
body .json-node.json-node {
  --text-color: #9a3412; --string-color: #9a3412; --number-color: #0e7490; --bracket-color: #3f5f5f;
  --square-bracket-color: #9f1239; --punctuation-color: #3f5f5f; --line-number-color: #4b5563;
}
"""


READY = "**Ready**"


def readiness_note(services: Services, explorer: explore_tab.ExplorerState) -> str:
    """One line: what has loaded since start-up (``warm_up`` loads it in the background) and what has not."""
    parts = services.readiness()
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
    """gradio's Soft theme, with every text at a contrast of 4.5:1 or more on its background (WCAG AA; axe-core
    checks it on every tab in ``tests/test_browser_a11y.py``): the labels, help texts, placeholders and the
    upload areas' "- or -" were 1.9-3.6:1, and white on the primary and stop buttons and on a chosen radio
    option 2.8-4.5:1."""
    return gr.themes.Soft(primary_hue="indigo", neutral_hue="slate").set(
        body_text_color_subdued="*neutral_600",
        body_text_color_subdued_dark="*neutral_300",
        block_label_text_color="*neutral_700",
        block_info_text_color="*neutral_600",
        block_title_text_color="*neutral_700",
        input_placeholder_color="*neutral_500",
        button_primary_background_fill="*primary_700",
        button_primary_background_fill_hover="*primary_800",
        button_primary_text_color="white",
        button_cancel_background_fill="#b91c1c",
        button_cancel_background_fill_hover="#991b1b",
        button_cancel_text_color="white",
        checkbox_label_background_fill_selected="*primary_700",
        checkbox_label_text_color_selected="white",
    )


def launch_options() -> dict:
    """How the page looks, as ``python app.py`` serves it and the browser tests see it (gradio 6: ``launch()``
    takes the theme and the CSS)."""
    return {"theme": theme(), "css": CSS}


# Accessible names gradio's own markup lacks, added on the page as it renders (#35, item 6; axe-core checks
# every tab in tests/test_browser_a11y.py): each upload area is named after its label ("Photo A: upload a
# file"; both of Verify's were "Drop an image file here to upload"), each example button after its example,
# a picture without a text alternative and its button after the picture's label, and gradio's empty-value
# placeholders, a div with an aria-label and no role, get the role of an image.
ACCESSIBLE_NAMES = """() => {
  if (window.facedemoNames) return;
  window.facedemoNames = true;
  let pending = false;
  const name = () => {
    pending = false;
    document.querySelectorAll("div.empty[aria-label]:not([role])").forEach((el) => el.setAttribute("role", "img"));
    document.querySelectorAll(".block").forEach((block) => {
      const label = block.querySelector("[data-testid='block-label'], [data-testid='block-info']");
      const text = label && label.innerText.trim();
      if (!text) return;
      block.querySelectorAll("[aria-label='Click to upload or drop files'], input[type=file]").forEach((zone) => {
        zone.setAttribute("aria-label", text + ": upload a file");
      });
      block.querySelectorAll("img:not([alt]), img[alt='']").forEach((img) => img.setAttribute("alt", text));
    });
    document.querySelectorAll(".image-container button:not([aria-label])").forEach((button) => {
      const img = button.querySelector("img");
      button.setAttribute("aria-label", (img && img.alt) || "The picture");
    });
    document.querySelectorAll("button.gallery-item:not([aria-label])").forEach((button, i) => {
      const img = button.querySelector("img");
      const what = (img && img.alt) || button.innerText.trim();
      button.setAttribute("aria-label", "Example " + (i + 1) + (what ? ": " + what : ""));
    });
  };
  name();
  new MutationObserver(() => {
    if (!pending) { pending = true; requestAnimationFrame(name); }
  }).observe(document.body, { childList: true, subtree: true });
}"""


def refresh_models(services: Services, count: int, request: gr.Request = None):
    """Model lists are read when a page opens and after a fine-tune, so new models appear everywhere
    (in public mode, a visitor's own models only on their page); ``count`` dropdowns take them."""
    choices = model_choices(services, session_of(request))
    return [gr.update(choices=choices)] * count


def adopt(services: Services, key, request: gr.Request = None):
    return services.visitors.adopt(session_of(request), key)


def tick(services: Services, explorer: explore_tab.ExplorerState):
    """The status line, and its timer, which stops once everything is loaded."""
    text = readiness_note(services, explorer)
    return text, gr.Timer(active=not text.startswith(READY))


def leave(services: Services, request: gr.Request):
    services.visitors.leave(session_of(request))  # their gallery stays for its time to live: a reload finds it


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
            f"embedding space. Device: **{services.device_description()}**."
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

        refreshed = bound(refresh_models, services, len(dropdowns))

        # Public mode: the browser keeps its visitor's key (localStorage, ``gr.BrowserState``), so a reload finds
        # the same private gallery; the model lists are read once the page is theirs.
        # (Its encryption key is new with each start, and so is every gallery: a restart purges them.)
        if public:
            visitor_key = gr.BrowserState(None)
            opened = demo.load(bound(adopt, services), visitor_key, visitor_key, api_visibility="private", queue=False)
            opened.then(refreshed, None, dropdowns, api_visibility="private")
        else:
            demo.load(refreshed, None, dropdowns, api_visibility="private")
        demo.load(None, None, None, js=ONE_MESSAGE_AT_A_TIME, api_visibility="private")
        demo.load(None, None, None, js=ACCESSIBLE_NAMES, api_visibility="private")
        # The status line updates itself until everything is loaded, then its timer stops.
        ticker = gr.Timer(2.0)
        ticker.tick(
            bound(tick, services, explorer),
            None,
            [readiness, ticker],
            api_visibility="private",
            queue=False,
            show_progress="hidden",
        )
        finetuned.then(refreshed, None, dropdowns, api_visibility="private")
        if public:
            demo.unload(bound(leave, services))
    if public:
        services.visitors.on_forget(explorer.forget)  # the Explorer's cache holds visitors' maps: they go with them
        services.visitors.start_expiry()  # purges what an earlier run left, then sweeps idle visitors
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
    """Load the models (``Services.warm_up``) and JIT-compile UMAP in the background, so the first page is up at
    once and the first Explorer click does not wait for numba."""

    def run():
        try:
            services.warm_up()
        except Exception:  # warming is best effort; the real call reports any error to the user
            pass
        try:
            explorer.warm_up()
        except Exception:
            pass

    thread = threading.Thread(target=run, name="facedemo-warm-up", daemon=True)
    thread.start()
    return thread
