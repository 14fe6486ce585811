"""Fine-tuning on real photos: the adapter on dlib-resnet, full mode on InceptionResnetV1 (local weights)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from facedemo.errors import FaceDemoError, InvalidNameError
from facedemo.models.adapter import make_head
from facedemo.pipeline import Pipeline
from facedemo.training import LabelledEmbeddings, finetune
from facedemo.training.losses import semi_hard_triplet_loss

REPO = Path(__file__).resolve().parent.parent


def test_head_starts_as_identity():
    import torch

    x = torch.nn.functional.normalize(torch.randn(6, 128), dim=1)
    assert torch.allclose(make_head(128)(x), x, atol=1e-6)


def test_semi_hard_mining_on_a_hand_made_batch():
    import torch

    # Two people on a line: anchor a0 at 0, its positive at 0.3; negatives at 0.4 (semi-hard: 0.3 < 0.4 < 0.5)
    # and 1.5 (easy). The semi-hard one is chosen: loss = 0.3 - 0.4 + 0.2 = 0.1 for that pair.
    e = torch.tensor([[0.0, 0.0], [0.3, 0.0], [0.4, 0.0], [1.5, 0.0]])
    labels = torch.tensor([0, 0, 1, 1])
    loss, active = semi_hard_triplet_loss(e, labels, margin=0.2)
    # pairs: (0,1): d_ap .3, semi-hard neg .4 -> .1 ; (1,0): d_ap .3, negs at .1 and 1.2 -> none semi-hard, none beyond .3 but 1.2 -> 1.2 -> 0
    # (2,3): d_ap 1.1, negs .4 and .1 -> none beyond -> hardest .1 -> 1.2 ; (3,2): d_ap 1.1, negs 1.5, 1.2 -> semi-hard 1.2 -> .1
    assert active == 3
    assert abs(float(loss) - (0.1 + 0.0 + 1.2 + 0.1) / 4) < 1e-5


@pytest.mark.slow
def test_adapter_on_the_cast_validated_on_other_people(settings, shared_faces, tmp_path):
    pipe = Pipeline(replace(settings, home=tmp_path))
    result = finetune(
        pipe, shared_faces / "bbt_faceapi", "dlib-resnet", "cast", epochs=8, val=shared_faces / "5celeb" / "train"
    )
    assert result.train_people == 8 and result.val_people == 5
    for report in (result.before, result.after):
        assert {"loss", "mean_pos_distance", "mean_neg_distance", "val", "far"} <= set(report)
    # Early stopping keeps the best epoch, so the held-out people's loss is never worse than the base's.
    assert result.after["loss"] <= result.before["loss"] + 1e-6
    # The result says in words whether held-out accuracy rose or fell, and warns when it fell (a fine-tune
    # whose held-out accuracy went 0.972 -> 0.944 was saved with no comment).
    old, new = result.before["accuracy"], result.after["accuracy"]
    word = "rose" if new > old else "fell" if new < old else "stayed"
    assert result.verdict().startswith(f"Accuracy on held-out people {word}")
    assert ("worse than the model it started from" in result.verdict()) == (new < old)
    assert result.to_json()["verdict"] == result.verdict()
    # The model is listed, usable and named everywhere; its name cannot be taken twice.
    assert "cast" in {s.name for s in pipe.models()}
    _, faces = pipe.analyze(REPO / "facedemo" / "ui" / "examples" / "group.jpg", "cast")
    assert len(faces) == 2 and faces[0].embedding.shape == (128,)
    with pytest.raises(InvalidNameError, match="already exists"):
        finetune(pipe, shared_faces / "bbt_faceapi", "dlib-resnet", "cast", epochs=1)
    # ...and another process (the CLI, FACEDEMO_HOME honoured) sees it too.
    out = subprocess.run(
        [sys.executable, "-m", "facedemo", "models", "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "FACEDEMO_HOME": str(tmp_path)},
        timeout=300,
    )
    assert {"name": "cast", "dim": 128, "available": True, "reason": None} in json.loads(out.stdout)


def test_refusals_are_sentences(settings, tmp_path):
    pipe = Pipeline(replace(settings, home=tmp_path))
    few = LabelledEmbeddings(np.eye(4, 128, dtype=np.float32), ["a", "a", "b", "b"], ["1", "2", "3", "4"], [])
    with pytest.raises(FaceDemoError, match="at least 4 people"):
        finetune(pipe, few, "dlib-resnet", "tiny")
    with pytest.raises(FaceDemoError, match="can only be adapted"):
        finetune(pipe, few, "dlib-resnet", "full-dlib", mode="full")
    with pytest.raises(InvalidNameError):
        finetune(pipe, few, "dlib-resnet", "../escape")


@pytest.mark.slow
def test_full_mode_trains_the_last_inception_block(settings, facenet_weights, shared_faces, tmp_path):
    import torch

    pipe = Pipeline(replace(settings, home=tmp_path, facenet_weights={"facenet-vggface2": str(facenet_weights)}))
    result = finetune(pipe, shared_faces / "bbt_faceapi", "facenet-vggface2", "cast-full", mode="full", epochs=2)
    assert result.mode == "full" and (result.path / "model.pt").is_file()
    tuned = torch.load(result.path / "model.pt", weights_only=True)
    original = torch.load(facenet_weights, weights_only=True)
    assert not torch.equal(tuned["last_linear.weight"], original["last_linear.weight"])  # trained
    assert torch.equal(tuned["conv2d_1a.conv.weight"], original["conv2d_1a.conv.weight"])  # frozen
    _, faces = pipe.analyze(REPO / "facedemo" / "ui" / "examples" / "group.jpg", "cast-full")
    assert faces[0].embedding.shape == (512,)
