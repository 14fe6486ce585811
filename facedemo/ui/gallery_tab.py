"""Gallery: enroll people, bulk-import a zip, see everyone with thumbnails, rename and delete."""

from __future__ import annotations

import html
from pathlib import Path

import gradio as gr

from .. import params
from ..errors import FaceDemoError, InvalidParameterError, LooksLikeSomeoneError, OddPhotosError
from ..services import Services, on_gpu
from ..words import duration
from .common import (
    PROGRESS_ROOM,
    clear_on_change,
    forget_uploads,
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


def render(services: Services, people_changed: gr.State, tab: gr.Tab | None = None):
    if services.public:
        gr.Markdown(public_note(services), elem_id="public-note")
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
    gr.Markdown("### People")
    public = services.public
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
    # Public mode: the shared demo gallery, whom Identify also names, listed read-only; and the visitor's
    # own "forget me now".
    with gr.Column(visible=public):
        gr.Markdown("### The demo gallery (shared by every visitor; you can use it, not change it)")
        shared_tiles = gr.HTML(elem_id="shared-tiles")
        forget_button = gr.Button("Delete everything of mine", variant="stop", size="sm", elem_id="forget-me")
        forget_note = gr.Markdown(elem_id="forget-note")
        forget_asked = gr.State(False)

    def gallery_of(request):
        return services.gallery(session_of(request))

    @user_errors
    def list_people(request: gr.Request = None):
        people = gallery_of(request).people()
        tiles = [(p.thumbnail, f"{p.name} ({p.images})") for p in people if p.thumbnail]
        if public:  # a visitor's own gallery; Identify also searches the shared one, so say what it holds
            shared = 0 if tiles else len(services.shared().people())  # read only for the empty state
            empty = "Nobody in your private gallery yet." + (
                f" Identify also searches the demo gallery listed below ({shared} {'person' if shared == 1 else 'people'}),"
                " which you can use but not change."
                if shared
                else ""
            )
        else:
            empty = "Nobody enrolled yet: give a name and a few photos above, or import a zip."
        tiles = inline_tiles(tiles, empty)
        names = [p.name for p in people]
        models = sorted({m for p in people for m in p.faces})
        table = {
            "headers": ["person", "photos", *models],
            "data": [[p.name, p.images, *(p.faces.get(m, 0) for m in models)] for p in people],
        }
        # The person box keeps what the user typed or picked: this listing also runs when the tab is opened,
        # and under load it arrived after the user had filled the box, emptying it under their click.
        return tiles, gr.update(choices=names), table, [p.to_json() for p in people]

    def list_shared():
        people = services.shared().people()
        tiles = [(p.thumbnail, f"{p.name} ({p.images})") for p in people if p.thumbnail]
        return inline_tiles(tiles, "The demo gallery is empty.")

    @user_errors
    def ask_or_forget(pending, request: gr.Request = None):
        """The first click asks, on the button; the second deletes the visitor's people and models now."""
        if not pending:
            return (
                "Click **Delete all my people and models for good?** to delete them now.",
                gr.update(value="Delete all my people and models for good?"),
                True,
            )
        services.forget(session_of(request))
        return (
            "Deleted everything you enrolled and fine-tuned: your people, their faces, embeddings and thumbnails, "
            "and your models.",
            gr.update(value="Delete everything of mine"),
            False,
        )

    def enrolled(person_name, files, request, confirm=False, odd=None):
        paths = [f if isinstance(f, str) else getattr(f, "name", f) for f in (files or [])]
        services.photos_allowed(paths)  # public mode: what one request may embed
        result = services.enroll(
            session_of(request),
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

    @user_errors
    @on_gpu
    def enroll(person_name, files, confirm=False, odd="ask", request: gr.Request = None):
        """The API's enroll: refused with the question unless answered (``confirm``: enroll a face the gallery
        names as someone else; ``odd``: keep or drop the photos that do not look like the others)."""
        sure = confirm is not None and params.boolean(confirm, "The confirmation")
        try:
            return enrolled(person_name, files, request, sure, odd)
        except OddPhotosError as exc:
            raise OddPhotosError(f"{exc} (send odd='keep' or odd='drop')", exc.odd, exc.several) from None
        except LooksLikeSomeoneError as exc:
            raise LooksLikeSomeoneError(f"{exc} (send confirm=true to enroll anyway)", exc.matches) from None

    def answered(person_name, files, request, confirm, odd):
        """The page's enroll: a question is shown with the buttons that answer it, not as an error."""
        hidden = gr.update(visible=False)
        try:
            note, record = enrolled(person_name, files, request, confirm, odd)
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

    @user_errors
    @on_gpu
    def ask_or_enroll(person_name, files, request: gr.Request = None):
        return answered(person_name, files, request, False, None)

    @user_errors
    @on_gpu
    def keep_odd(person_name, files, request: gr.Request = None):
        return answered(person_name, files, request, False, "keep")

    @user_errors
    @on_gpu
    def drop_odd(person_name, files, request: gr.Request = None):
        return answered(person_name, files, request, False, "drop")

    @user_errors
    @on_gpu
    def enroll_anyway(person_name, files, odd, request: gr.Request = None):
        return answered(person_name, files, request, True, odd)

    def faces_listing(name, request):
        """One person's faces as tiles, and the picker of the one to remove (its label the photo's name)."""
        if not name:
            return "", gr.update(choices=[], value=None), []
        faces = gallery_of(request).faces(person=name)
        tiles = inline_tiles(
            [(f.thumbnail, f"{i}. {f.image}") for i, f in enumerate(faces, 1) if f.thumbnail],
            f"{name} has no face with a thumbnail.",
        )
        choices = [(f"{i}. {f.image}", f.id) for i, f in enumerate(faces, 1)]
        shown = f"<p>Faces of <b>{html.escape(name)}</b>:</p>{tiles}"
        return shown, gr.update(choices=choices, value=None), [f.to_json() for f in faces]

    @user_errors
    def list_faces(name, request: gr.Request = None):
        """The API's listing of one person's faces (their ids are what `/remove_face` takes)."""
        if not name:
            raise InvalidParameterError("Give the person whose faces to list.")
        services.mine(session_of(request), name)  # a shared person's faces are the demo gallery's
        return faces_listing(name, request)

    def faces_of_picked(name, request: gr.Request = None):
        """A person picked (or typed) in the box: their faces, or nothing while the name is not someone's."""
        try:
            return faces_listing(name, request)
        except FaceDemoError:
            return "", gr.update(choices=[], value=None), []

    def removed(name, face_id, request) -> str:
        done = services.mine(session_of(request), name).remove_face(name, face_id)
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
    def remove_face(name, face_id, sure, request: gr.Request = None):
        """The API's removal: the person, the face's id (as `/faces` lists it) and ``sure`` (true to remove)."""
        if not name or not face_id:
            raise InvalidParameterError("Give the person and the id of the face to remove (as /faces lists them).")
        if not (sure is not None and params.boolean(sure, "The removal confirmation")):
            raise InvalidParameterError("Confirm the removal (true): removing erases the face and its embeddings.")
        return removed(name, face_id, request), False

    @user_errors
    def ask_or_remove(name, face_id, pending, request: gr.Request = None):
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
        return removed(name, face_id, request), gr.update(value="Remove this face"), None

    def cancel_remove(name, face_id, pending):
        if pending is None or (name, face_id) == tuple(pending):
            return gr.skip(), gr.skip(), gr.skip()
        return "", gr.update(value="Remove this face"), None

    @user_errors
    def import_zip(path, request: gr.Request = None, progress=gr.Progress()):
        path = require_file(path, "a zip file")
        services.photos_allowed([path])  # public mode: what one request may embed
        progress(0, desc="Unpacking")
        report = gallery_of(request).import_archive(
            path, progress=lambda done, total, message="": progress((done, total), desc=message or "Importing")
        )
        text = f"Imported **{report.added}** face(s) of **{len(report.enrolled)}** people; {report.duplicates} already there; {len(report.skipped)} skipped."
        for title, lines in (("Skipped", [f"{s.path}: {s.reason}" for s in report.skipped]), ("Note", report.warnings)):
            if lines:
                more = [f"… and {len(lines) - 20} more"] if len(lines) > 20 else []
                text += f"\n\n{title}:\n" + "\n".join(f"- {line}" for line in lines[:20] + more)
        return text

    @user_errors
    def rename(old, new, request: gr.Request = None):
        if not old:
            raise InvalidParameterError("Pick the person to rename.")
        count = services.mine(session_of(request), old).rename(old, new or "")
        return f"Renamed **{old}** to **{new.strip()}** ({count} face(s))."

    def erase(name, request) -> str:
        done = services.mine(session_of(request), name).delete(name)
        forget_uploads(done.hashes)  # the photos uploaded to enroll them, the thumbnails served: gradio's copies
        models = (
            f" The model(s) fine-tuned on their faces went with them: **{', '.join(done.models)}**."
            if done.models
            else ""
        )
        return f"Deleted **{done.name}**: {done.faces} face(s), their embeddings and thumbnails are gone.{models}"

    @user_errors
    def delete(name, sure, request: gr.Request = None):
        """The API's delete: the person and ``sure`` (true to delete)."""
        if not name:
            raise InvalidParameterError("Pick the person to delete.")
        if not (sure is not None and params.boolean(sure, "The delete confirmation")):
            raise InvalidParameterError(
                "Confirm the delete (true): deleting removes every photo and embedding of this person."
            )
        return erase(name, request), False

    @user_errors
    def ask_or_delete(name, pending, request: gr.Request = None):
        """The page's Delete: the first click asks, on the button; the second click on the same person deletes."""
        if not name:
            raise InvalidParameterError("Pick the person to delete first.")
        if pending != name:
            services.mine(session_of(request), name)  # an unknown (or shared) name is said now, not after asking
            return (
                f"Click **Delete {name} for good?** to delete every photo and embedding of **{name}**; "
                "pick another person to cancel.",
                gr.update(value=f"Delete {name} for good?"),
                name,
            )
        return erase(name, request), gr.update(value="Delete"), None

    def cancel_delete(name, pending):
        """Another person picked (or the box cleared): the question on the button no longer holds."""
        if pending is None or name == pending:
            return gr.skip(), gr.skip(), gr.skip()
        return "", gr.update(value="Delete"), None

    outputs = [people_gallery, person, people_table, people_json]
    answers = [keep_button, drop_button, anyway_button]
    hidden = gr.update(visible=False)
    clear_on_change(
        [name, photos], [enroll_note, enroll_json, *answers, odd_answer], ["", None, hidden, hidden, hidden, None]
    )
    clear_on_change([archive], [import_note], [""])
    api_enroll.click(
        enroll, [name, photos, api_confirm_enroll, api_odd], [enroll_note, enroll_json], api_name="enroll"
    ).then(list_people, None, outputs, api_visibility="private")
    asked_outputs = [enroll_note, enroll_json, *answers, odd_answer]
    for button, handler, inputs in (
        (enroll_button, ask_or_enroll, [name, photos]),
        (keep_button, keep_odd, [name, photos]),
        (drop_button, drop_odd, [name, photos]),
        (anyway_button, enroll_anyway, [name, photos, odd_answer]),
    ):
        button.click(
            handler, inputs, [*asked_outputs, photos], api_visibility="private", show_progress_on=[enroll_note]
        ).then(list_people, None, outputs, api_visibility="private")

    face_outputs = [person_faces, face, faces_json]
    person.change(faces_of_picked, [person], face_outputs, api_visibility="private", show_progress="hidden")
    api_faces.click(list_faces, [person], face_outputs, api_name="faces")
    face.change(
        cancel_remove, [person, face, face_asked], [manage_note, remove_button, face_asked], api_visibility="private"
    )
    remove_clicked = remove_button.click(
        ask_or_remove,
        [person, face, face_asked],
        [manage_note, remove_button, face_asked],
        api_visibility="private",
        show_progress_on=[manage_note],
    )

    def refresh_after_remove(name, pending, request: gr.Request = None):
        if pending is not None:  # the first click only asked
            return [gr.skip()] * (len(outputs) + len(face_outputs))
        return (*list_people(request), *faces_of_picked(name, request))

    remove_clicked.success(
        refresh_after_remove, [person, face_asked], [*outputs, *face_outputs], api_visibility="private"
    )
    api_removed = api_remove_face.click(
        remove_face, [person, api_face_id, api_confirm_face], [manage_note, api_confirm_face], api_name="remove_face"
    )
    api_removed.then(list_people, None, outputs, api_visibility="private")
    imported = import_button.click(import_zip, [archive], [import_note], api_name="import")
    imported.then(list_people, None, outputs, api_visibility="private")
    imported.success(used_files, None, archive, api_visibility="private", queue=False)

    def clear_person():
        return gr.update(value=None)

    def refresh_after_delete(pending, request: gr.Request = None):
        """After the second click (``asked`` cleared again): the list without them, and an empty person box."""
        if pending is not None:  # that was the first click, which only asked
            return [gr.skip()] * (len(outputs) + 1)
        return (*list_people(request), gr.update(value=None))

    # The earlier note goes first: a refused rename showed its error beside "Renamed A to B" of the one before.
    renamed = rename_button.click(lambda: "", None, manage_note, queue=False, api_visibility="private").then(
        rename, [person, new_name], [manage_note], api_name="rename"
    )
    renamed.then(list_people, None, outputs, api_visibility="private")
    renamed.success(clear_person, None, person, api_visibility="private")  # a refused one keeps the name
    deleted = delete_button.click(
        ask_or_delete,
        [person, asked],
        [manage_note, delete_button, asked],
        api_visibility="private",
        show_progress_on=[manage_note],  # a refusal never covers the button or the person box
    )
    deleted.success(refresh_after_delete, [asked], [*outputs, person], api_visibility="private")
    person.change(cancel_delete, [person, asked], [manage_note, delete_button, asked], api_visibility="private")
    api_deleted = api_delete.click(delete, [person, api_confirm], [manage_note, api_confirm], api_name="delete")
    api_deleted.then(list_people, None, outputs, api_visibility="private")
    refresh.click(list_people, None, outputs, api_name="people")
    people_changed.change(list_people, None, outputs, api_visibility="private")
    if tab is not None:  # the list is fresh whenever the tab is opened
        tab.select(list_people, None, outputs, api_visibility="private")
    if public:
        shared_listing = tab.select if tab is not None else refresh.click
        shared_listing(list_shared, None, shared_tiles, api_visibility="private", show_progress="hidden")
        forgotten = forget_button.click(
            ask_or_forget,
            [forget_asked],
            [forget_note, forget_button, forget_asked],
            api_visibility="private",
            show_progress_on=[forget_note],
        )
        forgotten.success(list_people, None, outputs, api_visibility="private")
