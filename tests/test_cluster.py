"""Clustering an unlabelled album into people: the scores, the grouping on real photos (MTCNN +
dlib-resnet), naming, merging and correcting groups against a real Chroma, and the CLI."""

from __future__ import annotations

import json
import random
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from facedemo.cli import main
from facedemo.errors import FaceDemoError
from facedemo.evaluation.clustering import clustering_scores
from facedemo.gallery import Gallery, open_store
from facedemo.gallery.album import cluster_album
from facedemo.gallery.cluster import CLUSTER_METHODS, cluster_vectors, ordered_labels
from facedemo.pipeline import Pipeline

MODEL = "dlib-resnet"
CAST = ("amy", "bernadette", "howard", "leonard", "penny", "raj", "sheldon", "stuart")


def test_scores_match_the_definitions():
    """Worked by hand: people a a b b c, groups {a1 a2 b1} {b2} {c}. Same-person pairs: a1a2, b1b2; pairs
    put together: a1a2, a1b1, a2b1, so pairwise P = 1/3, R = 1/2. BCubed per face: P = 2/3 2/3 1/3 1 1,
    R = 1 1 1/2 1/2 1."""
    s = clustering_scores(["a", "a", "b", "b", "c"], [0, 0, 0, 1, 2])
    assert (s.faces, s.people, s.clusters, s.singletons) == (5, 3, 3, 2)
    assert s.pairwise_precision == pytest.approx(1 / 3) and s.pairwise_recall == pytest.approx(1 / 2)
    assert s.bcubed_precision == pytest.approx(11 / 15) and s.bcubed_recall == pytest.approx(4 / 5)
    assert s.bcubed_f == pytest.approx(2 * (11 / 15) * 0.8 / (11 / 15 + 0.8))
    perfect = clustering_scores(["x", "y", "y"], [7, 3, 3])
    assert perfect.bcubed_f == 1.0 and perfect.pairwise_f == 1.0 and perfect.ari == 1.0
    with pytest.raises(FaceDemoError):
        clustering_scores(["a"], [0, 1])


def test_groups_are_numbered_largest_first_singletons_last():
    assert ordered_labels([5, 5, 2, 9, 9, 9, 4]).tolist() == [1, 1, 2, 0, 0, 0, 3]
    with pytest.raises(FaceDemoError, match="Unknown clustering method"):
        cluster_vectors(np.eye(3), 0.5, "kmeans")


def shuffled_cast(shared_faces: Path, folder: Path, people=CAST, per_person: int = 5, seed: int = 0) -> dict[str, str]:
    """The cast crops copied under neutral names in a shuffled order: photo name -> who it is (kept by the
    test, never shown to the code under test)."""
    files = [p for person in people for p in sorted((shared_faces / "bbt_faceapi" / person).glob("*.png"))[:per_person]]
    random.Random(seed).shuffle(files)
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for i, path in enumerate(files):
        shutil.copy(path, folder / f"photo{i:02d}.png")
        truth[f"photo{i:02d}.png"] = path.parent.name
    return truth


@pytest.fixture(scope="module")
def dlib_pipeline(settings):
    return Pipeline(replace(settings, model=MODEL))


@pytest.fixture(scope="module")
def cast_album(shared_faces, dlib_pipeline, tmp_path_factory):
    folder = tmp_path_factory.mktemp("album")
    truth = shuffled_cast(shared_faces, folder)
    seen = []
    album = cluster_album(
        dlib_pipeline, folder, MODEL, progress=lambda done, total, message="": seen.append((done, total))
    )
    yield album, truth, seen
    album.close()


@pytest.mark.shared
@pytest.mark.slow
def test_cast_crops_cluster_into_the_cast(cast_album):
    album, truth, seen = cast_album
    assert seen[0] == (0, 40) and seen[-1] == (40, 40)  # the progress callback saw every photo
    # MTCNN misses two of the 40 tight crops (bernadette5, howard5): listed, not silently dropped.
    assert len(album.faces) + len(album.skipped) == 40 and all(s.reason for s in album.skipped)
    people = [truth[f.image] for f in album.faces]
    scores = clustering_scores(people, album.labels)
    # dlib-resnet puts some of these crops of different people closer than some of the same person
    # (0.33 vs 0.50), so no threshold is perfect. Measured at the default (average linkage, 0.376): 12
    # groups, BCubed precision 0.904, recall 0.729, F 0.807; amy, penny, howard, stuart, bernadette and
    # raj each have a pure group, two of sheldon's crops share one with two of raj's, leonard is split.
    assert scores.bcubed_precision >= 0.85 and scores.bcubed_f >= 0.78, scores.to_json()
    groups = album.groups()
    assert [len(g.faces) for g in groups] == sorted((len(g.faces) for g in groups), reverse=True)
    # Most people are one group of their own: the group holding most of a person's faces is pure.
    pure = 0
    for person in CAST:
        label = max(
            set(album.labels), key=lambda lab: sum(p == person for p, l in zip(people, album.labels) if l == lab)
        )
        members = {p for p, l in zip(people, album.labels) if l == label}
        pure += members == {person}
    assert pure >= 6, [[truth[f.image] for f in g.faces] for g in groups]
    # Every method runs on the same real embeddings and numbers its groups the same way.
    vectors = np.stack([f.embedding for f in album.faces])
    for method in CLUSTER_METHODS:
        labels = cluster_vectors(vectors, album.threshold, method)
        sizes = np.bincount(labels)
        assert len(labels) == len(vectors) and (np.diff(sizes) <= 0).all(), method
        assert clustering_scores(people, labels).bcubed_precision >= 0.5, method
    doc = album.to_json()
    assert [c["id"] for c in doc["clusters"]] == list(range(len(groups)))
    assert {f["image"] for c in doc["clusters"] for f in c["faces"]} <= set(truth)
    assert all(len(f["box"]) == 4 for c in doc["clusters"] for f in c["faces"])


@pytest.mark.shared
@pytest.mark.slow
def test_naming_a_group_enrolls_all_its_faces_and_labels_them_next_time(cast_album, dlib_pipeline, tmp_path):
    album, truth, _ = cast_album
    gallery = Gallery.open(dlib_pipeline, open_store(tmp_path / "gallery"))
    group = album.groups()[0]
    result = album.name(group.id, "First Group", gallery)
    assert len(result.added) == len(group.faces) and not result.duplicates
    person = gallery.person("First Group")
    records = gallery.store.faces(person_id=person.id)
    assert sorted(r.image for r in records) == sorted(f.image for f in group.faces)
    # The stored vectors are the album's own embeddings: nothing was re-detected or re-embedded.
    rows, vectors = gallery.store.vectors(MODEL, person_id=person.id, embeddings=True)
    images = {r.id: r.image for r in records}
    stored = {images[r.face_id]: v for r, v in zip(rows, vectors)}
    assert all(np.allclose(stored[f.image], f.embedding, atol=1e-5) for f in group.faces)
    assert all(gallery.store.thumb_path(r.id) for r in records)
    assert [p.name for p in gallery.people()] == ["First Group"] and gallery.people()[0].images == len(group.faces)
    assert album.groups()[0].person == "First Group"
    # Naming it again stores nothing twice.
    again = album.name(group.id, "First Group", gallery)
    assert not again.added and len(again.duplicates) == len(group.faces)

    # A new album of two of those photos and one other: the enrolled faces are labelled as that person.
    folder = tmp_path / "again"
    folder.mkdir()
    # Another cast member, the one farthest from this group: with one person enrolled the identification
    # threshold follows the gallery's size (loosest at 1 person), and dlib-resnet puts some cast members
    # as close as 0.33, so "any other face" would test the threshold rule, not the labelling.
    named_people = {truth[f.image] for f in group.faces}
    centre = np.mean([f.embedding for f in group.faces], axis=0)
    other = max(
        (f for f in album.faces if truth[f.image] not in named_people),
        key=lambda f: np.linalg.norm(f.embedding - centre),
    )
    for face in group.faces[:2] + [other]:
        shutil.copy(face.path, folder / face.image)
    with cluster_album(dlib_pipeline, folder, MODEL, galleries=[gallery]) as second:
        named = {f.image: f.person for f in second.faces}
    assert named[group.faces[0].image] == "First Group" and named[group.faces[1].image] == "First Group"
    assert named[other.image] is None


@pytest.mark.shared
@pytest.mark.slow
def test_take_a_face_out_and_merge_groups(cast_album):
    album, _, _ = cast_album
    before = [len(g.faces) for g in album.groups()]
    face = album.groups()[0].faces[-1]
    album.take_out(face.index)
    after = album.groups()
    (alone,) = [g for g in after if g.faces == [face]]
    assert len(after) == len(before) + 1
    assert [len(g.faces) for g in after] == sorted((len(g.faces) for g in after), reverse=True)
    assert sorted(len(g.faces) for g in after) == sorted(before[1:] + [before[0] - 1, 1])
    with pytest.raises(FaceDemoError, match="already alone"):
        album.take_out(face.index)
    album.merge(after[0].id, alone.id)  # and back
    assert sorted(len(g.faces) for g in album.groups()) == sorted(before)
    with pytest.raises(FaceDemoError, match="no group 99"):
        album.merge(0, 99)
    with pytest.raises(FaceDemoError, match="two different groups"):
        album.merge(1, 1)


@pytest.mark.shared
def test_cli_cluster_a_zip(shared_faces, tmp_path, capsys, monkeypatch):
    """`cluster ALBUM.zip --json`: paths relative to the zip, boxes, largest group first; mistakes are one line."""
    monkeypatch.setenv("FACEDEMO_HOME", str(tmp_path / "home"))
    folder = tmp_path / "photos"
    truth = shuffled_cast(shared_faces, folder, people=("amy", "howard"), per_person=3, seed=3)
    archive = tmp_path / "album.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in truth:
            zf.write(folder / name, f"holiday/{name}")
    assert main(["cluster", str(archive), "--model", MODEL, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    clusters = doc["clusters"]
    assert [c["id"] for c in clusters] == list(range(len(clusters)))
    assert [len(c["faces"]) for c in clusters] == sorted((len(c["faces"]) for c in clusters), reverse=True)
    groups = [{truth[f["image"].removeprefix("holiday/")] for f in c["faces"]} for c in clusters]
    assert sorted(groups, key=sorted) == [{"amy"}, {"howard"}], clusters
    assert all(f["image"].startswith("holiday/photo") and len(f["box"]) == 4 for c in clusters for f in c["faces"])

    assert main(["cluster", str(tmp_path / "nowhere"), "--model", MODEL]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "does not exist" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    assert main(["cluster", str(tmp_path / "empty"), "--model", MODEL]) == 2
    assert "holds no photos" in capsys.readouterr().err


def test_cluster_help_says_the_default_threshold_it_uses(capsys, pipeline):
    """`cluster --help` said "the model's verification threshold" while 0.9 x that was used."""
    from facedemo.gallery.cluster import DEFAULT_SCALE, cluster_threshold

    with pytest.raises(SystemExit):
        main(["cluster", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"default: {DEFAULT_SCALE:g} x the model's verification threshold" in text
    model = pipeline.default_model()
    assert cluster_threshold(pipeline, model) == pytest.approx(DEFAULT_SCALE * pipeline.threshold(model, "verify"))


@pytest.mark.shared
@pytest.mark.slow
def test_a_group_is_labelled_only_when_most_of_its_faces_are_named(cast_album):
    """The Album labelled a whole group of Jerry Seinfeld "howard (enrolled)" because one face matched: a
    group takes an enrolled name only when more than half of its faces are named that person."""
    from dataclasses import replace as copy_with

    from facedemo.gallery.album import Group

    album, _, _ = cast_album
    group = next(g for g in album.groups() if len(g.faces) >= 3)
    names = lambda k: [copy_with(f, person="howard" if i < k else None) for i, f in enumerate(group.faces)]  # noqa: E731
    assert Group(group.id, names(1)).person is None
    assert Group(group.id, names(len(group.faces) // 2 + 1)).person == "howard"
    assert Group(group.id, names(0)).person is None


@pytest.mark.shared
@pytest.mark.slow
def test_two_faces_of_one_photo_never_share_a_group(shared_faces, dlib_pipeline, tmp_path):
    """One photo rarely shows one person twice (#35: two blurred background faces of one photo became one
    group). The hardest case: one photo made of two photos of the same person side by side, beside two more
    of her: every method keeps that photo's two faces in two groups, though they are one person's."""
    from PIL import Image

    penny = sorted((shared_faces / "bbt_faceapi" / "penny").glob("*.png"))
    left, right = (Image.open(p).convert("RGB") for p in penny[:2])
    height = max(left.height, right.height)
    both = Image.new("RGB", (left.width + right.width + 40, height + 40), "white")
    both.paste(left, (10, 20))
    both.paste(right, (left.width + 30, 20))
    folder = tmp_path / "album"
    folder.mkdir()
    both.save(folder / "two.jpg", quality=95)
    for p in penny[2:4]:
        shutil.copy(p, folder / p.name)
    with cluster_album(dlib_pipeline, folder, MODEL) as album:
        faces = album.faces
        pair = [i for i, f in enumerate(faces) if f.path.name == "two.jpg"]
        assert len(pair) == 2 and len(faces) == 4, [f.path.name for f in faces]
        assert album.labels[pair[0]] != album.labels[pair[1]]
        vectors = np.stack([f.embedding for f in faces])
        keys = [f.path.name for f in faces]
        # the premise: without the constraint, the two faces of that photo are one group
        assert len(set(cluster_vectors(vectors, album.threshold)[pair])) == 1
        for method in CLUSTER_METHODS:
            labels = cluster_vectors(vectors, album.threshold, method, apart=keys)
            assert labels[pair[0]] != labels[pair[1]], method
            assert len(set(labels.tolist())) <= 3, (method, labels)  # the rest of her still joins one of them
