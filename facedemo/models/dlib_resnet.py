"""dlib's ResNet face descriptor, weights from the PyPI package face-recognition-models (no network)."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ..errors import ModelUnavailableError
from .registry import ModelSpec, ModelStatus, l2_normalise

FILES = {
    "descriptor": "dlib_face_recognition_resnet_model_v1.dat",
    "shape_predictor": "shape_predictor_5_face_landmarks.dat",
}


def dlib_model_files() -> dict[str, Path]:
    """Locate the model files without importing face_recognition_models (its import needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            "dlib-resnet needs the package face-recognition-models: run `pip install -r requirements.txt`."
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    files = {key: folder / name for key, name in FILES.items()}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise ModelUnavailableError(f"dlib-resnet's weights are missing ({', '.join(missing)}); reinstall face-recognition-models.")
    return files


def status(spec: ModelSpec, settings) -> ModelStatus:
    try:
        import dlib  # noqa: F401
    except ImportError:
        return ModelStatus(spec.name, spec.dim, False, "dlib is not installed: run `pip install -r requirements.txt` (it installs dlib-bin).")
    try:
        dlib_model_files()
    except ModelUnavailableError as exc:
        return ModelStatus(spec.name, spec.dim, False, str(exc))
    return ModelStatus(spec.name, spec.dim, True, None)


class DlibEmbedder:
    def __init__(self, spec: ModelSpec):
        import dlib

        self.spec = spec
        self.device = "cpu"  # dlib-bin is a CPU build
        self._model = dlib.face_recognition_model_v1(str(dlib_model_files()["descriptor"]))
        # A dlib network keeps its working buffers inside the object and dlib does not promise that one
        # net may be used from two threads at once (two visitors clicking together), so calls are serialised.
        self._lock = threading.Lock()

    def embed(self, faces: Sequence[Image.Image]) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.spec.dim), dtype=np.float32)
        chips = [np.ascontiguousarray(np.asarray(face.convert("RGB"), dtype=np.uint8)) for face in faces]
        with self._lock:
            vectors = self._model.compute_face_descriptor(chips)  # one batched call
        return l2_normalise(np.array([list(v) for v in vectors], dtype=np.float32))


def build(spec: ModelSpec, settings, device) -> DlibEmbedder:
    current = status(spec, settings)
    if not current.available:
        raise ModelUnavailableError(current.reason)
    return DlibEmbedder(spec)
