"""The face detectors as a choice (vision/detectors.py): each finds the faces of real photos in the same form,
dlib's landmarks mapped onto MTCNN's give the same aligned chips, and the CLI, the use case and the dashboard's
handler show every detector side by side."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_cli_core import run

from facedemo.errors import InvalidParameterError
from facedemo.settings import DETECTORS, Settings
from facedemo.vision.detect import central_face
from facedemo.vision.detectors import check_detector, mtcnn_points

GROUP = Path(__file__).resolve().parent.parent / "facedemo" / "ui" / "examples" / "group.jpg"


def lfw_sample(shared_faces: Path, n: int, seed: int) -> list[Path]:
    photos = sorted((shared_faces / "lfw").glob("*/*.jpg"))
    return random.Random(seed).sample(photos, n)


def test_unknown_detector_is_a_sentence(monkeypatch):
    with pytest.raises(InvalidParameterError, match="Unknown face detector 'yolo': use one of mtcnn, dlib-hog"):
        check_detector("yolo")
    assert check_detector(None) == "mtcnn" and check_detector(" DLIB-HOG ") == "dlib-hog"
    monkeypatch.setenv("FACEDEMO_DETECTOR", "haar")
    with pytest.raises(InvalidParameterError, match="FACEDEMO_DETECTOR must be mtcnn or dlib-hog or dlib-cnn"):
        Settings.from_env()
    monkeypatch.setenv("FACEDEMO_DETECTOR", "dlib-hog")
    assert Settings.from_env().detector == "dlib-hog"


def test_dlib_points_become_mtcnn_order():
    """dlib's order (image-right eye's corners, image-left eye's, nose base) -> left eye, right eye, nose tip,
    mouth left, mouth right: the eyes are their corners' means; the mouth sits below the nose, left to right."""
    points = mtcnn_points([(154, 109), (138, 110), (99, 109), (114, 110), (126, 146)])
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = points
    assert (lx, ly) == (106.5, 109.5) and (rx, ry) == (146.0, 109.5)
    assert lx < nx < rx and ny < 146 and mly > 146 and mry > 146 and mlx < nx < mrx


@pytest.mark.parametrize("name", ["mtcnn", "dlib-hog"])
def test_each_detector_finds_the_group_photos_faces(pipeline, name):
    image = pipeline.load(GROUP)
    faces = pipeline.detector_named(name).detect(image)
    real = [f for f in faces if f.score > 0.5]  # dlib-hog also boxes the mission patch, at a margin of 0.09
    assert len(real) == 2, faces
    for face in real:
        assert len(face.landmarks) == 5
        (lx, _), (rx, _), (nx, ny), (mlx, mly), (mrx, _) = face.landmarks
        assert face.box[0] <= lx < nx < rx <= face.box[2] and mlx < mrx and mly > ny


@pytest.mark.shared
@pytest.mark.parametrize("name", ["mtcnn", "dlib-hog", "dlib-cnn"])
def test_each_detector_finds_one_face_on_lfw(shared_faces, pipeline, name):
    detector = pipeline.detector_named(name)
    photos = lfw_sample(shared_faces, 3 if name == "dlib-cnn" else 10, seed=7)
    found = [detector.detect(pipeline.load(p)) for p in photos]
    assert all(faces for faces in found), [p.name for p, f in zip(photos, found) if not f]


@pytest.mark.shared
@pytest.mark.slow
def test_hog_chips_match_mtcnn_chips_on_lfw(shared_faces, pipeline):
    """dlib-HOG's box + shape-predictor landmarks, mapped onto MTCNN's five, align a face as MTCNN does: on 120
    LFW photos the landmarks were 0.087 of the eyes' distance apart on average and the dlib-resnet embeddings of
    the two similarity-aligned chips had a cosine of 0.994 on average, 0.977 at worst (docs/BENCHMARKS.md)."""
    mtcnn, hog = pipeline.detector_named("mtcnn"), pipeline.detector_named("dlib-hog")
    distances, cosines = [], []
    for path in lfw_sample(shared_faces, 16, seed=3):
        image = pipeline.load(path)
        a, b = central_face(mtcnn.detect(image), image.size), central_face(hog.detect(image), image.size)
        ours, theirs = np.asarray(a.landmarks), np.asarray(b.landmarks)
        distances.append(np.linalg.norm(ours - theirs, axis=1).mean() / np.linalg.norm(ours[1] - ours[0]))
        chips = [pipeline.aligned(image, face, "dlib-resnet", "similarity") for face in (a, b)]
        vectors = pipeline.embed_crops("dlib-resnet", chips, flip=False)
        cosines.append(float(vectors[0] @ vectors[1]))
    assert np.mean(distances) < 0.12 and max(distances) < 0.25, distances
    assert np.mean(cosines) > 0.985 and min(cosines) > 0.95, cosines


@pytest.mark.slow
def test_detect_compare_json_lists_every_detector(home):
    out = run("detect", GROUP, "--compare", "--json", home=home)
    assert out.returncode == 0, out.stderr
    runs = json.loads(out.stdout)["detectors"]
    assert [r["detector"] for r in runs] == list(DETECTORS)
    for r in runs:
        assert r["error"] is None and r["ms"] > 0 and r["count"] == len(r["faces"]) >= 2
        assert all(len(f["landmarks"]) == 5 for f in r["faces"])
    one = run("detect", GROUP, "--detector", "dlib-hog", "--json", home=home)
    assert one.returncode == 0 and json.loads(one.stdout)["detector"] == "dlib-hog"
    wrong = run("detect", GROUP, "--detector", "yolo", "--json", home=home)
    assert wrong.returncode == 2 and "Unknown face detector 'yolo'" in wrong.stderr
    assert "Traceback" not in wrong.stderr


@pytest.mark.slow
def test_dashboard_handler_draws_every_detector(settings, tmp_path):
    from facedemo.services import Services
    from facedemo.ui.detectors_view import compare_detectors

    services = Services(Settings.from_env(device="cpu", home=settings.home, gallery_dir=tmp_path / "gallery"))
    pictures, table, record = compare_detectors(services, str(GROUP))
    assert [caption.split(":")[0] for _, caption in pictures] == list(DETECTORS)
    assert all(isinstance(p, Image.Image) and p.size == (949, 512) for p, _ in pictures)
    assert [r["detector"] for r in record["detectors"]] == list(DETECTORS)
    assert all(r["count"] >= 2 and r["ms"] > 0 for r in record["detectors"]) and "| mtcnn | 2 |" in table


@pytest.mark.shared
@pytest.mark.slow
def test_a_border_finds_the_faces_cut_by_the_edge(shared_faces, pipeline, settings):
    """The cast photos cropped through their outer faces: MTCNN misses most of the cut faces, and finds them
    all on the photo inside a black border (FACEDEMO_EDGE_BORDER)."""
    from dataclasses import replace

    from facedemo.bench.detectors import cut_faces_found, edge_cuts, group_photos
    from facedemo.pipeline import Pipeline

    images = {p.name: pipeline.load(p) for p in group_photos(str(shared_faces / "bbt_faceapi" / "_group_photos"))}
    cuts = edge_cuts({n: pipeline.detect(i) for n, i in images.items()}, images)
    plain, total, _ = cut_faces_found(pipeline.detect, cuts)
    with_border = Pipeline(replace(settings, edge_border=0.25))
    found, _, _ = cut_faces_found(with_border.detect, cuts)
    assert total >= 6 and plain < found == total, (plain, found, total)


@pytest.mark.slow
def test_the_api_compares_detectors_on_the_group_photo(settings, tmp_path):
    """The dashboard's /compare_detectors through gradio_client: a picture per detector, with its caption."""
    client_module = pytest.importorskip("gradio_client")
    from test_app import launch

    demo, _, url = launch(settings, tmp_path / "gallery", public=True)
    try:
        client = client_module.Client(url, verbose=False)
        pictures, table, record = client.predict(client_module.handle_file(str(GROUP)), api_name="/compare_detectors")
        assert [p["caption"].split(":")[0] for p in pictures] == list(DETECTORS)
        assert [r["detector"] for r in record["detectors"]] == list(DETECTORS) and "| dlib-hog | 3 |" in table
        with pytest.raises(Exception, match="Photo: a web address cannot be used here"):
            client.predict(client_module.handle_file("http://127.0.0.1:9/a.jpg"), api_name="/compare_detectors")
    finally:
        demo.close()


def test_another_detector_or_a_border_never_reuses_mtcnns_data(pipeline):
    """Cached detections and embeddings, and the shipped data (strangers' vectors, robustness figures), are keyed
    on the detector that found the faces: MTCNN's shipped strangers apply to MTCNN's faces only."""
    from dataclasses import replace

    from facedemo.evaluation.embed import detector_key
    from facedemo.gallery.classifier import shipped_strangers
    from facedemo.pipeline import Pipeline

    model = "dlib-resnet"
    keys = {detector_key(pipeline.settings)}
    assert shipped_strangers(pipeline, model, pipeline.flip(model)) is not None  # MTCNN: the shipped ones apply
    for change in ({"detector": "dlib-hog"}, {"detector": "dlib-cnn"}, {"edge_border": 0.25}):
        other = Pipeline(replace(pipeline.settings, **change))
        keys.add(detector_key(other.settings))
        assert shipped_strangers(other, model, other.flip(model)) is None, change
    assert len(keys) == 4


@pytest.mark.slow  # exports and checks three networks, then two engines on the group photos
def test_mtcnn_on_onnx_runtime_finds_torchs_faces(pipeline, tmp_path, monkeypatch):
    """On a CPU MTCNN's three networks run on ONNX Runtime (vision/mtcnn_onnx.py), exported once into
    $TORCH_HOME and checked against torch: the same faces, boxes, landmarks and scores as torch's, on the
    dashboard's examples and the group photos of ../shared when it is there. A cached export that is broken
    is exported again; FACEDEMO_CPU_ENGINE=torch keeps torch."""
    from dataclasses import replace

    from facedemo.pipeline import Pipeline
    from facedemo.settings import SHARED_FACES
    from facedemo.vision.detect import Detector

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # a fresh export, checked on the way
    s = pipeline.settings
    limits = (s.min_face_size, s.min_face_score, s.max_side, s.min_face_fraction)
    onnx, torch = Detector("cpu", *limits, "onnx", 2), Detector("cpu", *limits, "torch", 2)
    assert (onnx.engine, onnx.engine_note, torch.engine) == ("onnx", None, "torch")
    exported = sorted(tmp_path.glob("facedemo/mtcnn-*/*.onnx"))
    assert [p.name for p in exported] == ["onet.onnx", "pnet.onnx", "rnet.onnx"]

    groups = SHARED_FACES / "bbt_faceapi" / "_group_photos"
    photos = sorted(GROUP.parent.glob("*.jpg")) + (sorted(groups.iterdir()) if groups.is_dir() else [])
    faces = 0
    for path in photos:
        image = Image.open(path).convert("RGB")
        ours, theirs = onnx.detect(image), torch.detect(image)
        assert len(ours) == len(theirs), path.name
        for a, b in zip(ours, theirs):
            assert np.abs(np.subtract(a.box, b.box)).max() < 1e-3, path.name
            assert np.abs(np.subtract(a.landmarks, b.landmarks)).max() < 1e-3, path.name
            assert abs(a.score - b.score) < 1e-5, path.name
        faces += len(ours)
    assert faces >= 4  # group.jpg's two astronauts, the others' faces

    exported[1].write_bytes(b"not a graph")  # a broken cache: exported again, not an error
    again = Detector("cpu", *limits, "onnx", 2)
    assert again.engine == "onnx" and exported[1].stat().st_size > 1000
    assert Pipeline(s).detector.engine == "onnx"  # the default on a CPU with onnxruntime
    assert Pipeline(replace(s, cpu_engine="torch")).detector.engine == "torch"
