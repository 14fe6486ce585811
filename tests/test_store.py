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

from facedemo.gallery.server import chroma_command, chroma_server, free_port
from facedemo.errors import GalleryError
from facedemo.gallery.store import ChromaStore, FaceRecord, make_client, open_store, record_id

REPO = Path(__file__).resolve().parent.parent
MODEL = "dlib-resnet"


def unit(rows) -> np.ndarray:
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def records(person: str, n: int, offset: int = 0) -> list[FaceRecord]:
    out = []
    for i in range(offset, offset + n):
        sha = f"{person}-{i}".encode().hex().ljust(64, "0")[:64]
        box = (10.0 + i, 20.0, 110.0 + i, 140.0)
        out.append(FaceRecord(record_id(MODEL, sha, box), person, f"{person}{i}.jpg", sha, box, MODEL, "2026-01-01T00:00:00+00:00"))
    return out


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
    store.add(MODEL, records("ann", 2), unit(rng.standard_normal((2, 128))), [None, None])
    col = store.client.get_collection(store._name(MODEL, "faces"))
    assert col.configuration["hnsw"]["space"] == "cosine"
    assert store._collection(MODEL)._embedding_function is None
    assert store.models() == [MODEL]


def test_add_query_returns_l2_distances_and_metadata(store):
    rng = np.random.default_rng(1)
    vectors = unit(rng.standard_normal((6, 128)))
    recs = records("ann", 3) + records("bob", 3)
    store.add(MODEL, recs, vectors, [None] * 6)
    probe = unit(vectors[4:5] + 0.05 * rng.standard_normal((1, 128)))
    (hits,) = store.query(MODEL, probe, 6)
    exact = np.linalg.norm(vectors - probe, axis=1)
    assert hits[0].record.id == recs[4].id and hits[0].record.person == "bob"
    assert [h.record.id for h in hits] == [recs[i].id for i in np.argsort(exact)]
    np.testing.assert_allclose([h.distance for h in hits], np.sort(exact), atol=2e-3)
    assert hits[0].record.box == recs[4].box and hits[0].record.image == "bob1.jpg"


def test_upsert_is_idempotent_and_get_filters(store):
    rng = np.random.default_rng(2)
    recs = records("ann", 4)
    vectors = unit(rng.standard_normal((4, 128)))
    store.add(MODEL, recs, vectors, [None] * 4)
    store.add(MODEL, recs, vectors, [None] * 4)
    assert store.count(MODEL) == 4
    got, vecs = store.get(MODEL, person="ann", embeddings=True)
    assert sorted(r.id for r in got) == sorted(r.id for r in recs) and vecs.shape == (4, 128)
    by_sha, _ = store.get(MODEL, image_shas=[recs[1].image_sha, "0" * 64])
    assert [r.id for r in by_sha] == [recs[1].id]


def test_delete_removes_records_and_thumbnails(store):
    rng = np.random.default_rng(3)
    recs = records("ann", 2) + records("bob", 1)
    thumbs = [Image.new("RGB", (200, 240), c) for c in ("red", "green", "blue")]
    store.add(MODEL, recs, unit(rng.standard_normal((3, 128))), thumbs)
    paths = [store.thumb_path(r.id) for r in recs]
    assert all(p is not None and p.exists() for p in paths)
    assert max(Image.open(paths[0]).size) <= 112
    store.delete(MODEL, [r.id for r in recs[:2]])
    assert [r.person for r in store.get(MODEL)[0]] == ["bob"]
    assert not paths[0].exists() and not paths[1].exists() and paths[2].exists()


def test_rename_and_centroids(store):
    rng = np.random.default_rng(4)
    a, b = unit(rng.standard_normal((2, 128)))
    store.add(MODEL, records("ann", 1), a[None], [None])
    store.set_centroids(MODEL, {"ann": a, "bob": b})
    (row,) = store.query_centroids(MODEL, a[None], 5)
    assert [h.name for h in row] == ["ann", "bob"] and row[0].distance < 1e-3
    store.set_centroids(MODEL, {"bob": None})
    assert store.centroid_people(MODEL) == ["ann"]
    store.rename(MODEL, store.get(MODEL)[0], "Zoë")
    assert [r.person for r in store.get(MODEL)[0]] == ["Zoë"]


def test_namespaces_are_private_and_drop_removes_everything(store):
    rng = np.random.default_rng(5)
    other = store.with_namespace("o" + uuid.uuid4().hex[:12])
    store.add(MODEL, records("ann", 1), unit(rng.standard_normal((1, 128))), [Image.new("RGB", (50, 50))])
    other.add(MODEL, records("bob", 2), unit(rng.standard_normal((2, 128))), [Image.new("RGB", (50, 50))] * 2)
    assert [r.person for r in store.get(MODEL)[0]] == ["ann"]
    assert {r.person for r in other.get(MODEL)[0]} == {"bob"}
    assert other.lock is store.lock
    other.drop()
    assert other.models() == [] and other.count(MODEL) == 0
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
    recs = records("ann", 2) + records("bob", 1)
    store.add(MODEL, recs, vectors, [Image.new("RGB", (60, 60))] * 3)
    del store
    code = (
        "import json, sys, numpy as np\n"
        "from facedemo.gallery.store import open_store\n"
        f"s = open_store({str(tmp_path)!r})\n"
        "v = np.array(json.loads(sys.stdin.read()), dtype=np.float32)\n"
        f"(hits,) = s.query({MODEL!r}, v, 1)\n"
        f"print(json.dumps({{'count': s.count({MODEL!r}), 'top': hits[0].record.person, 'd': hits[0].distance,"
        " 'thumb': str(s.thumb_path(hits[0].record.id))}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(vectors[2:3].tolist()), capture_output=True,
                         text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["count"] == 3 and seen["top"] == "bob" and seen["d"] < 1e-3
    assert Path(seen["thumb"]).exists()
