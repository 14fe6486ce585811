"""Every built-in model that can run on this machine ships all of its data, measured by the project's own
commands on LFW View 1: thresholds, distance distributions, open-set impostor tails and DET curves, the
strangers' vectors of the classifier's "none of them" class, and the robustness figures of all nine
conditions. The data is matched on the weights' content, so it holds on any machine with the same weights
(a clean clone, a Space); a model whose weights change no longer matches it, and this test says so."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from facedemo.evaluation.embed import portable_key
from facedemo.evaluation.robustness import cached_robustness, shipped_record
from facedemo.gallery import classifier
from facedemo.gallery.classifier import Classifiers, shipped_strangers
from facedemo.models.registry import MODELS
from facedemo.vision.degrade import CONDITIONS

DATA = Path(__file__).resolve().parent.parent / "facedemo" / "data"
SEVERITIES = {"1", "3", "5"}  # every condition mild, middle and harsh, so that every model is compared at each (#31)


def built_in_available(pipeline) -> list[str]:
    names = [s.name for s in pipeline.models() if s.available and s.name in MODELS]
    if not names:
        pytest.skip("no built-in model can run on this machine")
    return names


def test_every_available_built_in_model_ships_all_its_data(pipeline):
    thresholds = json.loads((DATA / "thresholds.json").read_text())
    distributions = json.loads((DATA / "distributions.json").read_text())
    openset = json.loads((DATA / "openset.json").read_text())
    missing = []
    for name in built_in_available(pipeline):
        spec = pipeline.spec(name)
        record = thresholds.get(name, {})
        if not {"threshold", "far_threshold"} <= set(record):
            missing.append(f"{name}: thresholds")
        if name not in distributions:
            missing.append(f"{name}: distance distributions")
        tails = openset.get(name, {}).get("tails", {})
        if not {"centroid", "nearest"} <= set(tails) or not openset.get(name, {}).get("curves"):
            missing.append(f"{name}: open-set tails and DET curves")
        vectors = shipped_strangers(pipeline, name, pipeline.flip(name))
        if vectors is None or vectors.shape != (classifier.STRANGERS, spec.dim):
            missing.append(f"{name}: strangers' vectors")
        key = portable_key(pipeline, spec, pipeline.alignment(spec))
        figures = shipped_record(name, key, pipeline.threshold(spec), 1e-3, None)
        measured = {c for c, by in figures.get("conditions", {}).items() if SEVERITIES <= set(by)}
        if not figures.get("clean") or measured != set(CONDITIONS):
            missing.append(f"{name}: robustness figures (has {sorted(measured)})")
    assert not missing, missing


def test_the_robustness_panel_draws_without_lfw(pipeline, tmp_path):
    """No LFW on the machine (a Space): the shipped figures of every available built-in model."""
    result = cached_robustness(pipeline, None, pairs_file="pairsDevTest.txt")
    assert set(result.models) == set(built_in_available(pipeline))
    for figures in result.models.values():
        assert set(figures.conditions) == set(CONDITIONS) and 0.9 < figures.clean.accuracy <= 1.0
    assert result.pairs > 0


def test_the_classifier_needs_no_lfw_and_no_embedding(pipeline, monkeypatch, tmp_path):
    monkeypatch.setattr(classifier, "SHARED_LFW", tmp_path / "no-lfw-here")
    shipped = Classifiers()
    for name in built_in_available(pipeline):
        vectors = shipped.strangers(pipeline, name)
        assert vectors.shape == (classifier.STRANGERS, pipeline.spec(name).dim)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=2e-3)  # unit vectors, stored as float16
    other = replace(pipeline.settings, strangers=tmp_path / "no-lfw-here")  # an explicit folder is obeyed
    with pytest.raises(Exception, match="strangers"):
        Classifiers().strangers(type(pipeline)(other), built_in_available(pipeline)[0])


def test_a_torch_checkpoint_is_keyed_on_its_tensors_not_its_file(tmp_path):
    """torch.save names a zip's records after the file it writes: one conversion written under two temporary
    names gives two files with different bytes. Shipped data must still match them both (a fresh machine's
    converted CASIA FaceNet did not), and different weights must not."""
    import hashlib

    import torch

    from facedemo.models.registry import tensors_sha256

    state = {
        "conv.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4),
        "bn.num_batches_tracked": torch.tensor(7),
    }
    first, second = tmp_path / "tmp-a1b2.pt", tmp_path / "tmp-c3d4.pt"
    torch.save(state, first)
    torch.save(state, second)
    assert hashlib.sha256(first.read_bytes()).digest() != hashlib.sha256(second.read_bytes()).digest()
    assert tensors_sha256(first) == tensors_sha256(second)
    state["conv.weight"][0, 0] = 0.5
    torch.save(state, second)
    assert tensors_sha256(first) != tensors_sha256(second)
