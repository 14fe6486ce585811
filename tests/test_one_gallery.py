"""One gallery, every model: a person enrolled once is seen by every model, a model that comes later is
filled in from the stored face regions, one identification costs a bounded number of Chroma calls, and a
gallery of the old layout (a person was a name inside each model's collection) migrates in place, even
when the migration is killed half-way."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from facedemo.bench.seam import CountingClient
from facedemo.gallery import Gallery, make_client, open_store, record_id
from facedemo.gallery.store import SCHEMA, ChromaStore
from facedemo.pipeline import Pipeline
from facedemo.vectors import l2_distance

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "facedemo" / "ui" / "examples"
MODELS = ("dlib-resnet", "facenet-casia-webface")


@pytest.fixture(scope="module")
def both(casia_settings) -> Pipeline:
    """A pipeline with both offline models: dlib-resnet and the converted CASIA FaceNet."""
    pipeline = Pipeline(replace(casia_settings, model="dlib-resnet"))
    assert all(s.available for s in pipeline.models() if s.name in MODELS)
    return pipeline


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("photos") / "hopper-mirrored.jpg"
    ImageOps.mirror(Image.open(EXAMPLES / "hopper.jpg").convert("RGB")).save(path)
    return path


def fresh(pipeline, tmp_path, **settings) -> Gallery:
    if settings:
        pipeline = Pipeline(replace(pipeline.settings, **settings))
    return Gallery.open(
        pipeline, ChromaStore(make_client(ephemeral=True), tmp_path / "thumbs", "g" + uuid.uuid4().hex[:12])
    )


def test_one_enrollment_is_seen_by_every_model(both, mirrored, tmp_path):
    gallery = fresh(both, tmp_path)
    result = gallery.enroll("Grace Hopper", [EXAMPLES / "hopper.jpg", mirrored])
    gallery.enroll("Eileen Collins", [EXAMPLES / "astronaut.jpg"])
    assert set(result.models) == set(MODELS) and len(result.added) == 2
    people = {p.name: p for p in gallery.people()}
    assert {n: p.faces for n, p in people.items()} == {
        "Grace Hopper": {m: 2 for m in MODELS},
        "Eileen Collins": {m: 1 for m in MODELS},
    }
    assert people["Grace Hopper"].images == 2 and people["Grace Hopper"].thumbnail.exists()
    comparison = gallery.compare_models(EXAMPLES / "group.jpg")
    named = {r.model: [m.name for m in r.faces] for r in comparison.results}
    assert named == {m: ["Eileen Collins", "Grace Hopper"] for m in MODELS}

    # A person is one record: a name differing only in case is the same person typed twice.
    with pytest.raises(Exception, match="only in case"):
        gallery.enroll("grace hopper", [EXAMPLES / "astronaut_2.jpg"])
    assert gallery.rename("Grace Hopper", "Grace Brewster Hopper") == 2
    for model in MODELS:
        assert [m.name for m in gallery.identify(EXAMPLES / "group.jpg", model).faces] == [
            "Eileen Collins",
            "Grace Brewster Hopper",
        ]
    assert gallery.delete("Grace Brewster Hopper").faces == 2
    assert [p.name for p in gallery.people()] == ["Eileen Collins"]
    assert all(gallery.store.count(m) == 1 and gallery.store.centroid_count(m) == 1 for m in MODELS)
    assert gallery.store.region(gallery.store.faces()[0].id) is not None


def test_a_model_that_comes_later_is_filled_in_from_the_stored_regions(both, mirrored, tmp_path):
    """Enrolled with dlib-resnet only; the CASIA model is then filled in from the face regions the gallery
    kept, with no photo, and its vectors are close to those made from the photos themselves."""
    only_dlib = fresh(both, tmp_path / "a", gallery_models=("dlib-resnet",))
    only_dlib.enroll("Grace Hopper", [EXAMPLES / "hopper.jpg", mirrored])
    only_dlib.enroll("Eileen Collins", [EXAMPLES / "astronaut.jpg", EXAMPLES / "astronaut_2.jpg"])
    casia = "facenet-casia-webface"
    assert only_dlib.store.count(casia) == 0 and only_dlib.missing(casia) == 4
    seen = []
    report = only_dlib.backfill(casia, progress=lambda done, total, message: seen.append((done, total)))
    assert report.added == 4 and report.without_region == 0 and seen[-1] == (4, 4)
    assert only_dlib.missing(casia) == 0 and only_dlib.backfill(casia).added == 0
    assert [m.name for m in only_dlib.identify(EXAMPLES / "group.jpg", casia).faces] == [
        "Eileen Collins",
        "Grace Hopper",
    ]

    from_photos = fresh(both, tmp_path / "b")
    from_photos.enroll("Grace Hopper", [EXAMPLES / "hopper.jpg", mirrored])
    a_vectors, _, a_ids, _ = only_dlib.embeddings(casia)
    b_vectors, _, b_ids, _ = from_photos.embeddings(casia)
    by_face = dict(zip(b_ids, b_vectors))
    distances = [l2_distance(v, by_face[i]) for v, i in zip(a_vectors, a_ids) if i in by_face]
    assert len(distances) == 2 and max(distances) < 0.15, (
        distances
    )  # same-person pairs on LFW sit near 0.6-0.9 for CASIA


def test_one_identify_makes_at_most_three_chroma_calls_and_reads_no_data_file(both, tmp_path, monkeypatch):
    calls: list = []
    store = ChromaStore(
        CountingClient(make_client(ephemeral=True), calls), tmp_path / "thumbs", "c" + uuid.uuid4().hex[:12]
    )
    gallery = Gallery.open(both, store)
    gallery.enroll("Grace Hopper", [EXAMPLES / "hopper.jpg"])
    gallery.enroll("Eileen Collins", [EXAMPLES / "astronaut.jpg"])
    photo = both.load(EXAMPLES / "group.jpg")
    assert [m.name for m in gallery.identify(photo).faces] == [
        "Eileen Collins",
        "Grace Hopper",
    ]  # warm: collections opened

    import facedemo.files as files

    parsed = []
    real_loads = files.json.loads
    monkeypatch.setattr(files.json, "loads", lambda text, *a, **k: parsed.append(1) or real_loads(text, *a, **k))
    calls.clear()
    result = gallery.identify(photo)
    assert [m.name for m in result.faces] == ["Eileen Collins", "Grace Hopper"] and result.expected_fpir is not None
    assert len(calls) <= 3, calls
    assert parsed == []  # thresholds and open-set tails were parsed once, on the first request

    # The dashboard's path: the same, once its first request has checked that every model is complete.
    from facedemo.services import Services, usecases

    services = Services(replace(both.settings, gallery_dir=tmp_path / "unused"), store=store)
    usecases.identify(services.request(None), photo)
    calls.clear()
    _, again = usecases.identify(services.request(None), photo)
    assert [m.name for m in again.faces] == ["Eileen Collins", "Grace Hopper"]
    assert len(calls) <= 3, calls


# -- the old layout ----------------------------------------------------------------------------------------
def write_schema_1(folder: Path, people: int, per_person: int, dims: dict[str, int], seed: int = 0) -> dict:
    """A gallery exactly as facedemo wrote it before persons and a registry existed: per model, a cosine
    collection of rows that carry the person's name, a people index keyed by the name's hash, and a
    thumbnail per model record. Returns what was written, to check against."""
    client = make_client(folder)
    rng = np.random.default_rng(seed)
    thumbs = folder / "thumbs" / "default"
    thumbs.mkdir(parents=True, exist_ok=True)
    truth = {"names": [f"Person {i:03d}" for i in range(people)], "vectors": {}}
    for model, dim in dims.items():
        faces = client.get_or_create_collection(
            f"fd.faces.{model}",
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"facedemo": "faces", "model": model},
            embedding_function=None,
        )
        centres = rng.normal(size=(people, dim)).astype(np.float32)
        ids, vectors, metas = [], [], []
        for p, name in enumerate(truth["names"]):
            for j in range(per_person):
                sha = hashlib.sha256(f"{name}|{j}".encode()).hexdigest()
                box = (10.0 + j, 20.0, 110.0 + j, 140.0)
                ids.append(record_id(model, sha, box))
                vectors.append(centres[p] + 0.2 * rng.normal(size=dim).astype(np.float32))
                metas.append(
                    {
                        "person": name,
                        "image": f"{j}.jpg",
                        "image_sha": sha,
                        "model": model,
                        "enrolled_at": "2026-01-01T00:00:00+00:00",
                        "x1": box[0],
                        "y1": box[1],
                        "x2": box[2],
                        "y2": box[3],
                    }
                )
        vectors = np.stack(vectors)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for start in range(0, len(ids), 1000):
            faces.upsert(
                ids=ids[start : start + 1000],
                embeddings=vectors[start : start + 1000],
                metadatas=metas[start : start + 1000],
            )
        index = client.get_or_create_collection(
            f"fd.people.{model}",
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"facedemo": "people", "model": model},
            embedding_function=None,
        )
        index.upsert(
            ids=[hashlib.sha256(n.encode()).hexdigest()[:32] for n in truth["names"]],
            embeddings=centres / np.linalg.norm(centres, axis=1, keepdims=True),
            metadatas=[{"person": n} for n in truth["names"]],
        )
        for rid in ids[::per_person]:  # one thumbnail per person and model, as each model's enroll wrote its own
            Image.new("RGB", (40, 40), (120, 90, 60)).save(thumbs / f"{rid}.jpg")
        truth["vectors"][model] = (ids, vectors)
    del client
    return truth


def check_migrated(gallery: Gallery, truth: dict, dims: dict[str, int], per_person: int) -> None:
    store = gallery.store
    names = sorted(p.name for p in store.persons())
    assert names == truth["names"]  # every person once, none twice
    assert store.schema() == SCHEMA and store.face_count() == len(truth["names"]) * per_person
    for model in dims:
        records, vectors = store.vectors(model, embeddings=True)
        assert len(records) == len(truth["names"]) * per_person and all(r.person_id and r.face_id for r in records)
        assert store.centroid_count(model) == len(truth["names"])
        raw = store.collections.get(model).get(include=["metadatas"])["metadatas"]
        assert all("person" not in m for m in raw)  # the names left the model's rows
        ids, original = truth["vectors"][model]
        # a stored vector of Person 007 is still identified as Person 007, by each model
        probe = original[7 * per_person][None]
        from facedemo.pipeline import EmbeddedFace
        from facedemo.vision.detect import Face

        face = EmbeddedFace(Face((0.0, 0.0, 1.0, 1.0), 1.0, ((0.0, 0.0),) * 5), None, probe[0])
        assert gallery.match([face], model, threshold=0.5).faces[0].name == "Person 007"
    thumbs = {p.stem for p in store.thumbs_dir.glob("*.jpg")}
    assert thumbs <= {f.id for f in store.faces()} and len(thumbs) == len(
        truth["names"]
    )  # renamed after the face, one per face
    people = gallery.people()
    assert len(people) == len(truth["names"]) and all(p.faces == {m: per_person for m in dims} for p in people)


def test_an_old_gallery_migrates_in_place(both, tmp_path):
    dims = {"dlib-resnet": 128, "facenet-casia-webface": 512}
    truth = write_schema_1(tmp_path / "g", 30, 4, dims)
    assert open_store(tmp_path / "g").schema() == 1
    gallery = Gallery.open(both, open_store(tmp_path / "g"))  # opening it migrates it
    check_migrated(gallery, truth, dims, 4)
    again = Gallery.open(both, open_store(tmp_path / "g"))  # a second open changes nothing
    check_migrated(again, truth, dims, 4)
    assert again.backfill("dlib-resnet").added == 0


@pytest.mark.slow
def test_a_migration_killed_midway_loses_nothing(both, tmp_path):
    """kill -9 during the migration, several times (``killpoints``: just before a chosen write, not after a
    guessed number of seconds, which a loaded or a fast machine missed); each run after it goes on from
    wherever the last stopped, and the end is the same as an uninterrupted migration."""
    import shutil

    import killpoints

    dims = {"dlib-resnet": 128, "facenet-casia-webface": 512}
    folder = tmp_path / "g"
    truth = write_schema_1(folder, 400, 6, dims)
    env = {**os.environ, "FACEDEMO_MODEL": "dlib-resnet", "FACEDEMO_HOME": str(both.settings.home)}
    whole = tmp_path / "whole"  # an uninterrupted migration of a copy: how many writes it makes
    shutil.copytree(folder, whole)
    done = killpoints.run(["people", "--gallery", whole, "--json"], whole, tmp_path / "whole.log", None, env)
    assert done.returncode == 0, done.stderr
    total = len(killpoints.writes(tmp_path / "whole.log"))
    assert total >= 10, killpoints.writes(tmp_path / "whole.log")
    mid = 0
    for run in range(5):  # each run killed a fifth of the way into what is left
        log = tmp_path / f"run{run}.log"
        killed = killpoints.run(["people", "--gallery", folder, "--json"], folder, log, max(2, total // 5), env)
        if killed.returncode == 0:
            break  # this run finished the migration
        assert killed.returncode == -9, killed.stderr[-500:]
        if open_store(folder).schema() == 1 and any(p.name for p in open_store(folder).persons()):
            mid += 1  # killed with persons written and the migration unfinished
    assert mid >= 1, "no kill landed in the middle of the migration"
    command = [sys.executable, "-m", "facedemo", "people", "--gallery", str(folder), "--json"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    check_migrated(Gallery.open(both, open_store(folder)), truth, dims, 6)


def test_six_thousand_people_are_written_and_reindexed_in_one_go(both, tmp_path):
    """Chroma refuses more than about 5,400 rows in one call; the people index and the persons are written in
    batches, so a large import or a reindex of every person goes through (the old gallery failed here)."""
    from facedemo.gallery.enroll import store_embedded

    gallery = fresh(both, tmp_path)
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(6000, 128)).astype(np.float32)
    store_embedded(
        gallery,
        "dlib-resnet",
        [(f"p{i}", f"{i}.jpg", f"{i:064x}", (0.0, 0.0, 1.0, 1.0), vectors[i]) for i in range(6000)],
    )
    gallery.reindex("dlib-resnet")
    assert len(gallery.store.persons()) == 6000 and gallery.store.centroid_count("dlib-resnet") == 6000
    (row,) = gallery.store.query_centroids("dlib-resnet", vectors[1234][None], 1)
    assert row[0].name == "p1234" and row[0].distance < 1e-3
