"""Robustness slices on real LFW pairs (real MTCNN, real dlib): the figures, their caches, the command line,
and the Explorer's curves."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from facedemo.cli import main
from facedemo.evaluation import read_pairs
from facedemo.evaluation.robustness import (
    ModelRobustness,
    RobustnessResult,
    SliceMetrics,
    cached_robustness,
    evaluate_robustness,
)
from facedemo.explorer import robustness_figure
from facedemo.settings import Settings

ENTRY_KEYS = ["severity", "accuracy", "auc", "val", "mean_pos_distance", "mean_neg_distance", "detection_failures"]
PER_CLASS = 8


def small_dev_test(shared_faces: Path, folder: Path) -> Path:
    """A root holding the first 8 same-person and 8 different-person pairs of LFW View 1's pairsDevTest.txt,
    under that name, with the people's folders linked in: a small stand-in for the real file."""
    lfw = shared_faces / "lfw"
    lines = (lfw / "pairsDevTest.txt").read_text().splitlines()
    per_class = int(lines[0])
    chosen = lines[1 : 1 + PER_CLASS] + lines[1 + per_class : 1 + per_class + PER_CLASS]
    folder.mkdir(parents=True, exist_ok=True)
    for line in chosen:
        fields = line.split()
        for name in (fields[0],) if len(fields) == 3 else (fields[0], fields[2]):
            if not (folder / name).exists():
                (folder / name).symlink_to(lfw / name)
    (folder / "pairsDevTest.txt").write_text("\n".join([str(PER_CLASS), *chosen]) + "\n")
    return folder


@pytest.fixture(scope="module")
def measured(shared_faces, tmp_path_factory):
    """dlib-resnet on 16 real pairs, clean and at the worst blur: (home, root, pipeline, result)."""
    from facedemo.pipeline import Pipeline

    base = tmp_path_factory.mktemp("robustness")
    root = small_dev_test(shared_faces, base / "lfw")
    pipeline = Pipeline(Settings.from_env(home=base / "home", device="cpu"))
    pairs = read_pairs(root / "pairsDevTest.txt", root)
    result = evaluate_robustness(pipeline, pairs, ["dlib-resnet"], ["blur"], [5], pairs_file="pairsDevTest.txt")
    return base / "home", root, pipeline, result


@pytest.mark.slow
def test_worst_blur_is_worse_than_clean(measured):
    _, _, _, result = measured
    data = result.to_json()
    assert list(data["models"]) == ["dlib-resnet"] and result.pairs == 2 * PER_CLASS
    model = data["models"]["dlib-resnet"]
    assert list(model) == ["clean", "conditions"] and list(model["conditions"]) == ["blur"]
    (worst,) = model["conditions"]["blur"]
    assert list(worst) == ENTRY_KEYS and worst["severity"] == 5
    assert list(model["clean"]) == ENTRY_KEYS[1:]
    clean = model["clean"]
    assert clean["mean_pos_distance"] < clean["mean_neg_distance"]  # the model works on these pairs
    assert worst["mean_pos_distance"] > clean["mean_pos_distance"] + 0.05  # blur pulls a person's photos apart
    assert worst["accuracy"] < clean["accuracy"] and worst["auc"] < clean["auc"]
    assert result.models["dlib-resnet"].computed > 0


@pytest.mark.slow
def test_results_are_saved_and_a_second_run_computes_nothing(measured, monkeypatch):
    home, root, pipeline, first = measured
    files = list((home / "robustness").glob("dlib-resnet-*.json"))
    assert [str(f) for f in files] == [first.files["dlib-resnet"]]
    for cache in (home / "cache").glob("*.npz"):  # even without the embeddings, the saved figures serve
        cache.unlink()
    monkeypatch.setattr(pipeline.detector, "detect_many", lambda images: pytest.fail("MTCNN ran again"))
    monkeypatch.setattr(pipeline.embedder("dlib-resnet"), "embed", lambda crops: pytest.fail("the model ran again"))
    pairs = read_pairs(root / "pairsDevTest.txt", root)
    again = evaluate_robustness(pipeline, pairs, ["dlib-resnet"], ["blur"], [5], pairs_file="pairsDevTest.txt")
    assert again.models["dlib-resnet"].computed == 0 and again.to_json() == first.to_json()
    # The Explorer reads the same file, computing nothing either.
    cached = cached_robustness(pipeline, pairs, pairs_file="pairsDevTest.txt")
    assert cached.to_json()["models"] == first.to_json()["models"]


@pytest.mark.slow
def test_cli_json_shape_from_the_saved_results(measured, capsys, monkeypatch):
    home, root, _, first = measured
    monkeypatch.setenv("FACEDEMO_HOME", str(home))
    code = main(
        [
            "eval",
            "robustness",
            "--root",
            str(root),
            "--model",
            "dlib-resnet",
            "--conditions",
            "blur",
            "--severities",
            "5",
            "--json",
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["models"] == first.to_json()["models"]
    assert data["pairs"] == 2 * PER_CLASS and data["pairs_file"] == "pairsDevTest.txt" and data["degraded"] == "second"
    code = main(
        [
            "eval",
            "robustness",
            "--root",
            str(root),
            "--model",
            "dlib-resnet",
            "--conditions",
            "blur",
            "--severities",
            "5",
        ]
    )
    text = capsys.readouterr().out
    assert code == 0 and "blur:5" in text and "clean" in text and "0 photos embedded now" in text


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--conditions", "fog"], "Unknown condition 'fog'; choose from blur"),
        (
            ["--conditions", "blur", "--severities", "7"],
            "A severity is a whole number from 1 (mild) to 5 (harsh); got 7",
        ),
        (["--severities", "1,x"], "A severity is a whole number from 1 (mild) to 5 (harsh), not 'x'"),
    ],
)
def test_cli_refuses_a_bad_condition_or_severity_with_a_sentence(tmp_path, capsys, argv, words):
    assert main(["eval", "robustness", "--root", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and err.count("\n") == 1


@pytest.mark.slow
def test_explorer_figure_draws_the_saved_curves(measured):
    home, root, pipeline, result = measured
    fig = robustness_figure(result)
    (trace,) = fig.data  # one model, one condition: one panel, one line
    m = result.models["dlib-resnet"]
    assert list(trace.x) == [0, 5] and list(trace.y) == [m.clean.accuracy, m.conditions["blur"][5].accuracy]
    rate = robustness_figure(result, "detection_rate").data[0]
    assert list(rate.y) == [
        1 - m.clean.detection_failures / m.photos,
        1 - m.conditions["blur"][5].detection_failures / m.photos,
    ]


def test_figure_has_one_line_per_model_in_each_condition_panel():
    def figures(accuracy):
        return SliceMetrics(accuracy, 0.99, 0.9, 0.4, 1.2, 0)

    def model(name, conditions):
        return ModelRobustness(
            name, 0.5, figures(0.98), {c: {1: figures(0.9), 3: figures(0.8), 5: figures(0.6)} for c in conditions}, 100
        )

    result = RobustnessResult(
        {"dlib-resnet": model("dlib-resnet", ["blur", "dark", "mask"]), "tuned": model("tuned", ["blur", "dark"])},
        {},
        "pairsDevTest.txt",
        1000,
        1e-3,
    )
    fig = robustness_figure(result, "accuracy")
    panels = [a.text for a in fig.layout.annotations]
    assert panels == ["blur", "dark", "mask"]
    lines = [(t.meta["condition"], t.meta["model"]) for t in fig.data]
    assert lines == [
        ("blur", "dlib-resnet"),
        ("blur", "tuned"),
        ("dark", "dlib-resnet"),
        ("dark", "tuned"),
        ("mask", "dlib-resnet"),
    ]
    assert [t.name for t in fig.data if t.showlegend] == ["dlib-resnet", "tuned"]  # one legend entry per model
    assert all(list(t.x) == [0, 1, 3, 5] for t in fig.data)
    with pytest.raises(Exception, match="Unknown robustness figure"):
        robustness_figure(result, "loss")


@pytest.mark.slow
def test_services_read_the_saved_figures_for_the_explorer(measured):
    from facedemo.services import Services, lfw

    home, root, pipeline, result = measured
    services = Services(replace(pipeline.settings, gallery_dir=home / "gallery", public=False))
    assert lfw.robustness(services.pipeline, root).to_json()["models"] == result.to_json()["models"]
    with pytest.raises(Exception, match="No model here has robustness figures yet"):
        empty = Services(
            replace(Settings.from_env(home=home / "empty", device="cpu"), gallery_dir=home / "g2", public=False)
        )
        lfw.robustness(empty.pipeline, root)


def test_degraded_photos_have_caches_of_their_own_and_lost_faces_count(tmp_path):
    """Degradation happens before detection: darkened photos lose their faces (the fake detector finds none
    in a near-black image) and are counted; clean and degraded embeddings never share a cache file."""
    from PIL import Image
    from test_lfw import FakePipeline

    from facedemo.evaluation import embed_images

    paths = []
    for i in range(4):
        paths.append(tmp_path / f"dim{i}.png")
        Image.new("RGB", (100, 100), (40 + i, 40, 40)).save(paths[-1])
    pipeline = FakePipeline(tmp_path / "home")
    clean = embed_images(pipeline, paths, "fake", "similarity")
    dark = embed_images(pipeline, paths, "fake", "similarity", degradation=("dark", 5))
    assert clean.failures == () and set(dark.failures) == set(paths) and dark.computed == 4
    assert pipeline.detector.calls == 8
    again = FakePipeline(tmp_path / "home")
    assert embed_images(again, paths, "fake", "similarity").computed == 0
    assert embed_images(again, paths, "fake", "similarity", degradation=("dark", 5)).computed == 0
    assert (
        embed_images(again, paths, "fake", "similarity", degradation=("dark", 1)).computed == 4
    )  # another level: computed
    names = {f.name for f in (tmp_path / "home" / "cache").glob("*.npz")}
    clean_names = {n for n in names if "dark" not in n}  # the names clean runs always had
    assert len(clean_names) == 2 and {n.split("-")[0] for n in clean_names} == {"detections", "embeddings"}
    assert names - clean_names == {
        n.replace(".npz", f"-{level}.npz") for n in clean_names for level in ("dark5-p4", "dark1-p1.5")
    }
