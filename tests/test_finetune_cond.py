"""Fine-tuning with ArcFace loss and for a condition (``--augment dark:3``), with per-epoch curves, on real
photos: the cast (bbt_faceapi) trains, 5celeb/val's five celebrities are the held-out people."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from facedemo.errors import FaceDemoError
from facedemo.explorer.figures import FigureError, training_curves_figure
from facedemo.pipeline import Pipeline
from facedemo.training import Augment, finetune, saved_report
from facedemo.training.losses import arcface_head, check_loss

REPO = Path(__file__).resolve().parent.parent
CURVE_KEYS = {"epoch", "loss", "train_loss", "val_loss", "val_mean_pos_distance", "val_mean_neg_distance"}


def test_arcface_adds_the_margin_to_the_true_persons_angle():
    import torch

    # Two people whose weights are orthogonal; a face exactly on person 0's weight: its true angle is 0, so
    # the margin makes its logit s*cos(0.5), the other's stays s*cos(pi/2) = 0.
    head = arcface_head(np.eye(2, 4), scale=30.0, margin=0.5)
    face = torch.tensor([[1.0, 0.0, 0.0, 0.0]], requires_grad=True)
    loss, correct = head(face, torch.tensor([0]))
    expected = -math.log(math.exp(30 * math.cos(0.5)) / (math.exp(30 * math.cos(0.5)) + 1.0))
    assert abs(float(loss.detach()) - expected) < 1e-4 and correct == 1
    # Labelled as person 1 instead, the face is 90 degrees off: a large loss, and the classifier says 0.
    wrong, correct = head(face, torch.tensor([1]))
    assert float(wrong.detach()) > 20 and correct == 0
    wrong.backward()
    assert face.grad is not None and head.weight.grad is not None  # both the embedding and the weights learn


def test_bad_loss_and_condition_are_sentences():
    assert Augment.parse("dark:4") == Augment("dark", 4) and Augment.parse("blur") == Augment("blur", 3)
    assert Augment.parse(None) is None and Augment.parse("") is None
    # The asked severity and its neighbours train, each with its own seed; the held-out slice has another.
    assert Augment("dark", 3).variants() == [("dark", 2, 1), ("dark", 3, 2), ("dark", 4, 3)]
    assert Augment("dark", 5).variants() == [("dark", 4, 1), ("dark", 5, 2)]
    for text, words in (
        ("darkness", "Unknown condition 'darkness'"),
        ("dark:9", r"from 1 \(mild\) to 5"),
        ("dark:x", "whole number"),
    ):
        with pytest.raises(FaceDemoError, match=words):
            Augment.parse(text)
    with pytest.raises(FaceDemoError, match="Unknown loss 'cosface': use triplet or arcface"):
        check_loss("cosface")


@pytest.mark.parametrize(
    "flag, value, words",
    [("--augment", "fog:2", "Unknown condition 'fog'"), ("--loss", "softmax", "Unknown loss 'softmax'")],
)
def test_the_cli_refuses_bad_values_with_exit_status_2(flag, value, words, tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "facedemo",
            "finetune",
            "--data",
            str(tmp_path),
            "--base",
            "dlib-resnet",
            "--name",
            "x",
            flag,
            value,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "FACEDEMO_HOME": str(tmp_path)},
        timeout=120,
    )
    assert out.returncode == 2 and words in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "models").exists()


def test_curves_figure_has_one_point_per_epoch():
    history = [
        {
            "epoch": e,
            "loss": "arcface",
            "train_loss": 5.0 / e,
            "val_loss": 0.09 / e,
            "val_mean_pos_distance": 0.3 + 0.01 * e,
            "val_mean_neg_distance": 0.5 + 0.05 * e,
        }
        for e in (1, 2, 3)
    ]
    fig = training_curves_figure(history, best_epoch=3)
    assert [len(trace.x) for trace in fig.data] == [3, 3, 3, 3]
    assert fig.data[0].name == "training (ArcFace loss)" and list(fig.data[3].y) == [0.55, 0.6, 0.65]
    with pytest.raises(FigureError, match="no training curves"):
        training_curves_figure([{"epoch": 1, "train_triplet_loss": 0.1, "val_loss": 0.1}])


@pytest.fixture(scope="module")
def pipe(settings, tmp_path_factory):
    # One home for the module: the photos are embedded (and degraded) once, then read from the cache.
    return Pipeline(replace(settings, home=tmp_path_factory.mktemp("finetune-cond")))


@pytest.mark.slow
def test_arcface_lowers_the_held_out_loss(pipe, shared_faces):
    result = finetune(
        pipe,
        shared_faces / "bbt_faceapi",
        "dlib-resnet",
        "cast-arcface",
        epochs=12,
        val=shared_faces / "5celeb" / "val",
        loss="arcface",
    )
    assert result.loss == "arcface" and result.best_epoch >= 1
    assert result.after["loss"] < 0.8 * result.before["loss"]  # measured: 0.085 -> 0.024
    assert len(result.history) == result.epochs_run and all(
        CURVE_KEYS <= set(h) and h["loss"] == "arcface" for h in result.history
    )
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    # The curves are saved with the model and read back for the dashboard.
    saved = saved_report(pipe, "cast-arcface")
    assert saved["loss"] == "arcface" and len(saved["history"]) == result.epochs_run
    assert json.loads((result.path / "model.json").read_text())["loss"] == "arcface"
    with pytest.raises(FaceDemoError, match="not a fine-tuned one"):
        saved_report(pipe, "dlib-resnet")
    with pytest.raises(FaceDemoError, match="Unknown model 'nobody'"):
        saved_report(pipe, "nobody")


@pytest.mark.slow
def test_training_for_darkness_reports_the_slice_and_the_general_figures(pipe, shared_faces, tmp_path):
    celebs = shared_faces / "5celeb" / "train"
    photos = {p.name: sorted(p.iterdir())[:3] for p in sorted(celebs.iterdir()) if p.is_dir()}
    people = sorted(photos)
    pairs = [(photos[p][0], photos[p][1], 1) for p in people] + [
        (photos[a][2], photos[b][2], 0) for a, b in zip(people, people[1:] + people[:1])
    ]
    general = tmp_path / "pairs.csv"
    general.write_text("a,b,same\n" + "".join(f"{a},{b},{s}\n" for a, b, s in pairs))
    result = finetune(
        pipe,
        shared_faces / "bbt_faceapi",
        "dlib-resnet",
        "cast-dark",
        epochs=6,
        val=shared_faces / "5celeb" / "val",
        augment="dark:3",
        general=(general, celebs),
    )
    assert result.augment == {"condition": "dark", "severity": 3, "variants": [2, 3, 4]}
    for report in (result.before, result.after):
        for part in (report, report["slice"], report["general"], report["general_slice"]):
            assert {"accuracy", "auc", "val", "mean_pos_distance", "mean_neg_distance"} <= set(part)
        # One clean and one dark photo per pair, over every ordered pair of two different photos.
        assert report["slice"]["pairs"] == 25 * 24 and report["general_slice"]["pairs"] == len(pairs)
    # Darkness really bites the base model: a same-person pair with a dark photo is farther apart than clean.
    assert result.before["slice"]["mean_pos_distance"] > result.before["mean_pos_distance"]
    assert result.before["general_slice"]["mean_pos_distance"] > result.before["general"]["mean_pos_distance"]
    assert len(result.history) == result.epochs_run and all(CURVE_KEYS <= set(h) for h in result.history)
    assert result.after["loss"] <= result.before["loss"] + 1e-6  # early stopping never keeps a worse epoch
    # Against its base on the general pairs, each model at its own threshold (#31 item 5).
    versus = result.versus_base()
    assert versus["on"] == "general" and versus["pairs"] == len(pairs)
    assert versus["base_accuracy"] == result.before["general"]["accuracy_at_threshold"]
    assert versus["accuracy"] == result.after["general"]["accuracy_at_threshold"]
    word = {"better": "Better than", "worse": "Worse than", "same": "As good as"}[versus["verdict"]]
    assert versus["text"].startswith(f"{word} the base (dlib-resnet) on pairs.csv ({len(pairs)} pairs)")
    assert result.to_json()["held_out_people"] == sorted(
        p.name for p in (shared_faces / "5celeb" / "val").iterdir() if p.is_dir()
    )


@pytest.mark.slow
def test_full_mode_trains_for_darkness_with_arcface(settings, facenet_weights, shared_faces, tmp_path):
    # InceptionResnetV1's last block, crops degraded on the fly; a locally saved state_dict of the right layout.
    pipe = Pipeline(replace(settings, home=tmp_path, facenet_weights={"facenet-vggface2": str(facenet_weights)}))
    result = finetune(
        pipe,
        shared_faces / "bbt_faceapi",
        "facenet-vggface2",
        "cast-full-dark",
        mode="full",
        epochs=2,
        loss="arcface",
        augment="dark:3",
    )
    assert result.mode == "full" and result.loss == "arcface" and (result.path / "model.pt").is_file()
    assert {"accuracy", "auc", "mean_pos_distance"} <= set(result.before["slice"]) <= set(result.after["slice"])
    assert len(result.history) == result.epochs_run and all(h["loss"] == "arcface" for h in result.history)
