"""Album: an unlabelled set of photos grouped into people, shown as rows of faces, largest group first;
name a group (all its faces are enrolled), merge two groups, take a wrong face out of a group.

The album lives in this browser session's ``gr.State`` and its files are deleted when the state expires
or a new album replaces it: one visitor never sees another's album.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import gradio as gr

from ..errors import InvalidParameterError
from ..gallery.cluster import CLUSTER_METHODS, DEFAULT_CLUSTER_METHOD
from ..services import Services, usecases
from .common import (
    PROGRESS_ROOM,
    bound,
    default_model,
    gpu_bound,
    inline_tiles,
    model_choices,
    session_of,
    user_errors,
)

MAX_ROWS = 40  # groups of two or more shown as rows; the rest of the page would only scroll
ALBUM_TTL_S = 3 * 3600


def close_album(album) -> None:
    if album is not None:
        album.close()


# The page counts groups and faces from 1; the API's values (and the JSON's ids) count from 0, as ``Album`` does.
def group_label(group) -> str:
    who = f" · {group.person} (enrolled)" if group.person else ""
    return f"Group {group.id + 1} · {len(group.faces)} face{'s' if len(group.faces) != 1 else ''}{who}"


def face_caption(face) -> str:
    return f"#{face.index + 1} {face.person}" if face.person else f"#{face.index + 1}"


def _value(raw):
    """A component's raw value (events run with ``preprocess=False``, as the other tabs' do)."""
    if isinstance(raw, dict) and "path" in raw:
        return raw["path"]
    if isinstance(raw, dict) and "value" in raw:
        return raw["value"]
    return raw


def _paths(files) -> list[str]:
    files = files if isinstance(files, list) else [files] if files else []
    return [str(p) for p in (_value(f) for f in files) if p]


def show_groups(current) -> None:
    """The album's groups as rows of tiles, largest first, then the faces on their own (``gr.render``)."""
    if current is None:
        return
    groups = current.groups()
    shown = [g for g in groups if len(g.faces) > 1][:MAX_ROWS]
    alone = [g for g in groups if len(g.faces) == 1]
    for group in shown:
        gr.Markdown(f"**{group_label(group)}**")
        gr.HTML(inline_tiles([(f.thumbnail, face_caption(f)) for f in group.faces if f.thumbnail]))
    hidden = len([g for g in groups if len(g.faces) > 1]) - len(shown)
    if hidden > 0:
        gr.Markdown(f"… and {hidden} more groups (pick them by number above).")
    if alone:
        pairs = [(g, g.faces[0]) for g in alone if g.faces[0].thumbnail]
        gr.Markdown(f"**On their own ({len(alone)} faces, each a group of one)**")
        gr.HTML(inline_tiles([(f.thumbnail, f"{face_caption(f)} · group {g.id + 1}") for g, f in pairs]))


def refreshed(current, message: str):
    groups = current.groups()
    group_choices = [(group_label(g), g.id) for g in groups]
    face_choices = [(f"#{f.index + 1} · {f.image} (group {g.id + 1})", f.index) for g in groups for f in g.faces]
    return (
        current,
        message,
        current.to_json(),
        gr.update(choices=group_choices, value=None),
        gr.update(choices=group_choices, value=None),
        gr.update(choices=group_choices, value=None),
        gr.update(choices=face_choices, value=None),
    )


def cluster(
    services: Services,
    uploads,
    model_name=None,
    how=None,
    previous=None,
    request: gr.Request = None,
    progress=gr.Progress(),
):
    paths = _paths(uploads)
    if not paths:
        raise InvalidParameterError("Add some photos (or a zip of them) first.")
    close_album(previous)  # the old album's unpacked photos and thumbnails go as soon as it is replaced
    visit = services.request(session_of(request))
    current = usecases.album(
        visit,
        paths,
        _value(model_name) or None,
        _value(how) or None,
        progress=lambda done, total, message="": progress((done, total), desc=message or "Finding faces"),
    )
    groups = current.groups()
    people = [p.name for p in visit.gallery.people()]
    text = (
        f"**{len(current.faces)}** face(s) in **{current.images}** photo(s), grouped into **{len(groups)}** "
        f"group(s) ({current.method}, threshold {current.threshold:.3f})."
    )
    if current.skipped:
        text += f" {len(current.skipped)} photo(s) skipped: " + " ".join(
            f"{s.image}: {s.reason}" for s in current.skipped[:10]
        )
    return (*refreshed(current, ""), text, gr.update(choices=people))


def need(current):
    if current is None:
        raise InvalidParameterError("Group an album first: upload photos and press 'Group the faces'.")
    return current


@user_errors
def name_group(services: Services, current, group_id, person, request: gr.Request = None):
    current = need(current)
    if _value(group_id) in (None, ""):
        raise InvalidParameterError("Pick the group to name.")
    result = current.name(_value(group_id), _value(person) or "", services.gallery(session_of(request)))
    message = f"Enrolled **{len(result.added)}** face(s) as **{result.person}**."
    if result.duplicates:
        message += f" {len(result.duplicates)} were already enrolled."
    return (*refreshed(current, message), time.time())


@user_errors
def merge(current, first, second):
    current = need(current)
    if _value(first) in (None, "") or _value(second) in (None, ""):
        raise InvalidParameterError("Pick the two groups to merge.")
    current.merge(_value(first), _value(second))
    return refreshed(current, "Merged; the groups are renumbered, largest first.")


@user_errors
def take_out(current, face):
    current = need(current)
    if _value(face) in (None, ""):
        raise InvalidParameterError("Pick the face to take out (or click it).")
    current.take_out(_value(face))
    return refreshed(current, f"Face #{int(_value(face)) + 1} is now a group of its own.")


def outdated(current):
    """New photos, model or grouping: the groups shown are the earlier album's until it is grouped again."""
    if current is None:
        return ""
    return "**The groups below are of the earlier photos or settings**: press *Group the faces* for these."


def upload_layout(services: Services) -> SimpleNamespace:
    """The photos, the model and grouping, and the button that groups them."""
    with gr.Column(scale=1):
        files = gr.File(
            label="Photos, or a zip of photos",
            file_count="multiple",
            file_types=["image", ".zip"],
            type="filepath",
            elem_id="album-files",
            height=220,
        )
        with gr.Row():
            model = gr.Dropdown(model_choices(services), value=default_model(services), label="Model")
            method = gr.Dropdown(list(CLUSTER_METHODS), value=DEFAULT_CLUSTER_METHOD, label="Grouping")
        button = gr.Button("Group the faces", variant="primary", elem_id="album-group")
        note = gr.Markdown(elem_id="album-note", min_height=PROGRESS_ROOM)  # its progress, by the button
    return SimpleNamespace(files=files, model=model, method=method, button=button, note=note)


def actions_layout() -> SimpleNamespace:
    """Name a group, merge two, take a face out."""
    with gr.Column(scale=1):
        with gr.Row():
            group_pick = gr.Dropdown([], label="Group", scale=1)
            name = gr.Dropdown([], label="Name (new, or pick an existing person)", allow_custom_value=True, scale=2)
        name_button = gr.Button("Name this group (enroll all its faces)")
        with gr.Row():
            merge_a = gr.Dropdown([], label="Merge group", scale=1)
            merge_b = gr.Dropdown([], label="with group", scale=1)
            merge_button = gr.Button("Merge", scale=1)
        with gr.Row():
            face_pick = gr.Dropdown([], label="Face", scale=2)
            take_out_button = gr.Button("Take it out of its group", scale=1)
        action_note = gr.Markdown(min_height=PROGRESS_ROOM)
    return SimpleNamespace(
        group_pick=group_pick,
        name=name,
        name_button=name_button,
        merge_a=merge_a,
        merge_b=merge_b,
        merge_button=merge_button,
        face_pick=face_pick,
        take_out_button=take_out_button,
        action_note=action_note,
    )


def groups_layout(album: gr.State) -> gr.JSON:
    """The groups as rows of faces, and their JSON (whose change draws the rows again)."""
    # The faces as rows of square tiles with their captions below (ui.common.inline_tiles), in every mode: a
    # gallery component stretched a group of one or two faces across a phone's width until only the eyes
    # showed, and in public mode no file URL of a face exists. A face is picked with the dropdown above.
    rows = gr.Column(elem_id="album-groups")
    with gr.Accordion("Groups as JSON (as the CLI's --json)", open=False):
        result_json = gr.JSON(label="Groups")
    with rows:  # the groups, above the JSON
        gr.render(inputs=[album], triggers=[result_json.change])(show_groups)
    return result_json


def wire(services: Services, ui: SimpleNamespace, people_changed: gr.State) -> None:
    outputs = [ui.album, ui.action_note, ui.result_json, ui.group_pick, ui.merge_a, ui.merge_b, ui.face_pick]
    grouped = ui.button.click(
        gpu_bound(cluster, services),
        [ui.files, ui.model, ui.method, ui.album],
        [*outputs, ui.note, ui.name],
        api_name="cluster",
        preprocess=False,
        show_progress_on=[ui.note],
    )
    for component in (ui.files, ui.model, ui.method):
        component.change(
            outdated,
            [ui.album],
            [ui.note],
            api_visibility="private",
            queue=False,
            show_progress="hidden",
            cancels=[grouped],
        )
    ui.name_button.click(
        bound(name_group, services),
        [ui.album, ui.group_pick, ui.name],
        [*outputs, people_changed],
        api_name="album_name",
        preprocess=False,
        show_progress_on=[ui.action_note],
    )
    ui.merge_button.click(
        merge,
        [ui.album, ui.merge_a, ui.merge_b],
        outputs,
        api_name="album_merge",
        preprocess=False,
        show_progress_on=[ui.action_note],
    )
    ui.take_out_button.click(
        take_out,
        [ui.album, ui.face_pick],
        outputs,
        api_name="album_take_out",
        preprocess=False,
        show_progress_on=[ui.action_note],
    )


def render(services: Services, people_changed: gr.State):
    gr.Markdown(
        "Upload the photos of an album (or a zip of them): every face is found and the faces are grouped into "
        "people, largest group first, faces on their own last. Name a group to enroll all its faces, merge two "
        "groups of one person, or take a wrong face out. Faces of people already enrolled are labelled."
    )
    # This browser session's album. Gradio deletes a session's state an hour after its tab closes, and this
    # one three hours after its last change at most; either way close_album deletes its files.
    album = gr.State(None, time_to_live=ALBUM_TTL_S, delete_callback=close_album)
    with gr.Row():
        upload = upload_layout(services)
        actions = actions_layout()
    result_json = groups_layout(album)
    ui = SimpleNamespace(album=album, result_json=result_json, **vars(upload), **vars(actions))
    wire(services, ui, people_changed)
    return ui.model
