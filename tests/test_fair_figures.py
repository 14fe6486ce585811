"""Figures that compare fairly (issue 31, item 4): one colour per model in every figure, person colours that do
not repeat, robustness drawn only at the severities every model has, every model's DET in one figure, and a
2-D map that keeps a small gallery's people together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facedemo.evaluation.metrics import roc
from facedemo.evaluation.robustness import SHIPPED, ModelRobustness, RobustnessResult, SliceMetrics
from facedemo.explorer.colours import PERSON_PALETTE, model_colour, person_colours
from facedemo.explorer.figures import (
    compare_figure,
    det_figure,
    distance_histogram,
    embedding_map,
    robustness_figure,
    roc_figure,
)
from facedemo.files import read_json
from facedemo.models.distributions import SHIPPED as DISTRIBUTIONS
from facedemo.vision.degrade import CONDITIONS

REPO = Path(__file__).resolve().parent.parent
MODELS = ("dlib-resnet", "facenet-casia-webface")


def shipped_result() -> RobustnessResult:
    """The robustness figures that ship with facedemo, as the Explorer reads them (no model needed)."""
    models = {}
    for path in sorted(SHIPPED.glob("*.json")):
        record = read_json(path)
        models[record["model"]] = ModelRobustness(
            record["model"],
            float(record["threshold"]),
            SliceMetrics.from_json(record["clean"]),
            {
                name: {int(s): SliceMetrics.from_json(m) for s, m in by.items()}
                for name, by in record["conditions"].items()
            },
            int(record["photos"]),
        )
    return RobustnessResult(models, {}, "pairsDevTest.txt", 1000, 1e-3)


def test_a_model_has_one_colour_in_every_figure_and_on_every_run():
    rng = np.random.default_rng(0)
    d, y = np.r_[rng.normal(0.3, 0.05, 50), rng.normal(0.6, 0.05, 50)], np.r_[np.ones(50), np.zeros(50)].astype(bool)
    roc_fig = roc_figure({m: roc(d, y) for m in MODELS})
    assert [t.line.color for t in roc_fig.data[:2]] == [model_colour(m) for m in MODELS]
    rob = robustness_figure(shipped_result())
    assert {t.meta["model"]: t.line.color for t in rob.data} == {m: model_colour(m) for m in MODELS}
    det = det_figure(
        [{"label": "centroid", "model": m, "det": {"fpir": [0.01, 0.1], "fnir": [0.2, 0.1]}} for m in MODELS]
    )
    assert [t.line.color for t in det.data] == [model_colour(m) for m in MODELS]
    hist = distance_histogram(d, y, 0.42, model="facenet-casia-webface")
    assert hist.layout.shapes[0].line.color == model_colour("facenet-casia-webface")
    shipped = read_json(DISTRIBUTIONS)  # the Verify tab's LFW distributions
    verify = compare_figure([(m, 0.4, 0.5, shipped[m]) for m in MODELS])
    pair_lines = [s.line.color for s in verify.layout.shapes if s.line.width == 4]
    assert pair_lines == [model_colour(m) for m in MODELS]
    # distinct for the built-in models, and a fine-tuned model's colour is the same in another process
    # (Python's own hash() of a string changes from one process to the next)
    assert len({model_colour(m) for m in (*MODELS, "facenet-vggface2", "my-adapter")}) == 4
    code = "from facedemo.explorer.colours import model_colour; print(model_colour('my-adapter'))"
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)},
            timeout=120,
        )
        assert out.stdout.strip() == model_colour("my-adapter"), out.stderr


def test_person_colours_do_not_repeat_up_to_forty_people():
    from plotly.colors import hex_to_rgb
    from skimage.color import rgb2lab

    people = [f"person {i:02d}" for i in range(40)]
    colours = person_colours(people)
    assert len(set(colours.values())) == 40
    lab = rgb2lab(np.array([[hex_to_rgb(c) for c in PERSON_PALETTE]]) / 255.0)[0]
    gaps = np.linalg.norm(lab[:, None] - lab[None, :], axis=2) + np.eye(len(lab)) * 1e9
    assert len(PERSON_PALETTE) >= 40 and gaps.min() >= 20  # far apart, not merely different hex codes
    # a map gives every person their colour, and a second map of the same gallery the same one
    vectors = np.random.default_rng(1).normal(size=(80, 8))
    names = [p for p in people for _ in range(2)]
    fig = embedding_map(vectors, names, "pca", people=people)
    assert {t.name: t.marker.color for t in fig.data} == colours
    half = embedding_map(vectors[:20], names[:20], "pca", people=people)
    assert {t.name: t.marker.color for t in half.data} == {p: colours[p] for p in people[:10]}


def test_robustness_compares_models_only_at_severities_both_have():
    def figures(accuracy):
        return SliceMetrics(accuracy, 0.99, 0.9, 0.4, 1.2, 0)

    clean = figures(0.98)
    result = RobustnessResult(
        {
            "facenet-casia-webface": ModelRobustness(
                "facenet-casia-webface",
                1.1,
                clean,
                {"blur": {1: figures(0.97), 3: figures(0.87), 5: figures(0.5)}, "dark": {3: figures(0.9)}},
                100,
            ),
            "dlib-resnet": ModelRobustness(
                "dlib-resnet",
                0.4,
                clean,
                {"blur": {1: figures(0.98), 3: figures(0.92)}, "dark": {3: figures(0.9)}},
                100,
            ),
        },
        {},
        "pairsDevTest.txt",
        1000,
        1e-3,
    )
    compared = result.compared()
    assert compared["blur"] == {"levels": [1, 3], "left_out": {"facenet-casia-webface": [5]}}
    assert compared["dark"] == {"levels": [3], "left_out": {}}
    fig = robustness_figure(result)
    blur = [t for t in fig.data if t.meta["condition"] == "blur"]
    assert [list(t.x) for t in blur] == [[0, 1, 3], [0, 1, 3]]  # no point at 5 for the model that has one
    assert 0.5 not in blur[0].y
    assert result.to_json()["compared"]["blur"]["left_out"] == {"facenet-casia-webface": [5]}

    from facedemo.ui.explore_tab import left_out_lines

    note = "\n".join(left_out_lines(result))
    assert "blur: facenet-casia-webface at severity 5" in note and "left out" in note


def test_the_shipped_robustness_figures_are_drawn_fairly():
    """On the figures that ship: every panel draws each model at exactly the severities all models have."""
    result = shipped_result()
    assert set(result.models) == set(MODELS)
    fig = robustness_figure(result)
    compared = result.compared()
    assert set(compared) == set(CONDITIONS)
    for name, c in compared.items():
        common = set.intersection(*(set(m.conditions[name]) for m in result.models.values()))
        assert c["levels"] == sorted(common)
        lines = [t for t in fig.data if t.meta["condition"] == name]
        assert len(lines) == 2 and all(list(t.x) == [0, *c["levels"]] for t in lines)
        for model, left in c["left_out"].items():
            assert set(left) == set(result.models[model].conditions[name]) - common


@pytest.mark.slow
def test_every_model_in_one_det_figure(settings, tmp_path):
    """The shipped open-set curves of both offline models, at each gallery size, in one figure: a colour per
    model, a dash per decision method."""
    from dataclasses import replace

    from facedemo.services import Services, lfw

    services = Services(replace(settings, gallery_dir=tmp_path / "gallery", public=False))
    for size in (10, 100, 1000):
        curves, note = lfw.open_set_comparison(services.pipeline, size)
        fig = det_figure(curves)
        drawn = {t.meta["model"] for t in fig.data}
        assert drawn == set(MODELS), note
        for model in MODELS:
            traces = [t for t in fig.data if t.meta["model"] == model]
            assert {t.line.color for t in traces} == {model_colour(model)}
            assert len({t.line.dash for t in traces}) == len(traces) == 4  # centroid, nearest, knn, classifier
            assert f"with {size:,} people enrolled" in note
    one, _ = lfw.open_set_comparison(services.pipeline, 100, ["dlib-resnet"])
    assert {c["model"] for c in one} == {"dlib-resnet"}


@pytest.mark.slow
@pytest.mark.shared
def test_a_small_gallery_keeps_its_people_together_on_the_map(shared_faces, tmp_path):
    """13 LFW people with three photos each, enrolled with both offline models: on each model's 2-D map (as
    `explore --json` gives it), at least 80% of the faces have a face of the same person as their nearest
    neighbour. (umap-learn's default neighbourhood of 15 holds 12 strangers for 2 faces of one's own.)"""
    lfw = shared_faces / "lfw"
    people = sorted(p for p in lfw.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) >= 3)[:13]
    folder = tmp_path / "people"
    for person in people:
        (folder / person.name).mkdir(parents=True)
        for photo in sorted(person.glob("*.jpg"))[:3]:
            (folder / person.name / photo.name).symlink_to(photo)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "FACEDEMO_HOME": str(tmp_path / "home"),
        "FACEDEMO_GALLERY_MODELS": ",".join(MODELS),  # a person is enrolled once and embedded by both
    }

    def cli(*args):
        out = subprocess.run(
            [sys.executable, "-m", "facedemo", *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=900
        )
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout

    gallery = tmp_path / "gallery"
    cli("import", str(folder), "--gallery", str(gallery))
    report = json.loads(cli("explore", "--gallery", str(gallery), "--out", str(tmp_path / "r.html"), "--json"))
    for model in MODELS:
        points = [p for p in report["points"] if p["model"] == model]
        names = np.array([p["person"] for p in points])
        assert len(points) >= 33 and len(set(names)) == 13  # a group photo or two is skipped, with its reason
        xy = np.array([[p["x"], p["y"]] for p in points])
        d = np.linalg.norm(xy[:, None] - xy[None, :], axis=2) + np.eye(len(xy)) * 1e9
        same = names[d.argmin(axis=1)] == names
        assert same.mean() >= 0.8, f"{model}: {same.mean():.0%} of faces beside their own person"
        assert report["projections"][model] == {"method": "umap", "metric": "cosine", "min_dist": 0.1, "n_neighbors": 3}
