"""Open-set identification: NIST's FNIR/FPIR on counts worked by hand, the threshold that follows the
gallery's size on real LFW embeddings (10 and 1,000 people), and the classifier method on real photos with
strangers, through a real Chroma gallery."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pytest

from facedemo.evaluation.embed import embed_images
from facedemo.evaluation.openset import Searches, det, fit_impostor_tail
from facedemo.gallery import Gallery
from facedemo.gallery.store import ChromaStore, make_client
from facedemo.models.thresholds import expected_fpir, open_set_threshold
from facedemo.pipeline import Pipeline
from facedemo.settings import Settings
from facedemo.vectors import distance_matrix

MODEL = "dlib-resnet"


def test_fnir_and_fpir_on_counts_worked_by_hand():
    # 4 mated searches (the third names the wrong person), 5 strangers.
    s = Searches.of([0.20, 0.30, 0.25, 0.50], [True, True, False, True], [0.28, 0.45, 0.60, 0.70, 0.80])
    assert s.fpir(0.30) == pytest.approx(1 / 5) and s.fnir(0.30) == pytest.approx(2 / 4)  # the wrong name, and 0.50
    assert s.fpir(0.19) == 0 and s.fnir(0.19) == 1
    assert s.fnir(2.0) == pytest.approx(1 / 4)  # a wrong rank-1 person is never a correct answer
    curve = det(s, "by hand")
    for fpir, fnir, t in zip(curve.fpir, curve.fnir, curve.thresholds):
        assert (fpir, fnir) == (pytest.approx(s.fpir(t)), pytest.approx(s.fnir(t)))
    assert curve.fnir_at(0.0) == (pytest.approx(3 / 4), pytest.approx(0.20))
    assert curve.fnir_at(0.2) == (pytest.approx(2 / 4), pytest.approx(0.30))
    assert curve.to_json()["fnir_at_fpir"]["0.1"] == {"fnir": 0.75, "threshold": 0.2}  # 1 stranger of 5 is already 0.2


def test_threshold_rule_tightens_with_size():
    tail = {"mean": 0.6, "sd": 0.06}
    small, large = open_set_threshold(tail, 10, 0.01), open_set_threshold(tail, 1000, 0.01)
    assert large < small < 0.6
    assert expected_fpir(tail, 10, small) == pytest.approx(0.01) and expected_fpir(tail, 1000, large) == pytest.approx(
        0.01
    )
    assert expected_fpir(tail, 1000, small) > 0.3  # the 10-people threshold names a third of strangers at 1,000


@pytest.fixture(scope="module")
def lfw_pipeline(tmp_path_factory) -> Pipeline:
    # FACEDEMO_TEST_CACHE keeps real embeddings between runs (the same cache `bench identify` uses).
    home = Path(os.environ.get("FACEDEMO_TEST_CACHE") or tmp_path_factory.mktemp("openset-home"))
    return Pipeline(Settings.from_env(device="cpu", home=home, model=MODEL))


@pytest.mark.shared
@pytest.mark.slow
def test_fpir_stays_near_its_target_from_10_to_1000_people(shared_faces, lfw_pipeline):
    """1,000 LFW people enrolled (one photo each) and 300 strangers (people with one LFW photo, none of them
    enrolled). The impostor tail is fitted on the enrolled people's own pairs (no stranger involved), and
    the size-following threshold keeps FPIR within [0.3, 2] x the 5% target at 10 and at 1,000 people,
    where the 10-people threshold kept fixed would name several times more strangers."""
    from facedemo.bench.identify import open_set_split

    split = open_set_split(shared_faces / "lfw")
    gallery_photos = [files[0] for files in split.gallery.values()]
    stranger_photos = split.strangers[:300]
    embedded = embed_images(lfw_pipeline, gallery_photos + stranger_photos, MODEL)
    g = np.stack([embedded.vectors[p] for p in gallery_photos])
    q = np.stack([embedded.vectors[p] for p in stranger_photos])
    pairs = distance_matrix(g, g)[np.triu_indices(len(g), 1)]
    tail = fit_impostor_tail(pairs).to_json()
    target = 0.05
    d = distance_matrix(q, g)
    measured = {}
    for n in (10, 1000):
        limit = open_set_threshold(tail, n, target)
        measured[n] = (limit, float(np.mean(d[:, :n].min(1) <= limit)))
    for n, (limit, fpir) in measured.items():
        assert 0.3 * target <= fpir <= 2 * target, (n, limit, fpir, measured)
    assert measured[1000][0] < measured[10][0]
    kept = float(np.mean(d.min(1) <= measured[10][0]))
    assert kept > 3 * target, kept


@pytest.mark.shared
@pytest.mark.slow
def test_classifier_names_the_cast_and_turns_strangers_away(shared_faces, lfw_pipeline, tmp_path):
    """The 8 cast members (3 photos each enrolled, 2 each probed) and 80 LFW strangers: 40 train the
    "none of them" class, 40 others are probed. Through a real Chroma gallery and Gallery.match."""
    from facedemo.bench.identify import open_set_split

    bbt = shared_faces / "bbt_faceapi"
    gallery = Gallery.open(
        lfw_pipeline, ChromaStore(make_client(ephemeral=True), tmp_path / "thumbs", "c" + uuid.uuid4().hex[:12])
    )
    probes, truths = [], []
    people = sorted(p for p in bbt.iterdir() if p.is_dir() and not p.name.startswith("_"))
    for person in people:
        photos = sorted(person.glob("*.png"))
        gallery.enroll(person.name, photos[:3], MODEL)
        for photo in photos[3:]:
            _, faces = lfw_pipeline.analyze(photo, MODEL)
            if faces:  # MTCNN misses one of the 40 crops
                probes.append(max(faces, key=lambda f: f.face.area))
                truths.append(person.name)
    split = open_set_split(shared_faces / "lfw")
    train, test = split.calibration[:40], split.strangers[:40]
    embedded = embed_images(lfw_pipeline, train, MODEL)
    strangers = np.stack([embedded.vectors[p] for p in train])
    for photo in test:
        _, faces = lfw_pipeline.analyze(photo, MODEL)
        if faces:
            probes.append(min(faces, key=lambda f: abs(f.face.center[0] - 125) + abs(f.face.center[1] - 125)))
            truths.append(None)
    result = gallery.match(probes, MODEL, method="classifier", strangers=strangers)
    named = [m.name for m in result.faces]
    cast = [(got, want) for got, want in zip(named, truths) if want]
    assert len(cast) >= 14 and sum(got == want for got, want in cast) >= 0.85 * len(cast), cast
    assert all(got in (None, want) for got, want in cast), cast
    outsiders = [got for got, want in zip(named, truths) if want is None]
    assert sum(got is None for got in outsiders) >= 0.9 * len(outsiders), outsiders
    # Cached until the gallery changes: the same model again, a new one after an enrollment.
    first = gallery.store.classifiers.get(gallery, MODEL, strangers)
    assert gallery.store.classifiers.get(gallery, MODEL, strangers) is first
    gallery.enroll("leonard", sorted((bbt / "leonard").glob("*.png"))[3:4], MODEL)
    assert gallery.store.classifiers.get(gallery, MODEL, strangers) is not first


def test_identify_says_when_a_model_has_no_open_set_calibration():
    """A model without an impostor tail (a fine-tune, or facenet-vggface2 before anyone calibrated it) ran on
    a fixed guess silently; now the note says so. A chosen threshold and the classifier say nothing."""
    from facedemo.gallery.identify import IdentifyResult, size_note

    bare = IdentifyResult("cast-dark", "centroid", 0.4, [], people=12)
    assert size_note(bare, 0.01) == (
        "cast-dark has not been calibrated for identification, so its threshold (0.400) is a fixed guess that "
        "does not follow the gallery's size: the more people are enrolled, the more strangers get a name."
    )
    assert size_note(bare, None) == ""
    assert size_note(IdentifyResult("cast-dark", "classifier", 0.5, [], people=12), 0.01) == ""
    known = IdentifyResult("dlib-resnet", "centroid", 0.345, [], people=40, expected_fpir=0.01)
    assert size_note(known, 0.01).startswith("With 40 people enrolled, about 1 stranger in 100 gets a name")
