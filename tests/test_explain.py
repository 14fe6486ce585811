"""Where each model looks: occlusion maps over the chip each model sees, through the pipeline and the CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from test_cli_gallery import one_error_line

from facedemo.cli import main
from facedemo.errors import InvalidParameterError, NoFaceError
from facedemo.explorer.figures import occlusion_figure
from facedemo.models.registry import get_spec
from facedemo.pipeline import Pipeline
from facedemo.vision.occlusion import GREY, default_grid, occluded_copies, occlusion_map, patch_layout

MODELS = ("dlib-resnet", "facenet-casia-webface")
# same-person LFW pairs of View 1's test half (pairsDevTest.txt), frontal enough for every model
PAIRS = (("Aaron_Peirsol", 1, 2), ("Abdullah_Gul", 13, 14))


def lfw(shared_faces, name: str, number: int):
    return shared_faces / "lfw" / name / f"{name}_{number:04d}.jpg"


def test_the_patches_cover_the_chip_one_square_per_copy():
    chip = Image.new("RGB", (150, 150), (255, 0, 0))
    copies, patch, stride = occluded_copies(chip, 7)
    assert (patch, stride) == patch_layout(150, 7) and len(copies) == 49
    covered = np.zeros((150, 150), bool)
    for copy in copies:
        grey = np.all(np.asarray(copy) == GREY, axis=2)
        ys, xs = np.nonzero(grey)
        assert grey.sum() == patch * patch and xs.max() - xs.min() + 1 == patch  # one whole square, inside the chip
        covered |= grey
    assert covered.all()
    assert (default_grid(False), default_grid(True)) == (7, 14)  # finer where a GPU embeds the copies
    assert patch_layout(150, 14) == (20, 10.0)  # still half-overlapping, edge to edge


def test_the_map_is_the_change_in_distance_from_one_batch():
    """A fake embedder (the mean colour of the top-left quarter) shows the arithmetic and the single call."""
    calls = []

    def embed(chips):
        calls.append(len(chips))
        rows = np.array([np.asarray(c)[:40, :40].reshape(-1, 3).mean(0) + 1 for c in chips])
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    chip, other = Image.new("RGB", (160, 160), (250, 10, 10)), Image.new("RGB", (160, 160), (200, 60, 20))
    m = occlusion_map("fake", embed, chip, other, 4, 1.0)
    assert calls == [2 + 16]  # the chip, the other face and every occluded copy, in one call
    values = np.array(m.values)
    assert values[0, 0] != 0 and np.all(values[2:, 2:] == 0)  # only squares over the top-left quarter matter
    assert m.value_at(0.05, 0.05) == pytest.approx(values[0, 0])
    record = m.to_json()
    assert record["grid"] == 4 and len(record["map"]) == 4 and record["chip_size"] == [160, 160]
    json.dumps(record)
    figure = occlusion_figure([m])  # the chip, the map over it, and the other face below
    assert [t.type for t in figure.data] == ["image", "heatmap", "image"]
    assert np.allclose(figure.data[1].z, values)


@pytest.fixture(scope="module")
def both(casia_settings):
    return Pipeline(replace(casia_settings, model=None))


@pytest.mark.slow
@pytest.mark.shared
def test_hiding_the_eyes_moves_the_distance_more_than_hiding_a_corner(shared_faces, both):
    """On real same-person pairs, for both offline models: the eyes (where each model's template puts them)
    matter more than the chip's corners, which hold background."""
    eyes, corners = {m: [] for m in MODELS}, {m: [] for m in MODELS}
    for name, i, j in PAIRS:
        explanation = both.explain(lfw(shared_faces, name, i), lfw(shared_faces, name, j), MODELS)
        assert [m.model for m in explanation.maps] == list(MODELS)
        for m in explanation.maps:
            assert m.grid == 7 and m.chip_size == (get_spec(m.model).input_size,) * 2  # the chip the model sees
            assert m.same_person
            left, right = get_spec(m.model).template[:2]
            eyes[m.model].append(np.mean([abs(m.value_at(*left)), abs(m.value_at(*right))]))
            corners[m.model].append(np.mean([abs(m.value_at(x, y)) for x in (0.02, 0.98) for y in (0.02, 0.98)]))
    for model in MODELS:
        assert np.mean(eyes[model]) > 1.5 * np.mean(corners[model]), (model, eyes[model], corners[model])


def test_explain_refuses_what_it_cannot_do(pipeline, hopper_path, no_face):
    with pytest.raises(NoFaceError, match="Image B has no face"):
        pipeline.explain(hopper_path, no_face, ["dlib-resnet"])
    with pytest.raises(InvalidParameterError, match="occlusion grid"):
        pipeline.explain(hopper_path, hopper_path, ["dlib-resnet"], grid=100)


@pytest.mark.slow
@pytest.mark.shared
def test_explain_json_on_the_command_line(shared_faces, casia_weights, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("FACEDEMO_HOME", str(tmp_path))
    monkeypatch.setenv("FACEDEMO_DEVICE", "cpu")
    monkeypatch.setenv("FACEDEMO_FACENET_CASIA_WEBFACE_WEIGHTS", str(casia_weights))
    name, i, j = PAIRS[0]
    a, b = lfw(shared_faces, name, i), lfw(shared_faces, name, j)
    assert main(["explain", str(a), str(b), "--grid", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = {m["model"]: m for m in result["models"]}
    assert set(rows) == set(MODELS)  # every available model
    assert [u["model"] for u in result["unavailable"]] == ["facenet-vggface2"]
    for row in rows.values():
        assert row["grid"] == 3 and np.array(row["map"]).shape == (3, 3) and 0 < row["base_distance"] < 2

    text = tmp_path / "not-a-photo.jpg"
    text.write_text("hello")
    assert main(["explain", str(a), str(text), "--model", "dlib-resnet"]) == 2
    assert "error: " in one_error_line(capsys.readouterr().err)
