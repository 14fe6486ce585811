"""Small helpers every tab shares: model choices, user-facing errors, the visitor's session."""

from __future__ import annotations

import base64
import functools
import html
import inspect
import logging
import re
import typing
from pathlib import Path

import gradio as gr

from ..errors import FaceDemoError, InvalidParameterError
from ..services import Services, on_gpu

log = logging.getLogger("facedemo.ui")


def model_choices(services: Services, session: str | None = None) -> list[tuple[str, str]]:
    """Every model (in public mode with a session: the visitor's own fine-tuned ones too), with the
    unavailable ones labelled so the user sees why they cannot be picked."""
    choices = []
    for status in services.models(session):
        label = status.name if status.available else f"{status.name} (unavailable)"
        choices.append((label, status.name))
    return choices


def default_model(services: Services) -> str | None:
    return services.default_model()  # None: no model can run here, and the dropdown's list says why


HIDDEN_REASON = "unavailable here (the Models list at the top of the page says why)"


def shown_reason(reason: str, fallback: str = HIDDEN_REASON) -> str:
    """A model's reason for not running as the page shows it: its sentences up to the first that names a file,
    an address on this server or a command (a weights path, a download URL, `python -m ...`: the command
    line's business), or, when the first one does, ``fallback`` (a pointer to the Models list)."""
    kept = []
    for sentence in re.split(r"(?<=[.!?])\s+", str(reason).strip()):
        if "/" in sentence or "\\" in sentence or "python -m" in sentence:
            break
        kept.append(sentence)
    return " ".join(kept) or fallback


def page_json(record):
    """A result's JSON as the page (and so the dashboard's API) shows it: every "reason" through
    ``shown_reason``; the CLI's --json keeps the whole sentence, with its paths and commands."""
    if isinstance(record, dict):
        return {k: shown_reason(v) if k == "reason" and isinstance(v, str) else page_json(v) for k, v in record.items()}
    if isinstance(record, list):
        return [page_json(v) for v in record]
    return record


def models_note(services: Services) -> str:
    lines = []
    for s in services.models():
        lines.append(
            f"- **{s.name}** ({s.dim}-d): "
            + (
                "available" + (f", {s.note}" if s.note else "")
                if s.available
                else f"unavailable. {shown_reason(s.reason, 'It cannot run on this machine.')}"
            )
        )
    return "\n".join(lines)


USER_ERROR_S = 30  # a user's mistake stays on screen this long (gradio's 10 s went before it was read)


def user_errors(fn):
    """Turn the errors a user can cause into a sentence in the page that stays long enough to read (a toast
    that vanished left only an "Error" badge), logged as one line; log anything else in full.

    Events whose outputs include a control the user still has to use (a dropdown filled by the result, the
    Delete button) pass ``show_progress_on`` their result areas, so the badge never covers that control."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except FaceDemoError as exc:
            log.info("%s: %s", fn.__name__, exc)  # a user's mistake or their photo's: one line, no traceback
            raise gr.Error(str(exc), duration=USER_ERROR_S, print_exception=False) from None
        except Exception as exc:  # a bug: say so plainly, keep the traceback in the server log
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(
                f"Something went wrong on our side ({exc.__class__.__name__}); the details are in the server log."
            ) from None

    return wrapper


def bound(handler, *first):
    """``handler`` with its first arguments given (``services``, a tab's state), as gradio can read it.

    Not ``functools.partial``: gradio finds a ``gr.Request`` parameter by the handler's type hints, and it
    reads a partial's from its ``__call__``, which has none, so the request would come as None. This keeps
    the handler's name, hints and signature less the arguments given; the hints are resolved here, so one that
    cannot be (gradio would then pass no request, silently) fails when the page is built."""
    typing.get_type_hints(handler)
    signature = inspect.signature(handler)

    @functools.wraps(handler)
    def call(*args, **kwargs):
        return handler(*first, *args, **kwargs)

    call.__signature__ = signature.replace(parameters=list(signature.parameters.values())[len(first) :])
    return call


def gpu_bound(handler, *first):
    """A heavy handler bound as ``bound`` does, then run with a GPU (``on_gpu``) and its errors said in words.

    ``on_gpu`` wraps the bound function, not the handler: on ZeroGPU, ``spaces.GPU`` sends the arguments to
    its worker process, so only the event's values go (``Services`` holds locks and cannot travel).
    ``user_errors`` stays outside it, as it was around every heavy handler."""
    return user_errors(on_gpu(bound(handler, *first)))


# The height a note keeps for the progress drawn on it while its action runs (gradio's bar and its text); an
# empty note is a few pixels high and the progress text was clipped to nothing.
PROGRESS_ROOM = 64


def used_files():
    """An input's value once the action that read it has succeeded: empty, so that the next upload starts a new
    list and no file the action may have erased stays on screen (#35: new photos were added to the previous
    person's; a deleted person's files stayed, and the next enrollment said they did not exist)."""
    return gr.update(value=None)


def clear_on_change(inputs, outputs, empty, running=()) -> None:
    """Result areas that belong to the inputs they were computed from: as soon as one of ``inputs`` changes (a
    new upload, an example clicked, another model), ``outputs`` are set to ``empty`` and a run still computing
    for the old inputs (``running``, its event) is cancelled, so it cannot land its answer on the new ones."""
    values = tuple(empty)

    def clear():
        return values if len(values) != 1 else values[0]

    for component in inputs:
        for trigger in _user_changes(component):
            trigger(
                clear,
                None,
                list(outputs),
                api_visibility="private",
                queue=False,
                show_progress="hidden",
                cancels=list(running) or None,
            )


def _user_changes(component) -> list:
    """The events of ``component`` that a person's change fires. A text box's and a file list's own: the app
    empties a file list once its files were used (``used_files``), which must not clear the result it gave;
    an image's or a dropdown's ``change``: an example clicked sets an image without an input event."""
    if isinstance(component, (gr.Textbox, gr.Number)):
        return [component.input]
    if isinstance(component, gr.File):
        return [component.upload, component.clear, component.delete]
    return [component.change]


def gradio_progress(progress):
    """The core's ``progress(done, total, message)`` drawn as Gradio's progress bar."""

    def report(done: int, total: int, message: str = "") -> None:
        progress((done, max(total, 1)), desc=message or None)

    return report


def session_of(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None) if request is not None else None


def photo_input(label: str, elem_id: str, height: int = 320) -> gr.Image:
    """A photo upload (file, webcam or clipboard) handed to the handler as a path. ``image_mode=None``: gradio
    would otherwise convert (so decode) the upload with every Pillow plugin before facedemo's own loader
    decides what to decode (vision/formats.py), Ghostscript for an EPS included."""
    return gr.Image(
        label=label,
        type="filepath",
        image_mode=None,
        sources=["upload", "webcam", "clipboard"],
        height=height,
        elem_id=elem_id,
    )


def require_file(value, label: str) -> str:
    """An uploaded file's path (gradio's FileData as a dict or an object, or a plain path)."""
    if isinstance(value, dict):
        value = value.get("path")
    elif hasattr(value, "path"):
        value = value.path
    if value is None or value == "":
        raise InvalidParameterError(f"Please add {label} first.")
    return str(value)


def require_image(value, label: str) -> str:
    """The uploaded photo's path. Events that take photos run with ``preprocess=False`` so that gradio does
    not decode the upload itself: our loader does, with its pixel cap and its plain-sentence errors."""
    try:
        return require_file(value, label)
    except InvalidParameterError:
        raise InvalidParameterError(f"Please add {label} first (upload, webcam or one of the examples).") from None


MAX_TILES = 240  # inline thumbnails per listing: a visitor's gallery is small, and a page has to stay light


def inline_tiles(items: list[tuple[Path, str]], empty: str = "Nobody yet.") -> str:
    """Thumbnails as one HTML block with each JPEG inline (a ``data:`` URI): the people list in every mode,
    and public mode's album.

    A grid of square, face-centred tiles (``gallery.regions.face_thumbnail``) as many to a row as the page
    is wide, each name written in full below its face, at any gallery size and on a phone. A file that
    gradio serves gets a ``/gradio_api/file=`` URL that answers any client holding it, for as long as the
    file sits in gradio's cache; an inline thumbnail has no URL at all: it travels only in the answer to the
    visitor who asked, and no copy of it is written to the cache. Captions are the visitor's own text, so
    they are escaped."""
    tiles = []
    for path, caption in items[:MAX_TILES]:
        try:
            data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        except OSError:  # deleted between the listing and now
            continue
        label = html.escape(caption)
        tiles.append(
            f'<figure class="facedemo-tile" style="margin:0"><img src="data:image/jpeg;base64,{data}" alt="{label}" '
            'style="width:100%;aspect-ratio:1;object-fit:cover;border-radius:6px;display:block"/>'
            f'<figcaption style="font-size:.85em;line-height:1.2;overflow-wrap:anywhere;text-align:center;'
            f'margin-top:4px">{label}</figcaption></figure>'
        )
    if not tiles:
        return f"<p>{html.escape(empty)}</p>"
    more = f"<p>… and {len(items) - MAX_TILES} more (see the list below).</p>" if len(items) > MAX_TILES else ""
    grid = "display:grid;grid-template-columns:repeat(auto-fill,minmax(96px,1fr));gap:10px;max-width:100%"
    return f'<div class="facedemo-tiles" style="{grid}">' + "".join(tiles) + "</div>" + more


def forget_uploads(hashes: frozenset[str] | set[str]) -> int:
    """Delete the files in gradio's upload and output cache whose sha256 is one of ``hashes`` (a deleted
    person's photos as uploaded, their thumbnails as served), with the folders gradio made for them.
    Returns how many went."""
    if not hashes:
        return 0
    from gradio.utils import get_upload_folder

    from ..vision.images import image_sha

    gone = 0
    root = Path(get_upload_folder())
    for path in [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()] if root.is_dir() else []:
        try:
            if image_sha(path) in hashes:
                path.unlink()
                gone += 1
                if path.parent != root and not any(path.parent.iterdir()):
                    path.parent.rmdir()
        except (OSError, FaceDemoError):  # gone meanwhile (gradio's own cleanup), or not a regular file
            continue
    return gone


def atomic_output_cache() -> None:
    """Make gradio write its output images the way it already copies files: under a temporary name, then
    renamed into place.

    gradio 6.31's ``processing_utils.save_pil_to_cache`` (every PIL output: Verify's aligned faces, each
    box of Identify's annotated image) writes ``<cache>/<hash of the bytes>/image.<format>`` in place. Two
    requests with byte-identical outputs (the same photo from two visitors; ``bench load`` sends the same
    photos from every client) rewrite the file while the first is still being served, and that download
    fails with "peer closed connection without sending complete message body". With a rename, a reader
    keeps the complete file it opened. Idempotent; applied once per process by ``build_app``."""
    import os

    from gradio import processing_utils

    if getattr(processing_utils.save_pil_to_cache, "facedemo_atomic", False):
        return
    from ..files import atomic_path

    def save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
        data = processing_utils.encode_pil_to_bytes(img, format)
        target = (Path(cache_dir) / processing_utils.hash_bytes(data) / f"{name}.{format}").resolve()
        try:
            if target.stat().st_size == len(data):  # the same bytes are there (the name is their hash)
                os.utime(target)  # delete_cache ages files by ctime: it is handed out again now
                return str(target)
        except OSError:
            pass
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
        return str(target)

    save_pil_to_cache.facedemo_atomic = True
    processing_utils.save_pil_to_cache = save_pil_to_cache
