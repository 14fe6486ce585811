"""The scoreboard on the public-domain example photos that ship with facedemo (no ../shared/faces needed):
Eileen Collins twice, Grace Hopper once, in an in-memory Chroma, embedded by dlib-resnet."""

from __future__ import annotations

import uuid
from dataclasses import replace

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score
from test_app import EXAMPLES

from facedemo.errors import InvalidParameterError
from facedemo.explorer.scoreboard import scoreboard
from facedemo.gallery import ChromaStore, Gallery
from facedemo.gallery.store import make_client
from facedemo.pipeline import Pipeline
from facedemo.rules import rule

MODEL = "dlib-resnet"


@pytest.fixture(scope="module")
def gallery(settings, tmp_path_factory):
    pipeline = Pipeline(replace(settings, model=MODEL, gallery_models=(MODEL,)))
    store = ChromaStore(make_client(ephemeral=True), tmp_path_factory.mktemp("thumbs"), "e" + uuid.uuid4().hex[:12])
    gallery = Gallery.open(pipeline, store)
    gallery.enroll("Eileen Collins", [EXAMPLES / "astronaut.jpg", EXAMPLES / "astronaut_2.jpg"])
    gallery.enroll("Grace Hopper", [EXAMPLES / "hopper.jpg"])
    return gallery


@pytest.mark.slow  # MTCNN and dlib-resnet loaded and three photos embedded: 27 s at a load average of 17
def test_three_faces_two_people(gallery):
    board = scoreboard(gallery, [MODEL], timed=2)
    assert board.faces == 3 and board.people == 2 and [s.model for s in board.models] == [MODEL]
    (score,) = board.models
    i = score.identification
    assert i.correct + i.wrong + i.unknown == 3 and i.strangers == 1  # Grace Hopper's one face: a stranger
    names = dict(zip(board.face_ids, i.answers))
    owner = {f.id: f.person for f in gallery.faces()}
    hopper = next(f for f in board.face_ids if owner[f] == "Grace Hopper")
    assert names[hopper] is None  # nobody else is Grace Hopper: unknown is the right answer
    vectors, people, ids, _ = gallery.embeddings(MODEL)
    v = np.stack([vectors[ids.index(f)] for f in board.face_ids])
    who = [owner[f] for f in board.face_ids]
    pairs = [(a, b) for a in range(3) for b in range(a + 1, 3)]
    d = np.array([np.linalg.norm(v[a] - v[b]) for a, b in pairs])
    same = np.array([who[a] == who[b] for a, b in pairs])
    ver = score.verification
    assert (ver.pairs, ver.same, ver.different) == (3, 1, 2) and "2 pairs of different people" in ver.tar_note
    assert ver.auc == pytest.approx(roc_auc_score(same, -d))
    assert ver.accuracy == pytest.approx(accuracy_score(same, d <= gallery.pipeline.threshold(MODEL)))
    assert score.ms_per_face > 0 and score.timed == 2 and score.lfw["source"].startswith("LFW")
    assert all(r.best == () for r in board.rows)  # one model: nothing to mark


def test_deciding_from_plain_distances_refuses_the_classifier():
    with pytest.raises(InvalidParameterError, match="classifier method needs a gallery"):
        rule("classifier").decide_matrix(np.zeros((1, 1)), ["p"], {"p": "P"}, 1.0)
    with pytest.raises(InvalidParameterError, match="Unknown identification method"):
        rule("vote")
