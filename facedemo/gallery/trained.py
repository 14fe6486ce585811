"""The fine-tuned models learnt from a person's faces: what deleting the person, or one of their faces,
takes with it (their weights were learnt from those faces)."""

from __future__ import annotations

import shutil

from ..models.adapter import trained_on
from ..models.base import ModelSpec


def trained_on_person(gallery, person_id: str) -> list[ModelSpec]:
    """The fine-tuned models the gallery's pipeline sees that were trained on this gallery with ``person_id``."""
    found = []
    for spec in gallery.pipeline.user_models().values():
        record = trained_on(spec.folder) if spec.folder else None
        if record is not None and record[0] == (gallery.store.namespace or "") and person_id in record[1]:
            found.append(spec)
    return found


def drop_trained_on(gallery, person_id: str) -> list[ModelSpec]:
    """Delete the fine-tuned models learnt from this person's faces (folder, vectors, loaded copy): what a
    delete and a face's removal both take with them. Returns their specs."""
    trained = trained_on_person(gallery, person_id)
    for spec in trained:
        gallery.pipeline.unload(spec.folder)
        shutil.rmtree(spec.folder, ignore_errors=True)
        gallery.store.drop_model(spec.name)
    return trained
