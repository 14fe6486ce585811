"""What a killed process leaves is put right when the gallery is next opened (``ChromaStore.check``), before
any reader sees it: the states the issue found (#32) made by hand on a real embedded Chroma, each repaired
by one open. The kill-point sweep (``test_kill_sweep.py``) reaches the same states through the real CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from facedemo.errors import GalleryError
from facedemo.gallery import Gallery, open_store
from facedemo.gallery.enroll import store_embedded
from facedemo.gallery.store import REBUILD

MODELS = ("dlib-resnet", "facenet-casia-webface")
CHROMA_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def build(pipeline, folder, people=("Ada", "Ben", "Cy"), per_person=2):
    """A gallery of random unit vectors for both models, a thumbnail and a region per face."""
    gallery = Gallery.open(pipeline, open_store(folder))
    rng = np.random.default_rng(0)
    rows = [
        (name, f"{name}{i}.jpg", f"{k * 10 + i:064x}", (0.0, 0.0, 10.0 + i, 10.0 + i))
        for k, name in enumerate(people)
        for i in range(per_person)
    ]
    for model, dim in zip(MODELS, (128, 512)):
        records = store_embedded(gallery, model, [(*r, rng.normal(size=dim)) for r in rows])
    for record in records:
        for path in (
            gallery.store.thumbs_dir / f"{record.id}.jpg",
            gallery.store.thumbs_dir / "regions" / f"{record.id}.jpg",
        ):
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8)).save(path)
    return gallery


def reopen(pipeline, folder) -> Gallery:
    return Gallery.open(pipeline, open_store(folder))  # a fresh store: its first open checks the gallery


def collections(gallery) -> list[str]:
    return [c if isinstance(c, str) else c.name for c in gallery.store.client.list_collections()]


def test_a_clean_open_changes_nothing(pipeline, tmp_path):
    build(pipeline, tmp_path / "g")
    store = open_store(tmp_path / "g")
    assert store.check() is None
    assert store.repair().changed is False  # and a full repair agrees: nothing to put right


def test_a_missing_centroid_is_rebuilt_on_open(pipeline, tmp_path):
    """Issue #32, 2: an enroll killed before its last write (a people-index upsert) left a person that the
    centroid method could not name; no marker is needed, the counts disagree."""
    gallery = build(pipeline, tmp_path / "g")
    ben = gallery.person("Ben").id
    gallery.store.set_centroids("dlib-resnet", {ben: None})
    assert gallery.store.centroid_count("dlib-resnet") == 2
    again = reopen(pipeline, tmp_path / "g")
    assert again.store.centroid_count("dlib-resnet") == 3
    vector = again.vectors_of("dlib-resnet", ben)[0]
    assert again.store.query_centroids("dlib-resnet", vector[None], 1)[0][0].name == "Ben"


def test_files_without_a_record_are_swept(pipeline, tmp_path):
    """Issue #32, 3: an import killed after writing face files but before the registry left crops that no
    delete removed; they and half-written files go when the gallery is opened."""
    gallery = build(pipeline, tmp_path / "g")
    thumbs = gallery.store.thumbs_dir
    kept = {p.name for p in thumbs.glob("*.jpg")}
    for path in (
        thumbs / f"{'ab' * 16}.jpg",
        thumbs / "regions" / f"{'cd' * 16}.jpg",
        thumbs / "regions" / "tmpx.part",
    ):
        path.write_bytes(b"\xff\xd8 a face")
    reopen(pipeline, tmp_path / "g")
    assert {p.name for p in thumbs.glob("*.jpg")} == kept
    assert sorted(p.name for p in (thumbs / "regions").iterdir()) == sorted(kept)


def test_a_half_swapped_rebuild_is_finished_for_every_model_on_open(pipeline, tmp_path):
    """Issue #32, 1: a delete's rebuild killed between dropping a collection and renaming its copy hid one
    model's faces until that model was next used; now the open finishes it, whichever model is read first."""
    gallery = build(pipeline, tmp_path / "g")
    client = gallery.store.client
    name = "fd.faces.dlib-resnet"
    original = client.get_collection(name, embedding_function=None)
    got = original.get(include=["metadatas", "embeddings"])
    spare = client.create_collection(
        REBUILD + name, configuration={"hnsw": {"space": "cosine"}}, metadata=original.metadata, embedding_function=None
    )
    spare.upsert(ids=got["ids"], embeddings=got["embeddings"], metadatas=got["metadatas"])
    client.delete_collection(name)
    again = reopen(pipeline, tmp_path / "g")
    assert {p.name: p.faces for p in again.people()} == {n: {m: 2 for m in MODELS} for n in ("Ada", "Ben", "Cy")}
    assert not [n for n in collections(again) if n.startswith(REBUILD)]


def test_a_delete_killed_after_its_commit_is_finished_on_open(pipeline, tmp_path):
    """The persons row is a delete's commit point: killed just after it, the next open removes the rest of
    the person (faces, vectors, people index, files) and erases it from the folder."""
    folder = tmp_path / "g"
    gallery = build(pipeline, folder)
    ben = gallery.person("Ben").id
    files = [p for f in gallery.store.faces(person_id=ben) for p in gallery.store.face_files(f.id)]
    gallery.store.delete_persons([ben])
    marker = gallery.store.thumbs_dir.with_name("default.pending.json")
    marker.write_text(json.dumps({"pid": 2**22 + 1, "what": "delete", "erase": True}))  # no such process
    again = reopen(pipeline, folder)
    assert [p.name for p in again.people()] == ["Ada", "Cy"]
    assert all(again.store.count(m) == 4 and again.store.centroid_count(m) == 2 for m in MODELS)
    assert again.store.face_count() == 4 and not any(p.exists() for p in files) and not marker.exists()
    assert not [p for p in folder.rglob("*") if p.is_file() and ben.encode() in p.read_bytes()]


def test_a_write_of_a_live_process_is_left_alone(pipeline, tmp_path):
    """Another process's write in progress is not half-done, only unfinished: the open repairs nothing."""
    import os

    gallery = build(pipeline, tmp_path / "g")
    gallery.store.set_centroids("dlib-resnet", {gallery.person("Ben").id: None})
    marker = gallery.store.thumbs_dir.with_name("default.pending.json")
    marker.write_text(json.dumps({"pid": os.getppid(), "what": "enroll", "erase": False}))
    assert open_store(tmp_path / "g").check() is None
    assert open_store(tmp_path / "g").centroid_count("dlib-resnet") == 2
    marker.unlink()


def test_a_replaced_collection_is_found_again_by_name(pipeline, tmp_path):
    """A second store rebuilds the collections (as the CLI's delete does in another process): the first
    store's open handles now point at collections that are gone, and it finds them again by name."""
    reader = build(pipeline, tmp_path / "g").store
    assert reader.count("dlib-resnet") == 6 and len(reader.persons()) == 3  # handles cached
    writer = open_store(tmp_path / "g")
    writer.erase(list(MODELS))
    assert reader.count("dlib-resnet") == 6 and sorted(p.name for p in reader.persons()) == ["Ada", "Ben", "Cy"]
    assert reader.centroid_people("facenet-casia-webface")


def test_a_message_never_shows_a_collection_id(pipeline, tmp_path):
    reader = build(pipeline, tmp_path / "g").store
    reader.persons()
    reader.client.delete_collection("fd.persons")  # gone for good, not replaced
    with pytest.raises(GalleryError) as error:
        reader.persons()
    assert not CHROMA_ID.search(str(error.value)) and "try again" in str(error.value)
