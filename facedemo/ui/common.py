"""Small helpers every tab shares: model choices, user-facing errors, the visitor's session."""

from __future__ import annotations

import functools
import logging

import gradio as gr

from ..errors import FaceDemoError
from ..services import Services

log = logging.getLogger("facedemo.ui")


def model_choices(services: Services) -> list[tuple[str, str]]:
    """Every model, with the unavailable ones labelled so the user sees why they cannot be picked."""
    choices = []
    for status in services.pipeline.models():
        label = status.name if status.available else f"{status.name} (unavailable)"
        choices.append((label, status.name))
    return choices


def default_model(services: Services) -> str | None:
    try:
        return services.pipeline.default_model()
    except FaceDemoError:
        return None


def models_note(services: Services) -> str:
    lines = []
    for s in services.pipeline.models():
        lines.append(f"- **{s.name}** ({s.dim}-d): " + ("available" + (f", {s.note}" if s.note else "") if s.available else f"unavailable. {s.reason}"))
    return "\n".join(lines)


def user_errors(fn):
    """Turn the errors a user can cause into a sentence in the page; log anything else in full."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except FaceDemoError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception as exc:  # a bug: say so plainly, keep the traceback in the server log
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"Something went wrong on our side ({exc.__class__.__name__}); the details are in the server log.") from None

    return wrapper


def session_of(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None) if request is not None else None


def require_file(value, label: str) -> str:
    """An uploaded file's path (gradio's FileData as a dict or an object, or a plain path)."""
    if isinstance(value, dict):
        value = value.get("path")
    elif hasattr(value, "path"):
        value = value.path
    if value is None or value == "":
        raise FaceDemoError(f"Please add {label} first.")
    return str(value)


def require_image(value, label: str) -> str:
    """The uploaded photo's path. Events that take photos run with ``preprocess=False`` so that gradio does
    not decode the upload itself: our loader does, with its pixel cap and its plain-sentence errors."""
    try:
        return require_file(value, label)
    except FaceDemoError:
        raise FaceDemoError(f"Please add {label} first (upload, webcam or one of the examples).") from None
