"""Test-time flip: a face's embedding averaged with its mirror image's, on real faces with dlib-resnet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from PIL import ImageOps

from facedemo.errors import GalleryError, InvalidParameterError
from facedemo.pipeline import Pipeline
from facedemo.settings import Settings
from facedemo.vectors import l2_distance

MODEL = "dlib-resnet"


@pytest.fixture(scope="module")
def hopper_crop(pipeline, hopper):
    (face,) = pipeline.detect(hopper)
    return pipeline.aligned(hopper, face, MODEL)


def test_flip_changes_the_embedding_of_a_real_face(pipeline, hopper_crop):
    plain = pipeline.embed_crops(MODEL, [hopper_crop], flip=False)[0]
    flipped = pipeline.embed_crops(MODEL, [hopper_crop], flip=True)[0]
    mirror = pipeline.embed_crops(MODEL, [ImageOps.mirror(hopper_crop)], flip=False)[0]
    assert np.linalg.norm(flipped) == pytest.approx(1.0, abs=1e-5)
    assert l2_distance(plain, flipped) > 1e-3  # a real face is not exactly symmetric
    # the average lies between the face and its mirror image, closer to each than they are to each other
    assert l2_distance(flipped, plain) < l2_distance(plain, mirror)
    assert l2_distance(flipped, mirror) < l2_distance(plain, mirror)


def test_a_face_and_its_mirror_image_get_the_same_flipped_embedding(pipeline, hopper_crop, astronaut):
    (face,) = pipeline.detect(astronaut)
    crops = [hopper_crop, pipeline.aligned(astronaut, face, MODEL)]
    ours = pipeline.embed_crops(MODEL, crops, flip=True)
    mirrored = pipeline.embed_crops(MODEL, [ImageOps.mirror(c) for c in crops], flip=True)
    assert np.allclose(ours, mirrored, atol=1e-5)
    assert l2_distance(ours[0], ours[1]) > pipeline.threshold(MODEL)  # two people stay two people


def test_the_setting_wins_over_the_model_default(settings):
    pipeline = Pipeline(settings)
    assert pipeline.flip(MODEL) is pipeline.spec(MODEL).flip
    assert Pipeline(replace(settings, flip=True)).flip(MODEL) is True
    assert Pipeline(replace(settings, flip=False)).flip(MODEL) is False


def test_facedemo_flip_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("FACEDEMO_FLIP", "on")
    assert Settings.from_env().flip is True
    monkeypatch.setenv("FACEDEMO_FLIP", "0")
    assert Settings.from_env().flip is False
    monkeypatch.setenv("FACEDEMO_FLIP", "")
    assert Settings.from_env().flip is None
    monkeypatch.setenv("FACEDEMO_FLIP", "sometimes")
    with pytest.raises(InvalidParameterError, match="FACEDEMO_FLIP"):
        Settings.from_env()


def test_flipped_embeddings_are_cached_apart(settings, tmp_path, shared_faces):
    from facedemo.evaluation.embed import embed_images

    photos = sorted((shared_faces / "lfw" / "Aaron_Peirsol").glob("*.jpg"))[:2]
    plain = Pipeline(replace(settings, home=tmp_path, flip=False))
    flipped = Pipeline(replace(settings, home=tmp_path, flip=True))
    a = embed_images(plain, photos, MODEL)
    b = embed_images(flipped, photos, MODEL)
    assert (a.computed, b.computed) == (2, 2)  # the flip run did not reuse the plain vectors
    files = sorted(p.name for p in (tmp_path / "cache").glob("embeddings-*.npz"))
    assert len(files) == 2 and sum(name.endswith("-flip.npz") for name in files) == 1
    assert l2_distance(a.vectors[photos[0]], b.vectors[photos[0]]) > 1e-3
    again = embed_images(Pipeline(replace(settings, home=tmp_path, flip=True)), photos, MODEL)
    assert again.computed == 0 and np.allclose(again.vectors[photos[0]], b.vectors[photos[0]])


def test_a_gallery_keeps_the_flip_it_was_enrolled_with(settings, hopper_path, tmp_path):
    from facedemo.gallery import Gallery, open_store

    store = open_store(tmp_path / "gallery")
    plain = Gallery.open(Pipeline(replace(settings, flip=False, model=MODEL)), store)
    plain.enroll("Grace Hopper", [hopper_path])
    assert store.flip(MODEL) is False
    # flip switched on later: this gallery still embeds without it, so identification is unchanged
    later = Gallery.open(Pipeline(replace(settings, flip=True, model=MODEL)), store)
    assert later.flip(MODEL) is False
    match = later.identify(hopper_path).faces[0]
    assert match.name == "Grace Hopper" and match.distance < 1e-3
    records, vectors = store.vectors(MODEL, embeddings=True)
    with pytest.raises(GalleryError, match="flip"):  # the store itself refuses to mix the two kinds
        store.put_vectors(MODEL, records, vectors, flip=True)
    # an empty collection takes the setting in force
    assert Gallery.open(later.pipeline, open_store(tmp_path / "other")).flip(MODEL) is True


@pytest.mark.slow
def test_cli_flip_flag(hopper_path, astronaut, tmp_path, home):
    astronaut.save(tmp_path / "astronaut.jpg")

    def distance(*flags):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "facedemo",
                "verify",
                str(hopper_path),
                str(tmp_path / "astronaut.jpg"),
                "--model",
                MODEL,
                "--json",
                *flags,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "FACEDEMO_HOME": str(home)},
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)["distance"]

    assert distance("--flip") != distance("--no-flip")
