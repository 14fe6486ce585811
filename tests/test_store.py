"""The Chroma store against a real Chroma: in memory, on disk (reopened by another process), and a
`chroma run` server on a free loopback port reached through HttpClient. No face model is needed."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facedemo.errors import GalleryError
from facedemo.gallery.server import chroma_command, chroma_server, free_port
from facedemo.gallery.store import (
    ChromaStore,
    FaceRecord,
    ModelRecord,
    PersonRecord,
    face_id,
    make_client,
    open_store,
    record_id,
)

REPO = Path(__file__).resolve().parent.parent
MODEL = "dlib-resnet"


def unit(rows) -> np.ndarray:
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def faces(person: str, n: int, offset: int = 0) -> list[FaceRecord]:
    out = []
    for i in range(offset, offset + n):
        sha = f"{person}-{i}".encode().hex().ljust(64, "0")[:64]
        box = (10.0 + i, 20.0, 110.0 + i, 140.0)
        out.append(
            FaceRecord(
                face_id(sha, box), "p-" + person, f"{person}{i}.jpg", sha, box, enrolled_at="2026-01-01T00:00:00+00:00"
            )
        )
    return out


def add(store, person: str, n: int, vectors, thumbs=None, offset: int = 0) -> list[FaceRecord]:
    """A person, their registry faces (with thumbnails) and one model's vectors of them, as the gallery writes them."""
    recs = faces(person, n, offset)
    store.put_persons([PersonRecord("p-" + person, person)])
    store.put_faces(recs, thumbs or [None] * n, [None] * n)
    store.put_vectors(
        MODEL, [ModelRecord(record_id(MODEL, r.image_sha, r.box), r.id, r.person_id) for r in recs], vectors
    )
    return recs


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if chroma_command() is None:
        pytest.skip("the `chroma` command is not installed")
    with chroma_server(tmp_path_factory.mktemp("server") / "db") as address:
        yield address


@pytest.fixture(params=["ephemeral", "persistent", "server"])
def store(request, tmp_path) -> ChromaStore:
    """A fresh store per test; namespaces keep tests apart where the database is shared (ephemeral, server)."""
    namespace = "t" + uuid.uuid4().hex[:12]
    if request.param == "ephemeral":
        client = make_client(ephemeral=True)
    elif request.param == "persistent":
        client = make_client(tmp_path / "db")
    else:
        host, port = request.getfixturevalue("server")
        client = make_client(host=host, port=port)
    return ChromaStore(client, tmp_path / "thumbs", namespace)


def test_collection_is_cosine_without_embedding_function(store):
    rng = np.random.default_rng(0)
    add(store, "ann", 2, unit(rng.standard_normal((2, 128))))
    col = store.client.get_collection(store.collections.name(MODEL, "faces"))
    assert col.configuration["hnsw"]["space"] == "cosine"
    assert store.collections.get(MODEL)._embedding_function is None
    assert store.models() == [MODEL]
    assert store.schema() == 2 and [p.name for p in store.persons()] == ["ann"] and store.face_count() == 2


def test_add_query_returns_l2_distances_and_ids(store):
    rng = np.random.default_rng(1)
    vectors = unit(rng.standard_normal((6, 128)))
    recs = add(store, "ann", 3, vectors[:3]) + add(store, "bob", 3, vectors[3:])
    probe = unit(vectors[4:5] + 0.05 * rng.standard_normal((1, 128)))
    (hits,) = store.query(MODEL, probe, 6)
    exact = np.linalg.norm(vectors - probe, axis=1)
    assert hits[0].record.face_id == recs[4].id and hits[0].record.person_id == "p-bob"
    assert [h.record.face_id for h in hits] == [recs[i].id for i in np.argsort(exact)]
    np.testing.assert_allclose([h.distance for h in hits], np.sort(exact), atol=2e-3)
    (face,) = store.faces(ids=[hits[0].record.face_id])
    assert face.box == recs[4].box and face.image == "bob1.jpg"


def test_upsert_is_idempotent_and_get_filters(store):
    rng = np.random.default_rng(2)
    vectors = unit(rng.standard_normal((4, 128)))
    recs = add(store, "ann", 4, vectors)
    add(store, "ann", 4, vectors)
    assert store.count(MODEL) == 4 and store.face_count() == 4 and len(store.persons()) == 1
    got, vecs = store.vectors(MODEL, person_id="p-ann", embeddings=True)
    assert sorted(r.face_id for r in got) == sorted(r.id for r in recs) and vecs.shape == (4, 128)
    by_sha = store.faces(image_shas=[recs[1].image_sha, "0" * 64])
    assert [r.id for r in by_sha] == [recs[1].id]


def test_delete_removes_records_and_thumbnails(store):
    rng = np.random.default_rng(3)
    thumbs = [Image.new("RGB", (200, 240), c) for c in ("red", "green", "blue")]
    recs = add(store, "ann", 2, unit(rng.standard_normal((2, 128))), thumbs[:2]) + add(
        store, "bob", 1, unit(rng.standard_normal((1, 128))), thumbs[2:]
    )
    paths = [store.thumb_path(r.id) for r in recs]
    assert all(p is not None and p.exists() for p in paths)
    assert max(Image.open(paths[0]).size) <= 112
    store.delete_faces([r.id for r in recs[:2]])
    store.delete_vectors(MODEL, [r.id for r in store.vectors(MODEL, person_id="p-ann")[0]])
    assert [r.person_id for r in store.faces()] == ["p-bob"] and [r.person_id for r in store.vectors(MODEL)[0]] == [
        "p-bob"
    ]
    assert not paths[0].exists() and not paths[1].exists() and paths[2].exists()


def test_centroids_carry_the_name_and_rename_with_it(store):
    rng = np.random.default_rng(4)
    a, b = unit(rng.standard_normal((2, 128)))
    add(store, "ann", 1, a[None])
    store.set_centroids(MODEL, {"p-ann": ("ann", a), "p-bob": ("bob", b)})
    (row,) = store.query_centroids(MODEL, a[None], 5)
    assert [(h.name, h.person_id) for h in row] == [("ann", "p-ann"), ("bob", "p-bob")] and row[0].distance < 1e-3
    store.set_centroids(MODEL, {"p-bob": None})
    assert store.centroid_people(MODEL) == {"p-ann": "ann"} and store.centroid_count(MODEL) == 1
    store.rename_centroids(MODEL, "p-ann", "Zoë")
    assert [h.name for h in store.query_centroids(MODEL, a[None], 5, people=1)[0]] == ["Zoë"]


def test_namespaces_are_private_and_drop_removes_everything(store):
    rng = np.random.default_rng(5)
    other = store.with_namespace("o" + uuid.uuid4().hex[:12])
    add(store, "ann", 1, unit(rng.standard_normal((1, 128))), [Image.new("RGB", (50, 50))])
    add(other, "bob", 2, unit(rng.standard_normal((2, 128))), [Image.new("RGB", (50, 50))] * 2)
    assert [p.name for p in store.persons()] == ["ann"] and [p.name for p in other.persons()] == ["bob"]
    assert {r.person_id for r in other.vectors(MODEL)[0]} == {"p-bob"}
    assert other.lock is store.lock
    other.drop()
    assert other.models() == [] and other.count(MODEL) == 0 and other.persons() == [] and other.face_count() == 0
    assert not other.thumbs_dir.exists()
    assert store.count(MODEL) == 1


def test_bad_namespace_is_refused():
    with pytest.raises(GalleryError, match="namespace"):
        ChromaStore(make_client(ephemeral=True), None, "../evil")


def test_unreachable_server_is_a_gallery_error():
    with pytest.raises(GalleryError, match="Chroma server at 127.0.0.1"):
        make_client(host="127.0.0.1", port=free_port())


def test_persistent_store_reopens_in_another_process(tmp_path):
    rng = np.random.default_rng(6)
    vectors = unit(rng.standard_normal((3, 128)))
    store = open_store(tmp_path)
    add(store, "ann", 2, vectors[:2], [Image.new("RGB", (60, 60))] * 2)
    add(store, "bob", 1, vectors[2:], [Image.new("RGB", (60, 60))])
    del store
    code = (
        "import json, sys, numpy as np\n"
        "from facedemo.gallery.store import open_store\n"
        f"s = open_store({str(tmp_path)!r})\n"
        "v = np.array(json.loads(sys.stdin.read()), dtype=np.float32)\n"
        f"(hits,) = s.query({MODEL!r}, v, 1)\n"
        f"print(json.dumps({{'count': s.count({MODEL!r}), 'top': s.persons([hits[0].record.person_id])[0].name, 'd': hits[0].distance,"
        " 'thumb': str(s.thumb_path(hits[0].record.face_id))}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(vectors[2:3].tolist()),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["count"] == 3 and seen["top"] == "bob" and seen["d"] < 1e-3
    assert Path(seen["thumb"]).exists()
