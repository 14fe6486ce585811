"""The gallery service on real photos with the real pipeline (MTCNN + dlib-resnet) and a real Chroma."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facedemo.errors import (
    FaceDemoError,
    GalleryError,
    ImageError,
    InvalidNameError,
    NoFaceError,
    TooManyFacesError,
    UnknownPersonError,
)
from facedemo.gallery import DEFAULT_METHOD, Gallery, annotate, methods, validate_name
from facedemo.gallery.store import ChromaStore, make_client, open_store
from facedemo.pipeline import Pipeline
from facedemo.settings import Settings

REPO = Path(__file__).resolve().parent.parent
FACES = REPO.parent / "shared" / "faces"
MODEL = "dlib-resnet"
BBT = FACES / "bbt_faceapi"
CELEB = FACES / "5celeb"
# Who is in each group photo, left to right (checked by eye against the annotated output).
GROUPS = {
    "bbt1.jpg": ["raj", "leonard", "howard", "sheldon"],
    "bbt2.jpg": ["raj", "leonard", "sheldon"],
    "bbt3.jpg": ["sheldon", "howard", "penny", "raj", "leonard"],
    "bbt4.jpg": ["leonard", "amy", "raj", "penny", "sheldon", "bernadette"],
    "bbt5.jpg": ["raj", "penny", "sheldon", "leonard", "howard"],
}


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared face photos are not part of the repository)")
    return path


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    p = Pipeline(Settings.from_env(model=MODEL))
    status = {s.name: s for s in p.models()}[MODEL]
    if not status.available:
        pytest.skip(f"{MODEL} is unavailable: {status.reason}")
    return p


def fresh(pipeline, tmp_path) -> Gallery:
    return Gallery.open(
        pipeline, ChromaStore(make_client(ephemeral=True), tmp_path / "thumbs", "g" + uuid.uuid4().hex[:12])
    )


@pytest.fixture(scope="module")
def bbt(pipeline, tmp_path_factory) -> Gallery:
    gallery = fresh(pipeline, tmp_path_factory.mktemp("bbt"))
    report = gallery.import_folder(need(BBT))
    assert sorted(report.enrolled) == sorted(p.name for p in BBT.iterdir() if p.is_dir() and not p.name.startswith("_"))
    return gallery


@pytest.fixture(scope="module")
def celeb(pipeline, tmp_path_factory) -> Gallery:
    gallery = fresh(pipeline, tmp_path_factory.mktemp("celeb"))
    gallery.import_folder(need(CELEB / "train"))
    return gallery


# -- names (no model needed) ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["Zoë Saldaña", "李小龍", "O'Brien-Smith Jr.", "  padded  ", "x" * 100])
def test_valid_names(name):
    assert validate_name(name) == name.strip()


@pytest.mark.parametrize(
    "name", ["../x", "", "   ", "a/b", "a\\b", ".hidden", "x" * 101, "a\x00b", "tab\tname", "a\u202eb", ".."]
)
def test_invalid_names(name):
    with pytest.raises(InvalidNameError):
        validate_name(name)


# -- enrollment -----------------------------------------------------------------------------------------
@pytest.mark.shared
@pytest.mark.slow
def test_enroll_duplicates_re_enroll_and_face_rules(pipeline, tmp_path):
    gallery = fresh(pipeline, tmp_path)
    amy = sorted(need(BBT / "amy").glob("*.png"))
    first = gallery.enroll("Amy", amy[:2])
    assert len(first.added) == 2 and first.duplicates == [] and first.model == MODEL
    again = gallery.enroll("Amy", amy[1:3])  # one old, one new photo
    assert [d.image for d in again.duplicates] == [amy[1].name] and [a.image for a in again.added] == [amy[2].name]
    taken = gallery.enroll("Someone Else", [amy[0]])  # same photo under another name is not stored twice
    assert taken.added == [] and taken.duplicates[0].person == "Amy"
    assert [(p.name, p.images) for p in gallery.people()] == [("Amy", 3)]

    group = BBT / "_group_photos" / "bbt3.jpg"
    with pytest.raises(TooManyFacesError, match="5 faces"):
        gallery.enroll("Penny", [group])
    with pytest.raises(NoFaceError):
        gallery.enroll("Nobody", [Image.new("RGB", (200, 200), "grey")])
    with pytest.raises(NoFaceError, match="no face number 9"):
        gallery.enroll("Penny", [group], face_index=9)
    with pytest.raises(ImageError):
        gallery.enroll("Penny", [tmp_path / "missing.jpg"])
    with pytest.raises(InvalidNameError):
        gallery.enroll("../x", amy[:1])
    assert [p.name for p in gallery.people()] == ["Amy"]  # nothing stored by any failure
    chosen = gallery.enroll("Penny", [group], face_index=2)  # left to right: sheldon, howard, penny, ...
    assert len(chosen.added) == 1
    result = gallery.identify(group, top_k=1)
    assert result.faces[2].name == "Penny" and result.faces[2].distance < 1e-3


@pytest.mark.shared
@pytest.mark.slow
def test_enrollment_takes_what_it_can(pipeline, tmp_path):
    """Three photos where one holds a group and one no face: the good one enrolls, the others are skipped with
    their reasons; a photo whose face is much the largest gives that face, with a note saying so."""
    gallery = fresh(pipeline, tmp_path)
    amy = sorted(need(BBT / "amy").glob("*.png"))
    grey = tmp_path / "grey.png"
    Image.new("RGB", (200, 200), "grey").save(grey)
    result = gallery.enroll("Amy", [amy[0], BBT / "_group_photos" / "bbt3.jpg", grey])
    assert [a.image for a in result.added] == [amy[0].name]
    assert [s.path for s in result.skipped] == ["bbt3.jpg", "grey.png"]
    assert "5 faces of similar size" in result.skipped[0].reason and "no face" in result.skipped[1].reason
    assert result.to_json()["skipped"][1]["image"] == "grey.png"

    # Amy large, with a small face of Sheldon in the corner: Amy's face is taken, and the note says which.
    big = Image.open(amy[1]).convert("RGB").resize((400, 400))
    small = Image.open(sorted(need(BBT / "sheldon").glob("*.png"))[0]).convert("RGB").resize((110, 110))
    canvas = Image.new("RGB", (640, 420), "white")
    canvas.paste(small, (10, 10))
    canvas.paste(big, (230, 10))
    both = tmp_path / "amy-and-sheldon.png"
    canvas.save(both)
    taken = gallery.enroll("Amy", [both])
    assert len(taken.added) == 1 and taken.skipped == []
    assert "holds 2 faces; the largest (face 2 from the left) was enrolled" in taken.notes[0]
    box = taken.added[0].box
    assert box[0] > 230  # the face on the right, Amy's
    with pytest.raises(NoFaceError, match="None of the 2 photos"):
        gallery.enroll("Nobody", [grey, grey])


@pytest.mark.shared
@pytest.mark.slow
def test_concurrent_enrollment_stores_once(pipeline, tmp_path):
    gallery = fresh(pipeline, tmp_path)
    photo = sorted(need(BBT / "raj").glob("*.png"))[0]
    errors = []

    def enroll():
        try:
            gallery.enroll("raj", [photo])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=enroll) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert gallery.store.count(MODEL) == 1


# -- identification -------------------------------------------------------------------------------------
@pytest.mark.shared
@pytest.mark.slow
def test_import_report_and_people(bbt):
    people = {p.name: p for p in bbt.people()}
    assert set(people) == {"amy", "bernadette", "howard", "leonard", "penny", "raj", "sheldon", "stuart"}
    assert all(3 <= p.images <= 5 for p in people.values())
    assert all(p.thumbnail is not None and p.thumbnail.exists() for p in people.values())
    vectors, names, ids, thumbs = bbt.embeddings(MODEL)
    assert vectors.shape == (len(names), 128) and len(set(ids)) == len(ids) == sum(p.images for p in people.values())
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


# Faces expected to be "unknown" at the default 1:N threshold, which follows the gallery's size (8 people
# here). Bearded Leonard in bbt1.jpg is between the size-following threshold for 8 people at 1% FPIR
# (0.3765) and the old fixed one (0.3807) from his centroid: unknown now (docs/GALLERY.md). Raj beside him
# was too until the detector began to search this 1.05 MP photo at 889x500 (min_face_fraction): his
# landmarks moved a little and he is now named, rightly.
BORDERLINE: set[tuple[str, int]] = {("bbt1.jpg", 1)}


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.parametrize("photo", sorted(GROUPS))
def test_group_photos_get_the_right_names(bbt, photo):
    image, faces = bbt.pipeline.analyze(need(BBT / "_group_photos" / photo), MODEL)
    result = bbt.match(faces, MODEL, top_k=3)
    assert result.method == DEFAULT_METHOD
    expected = [None if (photo, i) in BORDERLINE else name for i, name in enumerate(GROUPS[photo])]
    assert [f.name for f in result.faces] == expected
    assert [f.candidates[0].name for f in result.faces] == GROUPS[photo]  # the right person always ranks first
    assert all(f.distance <= result.threshold for f in result.faces if f.name)
    for method in set(methods()) - {
        "classifier"
    }:  # the others rank the right person first too, and never name a face wrongly
        result = bbt.match(faces, MODEL, top_k=3, method=method)
        assert [f.candidates[0].name for f in result.faces] == GROUPS[photo], method
        assert all(f.name in (None, expected) for f, expected in zip(result.faces, GROUPS[photo])), method


@pytest.mark.shared
@pytest.mark.slow
def test_strangers_are_mostly_unknown(bbt, celeb):
    """The first 20 LFW people (none of them enrolled) against both galleries. dlib-resnet does not separate
    every stranger: measured on 150 strangers, 91% are unknown against bbt's 8 people and 79% against
    5celeb's 5 (docs/GALLERY.md); at the 1:1 threshold 0.46 it would be 33% and 25%."""
    lfw = need(FACES / "lfw")
    photos = [sorted(d.glob("*.jpg"))[0] for d in sorted(p for p in lfw.iterdir() if p.is_dir())[:20]]
    faces = []
    for photo in photos:
        image, found = bbt.pipeline.analyze(photo, MODEL)
        faces.append(min(found, key=lambda f: abs(f.face.center[0] - 125) + abs(f.face.center[1] - 125)))
    for gallery, at_least in ((bbt, 0.8), (celeb, 0.7)):
        result = gallery.match(faces, MODEL)
        unknown = [m for m in result.faces if m.name is None]
        assert len(unknown) / len(faces) >= at_least, [
            (m.candidates[0].name, round(m.candidates[0].distance, 3)) for m in result.faces
        ]
        assert all(m.distance is None and m.candidates[0].distance > result.threshold for m in unknown)
        loose = gallery.match(faces, MODEL, threshold=0.46)  # the verification threshold names far more strangers
        assert sum(m.name is None for m in loose.faces) < len(unknown)


@pytest.mark.shared
@pytest.mark.slow
def test_5celeb_val_photos_are_named(celeb):
    val = need(CELEB / "val")
    wrong = []
    for folder in sorted(val.iterdir()):
        for photo in sorted(folder.iterdir()):
            result = celeb.identify(photo)
            names = [f.name for f in result.faces if f.name]
            if folder.name not in names:
                wrong.append((photo.name, folder.name, names))
    assert wrong == []


@pytest.mark.shared
@pytest.mark.slow
def test_annotate_draws_boxes(bbt):
    photo = need(BBT / "_group_photos" / "bbt2.jpg")
    result = bbt.identify(photo)
    image = bbt.pipeline.load(photo)
    drawn = annotate(image, result)
    assert drawn.size == image.size and drawn is not image
    x1, y1, x2, y2 = (int(v) for v in result.faces[1].face.box)
    before, after = np.asarray(image), np.asarray(drawn)
    assert (before[y1:y2, x1] != after[y1:y2, x1]).any()  # the box's left edge
    assert (
        before[y1 + 5 : y2 - 5, x1 + 5 : x2 - 5] == after[y1 + 5 : y2 - 5, x1 + 5 : x2 - 5]
    ).all()  # the face itself untouched


def test_identify_on_empty_gallery_returns_every_face_unknown(pipeline, tmp_path, collage):
    gallery = fresh(pipeline, tmp_path)
    result = gallery.identify(collage)
    assert [(m.name, m.distance, m.candidates) for m in result.faces] == [(None, None, [])] * 2
    assert result.people == 0 and "Nobody is enrolled for model 'dlib-resnet' yet" in result.note
    assert result.to_json()["note"] == result.note
    with pytest.raises(NoFaceError):
        gallery.identify(Image.new("RGB", (100, 100)))


# -- people management ----------------------------------------------------------------------------------
@pytest.mark.shared
@pytest.mark.slow
def test_rename_and_delete_leave_nothing_behind(pipeline, tmp_path):
    gallery = Gallery.open(pipeline, open_store(tmp_path))
    gallery.import_folder(need(BBT))
    photo = BBT / "_group_photos" / "bbt2.jpg"
    thumbs_before = {p.name for p in gallery.store.thumbs_dir.glob("*.jpg")}
    raj_records = gallery.store.faces(person_id=gallery.person("raj").id)
    raj_thumbs = [gallery.store.thumb_path(r.id) for r in raj_records]
    assert len(raj_records) == 5 and all(t is not None for t in raj_thumbs)

    assert gallery.rename("raj", "Rajesh Ramayan Koothrappali") == 5
    assert gallery.identify(photo).faces[0].name == "Rajesh Ramayan Koothrappali"
    with pytest.raises(GalleryError, match="already in the gallery"):
        gallery.rename("leonard", "sheldon")
    with pytest.raises(UnknownPersonError):
        gallery.rename("raj", "x")

    assert gallery.delete("Rajesh Ramayan Koothrappali").faces == 5
    assert all(p.name != "Rajesh Ramayan Koothrappali" for p in gallery.people())
    assert all(f.person != "Rajesh Ramayan Koothrappali" for f in gallery.faces())
    assert all(
        len(gallery.store.vectors(m, person_id=raj_records[0].person_id)[0]) == 0 for m in gallery.store.models()
    )
    assert not any(t.exists() for t in raj_thumbs)
    assert {p.name for p in gallery.store.thumbs_dir.glob("*.jpg")} == thumbs_before - {t.name for t in raj_thumbs}
    assert all(
        "Rajesh Ramayan Koothrappali" not in gallery.store.centroid_people(m).values() for m in gallery.store.models()
    )
    for method in methods():
        first = gallery.identify(photo, method=method).faces[0]
        assert first.name is None or first.name != "Rajesh Ramayan Koothrappali"
        assert all(c.name != "Rajesh Ramayan Koothrappali" for c in first.candidates)
    with pytest.raises(UnknownPersonError):
        gallery.delete("Rajesh Ramayan Koothrappali")
    with pytest.raises(InvalidNameError):
        gallery.delete("../x")


@pytest.mark.shared
@pytest.mark.slow
def test_import_killed_midway_resumes_without_duplicates(tmp_path):
    train = need(CELEB / "train")
    store_dir = tmp_path / "gallery"
    command = [sys.executable, "-m", "facedemo", "import", str(train), "--gallery", str(store_dir), "--model", MODEL]
    env = {**os.environ, "FACEDEMO_MODEL": MODEL}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    thumbs = store_dir / "thumbs" / "default"
    deadline = time.monotonic() + 180
    # Each chunk of 16 photos writes its thumbnails, then upserts its records. A 17th thumbnail means the
    # second chunk has begun, so the first chunk's records are committed: kill it there, mid-import.
    while time.monotonic() < deadline and process.poll() is None:
        if thumbs.exists() and len(list(thumbs.glob("*.jpg"))) >= 17:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the import finished before it could be interrupted"
    process.send_signal(signal.SIGKILL)
    process.wait()

    pipeline = Pipeline(Settings.from_env(model=MODEL))
    gallery = Gallery.open(pipeline, open_store(store_dir))
    report = gallery.import_folder(train)
    total = sum(1 for d in train.iterdir() for _ in d.iterdir())
    assert report.total == total
    assert report.duplicates >= 8 and report.added > 0  # the first run did part of the work, the rerun the rest
    assert report.duplicates + report.added + len(report.skipped) == total
    assert all("face" in s.reason for s in report.skipped)  # skipped for their faces, never for the interruption
    records = gallery.store.faces()
    assert len(records) == report.duplicates + report.added
    assert len({r.image_sha for r in records}) == len(records)  # no photo stored twice
    assert all(gallery.store.count(m) == len(records) for m in gallery.enroll_models())  # every model holds every face
    assert sorted(gallery.store.centroid_people(MODEL).values()) == sorted(d.name for d in train.iterdir())
    again = gallery.import_folder(train)
    assert again.added == 0 and again.duplicates == len(records)


def test_match_checks_the_method_and_takes_no_faces(pipeline, tmp_path):
    gallery = fresh(pipeline, tmp_path)
    assert gallery.match([], MODEL).faces == []
    with pytest.raises(FaceDemoError, match="Unknown identification method 'vote'"):
        gallery.match([], MODEL, method="vote")
    # 1:N's threshold is stricter than 1:1's, and stricter still as more people are enrolled.
    assert (
        gallery.threshold(MODEL, people=1000)
        < gallery.threshold(MODEL, people=10)
        < pipeline.threshold(MODEL, "verify")
    )
    assert Gallery.open(pipeline, gallery.store, threshold=0.3).threshold(MODEL) == 0.3
