"""Guards against enrolling the wrong person (#33 item 1), through the core and the CLI: photos that are not
one person are named before anything is stored, a face the gallery already names as someone else is asked
about, `import` takes the faces `enroll` takes, and one face of a person is listed and removed. Real LFW
photos, real MTCNN, every available model, real Chroma."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from PIL import Image

from facedemo.cli import main
from facedemo.errors import GalleryError, LooksLikeSomeoneError, OddPhotosError, UnknownPersonError
from facedemo.gallery import Gallery, open_store
from facedemo.gallery.guards import odd_photos

FIVE = ["Colin_Powell", "Tony_Blair", "Serena_Williams", "Hugo_Chavez", "Laura_Bush"]


def lfw(shared_faces: Path, person: str, *numbers: int) -> list[Path]:
    return [shared_faces / "lfw" / person / f"{person}_{n:04d}.jpg" for n in numbers]


@pytest.fixture
def gallery(pipeline):
    return Gallery.open(pipeline, open_store(ephemeral=True, namespace="g" + uuid.uuid4().hex[:12]))


def test_the_rule_needs_every_model_to_find_the_photo_far_from_most_others():
    import numpy as np

    same = np.array([[1.0, 0.0], [0.96, 0.28], [0.96, -0.28]])  # three faces 0.28 to 0.56 apart
    stray = np.array([[0.0, 1.0]])  # 1.1 to 1.4 from each of them
    four = np.vstack([same, stray])
    assert odd_photos({"a": four, "b": four}, {"a": 0.6, "b": 0.6}) == [3]
    # One model that finds the stray photo close enough to the others is enough to keep it.
    assert odd_photos({"a": four, "b": four}, {"a": 0.6, "b": 1.5}) == []
    assert odd_photos({"a": four[:1]}, {"a": 0.6}) == []  # one photo: nothing to compare


@pytest.mark.slow
def test_another_persons_photo_is_named_before_anything_is_stored(shared_faces, gallery):
    photos = lfw(shared_faces, "Tony_Blair", 1, 2, 3) + lfw(shared_faces, "Serena_Williams", 1)
    with pytest.raises(OddPhotosError) as asked:
        gallery.enroll("Person 13", photos)
    assert asked.value.odd == ["Serena_Williams_0001.jpg"] and not asked.value.several
    assert str(asked.value) == (
        "'Serena_Williams_0001.jpg' does not look like the same person as the other 3 photos. Keep it, or leave it out?"
    )
    assert gallery.store.face_count() == 0 and not gallery.people()  # nothing stored while asking

    dropped = gallery.enroll("Person 13", photos, odd_photos="drop")
    assert sorted(a.image for a in dropped.added) == [p.name for p in photos[:3]]
    assert [(s.path, "left out" in s.reason) for s in dropped.skipped] == [("Serena_Williams_0001.jpg", True)]
    kept = gallery.enroll("Person 13", photos, odd_photos="keep")  # the user's choice: all four
    assert [a.image for a in kept.added] == ["Serena_Williams_0001.jpg"] and len(kept.duplicates) == 3


def test_twenty_one_photos_of_five_people_are_refused(shared_faces, gallery):
    numbers = {"Serena_Williams": (1, 2, 3, 5), "Laura_Bush": (1, 3, 4, 5), "Colin_Powell": (1, 2, 3, 4, 5)}
    photos = [p for person in FIVE for p in lfw(shared_faces, person, *numbers.get(person, (1, 2, 3, 4)))]
    assert len(photos) == 21
    with pytest.raises(OddPhotosError) as asked:
        gallery.enroll("Crowd", photos)
    assert asked.value.several and len(asked.value.odd) >= 11
    odd = len(asked.value.odd)
    assert str(asked.value).startswith(f"These 21 photos do not look like one person: {odd} of them ('Colin_Powell_")
    assert str(asked.value).endswith(f"or keep them all, or leave those {odd} out?")
    assert gallery.store.face_count() == 0


@pytest.mark.slow
def test_a_face_the_gallery_names_is_asked_about_then_enrolled_when_confirmed(shared_faces, gallery):
    gallery.enroll("rose_leslie", lfw(shared_faces, "Serena_Williams", 1, 2, 3))
    probe = lfw(shared_faces, "Serena_Williams", 10)
    with pytest.raises(LooksLikeSomeoneError) as asked:
        gallery.enroll("Test Stranger", probe)
    (label, person, distance), *rest = asked.value.matches
    assert not rest and person == "rose_leslie" and 0 < distance < 1
    assert str(asked.value) == f"This face looks like rose_leslie ({distance:.2f}). Enroll it as Test Stranger anyway?"
    assert [p.name for p in gallery.people()] == ["rose_leslie"]
    # More photos of the person it looks like are no question; nor is another person's face.
    assert len(gallery.enroll("rose_leslie", lfw(shared_faces, "Serena_Williams", 5)).added) == 1
    assert len(gallery.enroll("Tony", lfw(shared_faces, "Tony_Blair", 1)).added) == 1
    assert len(gallery.enroll("Test Stranger", probe, confirm=True).added) == 1
    assert {p.name for p in gallery.people()} == {"rose_leslie", "Tony", "Test Stranger"}


def test_import_takes_a_face_twice_the_next_ones_area_as_enroll_does(shared_faces, gallery, tmp_path):
    """A photo with a small face behind the subject was skipped by `import` ("it holds 2 faces")."""
    subject = Image.open(lfw(shared_faces, "Tony_Blair", 1)[0]).convert("RGB")
    behind = Image.open(lfw(shared_faces, "Serena_Williams", 1)[0]).convert("RGB").resize((110, 110))
    photo = Image.new("RGB", (400, 250), (90, 90, 90))
    photo.paste(subject, (0, 0))
    photo.paste(behind, (280, 20))
    (tmp_path / "tree" / "Tony Blair").mkdir(parents=True)
    path = tmp_path / "tree" / "Tony Blair" / "with someone behind.jpg"
    photo.save(path, quality=95)
    assert len(gallery.pipeline.detect(gallery.pipeline.load(path))) == 2

    report = gallery.import_folder(tmp_path / "tree")
    assert report.added == 1 and not report.skipped
    assert any("holds 2 faces; the largest (face 1 from the left) was enrolled" in w for w in report.warnings)
    (face,) = gallery.faces(person="Tony Blair")
    again = gallery.enroll("Tony Blair", [path])  # enroll takes the same face of the same photo
    assert not again.added and [d.person for d in again.duplicates] == ["Tony Blair"]
    assert face.box[0] < 250  # the subject, not the face behind


def test_one_face_is_listed_and_removed_and_the_person_still_identified(shared_faces, gallery):
    gallery.enroll("Tony", lfw(shared_faces, "Tony_Blair", 1, 2, 3))
    faces = gallery.faces(person="Tony")
    assert len(faces) == 3 and all(f.thumbnail is not None and f.thumbnail.is_file() for f in faces)
    assert all(set(f.models) == set(gallery.store.models()) for f in faces)
    gone = faces[1]
    removal = gallery.remove_face("Tony", gone.id)
    assert removal.left == 2 and removal.image == gone.image and not gone.thumbnail.exists()
    assert gallery.store.region(gone.id) is None
    for model in gallery.store.models():
        assert {r.face_id for r in gallery.store.vectors(model)[0]} == {faces[0].id, faces[2].id}
        assert gallery.store.centroid_count(model) == 1
    assert [p.images for p in gallery.people()] == [2]
    assert gallery.identify(lfw(shared_faces, "Tony_Blair", 20)[0]).faces[0].name == "Tony"
    with pytest.raises(UnknownPersonError, match="Tony has no enrolled face with that id"):
        gallery.remove_face("Tony", gone.id)
    gallery.remove_face("Tony", faces[0].id)
    with pytest.raises(GalleryError, match="That is the only face of Tony; delete Tony"):
        gallery.remove_face("Tony", faces[2].id)


def run(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_the_cli_asks_lists_and_removes(shared_faces, capsys, tmp_path):
    g = tmp_path / "gallery"
    mixed = lfw(shared_faces, "Tony_Blair", 1, 2, 3) + lfw(shared_faces, "Serena_Williams", 1)
    code, _, err = run(capsys, "enroll", "Person 13", *mixed, "--gallery", g)
    assert code == 2 and err.strip() == (
        "error: 'Serena_Williams_0001.jpg' does not look like the same person as the other 3 photos. "
        "Keep it, or leave it out? (--keep-odd or --drop-odd)"
    )
    code, out, _ = run(capsys, "enroll", "Person 13", *mixed, "--gallery", g, "--drop-odd", "--json")
    assert code == 0 and [s["image"] for s in json.loads(out)["skipped"]] == ["Serena_Williams_0001.jpg"]

    probe = lfw(shared_faces, "Tony_Blair", 10)[0]
    code, _, err = run(capsys, "enroll", "Test Stranger", probe, "--gallery", g)
    assert (
        code == 2
        and err.startswith("error: This face looks like Person 13 (0.")
        and err.strip().endswith("Enroll it as Test Stranger anyway? (--confirm)")
    )
    assert run(capsys, "enroll", "Test Stranger", probe, "--gallery", g, "--confirm")[0] == 0

    code, out, _ = run(capsys, "people", "--gallery", g, "faces", "Person 13", "--json")
    faces = json.loads(out)
    assert code == 0 and sorted(f["image"] for f in faces) == [p.name for p in mixed[:3]]
    code, out, _ = run(capsys, "people", "--gallery", g, "remove-face", "Person 13", faces[0]["id"], "--json")
    assert code == 0 and json.loads(out)["faces_left"] == 2
    code, out, _ = run(capsys, "people", "--gallery", g, "faces", "Person 13")
    assert code == 0 and faces[0]["image"] not in out and faces[1]["image"] in out
    code, _, err = run(capsys, "people", "--gallery", g, "remove-face", "Person 13", "not-an-id")
    assert code == 2 and err.strip() == "error: Person 13 has no enrolled face with that id; list their faces again."
