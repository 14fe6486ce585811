"""The decision rules have one home (``facedemo/rules.py``, #36): a new method is one class, and registering
it is all it takes to see it in the CLI, the dashboard's API, the probe evaluation and the open-set benchmark.
The built-in rules decide the same over a Chroma gallery and over a plain matrix of distances."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from gradio_client import Client, handle_file
from test_app import EXAMPLES, launch

from facedemo.cli import main
from facedemo.rules import RULES, Centroid, methods, register, rule, unregister


class StrictCentroid(Centroid):
    """A toy rule: the centroid rule, naming a face only within 80% of the threshold."""

    name = "centroid-strict"
    summary = "each person's mean face, within 80% of the threshold"
    tail = "centroid"  # borrows the centroid rule's calibration

    def named(self, best, limit):
        return best is not None and best.distance <= 0.8 * limit


@pytest.fixture()
def toy():
    register(StrictCentroid())
    try:
        yield StrictCentroid.name
    finally:
        unregister(StrictCentroid.name)
    assert StrictCentroid.name not in methods()


def test_a_new_rule_is_one_class_seen_by_the_cli_and_the_api(toy, settings, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FACEDEMO_MODEL", "dlib-resnet")
    gallery = tmp_path / "gallery"
    assert main(["enroll", "Eileen Collins", str(EXAMPLES / "astronaut.jpg"), "--gallery", str(gallery)]) == 0
    capsys.readouterr()
    code = main(["identify", str(EXAMPLES / "astronaut_2.jpg"), "--gallery", str(gallery), "--method", toy, "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["method"] == toy and len(result["faces"]) == 1
    # Its own decision: within 80% of the threshold or unknown, on the same distance the centroid rule sees.
    face = result["faces"][0]
    nearest = face["candidates"][0]["distance"]
    assert (face["name"] == "Eileen Collins") == (nearest <= 0.8 * result["threshold"])

    demo, services, url = launch(settings, gallery)
    try:
        client = Client(url, verbose=False)
        parameters = client.view_api(return_format="dict")["named_endpoints"]["/identify"]["parameters"]
        assert toy in next(p for p in parameters if p["parameter_name"] == "how")["type"]["enum"]
        *_, answer = client.predict(
            handle_file(str(EXAMPLES / "astronaut_2.jpg")), "dlib-resnet", 3, toy, api_name="/identify"
        )
        assert answer["method"] == toy and answer["faces"][0]["name"] == face["name"]
    finally:
        demo.close()


def test_a_new_rule_gets_its_open_set_curve(toy, settings, shared_faces, tmp_path):
    from facedemo.bench.identify import bench_open_set
    from facedemo.pipeline import Pipeline

    pipeline = Pipeline(replace(settings, home=tmp_path / "home"))
    report = bench_open_set(
        pipeline, shared_faces / "lfw", sizes=(10,), probed=10, strangers=30, calibration=20, model="dlib-resnet"
    )
    labels = [c.label for c in report.curves[10]]
    assert labels == ["centroid", "nearest", "knn", toy, "classifier"]
    assert set(report.tails) == {"centroid", "nearest"}  # the toy borrows the centroid rule's tail
    strict = next(c for c in report.curves[10] if c.label == toy)
    assert strict.mated == 10 and strict.nonmated == 30


def test_every_distance_rule_decides_a_matrix_as_identify_does(pipeline, shared_faces, tmp_path):
    """The same faces through Chroma (``Gallery.match``) and through ``decide_matrix`` on their distances."""
    from facedemo.gallery import Gallery, open_store
    from facedemo.vectors import centroid, distance_matrix

    gallery = Gallery.open(pipeline, open_store(tmp_path / "gallery"))
    gallery.enroll("Eileen Collins", [EXAMPLES / "astronaut.jpg"])
    gallery.enroll("Grace Hopper", [EXAMPLES / "hopper.jpg"])
    _, faces = pipeline.analyze(EXAMPLES / "astronaut_2.jpg", "dlib-resnet")
    _, more = pipeline.analyze(EXAMPLES / "group.jpg", "dlib-resnet")
    _, stranger = pipeline.analyze(shared_faces / "bbt_faceapi" / "raj" / "raj1.png", "dlib-resnet")
    faces = list(faces) + list(more) + list(stranger)
    vectors, people, _, _ = gallery.embeddings("dlib-resnet")
    probes = np.stack([f.embedding for f in faces])
    ids = {p.name: p.id for p in gallery.people()}
    names = {i: n for n, i in ids.items()}
    for method in [m for m in methods() if RULES[m].from_distances]:
        limit = gallery.threshold("dlib-resnet", method)
        matched = [f.name for f in gallery.match(faces, "dlib-resnet", method=method).faces]
        if rule(method).compares_with == "centroids":
            order = sorted(set(people))
            d = distance_matrix(probes, np.stack([centroid(vectors[np.array(people) == p]) for p in order]))
            owners = [ids[p] for p in order]
        else:
            d, owners = distance_matrix(probes, vectors), [ids[p] for p in people]
        decided = [None if b is None else b.name for b in rule(method).decide_matrix(d, owners, names, limit)]
        assert decided == matched, method
    assert any(matched) and None in matched  # a named face and an unknown one
