"""Gallery: enroll people, bulk-import a zip, see everyone with thumbnails, rename and delete."""

from __future__ import annotations

import html
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from .. import params
from ..errors import FaceDemoError, InvalidParameterError, LooksLikeSomeoneError, OddPhotosError
from ..services import Services, usecases
from ..words import duration
from .common import (
    PROGRESS_ROOM,
    bound,
    clear_on_change,
    forget_uploads,
    gpu_bound,
    inline_tiles,
    require_file,
    session_of,
    used_files,
    user_errors,
)


def public_note(services: Services) -> str:
    """What a public-demo visitor is told about their data, once, at the top of the Gallery tab."""
    ttl = duration(services.settings.visitor_ttl_s)
    return (
        "**Public demo:** the people you enroll (and the models you fine-tune on them) are visible only to you, in "
        f"this browser. They stay for **{ttl} after your last action** (a reload keeps them), then they are "
        "deleted; **Delete everything of mine** below deletes them now."
    )


# The outputs of a listing, for the events that refresh it after their own: the people's tiles, the person
# picker's choices, the table and the JSON; one person's faces: their tiles, the face picker and the JSON.
LISTING_OUTPUTS = 4
FACES_OUTPUTS = 3


def gallery_of(services: Services, request):
    return services.gallery(session_of(request))


def empty_gallery_note(public: bool, shared: int) -> str:
    """What the people list says when it is empty: in public mode, that Identify also searches the ``shared``
    people of the demo gallery."""
    if not public:
        return "Nobody enrolled yet: give a name and a few photos above, or import a zip."
    return "Nobody in your private gallery yet." + (
        f" Identify also searches the demo gallery listed below ({shared} {'person' if shared == 1 else 'people'}),"
        " which you can use but not change."
        if shared
        else ""
    )


@user_errors
def list_people(services: Services, request: gr.Request = None):
    people = gallery_of(services, request).people()
    tiles = [(p.thumbnail, f"{p.name} ({p.images})") for p in people if p.thumbnail]
    # a visitor's own gallery; Identify also searches the shared one, so say what it holds (read only when empty)
    shared = len(services.shared().people()) if services.public and not tiles else 0
    tiles = inline_tiles(tiles, empty_gallery_note(services.public, shared))
    names = [p.name for p in people]
    models = sorted({m for p in people for m in p.faces})
    table = {
        "headers": ["person", "photos", *models],
        "data": [[p.name, p.images, *(p.faces.get(m, 0) for m in models)] for p in people],
    }
    # The person box keeps what the user typed or picked: this listing also runs when the tab is opened,
    # and under load it arrived after the user had filled the box, emptying it under their click.
    return tiles, gr.update(choices=names), table, [p.to_json() for p in people]


def list_shared(services: Services):
    people = services.shared().people()
    tiles = [(p.thumbnail, f"{p.name} ({p.images})") for p in people if p.thumbnail]
    return inline_tiles(tiles, "The demo gallery is empty.")


@user_errors
def ask_or_forget(services: Services, pending, request: gr.Request = None):
    """The first click asks, on the button; the second deletes the visitor's people and models now."""
    if not pending:
        return (
            "Click **Delete all my people and models for good?** to delete them now.",
            gr.update(value="Delete all my people and models for good?"),
            True,
        )
    services.visitors.forget(session_of(request))
    return (
        "Deleted everything you enrolled and fine-tuned: your people, their faces, embeddings and thumbnails, "
        "and your models.",
        gr.update(value="Delete everything of mine"),
        False,
    )


def enrolled(services: Services, person_name, files, request, confirm=False, odd=None):
    paths = [f if isinstance(f, str) else getattr(f, "name", f) for f in (files or [])]
    visit = services.request(session_of(request))
    usecases.photos_allowed(visit, paths)  # public mode: what one request may embed
    result = usecases.enroll(
        visit,
        person_name or "",
        paths,
        labels=[Path(p).name for p in paths],
        confirm=confirm,
        odd_photos=odd,
    )
    parts = [f"Enrolled **{len(result.added)}** photo(s) of **{result.person}** with {', '.join(result.models)}."]
    if result.duplicates:
        owners = ", ".join(sorted({d.person for d in result.duplicates}))
        parts.append(f"{len(result.duplicates)} photo(s) were already enrolled (as {owners}) and were skipped.")
    parts += result.notes
    if result.skipped:
        parts.append(
            f"\n\nNot enrolled ({len(result.skipped)}):\n" + "\n".join(f"- {s.reason}" for s in result.skipped)
        )
    return " ".join(parts), result.to_json()


def enroll(services: Services, person_name, files, confirm=False, odd="ask", request: gr.Request = None):
    """The API's enroll: refused with the question unless answered (``confirm``: enroll a face the gallery
    names as someone else; ``odd``: keep or drop the photos that do not look like the others)."""
    sure = confirm is not None and params.boolean(confirm, "The confirmation")
    try:
        return enrolled(services, person_name, files, request, sure, odd)
    except OddPhotosError as exc:
        raise OddPhotosError(f"{exc} (send odd='keep' or odd='drop')", exc.odd, exc.several) from None
    except LooksLikeSomeoneError as exc:
        raise LooksLikeSomeoneError(f"{exc} (send confirm=true to enroll anyway)", exc.matches) from None


def answered(services: Services, person_name, files, request, confirm, odd):
    """The page's enroll: a question is shown with the buttons that answer it, not as an error."""
    hidden = gr.update(visible=False)
    try:
        note, record = enrolled(services, person_name, files, request, confirm, odd)
    except OddPhotosError as exc:
        it = "them" if len(exc.odd) > 1 or exc.several else "it"
        return (
            f"**{exc}**",
            None,
            gr.update(visible=True, value=f"Keep {it}"),
            gr.update(visible=True, value=f"Leave {it} out"),
            hidden,
            None,
            gr.skip(),  # the photos stay for the answer
        )
    except LooksLikeSomeoneError as exc:
        return f"**{exc}**", None, hidden, hidden, gr.update(visible=True), odd, gr.skip()
    return note, record, hidden, hidden, hidden, None, used_files()


def ask_or_enroll(services: Services, person_name, files, request: gr.Request = None):
    return answered(services, person_name, files, request, False, None)


def keep_odd(services: Services, person_name, files, request: gr.Request = None):
    return answered(services, person_name, files, request, False, "keep")


def drop_odd(services: Services, person_name, files, request: gr.Request = None):
    return answered(services, person_name, files, request, False, "drop")


def enroll_anyway(services: Services, person_name, files, odd, request: gr.Request = None):
    return answered(services, person_name, files, request, True, odd)


def faces_listing(services: Services, name, request):
    """One person's faces as tiles, and the picker of the one to remove (its label the photo's name)."""
    if not name:
        return "", gr.update(choices=[], value=None), []
    faces = gallery_of(services, request).faces(person=name)
    tiles = inline_tiles(
        [(f.thumbnail, f"{i}. {f.image}") for i, f in enumerate(faces, 1) if f.thumbnail],
        f"{name} has no face with a thumbnail.",
    )
    choices = [(f"{i}. {f.image}", f.id) for i, f in enumerate(faces, 1)]
    shown = f"<p>Faces of <b>{html.escape(name)}</b>:</p>{tiles}"
    return shown, gr.update(choices=choices, value=None), [f.to_json() for f in faces]


@user_errors
def list_faces(services: Services, name, request: gr.Request = None):
    """The API's listing of one person's faces (their ids are what `/remove_face` takes)."""
    if not name:
        raise InvalidParameterError("Give the person whose faces to list.")
    usecases.mine(services.request(session_of(request)), name)  # a shared person's faces are the demo gallery's
    return faces_listing(services, name, request)


def faces_of_picked(services: Services, name, request: gr.Request = None):
    """A person picked (or typed) in the box: their faces, or nothing while the name is not someone's."""
    try:
        return faces_listing(services, name, request)
    except FaceDemoError:
        return "", gr.update(choices=[], value=None), []


def removed(services: Services, name, face_id, request) -> str:
    done = usecases.mine(services.request(session_of(request)), name).remove_face(name, face_id)
    forget_uploads(done.hashes)  # the photo as uploaded to enroll it, gradio's copies
    models = (
        f" The model(s) fine-tuned on **{done.person}**'s faces went with it: **{', '.join(done.models)}**."
        if done.models
        else ""
    )
    return (
        f"Removed the face from **{done.image}** from **{done.person}**: its embeddings, region and thumbnail "
        f"are gone; {done.left} face(s) remain.{models}"
    )


@user_errors
def remove_face(services: Services, name, face_id, sure, request: gr.Request = None):
    """The API's removal: the person, the face's id (as `/faces` lists it) and ``sure`` (true to remove)."""
    if not name or not face_id:
        raise InvalidParameterError("Give the person and the id of the face to remove (as /faces lists them).")
    if not (sure is not None and params.boolean(sure, "The removal confirmation")):
        raise InvalidParameterError("Confirm the removal (true): removing erases the face and its embeddings.")
    return removed(services, name, face_id, request), False


@user_errors
def ask_or_remove(services: Services, name, face_id, pending, request: gr.Request = None):
    """The page's Remove: the first click asks, on the button; the second click on the same face removes."""
    if not name or not face_id:
        raise InvalidParameterError("Pick the person, then the face to remove.")
    if tuple(pending or ()) != (name, face_id):
        return (
            f"Click **Remove this face for good?** to erase that face of **{name}** and its embeddings; "
            "pick another face to cancel.",
            gr.update(value="Remove this face for good?"),
            (name, face_id),
        )
    return removed(services, name, face_id, request), gr.update(value="Remove this face"), None


def cancel_remove(name, face_id, pending):
    if pending is None or (name, face_id) == tuple(pending):
        return gr.skip(), gr.skip(), gr.skip()
    return "", gr.update(value="Remove this face"), None


def refresh_after_remove(services: Services, name, pending, request: gr.Request = None):
    if pending is not None:  # the first click only asked
        return [gr.skip()] * (LISTING_OUTPUTS + FACES_OUTPUTS)
    return (*list_people(services, request), *faces_of_picked(services, name, request))


@user_errors
def import_zip(services: Services, path, request: gr.Request = None, progress=gr.Progress()):
    path = require_file(path, "a zip file")
    visit = services.request(session_of(request))
    usecases.photos_allowed(visit, [path])  # public mode: what one request may embed
    progress(0, desc="Unpacking")
    report = visit.gallery.import_archive(
        path, progress=lambda done, total, message="": progress((done, total), desc=message or "Importing")
    )
    text = f"Imported **{report.added}** face(s) of **{len(report.enrolled)}** people; {report.duplicates} already there; {len(report.skipped)} skipped."
    for title, lines in (("Skipped", [f"{s.path}: {s.reason}" for s in report.skipped]), ("Note", report.warnings)):
        if lines:
            more = [f"… and {len(lines) - 20} more"] if len(lines) > 20 else []
            text += f"\n\n{title}:\n" + "\n".join(f"- {line}" for line in lines[:20] + more)
    return text


@user_errors
def rename(services: Services, old, new, request: gr.Request = None):
    if not old:
        raise InvalidParameterError("Pick the person to rename.")
    count = usecases.mine(services.request(session_of(request)), old).rename(old, new or "")
    return f"Renamed **{old}** to **{new.strip()}** ({count} face(s))."


def erase(services: Services, name, request) -> str:
    done = usecases.mine(services.request(session_of(request)), name).delete(name)
    forget_uploads(done.hashes)  # the photos uploaded to enroll them, the thumbnails served: gradio's copies
    models = (
        f" The model(s) fine-tuned on their faces went with them: **{', '.join(done.models)}**." if done.models else ""
    )
    return f"Deleted **{done.name}**: {done.faces} face(s), their embeddings and thumbnails are gone.{models}"


@user_errors
def delete(services: Services, name, sure, request: gr.Request = None):
    """The API's delete: the person and ``sure`` (true to delete)."""
    if not name:
        raise InvalidParameterError("Pick the person to delete.")
    if not (sure is not None and params.boolean(sure, "The delete confirmation")):
        raise InvalidParameterError(
            "Confirm the delete (true): deleting removes every photo and embedding of this person."
        )
    return erase(services, name, request), False


@user_errors
def ask_or_delete(services: Services, name, pending, request: gr.Request = None):
    """The page's Delete: the first click asks, on the button; the second click on the same person deletes."""
    if not name:
        raise InvalidParameterError("Pick the person to delete first.")
    if pending != name:
        usecases.mine(
            services.request(session_of(request)), name
        )  # an unknown (or shared) name is said now, not after asking
        return (
            f"Click **Delete {name} for good?** to delete every photo and embedding of **{name}**; "
            "pick another person to cancel.",
            gr.update(value=f"Delete {name} for good?"),
            name,
        )
    return erase(services, name, request), gr.update(value="Delete"), None


def cancel_delete(name, pending):
    """Another person picked (or the box cleared): the question on the button no longer holds."""
    if pending is None or name == pending:
        return gr.skip(), gr.skip(), gr.skip()
    return "", gr.update(value="Delete"), None


def clear_person():
    return gr.update(value=None)


def refresh_after_delete(services: Services, pending, request: gr.Request = None):
    """After the second click (``asked`` cleared again): the list without them, and an empty person box."""
    if pending is not None:  # that was the first click, which only asked
        return [gr.skip()] * (LISTING_OUTPUTS + 1)
    return (*list_people(services, request), gr.update(value=None))


def enroll_layout() -> SimpleNamespace:
    """Enroll a person (with the buttons that answer the questions asked before storing), and bulk import."""
    with gr.Row():
        with gr.Column():
            gr.Markdown("### Enroll a person")
            name = gr.Textbox(label="Name", placeholder="e.g. Ada Lovelace")
            photos = gr.File(
                label="Photos (one face each)",
                file_count="multiple",
                file_types=["image"],
                type="filepath",
                elem_id="enroll-photos",
            )
            gr.Markdown(
                "Every available model embeds each face, so every model can be compared on the people enrolled here."
            )
            enroll_button = gr.Button("Enroll", variant="primary", elem_id="enroll-person")
            # room for the progress drawn here, next to the button (#35: it was clipped to nothing)
            enroll_note = gr.Markdown(elem_id="enroll-note", min_height=PROGRESS_ROOM)
            # The answers to the questions asked before storing (gallery/guards.py), shown with their question.
            with gr.Row():
                keep_button = gr.Button("Keep them", visible=False, elem_id="enroll-keep")
                drop_button = gr.Button("Leave them out", visible=False, elem_id="enroll-drop")
                anyway_button = gr.Button("Enroll anyway", visible=False, variant="stop", elem_id="enroll-anyway")
            odd_answer = gr.State(None)  # keep or drop, once answered: the next question keeps it
            enroll_json = gr.JSON(label="Enrollment (as the CLI's --json)", visible=False)
            # The API's enroll takes the answers as values (`/enroll`, as the CLI's --confirm, --keep-odd, --drop-odd).
            api_confirm_enroll = gr.Checkbox(value=False, visible=False)
            api_odd = gr.Textbox(value="ask", visible=False)
            api_enroll = gr.Button(visible=False)
        with gr.Column():
            gr.Markdown("### Bulk import")
            archive = gr.File(label="A zip with one folder per person", file_types=[".zip"], type="filepath")
            import_button = gr.Button("Import")
            import_note = gr.Markdown(min_height=PROGRESS_ROOM)
    return SimpleNamespace(
        name=name,
        photos=photos,
        enroll_button=enroll_button,
        enroll_note=enroll_note,
        answers=[keep_button, drop_button, anyway_button],
        odd_answer=odd_answer,
        enroll_json=enroll_json,
        api_confirm_enroll=api_confirm_enroll,
        api_odd=api_odd,
        api_enroll=api_enroll,
        archive=archive,
        import_button=import_button,
        import_note=import_note,
    )


def people_layout() -> SimpleNamespace:
    """The people list, the person's controls (rename, delete) and their faces (one of which can be removed)."""
    gr.Markdown("### People")
    # Square face tiles with the full name below each, in a grid as wide as the page (ui.common.inline_tiles):
    # inline, so in public mode no file URL exists that another client could fetch.
    people_gallery = gr.HTML(label="Enrolled people", elem_id="people-tiles")
    with gr.Row():
        person = gr.Dropdown([], label="Person", allow_custom_value=True, scale=2, elem_id="person-pick")
        new_name = gr.Textbox(label="New name", scale=2)
        rename_button = gr.Button("Rename", scale=1)
        delete_button = gr.Button("Delete", variant="stop", scale=1, elem_id="delete-person")
    manage_note = gr.Markdown(elem_id="manage-note")
    # One person's faces, one of which can be taken out (a wrong photo), erased as a deleted person is.
    person_faces = gr.HTML(elem_id="person-faces")
    with gr.Row():
        face = gr.Dropdown([], label="Face", scale=3, elem_id="face-pick")
        remove_button = gr.Button("Remove this face", variant="stop", scale=1, elem_id="remove-face")
    face_asked = gr.State(None)  # the face the Remove button is asking about
    faces_json = gr.JSON(visible=False)
    api_face_id = gr.Textbox(visible=False)
    api_confirm_face = gr.Checkbox(value=False, visible=False)
    api_faces = gr.Button(visible=False)
    api_remove_face = gr.Button(visible=False)
    # Delete asks once, on the button itself ("Delete Raj for good?"): this is the person it is asking about.
    asked = gr.State(None)
    # The API's delete takes the confirmation as a boolean (`/delete`, as the CLI's --yes); it has no control on
    # the page.
    api_confirm = gr.Checkbox(value=False, visible=False)
    api_delete = gr.Button(visible=False)
    people_table = gr.Dataframe(label="Faces each model holds", interactive=False, wrap=True, elem_id="people-table")
    people_json = gr.JSON(label="People (as the CLI's --json)", visible=True)
    refresh = gr.Button("Refresh", size="sm")
    return SimpleNamespace(
        person=person,
        new_name=new_name,
        rename_button=rename_button,
        delete_button=delete_button,
        manage_note=manage_note,
        face=face,
        remove_button=remove_button,
        face_asked=face_asked,
        api_face_id=api_face_id,
        api_confirm_face=api_confirm_face,
        api_faces=api_faces,
        api_remove_face=api_remove_face,
        asked=asked,
        api_confirm=api_confirm,
        api_delete=api_delete,
        refresh=refresh,
        listing=[people_gallery, person, people_table, people_json],
        faces=[person_faces, face, faces_json],
    )


def shared_layout(public: bool) -> SimpleNamespace:
    """Public mode: the shared demo gallery, whom Identify also names, listed read-only; and the visitor's
    own "forget me now"."""
    with gr.Column(visible=public):
        gr.Markdown("### The demo gallery (shared by every visitor; you can use it, not change it)")
        shared_tiles = gr.HTML(elem_id="shared-tiles")
        forget_button = gr.Button("Delete everything of mine", variant="stop", size="sm", elem_id="forget-me")
        forget_note = gr.Markdown(elem_id="forget-note")
        forget_asked = gr.State(False)
    return SimpleNamespace(
        shared_tiles=shared_tiles, forget_button=forget_button, forget_note=forget_note, forget_asked=forget_asked
    )


def wire_enroll(services: Services, ui: SimpleNamespace, listed) -> None:
    """Enroll: the API's, with its answers as values; the page's, with its questions and the buttons that answer
    them; each followed by the fresh list."""
    hidden = gr.update(visible=False)
    asked_outputs = [ui.enroll_note, ui.enroll_json, *ui.answers, ui.odd_answer]
    clear_on_change([ui.name, ui.photos], asked_outputs, ["", None, hidden, hidden, hidden, None])
    clear_on_change([ui.archive], [ui.import_note], [""])
    ui.api_enroll.click(
        gpu_bound(enroll, services),
        [ui.name, ui.photos, ui.api_confirm_enroll, ui.api_odd],
        [ui.enroll_note, ui.enroll_json],
        api_name="enroll",
    ).then(listed, None, ui.listing, api_visibility="private")
    keep_button, drop_button, anyway_button = ui.answers
    for button, handler, inputs in (
        (ui.enroll_button, ask_or_enroll, [ui.name, ui.photos]),
        (keep_button, keep_odd, [ui.name, ui.photos]),
        (drop_button, drop_odd, [ui.name, ui.photos]),
        (anyway_button, enroll_anyway, [ui.name, ui.photos, ui.odd_answer]),
    ):
        button.click(
            gpu_bound(handler, services),
            inputs,
            [*asked_outputs, ui.photos],
            api_visibility="private",
            show_progress_on=[ui.enroll_note],
        ).then(listed, None, ui.listing, api_visibility="private")


def wire_faces(services: Services, ui: SimpleNamespace, listed) -> None:
    """One person's faces, listed when they are picked, and the removal of one (asked on the button first)."""
    question = [ui.manage_note, ui.remove_button, ui.face_asked]
    ui.person.change(
        bound(faces_of_picked, services), [ui.person], ui.faces, api_visibility="private", show_progress="hidden"
    )
    ui.api_faces.click(bound(list_faces, services), [ui.person], ui.faces, api_name="faces")
    ui.face.change(cancel_remove, [ui.person, ui.face, ui.face_asked], question, api_visibility="private")
    remove_clicked = ui.remove_button.click(
        bound(ask_or_remove, services),
        [ui.person, ui.face, ui.face_asked],
        question,
        api_visibility="private",
        show_progress_on=[ui.manage_note],
    )
    remove_clicked.success(
        bound(refresh_after_remove, services),
        [ui.person, ui.face_asked],
        [*ui.listing, *ui.faces],
        api_visibility="private",
    )
    api_removed = ui.api_remove_face.click(
        bound(remove_face, services),
        [ui.person, ui.api_face_id, ui.api_confirm_face],
        [ui.manage_note, ui.api_confirm_face],
        api_name="remove_face",
    )
    api_removed.then(listed, None, ui.listing, api_visibility="private")


def wire_import(services: Services, ui: SimpleNamespace, listed) -> None:
    imported = ui.import_button.click(bound(import_zip, services), [ui.archive], [ui.import_note], api_name="import")
    imported.then(listed, None, ui.listing, api_visibility="private")
    imported.success(used_files, None, ui.archive, api_visibility="private", queue=False)


def wire_manage(services: Services, ui: SimpleNamespace, listed) -> None:
    """Rename and delete a person (the page's delete asks on the button first; the API's takes ``sure``)."""
    # The earlier note goes first: a refused rename showed its error beside "Renamed A to B" of the one before.
    renamed = ui.rename_button.click(lambda: "", None, ui.manage_note, queue=False, api_visibility="private").then(
        bound(rename, services), [ui.person, ui.new_name], [ui.manage_note], api_name="rename"
    )
    renamed.then(listed, None, ui.listing, api_visibility="private")
    renamed.success(clear_person, None, ui.person, api_visibility="private")  # a refused one keeps the name
    question = [ui.manage_note, ui.delete_button, ui.asked]
    deleted = ui.delete_button.click(
        bound(ask_or_delete, services),
        [ui.person, ui.asked],
        question,
        api_visibility="private",
        show_progress_on=[ui.manage_note],  # a refusal never covers the button or the person box
    )
    deleted.success(
        bound(refresh_after_delete, services), [ui.asked], [*ui.listing, ui.person], api_visibility="private"
    )
    ui.person.change(cancel_delete, [ui.person, ui.asked], question, api_visibility="private")
    api_deleted = ui.api_delete.click(
        bound(delete, services), [ui.person, ui.api_confirm], [ui.manage_note, ui.api_confirm], api_name="delete"
    )
    api_deleted.then(listed, None, ui.listing, api_visibility="private")


def wire_listing(services: Services, ui: SimpleNamespace, listed, people_changed: gr.State, tab) -> None:
    """When the list is read again: Refresh, a change elsewhere, the tab opened; public mode's demo gallery
    and the visitor's "forget me now"."""
    ui.refresh.click(listed, None, ui.listing, api_name="people")
    people_changed.change(listed, None, ui.listing, api_visibility="private")
    if tab is not None:  # the list is fresh whenever the tab is opened
        tab.select(listed, None, ui.listing, api_visibility="private")
    if services.public:
        shared_listing = tab.select if tab is not None else ui.refresh.click
        shared_listing(
            bound(list_shared, services), None, ui.shared_tiles, api_visibility="private", show_progress="hidden"
        )
        forgotten = ui.forget_button.click(
            bound(ask_or_forget, services),
            [ui.forget_asked],
            [ui.forget_note, ui.forget_button, ui.forget_asked],
            api_visibility="private",
            show_progress_on=[ui.forget_note],
        )
        forgotten.success(listed, None, ui.listing, api_visibility="private")


def render(services: Services, people_changed: gr.State, tab: gr.Tab | None = None):
    if services.public:
        gr.Markdown(public_note(services), elem_id="public-note")
    ui = SimpleNamespace(**vars(enroll_layout()), **vars(people_layout()), **vars(shared_layout(services.public)))
    listed = bound(list_people, services)
    wire_enroll(services, ui, listed)
    wire_faces(services, ui, listed)
    wire_import(services, ui, listed)
    wire_manage(services, ui, listed)
    wire_listing(services, ui, listed, people_changed, tab)
