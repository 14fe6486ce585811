"""The refusals gradio makes before a handler runs, in words.

gradio 6.31 checks every file an event receives before facedemo's code sees it
(``Blocks.preprocess_data`` -> ``processing_utils.async_move_files_to_cache`` with
``check_in_upload_folder``): a path outside its upload folder (``/etc/passwd``, ``file://...``, another
visitor's thumbnail in the gallery folder) raises ``InvalidPathError``, a URL is handed to its downloader (a
loopback or private address fails its host check, a public one would be fetched), and a value that is not a
file fails pydantic's validation of the component's data model. None of those is a ``gr.Error``, and
``show_error`` is off (it would print gradio's own message, which names server folders), so the client got
``{"error": null}`` and the page a bare "Error" badge. ``refuse_in_words`` wraps that one function so that
each becomes a sentence naming the input, no URL is ever fetched, and nothing of the server is shown.

A request with fewer values than the event takes failed the same wordless way (``Blocks.validate_inputs``
raises a ``ValueError``); ``refuse_missing_values`` names the inputs it takes, in their order.
"""

from __future__ import annotations

import inspect
import logging
import re

import gradio as gr

from .common import USER_ERROR_S

log = logging.getLogger("facedemo.ui")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # http:, https:, file:, data:, ftp: ... (a URL, not a path)


def _label(block) -> str:
    return str(getattr(block, "label", None) or "The file")


def _paths(value) -> list[str]:
    """Every path a FileData (or a list of them) names; a value of another shape names none. Only ``path``:
    a browser's upload also carries the ``url`` gradio serves it under, which preprocessing never reads."""
    if isinstance(value, dict):
        return [str(value["path"])] if value.get("path") else []
    if isinstance(value, (list, tuple)):
        return [p for item in value for p in _paths(item)]
    return []


def refusal(block, kind: str) -> gr.Error:
    label = _label(block)
    sentences = {
        "url": f"{label}: a web address cannot be used here; upload the file itself (this app fetches nothing).",
        "path": f"{label}: only a file uploaded to this page can be used, not a path on the server; upload it again.",
        "shape": f"{label}: what was sent is not an uploaded file; upload the file itself.",
        "gone": f"{label}: the uploaded file is no longer here (uploads are kept for a limited time); upload it again.",
    }
    return gr.Error(sentences[kind], duration=USER_ERROR_S, print_exception=False)


def refuse_in_words() -> None:
    """Wrap gradio's check of an event's input files so that each refusal is a sentence (see the module's
    docstring). Idempotent; applied once per process by ``build_app``."""
    from gradio import processing_utils
    from gradio.exceptions import InvalidPathError

    original = processing_utils.async_move_files_to_cache
    if getattr(original, "facedemo_refusals", False):
        return

    async def async_move_files_to_cache(data, block, postprocess=False, check_in_upload_folder=False, **options):
        if postprocess or not check_in_upload_folder:  # the app's own outputs: gradio's rules, gradio's errors
            return await original(data, block, postprocess, check_in_upload_folder, **options)
        if any(_SCHEME.match(p) for p in _paths(data)):  # refused before gradio's downloader sees it
            raise refusal(block, "url")
        try:
            moved = await original(data, block, postprocess, check_in_upload_folder, **options)
        except InvalidPathError:
            raise refusal(block, "path") from None
        except FileNotFoundError:
            raise refusal(block, "gone") from None
        except (ValueError, TypeError, OSError) as exc:
            log.info("refused an input of %s: %s", type(block).__name__, type(exc).__name__)
            raise refusal(block, "path") from None
        model = getattr(block, "data_model", None)
        if model is not None and moved is not None:  # gradio validates it next, with an error nobody reads
            try:
                model.model_validate(moved, context={"validate_meta": True})
            except Exception:
                raise refusal(block, "shape") from None
        return moved

    async_move_files_to_cache.facedemo_refusals = True
    processing_utils.async_move_files_to_cache = async_move_files_to_cache


def refuse_missing_values(demo: gr.Blocks) -> None:
    """An API request with fewer values than its event takes gets a sentence that lists the inputs the event
    takes, in order (gradio's own check raises a ``ValueError`` that ``show_error`` hides; see the module's
    docstring). Values for a visitor's state are the server's, not the client's: they are not counted."""
    original = demo.validate_inputs

    def validate_inputs(block_fn, inputs):
        if len(inputs) < len(block_fn.inputs):
            taken = [n for b, n in zip(block_fn.inputs, _input_names(block_fn)) if not getattr(b, "skip_api", False)]
            endpoint = (
                f"/{block_fn.api_name}" if isinstance(getattr(block_fn, "api_name", None), str) else "This action"
            )
            sent = f"{len(inputs)} value" + ("" if len(inputs) == 1 else "s")
            raise gr.Error(
                f"{endpoint} takes {len(taken)} value(s), in this order: {', '.join(taken)}; this request sent {sent}.",
                duration=USER_ERROR_S,
                print_exception=False,
            )
        return original(block_fn, inputs)

    demo.validate_inputs = validate_inputs


def _input_names(block_fn) -> list[str]:
    """Each input's label; an input without one (a hidden answer such as ``confirm``) by its handler's
    parameter name."""
    try:
        parameters = [name.replace("_", " ") for name in inspect.signature(block_fn.fn).parameters]
    except (TypeError, ValueError):
        parameters = []
    parameters += [""] * len(block_fn.inputs)
    return [
        _label(block) if getattr(block, "label", None) else (parameter or type(block).__name__)
        for block, parameter in zip(block_fn.inputs, parameters)
    ]
