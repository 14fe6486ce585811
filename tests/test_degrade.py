"""The degradation registry: each condition is deterministic for a seed and changes the pixels the way its
name says, on real photos."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from facedemo.errors import FaceDemoError
from facedemo.vision.degrade import CONDITIONS, LFW_LAYOUT, FaceLayout, degrade, parse_condition


@pytest.fixture(scope="module")
def photo(hopper) -> Image.Image:
    # Grace Hopper, resized to an LFW-like 250-px square around her face.
    w, h = hopper.size
    return hopper.crop((w * 0.1, 0, w * 0.9, w * 0.8)).resize((250, 250))


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


def detail(image: Image.Image) -> float:
    """High-frequency energy: the variance of the edges (a Laplacian-like filter)."""
    return float(pixels(image.convert("L").filter(ImageFilter.FIND_EDGES))[2:-2, 2:-2].var())


@pytest.mark.parametrize("name", sorted(CONDITIONS))
def test_every_condition_is_deterministic_and_changes_the_photo(photo, name):
    for severity in (1, 5):
        first = degrade(photo, name, severity, seed=7)
        assert first.size == photo.size and first.mode == "RGB"
        assert np.array_equal(pixels(first), pixels(degrade(photo, name, severity, seed=7)))
        assert not np.array_equal(pixels(first), pixels(photo))
    # Harsher is further from the original.
    mild = np.abs(pixels(degrade(photo, name, 1)) - pixels(photo)).mean()
    harsh = np.abs(pixels(degrade(photo, name, 5)) - pixels(photo)).mean()
    assert harsh > mild


def test_darkening_darkens(photo):
    means = [pixels(degrade(photo, name, s)).mean() for name in ("dark", "underexposed") for s in (1, 3, 5)]
    assert means[0] < pixels(photo).mean()
    assert means[0] > means[1] > means[2] and means[3] > means[4] > means[5]


def test_blur_and_low_resolution_remove_detail(photo):
    for name in ("blur", "lowres"):
        details = [detail(photo)] + [detail(degrade(photo, name, s)) for s in (1, 3, 5)]
        assert details == sorted(details, reverse=True), (name, details)
        assert details[-1] < 0.3 * details[0]


def test_noise_adds_detail_and_follows_the_seed(photo):
    assert detail(degrade(photo, "noise", 3)) > detail(photo)
    assert not np.array_equal(pixels(degrade(photo, "noise", 3, seed=1)), pixels(degrade(photo, "noise", 3, seed=2)))


def test_grayscale_removes_colour(photo):
    saturation = [
        pixels(image.convert("HSV"))[..., 1].mean()
        for image in (photo, degrade(photo, "grayscale", 1), degrade(photo, "grayscale", 5))
    ]
    assert saturation[0] > saturation[1] > saturation[2] and saturation[2] < 1.0


def test_sunglasses_cover_the_eyes_and_a_mask_the_mouth(photo):
    h, w = 250, 250
    eyes = (int(LFW_LAYOUT.eye_y * h), int((LFW_LAYOUT.eye_left + LFW_LAYOUT.eye_right) / 2 * w))
    mouth = (int(LFW_LAYOUT.mouth_y * h), int(0.5 * w))
    glasses, mask = pixels(degrade(photo, "sunglasses", 3)), pixels(degrade(photo, "mask", 3))
    assert glasses[eyes].max() == 0 and glasses[mouth].max() > 0
    assert mask[mouth].max() == 0 and mask[eyes].max() > 0


def test_layout_follows_the_landmarks_of_an_aligned_chip():
    # facenet's 5-point template in a 160-px chip: the eyes sit higher than in an LFW photo.
    from facedemo.vision.align import FACENET_TEMPLATE

    chip = FaceLayout.from_landmarks([(x * 160, y * 160) for x, y in FACENET_TEMPLATE], (160, 160))
    assert abs(chip.eye_y - FACENET_TEMPLATE[0][1]) < 1e-6 and chip.eye_left < 0.3 < 0.7 < chip.eye_right
    assert chip.eye_y < chip.nose_y < chip.mouth_y < chip.chin_y <= 1.0


def test_mistakes_get_sentences(photo):
    with pytest.raises(FaceDemoError, match="Unknown condition 'fog'; choose from blur"):
        degrade(photo, "fog", 1)
    for bad in (0, 6, 2.5, True):
        with pytest.raises(FaceDemoError, match="severity is a whole number from 1"):
            degrade(photo, "blur", bad)
    assert parse_condition("dark") == ("dark", 3) and parse_condition("dark:5") == ("dark", 5)
    with pytest.raises(FaceDemoError, match="after ':' is a whole number"):
        parse_condition("dark:x")
    with pytest.raises(FaceDemoError, match="Unknown condition"):
        parse_condition("fog:2")


def test_lfw_layout_is_where_mtcnn_finds_lfw_eyes(shared_faces, pipeline):
    """The occlusion bands of whole LFW photos sit on the landmarks MTCNN finds in real LFW photos."""
    photos = sorted((shared_faces / "lfw").rglob("*.jpg"))[::400][:15]
    found = pipeline.detector.detect_many([Image.open(p).convert("RGB") for p in photos])
    eyes = [np.mean([f.landmarks[0][1], f.landmarks[1][1]]) / 250 for faces in found if faces for f in faces[:1]]
    assert len(eyes) >= 12
    assert abs(np.median(eyes) - LFW_LAYOUT.eye_y) < 0.04
