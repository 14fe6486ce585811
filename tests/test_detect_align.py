"""Real MTCNN on real photos, and the 5-point alignment."""

import numpy as np
import pytest
from PIL import Image

from facedemo.models.registry import MODELS
from facedemo.vision.align import align_face, crop_face, similarity_transform
from facedemo.vision.detect import largest_face


def test_one_face_in_the_astronaut(pipeline, astronaut):
    faces = pipeline.detect(astronaut)
    assert len(faces) == 1
    face = faces[0]
    x1, y1, x2, y2 = face.box
    # Eileen Collins' face sits around x 170-300, y 20-200 in scikit-image's astronaut.
    assert 140 < x1 < 220 and 240 < x2 < 330 and 0 < y1 < 80 and 150 < y2 < 240
    assert face.score > 0.99
    left_eye, right_eye, nose, mouth_l, mouth_r = face.landmarks
    assert left_eye[0] < right_eye[0] and mouth_l[0] < mouth_r[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_l[1], mouth_r[1])
    for x, y in face.landmarks:
        assert x1 <= x <= x2 and y1 <= y <= y2


def test_no_face_is_an_empty_list(pipeline, no_face):
    assert pipeline.detect(no_face) == []


def test_tiny_and_flat_images_have_no_face(pipeline):
    assert pipeline.detect(Image.new("RGB", (8, 8), (128, 128, 128))) == []
    assert pipeline.detect(Image.new("RGB", (640, 480), (0, 0, 0))) == []


def test_group_photo_faces_left_to_right(pipeline, collage):
    faces = pipeline.detect(collage)
    assert len(faces) == 2
    assert faces[0].box[2] <= 512 < faces[1].box[0]


def test_min_face_size_and_score_are_settings(settings, astronaut):
    from dataclasses import replace

    from facedemo.pipeline import Pipeline

    small = astronaut.resize((128, 128))
    assert len(Pipeline(settings).detect(small)) == 1
    assert Pipeline(replace(settings, min_face_size=80)).detect(small) == []
    assert Pipeline(replace(settings, min_face_score=0.99999999)).detect(astronaut) == []


def test_huge_photo_is_downscaled_for_detection_and_boxes_map_back(pipeline, astronaut):
    big = astronaut.resize((4096, 4096))
    (face,) = pipeline.detect(big)
    (reference,) = pipeline.detect(astronaut)
    assert np.allclose(np.asarray(face.box) / 8, reference.box, atol=6)


def test_batched_detection_matches_single(pipeline, astronaut, collage, no_face):
    batch = pipeline.detector.detect_many([astronaut, collage, no_face, astronaut])
    assert [len(f) for f in batch] == [1, 2, 0, 1]
    assert np.allclose(batch[0][0].box, pipeline.detect(astronaut)[0].box, atol=1)


def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, size=(5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ rot.T + shift
    matrix = similarity_transform(src, dst)
    assert np.allclose(matrix[:, :2], rot, atol=1e-9) and np.allclose(matrix[:, 2], shift, atol=1e-9)


@pytest.mark.parametrize("name", ["dlib-resnet", "facenet-vggface2"])
def test_alignment_puts_the_eyes_on_the_template(pipeline, astronaut, name):
    spec = MODELS[name]
    rotated = astronaut.rotate(25, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=(0, 0, 0))
    face = largest_face(pipeline.detect(rotated))
    chip = align_face(rotated, face, spec.input_size, spec.template)
    assert chip.size == (spec.input_size, spec.input_size)
    # Detect again on the aligned chip (padded so MTCNN sees some context): the eyes sit on the template.
    pad = spec.input_size // 2
    canvas = Image.new("RGB", (spec.input_size + 2 * pad,) * 2)
    canvas.paste(chip, (pad, pad))
    (again,) = pipeline.detect(canvas)
    eyes = np.asarray(again.landmarks[:2]) - pad
    expected = np.asarray(spec.template[:2]) * spec.input_size
    assert np.abs(eyes - expected).max() < 0.06 * spec.input_size
    # and they are level although the photo was rotated by 25 degrees
    assert abs(eyes[0][1] - eyes[1][1]) < 0.03 * spec.input_size


def test_crop_alignment_keeps_the_box(pipeline, astronaut):
    face = pipeline.detect(astronaut)[0]
    crop = crop_face(astronaut, face, 160, 14)
    assert crop.size == (160, 160)
    # the crop is the box plus a margin: its centre is the face's centre
    reference = astronaut.crop(tuple(int(v) for v in face.box)).resize((160, 160))
    inner = crop.crop((7, 7, 153, 153)).resize((160, 160))
    diff = np.abs(np.asarray(inner, dtype=float) - np.asarray(reference, dtype=float)).mean()
    assert diff < 25


def test_native_dlib_chip_matches_the_derived_template(pipeline, astronaut):
    """dlib's own chip (its shape predictor in the MTCNN box, then get_face_chip) puts the eyes where the
    template derived from such chips (scripts/derive_templates.py) says: the two alignments agree."""
    spec = MODELS["dlib-resnet"]
    rotated = astronaut.rotate(-20, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=(0, 0, 0))
    face = largest_face(pipeline.detect(rotated))
    chip = pipeline.aligned(rotated, face, spec, "native")
    assert chip.size == (150, 150)
    pad = 75
    canvas = Image.new("RGB", (300, 300))
    canvas.paste(chip, (pad, pad))
    (again,) = pipeline.detect(canvas)
    eyes = np.asarray(again.landmarks[:2]) - pad
    assert np.abs(eyes - np.asarray(spec.template[:2]) * 150).max() < 0.06 * 150
    # facenet's native input is the margin crop it was trained on
    facenet = MODELS["facenet-vggface2"]
    assert np.array_equal(
        np.asarray(pipeline.aligned(astronaut, face, facenet, "native")),
        np.asarray(pipeline.aligned(astronaut, face, facenet, "crop")),
    )


def test_thumbnails_are_face_centred_squares_even_at_the_photo_edge():
    """The Gallery's and Album's tiles: a square around the face with a margin; where the face is at the
    photo's edge (bbt2's box starts at x = -17.9) the missing part is grey and the face stays in the middle."""
    from facedemo.gallery.regions import face_thumbnail
    from facedemo.vision.detect import Face

    photo = Image.new("RGB", (300, 200), (200, 30, 30))
    inside = face_thumbnail(photo, Face((100.0, 50.0, 160.0, 130.0), 0.99, ()))
    assert inside.width == inside.height == round(80 * 1.6)  # the longer side, 30% margin each side
    head = Image.new("RGB", (300, 300), (200, 30, 30))  # a head crop: the margin is what the photo holds
    tight = face_thumbnail(head, Face((20.0, 30.0, 280.0, 270.0), 0.99, ()))
    assert tight.width == tight.height == 300 and tight.getpixel((1, 1)) == (200, 30, 30)
    assert inside.getpixel((inside.width // 2, inside.height // 2)) == (200, 30, 30)
    edge = face_thumbnail(photo, Face((-17.9, 40.0, 42.0, 110.0), 0.99, ()))
    assert edge.width == edge.height
    assert edge.getpixel((2, edge.height // 2)) == (128, 128, 128)  # beyond the photo: grey, not stretched
    assert edge.getpixel((edge.width // 2, edge.height // 2)) == (200, 30, 30)
