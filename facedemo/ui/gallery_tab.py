"""Gallery: enroll people, bulk-import a zip, see everyone with thumbnails, rename and delete."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from .. import params
from ..errors import InvalidParameterError
from ..services import Services, on_gpu
from .common import clear_on_change, forget_uploads, inline_tiles, require_file, session_of, user_errors


def render(services: Services, people_changed: gr.State, tab: gr.Tab | None = None):
    if services.public:
        gr.Markdown(
            "**Public demo:** the people you enroll (and the models you fine-tune on them) are visible only to you, and are deleted when you leave."
        )
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
            enroll_button = gr.Button("Enroll", variant="primary")
            enroll_note = gr.Markdown()
            enroll_json = gr.JSON(label="Enrollment (as the CLI's --json)", visible=False)
        with gr.Column():
            gr.Markdown("### Bulk import")
            archive = gr.File(label="A zip with one folder per person", file_types=[".zip"], type="filepath")
            import_button = gr.Button("Import")
            import_note = gr.Markdown()
    gr.Markdown("### People")
    public = services.public
    # Square face tiles with the full name below each, in a grid as wide as the page (ui.common.inline_tiles):
    # inline, so in public mode no file URL exists that another client could fetch.
    people_gallery = gr.HTML(label="Enrolled people", elem_id="people-tiles")
    with gr.Row():
        person = gr.Dropdown([], label="Person", allow_custom_value=True, scale=2)
        new_name = gr.Textbox(label="New name", scale=2)
        rename_button = gr.Button("Rename", scale=1)
        delete_button = gr.Button("Delete", variant="stop", scale=1, elem_id="delete-person")
    manage_note = gr.Markdown(elem_id="manage-note")
    # Delete asks once, on the button itself ("Delete Raj for good?"): this is the person it is asking about.
    asked = gr.State(None)
    # The API's delete takes the confirmation as a boolean (`/delete`, as the CLI's --yes); it has no control on
    # the page.
    api_confirm = gr.Checkbox(value=False, visible=False)
    api_delete = gr.Button(visible=False)
    people_table = gr.Dataframe(label="Faces each model holds", interactive=False, wrap=True, elem_id="people-table")
    people_json = gr.JSON(label="People (as the CLI's --json)", visible=True)
    refresh = gr.Button("Refresh", size="sm")

    def gallery_of(request):
        return services.gallery(session_of(request))

    @user_errors
    def list_people(request: gr.Request = None):
        people = gallery_of(request).people()
        tiles = [(p.thumbnail, f"{p.name} ({p.images})") for p in people if p.thumbnail]
        if public:  # a visitor's own gallery; Identify also searches the shared one, so say what it holds
            shared = 0 if tiles else len(services.shared().people())  # read only for the empty state
            empty = "Nobody in your private gallery yet." + (
                f" Identify also searches the shared demo gallery ({shared} {'person' if shared == 1 else 'people'}),"
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

    @user_errors
    @on_gpu
    def enroll(person_name, files, request: gr.Request = None):
        paths = [f if isinstance(f, str) else getattr(f, "name", f) for f in (files or [])]
        services.photos_allowed(paths)  # public mode: what one request may embed
        result = gallery_of(request).enroll(person_name or "", paths, labels=[Path(p).name for p in paths])
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
        count = gallery_of(request).rename(old, new or "")
        return f"Renamed **{old}** to **{new.strip()}** ({count} face(s))."

    def erase(name, request) -> str:
        done = gallery_of(request).delete(name)
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
            gallery_of(request).person(name)  # an unknown name is said now, not after the confirmation
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
    clear_on_change([name, photos], [enroll_note, enroll_json], ["", None])
    clear_on_change([archive], [import_note], [""])
    enroll_button.click(enroll, [name, photos], [enroll_note, enroll_json], api_name="enroll").then(
        list_people, None, outputs, api_visibility="private"
    )
    import_button.click(import_zip, [archive], [import_note], api_name="import").then(
        list_people, None, outputs, api_visibility="private"
    )

    def clear_person():
        return gr.update(value=None)

    def refresh_after_delete(pending, request: gr.Request = None):
        """After the second click (``asked`` cleared again): the list without them, and an empty person box."""
        if pending is not None:  # that was the first click, which only asked
            return [gr.skip()] * (len(outputs) + 1)
        return (*list_people(request), gr.update(value=None))

    renamed = rename_button.click(rename, [person, new_name], [manage_note], api_name="rename")
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
