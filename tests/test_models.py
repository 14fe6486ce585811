"""The model registry, dlib-resnet on real photos, and the facenet path with a local state_dict."""

import time
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from facedemo.errors import ModelUnavailableError, NoFaceError, UnknownModelError
from facedemo.models.registry import MODELS, get_spec
from facedemo.pipeline import Pipeline


def test_registry_is_data_and_unknown_names_say_what_exists():
    assert {"facenet-vggface2", "facenet-casia-webface", "dlib-resnet"} <= set(MODELS)
    assert MODELS["dlib-resnet"].dim == 128 and MODELS["facenet-vggface2"].dim == 512
    with pytest.raises(UnknownModelError, match="dlib-resnet"):
        get_spec("arcface-9000")


def test_dlib_embeddings_are_unit_length_and_batched(pipeline, astronaut, collage):
    image, faces = pipeline.analyze(collage, "dlib-resnet")
    assert len(faces) == 2
    vectors = np.stack([f.embedding for f in faces])
    assert vectors.shape == (2, 128) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    single = pipeline.analyze(astronaut, "dlib-resnet")[1][0].embedding
    assert np.linalg.norm(single - vectors[0]) < 0.1  # the same woman, cut from the collage


def test_dlib_same_person_under_augmentation_different_people(pipeline, astronaut, hopper):
    augmented = ImageEnhance.Brightness(astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT)).enhance(1.3)
    augmented = augmented.rotate(12, expand=True).resize((384, 384))
    same, *_ = pipeline.verify(astronaut, augmented, "dlib-resnet")
    different, *_ = pipeline.verify(astronaut, hopper, "dlib-resnet")
    assert same.same_person and same.distance < 0.35
    assert not different.same_person and different.distance > same.distance + 0.2
    assert same.similarity > different.similarity


def test_verify_says_which_face_it_used(pipeline, collage, astronaut):
    result, first, _ = pipeline.verify(collage, astronaut, "dlib-resnet")
    assert first.face_count == 2
    assert "holds 2 faces; the largest was used" in result.notes[0]


def test_verify_without_a_face_names_the_image(pipeline, astronaut, no_face):
    with pytest.raises(NoFaceError, match="Image B has no face"):
        pipeline.verify(astronaut, no_face, "dlib-resnet")


def test_facenet_path_with_a_local_state_dict(settings, facenet_weights, astronaut, collage):
    pipe = Pipeline(replace(settings, facenet_weights={"facenet-vggface2": str(facenet_weights)}))
    statuses = {s.name: s for s in pipe.models()}
    assert statuses["facenet-vggface2"].available and statuses["facenet-vggface2"].reason is None
    assert pipe.default_model() == "facenet-vggface2"
    embedder = pipe.embedder("facenet-vggface2")
    assert not embedder.module.training  # .eval() was called
    _, faces = pipe.analyze(collage, "facenet-vggface2")
    vectors = np.stack([f.embedding for f in faces])
    assert vectors.shape == (2, 512)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    again = pipe.analyze(collage, "facenet-vggface2")[1]
    assert np.allclose(vectors, np.stack([f.embedding for f in again]), atol=1e-5)  # deterministic in eval mode
    assert pipe.embedder("facenet-vggface2") is embedder  # loaded once


def test_facenet_rejects_a_file_of_the_wrong_layout(settings, tmp_path):
    import torch

    path = tmp_path / "wrong.pt"
    torch.save({"conv.weight": torch.zeros(3, 3)}, path)
    pipe = Pipeline(replace(settings, facenet_weights={"facenet-vggface2": str(path)}))
    with pytest.raises(ModelUnavailableError, match="not an InceptionResnetV1 state_dict"):
        pipe.embedder("facenet-vggface2")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    pipe = Pipeline(replace(settings, facenet_weights={"facenet-vggface2": str(tmp_path / "junk.pt")}))
    with pytest.raises(ModelUnavailableError, match="not a readable PyTorch weights file"):
        pipe.embedder("facenet-vggface2")


def test_facenet_offline_error_is_a_clear_sentence_and_fast(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    from facedemo.models import facenet

    facenet._reachable.cache_clear()
    pipe = Pipeline(replace(settings, facenet_weights={}))
    start = time.monotonic()
    with pytest.raises(ModelUnavailableError) as info:
        pipe.embedder("facenet-vggface2")
    elapsed = time.monotonic() - start
    message = str(info.value)
    assert "20180402-114759-vggface2.pt" in message and "FACEDEMO_FACENET_VGGFACE2_WEIGHTS" in message
    assert "Traceback" not in message
    assert elapsed < 10, f"the offline error took {elapsed:.1f} s"
    assert pipe.default_model() == "dlib-resnet"


def test_cached_weights_in_torch_home_are_found(settings, facenet_weights, tmp_path, monkeypatch):
    import shutil

    checkpoints = tmp_path / "torch" / "checkpoints"
    checkpoints.mkdir(parents=True)
    shutil.copy(facenet_weights, checkpoints / "20180402-114759-vggface2.pt")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    pipe = Pipeline(replace(settings, facenet_weights={}))
    assert {s.name: s for s in pipe.models()}["facenet-vggface2"].available
    assert pipe.embedder("facenet-vggface2").spec.dim == 512


def test_missing_configured_weights_file(settings, tmp_path):
    pipe = Pipeline(replace(settings, facenet_weights={"facenet-vggface2": str(tmp_path / "absent.pt")}))
    status = {s.name: s for s in pipe.models()}["facenet-vggface2"]
    assert not status.available and "does not exist" in status.reason


def test_cuda_asked_for_without_gpu_is_not_silent(settings):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    from facedemo.errors import FaceDemoError

    with pytest.raises(FaceDemoError, match="no CUDA GPU"):
        Pipeline(replace(settings, device="cuda")).device
    assert Pipeline(replace(settings, device="auto")).device.description.startswith("CPU")


def test_two_requests_at_once_get_the_same_answers(pipeline, astronaut, hopper):
    """Two visitors clicking at once: concurrent calls on one pipeline equal the sequential ones."""
    from concurrent.futures import ThreadPoolExecutor

    images = [astronaut, hopper] * 4
    sequential = [pipeline.analyze(image, "dlib-resnet")[1][0].embedding for image in images]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda image: pipeline.analyze(image, "dlib-resnet")[1][0].embedding, images))
    for a, b in zip(sequential, concurrent):
        assert np.allclose(a, b, atol=1e-5)


def test_a_model_that_needs_the_network_says_so_in_a_sentence(settings):
    """The Models panel and every Compare result said "gaierror: [Errno -2] Name or service not known"."""
    from facedemo.models.registry import model_status

    status = model_status(MODELS["facenet-vggface2"], settings)
    if status.available:
        pytest.skip("facenet-vggface2's weights are on this machine or can be downloaded")
    assert "facenet-vggface2's weights need a network connection the first time" in status.reason
    assert not any(word in status.reason for word in ("gaierror", "Errno", "Error:")), status.reason
