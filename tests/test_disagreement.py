"""Where models go wrong and where they part ways: on LFW pairs (through the evaluation cache and the CLI)
and on the gallery's own faces."""

from __future__ import annotations

import csv
import json
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from facedemo.cli import main
from facedemo.evaluation import read_pairs
from facedemo.evaluation.disagreement import LabelledPair, compare_pairs, compare_verdicts
from facedemo.explorer.figures import pair_caption, verdicts_figure
from facedemo.explorer.hard_pairs import gallery_disagreements, gallery_pairs
from facedemo.gallery import Gallery
from facedemo.gallery.store import ChromaStore, make_client
from facedemo.pipeline import Pipeline

MODELS = ("dlib-resnet", "facenet-casia-webface")
PAIRS = 40  # of View 1's test half: a few seconds per model once MTCNN has run


def check_consistent(result, some: bool = True) -> None:
    """Every listed pair says what each model's own threshold says; ``some``: there are disagreements to check."""
    t = result.thresholds
    assert result.disagreements or not some  # a test that never sees one checks nothing
    for p in result.disagreements:
        under = [m for m in result.models if p.distances[m] <= t[m]]
        over = [m for m in result.models if p.distances[m] > t[m]]
        assert under and over, p
        assert {m: m in under for m in result.models} == p.same_person
    for m, h in result.hardest.items():
        fa = [p.distances[m] for p in h.false_accepts]
        fr = [p.distances[m] for p in h.false_rejects]
        assert all(not p.pair.same and p.distances[m] <= t[m] for p in h.false_accepts)
        assert all(p.pair.same and p.distances[m] > t[m] for p in h.false_rejects)
        assert fa == sorted(fa) and fr == sorted(fr, reverse=True)  # closest impostors, farthest genuines first
        assert h.false_accept_count >= len(fa) and h.false_reject_count >= len(fr)


def test_compare_verdicts_on_made_up_distances():
    pairs = [LabelledPair(f"a{i}", f"b{i}", same) for i, same in enumerate([True, True, False, False, False])]
    distances = {"x": [0.2, 0.9, 0.3, 0.1, 1.5], "y": [0.5, 0.4, 1.2, 0.2, 1.6]}
    result = compare_verdicts(pairs, distances, {"x": 0.5, "y": 1.0}, hardest=5)
    check_consistent(result)
    assert [p.pair.a for p in result.disagreements] == ["a1", "a2"]  # a1: x says different, y same; a2 the other way
    assert [p.pair.a for p in result.hardest["x"].false_accepts] == ["a3", "a2"]  # closest first
    assert [p.pair.a for p in result.hardest["x"].false_rejects] == ["a1"]
    assert [p.pair.a for p in result.hardest["y"].false_accepts] == ["a3"]
    assert result.accuracy == {"x": 0.4, "y": 0.8} and result.right_on_disagreements("y") == 2
    record = json.loads(json.dumps(result.to_json()))
    assert record["disagreement_count"] == 2 and set(record["hardest"]) == {"x", "y"}
    assert record["hardest"]["x"]["false_accepts"][0]["correct"] == {"x": False, "y": False}
    assert len(verdicts_figure(result).data) >= 3


@pytest.fixture(scope="module")
def pairs_csv(shared_faces, tmp_path_factory):
    """The first 20 same-person and 20 different-person pairs of pairsDevTest.txt, as a CSV."""
    root = shared_faces / "lfw"
    every = read_pairs(root / "pairsDevTest.txt", root)
    chosen = [p for p in every if p.same][: PAIRS // 2] + [p for p in every if not p.same][: PAIRS // 2]
    path = tmp_path_factory.mktemp("pairs") / "devtest40.csv"
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["a", "b", "same"])
        out.writerows([p.a.relative_to(root), p.b.relative_to(root), int(p.same)] for p in chosen)
    return path


@pytest.fixture(scope="module")
def both(casia_settings, tmp_path_factory):
    return Pipeline(replace(casia_settings, model=None, home=tmp_path_factory.mktemp("home")))


@pytest.mark.slow
@pytest.mark.shared
def test_hardest_pairs_and_disagreements_on_lfw(shared_faces, pairs_csv, both):
    pairs = read_pairs(pairs_csv, shared_faces / "lfw")
    first = compare_pairs(both, pairs, hardest=3, source=pairs_csv.name)
    assert set(first.models) == set(MODELS) and list(first.unavailable) == ["facenet-vggface2"]
    assert first.thresholds == {m: both.threshold(m) for m in MODELS}  # each model's own calibrated threshold
    assert first.pairs == PAIRS and len(first.judged) == PAIRS
    by_model = {e.model: e for e in first.evaluations}
    for p, i in zip(first.judged, range(PAIRS)):
        assert p.distances == {m: pytest.approx(by_model[m].distances[i]) for m in MODELS}
    check_consistent(first)
    second = compare_pairs(both, pairs, hardest=3, source=pairs_csv.name)
    assert [e.computed for e in second.evaluations] == [0, 0]  # every photo from the evaluation cache
    assert second.to_json()["disagreements"] == first.to_json()["disagreements"]
    shown = first.disagreements or first.judged[:2]
    assert all(image.endswith(".jpg") for p in shown for image in p.pair.images)  # each face's photo, to show
    assert all(m in pair_caption(shown[0], MODELS) for m in MODELS)


@pytest.mark.slow
@pytest.mark.shared
def test_eval_pairs_compare_hardest_on_the_command_line(
    shared_faces, pairs_csv, casia_weights, capsys, monkeypatch, tmp_path
):
    monkeypatch.setenv("FACEDEMO_HOME", str(tmp_path))
    monkeypatch.setenv("FACEDEMO_DEVICE", "cpu")
    monkeypatch.setenv("FACEDEMO_FACENET_CASIA_WEBFACE_WEIGHTS", str(casia_weights))
    argv = ["eval", "pairs", "--root", shared_faces / "lfw", "--pairs", pairs_csv, "--compare", "--hardest", "2"]
    assert main([str(a) for a in argv] + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {m["model"] for m in out["models"]} == set(MODELS) and out["pairs"] == PAIRS
    assert set(out["hardest"]) == set(MODELS)
    for h in out["hardest"].values():
        assert len(h["false_accepts"]) <= 2 and len(h["false_rejects"]) <= 2
        assert set(h) >= {"false_accepts", "false_rejects", "false_accept_count", "false_reject_count"}
    assert out["disagreement_count"] == len(out["disagreements"])
    for d in out["disagreements"]:
        assert len(set(d["same_person"].values())) == 2 and set(d["distances"]) == set(MODELS)
    assert main([str(a) for a in argv]) == 0  # the same, for people, from the cache
    assert "disagreements" in capsys.readouterr().out
    assert main([str(a) for a in argv] + ["--hardest", "-1"]) == 2
    assert "--hardest" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.shared
def test_the_gallerys_own_pairs(shared_faces, both, tmp_path):
    cast = shared_faces / "bbt_faceapi"
    people = sorted(p for p in cast.iterdir() if p.is_dir() and not p.name.startswith("_"))[:3]
    gallery = Gallery.open(
        both, ChromaStore(make_client(ephemeral=True), tmp_path / "thumbs", "g" + uuid.uuid4().hex[:12])
    )
    for person in people:
        gallery.enroll(
            person.name, sorted(p for p in person.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:3]
        )
    found = gallery_pairs(gallery, different=5)
    same = [p for p in found.pairs if p.same]
    assert len(same) == 3 * 3 and len(found.pairs) == 9 + 5  # every same-person pair, 5 of the 27 others
    assert set(found.distances) == set(MODELS) and all(len(d) == 14 for d in found.distances.values())
    assert all(p.images[0] and p.names[0] == p.names[1] for p in same)
    result = gallery_disagreements(gallery, hardest=2, different=27)
    assert result.source == "gallery" and result.pairs == 9 + 27 and set(result.models) == set(MODELS)
    check_consistent(result, some=False)  # a tiny gallery may hold no disagreement
    assert result.judged[0].pair.images[0]  # a gallery pair's face has its thumbnail to show
    assert np.isfinite(list(result.accuracy.values())).all()


@pytest.mark.slow
@pytest.mark.shared
def test_the_services_front_door(shared_faces, both, tmp_path):
    """What the dashboard calls: a pair explained, the gallery's own pairs judged, and LFW's missing pairs said in words."""
    from facedemo.errors import DataUnavailableError
    from facedemo.services import Services, lfw, usecases

    services = Services(replace(both.settings, gallery_dir=tmp_path / "gallery"))
    examples = Path(__file__).resolve().parent.parent / "facedemo" / "ui" / "examples"
    explanation = usecases.explain(
        services.pipeline_for(None), examples / "astronaut.jpg", examples / "astronaut_2.jpg", grid=3
    )
    assert {m.model for m in explanation.maps} == set(MODELS) and all(m.same_person for m in explanation.maps)
    cast = shared_faces / "bbt_faceapi"
    for person in ("amy", "raj"):
        services.owned().enroll(person, sorted((cast / person).iterdir())[:2])
    result = usecases.gallery_disagreements(services.request(None))
    assert set(result.models) == set(MODELS) and result.pairs == 2 + 4  # 2 same-person pairs, all 4 others
    with pytest.raises(DataUnavailableError, match="pairsDevTest.txt"):
        lfw.lfw_disagreements(services.pipeline, services.flights, services.public, tmp_path / "no-lfw")
