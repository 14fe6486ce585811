"""dlib's ResNet face descriptor, weights from the PyPI package face-recognition-models (no network)."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ..errors import ModelUnavailableError
from ..vectors import l2_normalise
from ..vision.align import dlib_chip
from ..vision.detect import Face
from .base import Aligner, Embedder, ModelFamily, ModelSpec, ModelStatus

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
    """dlib's face descriptor (one batched call per batch of chips)."""

    module = None  # not a torch model

    def __init__(self, spec: ModelSpec):
        import dlib

        self.spec = spec
        self.device = "cpu"  # dlib-bin is a CPU build
        self.weights_file = dlib_model_files()["descriptor"]
        self._model = dlib.face_recognition_model_v1(str(self.weights_file))
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


class DlibFamily(ModelFamily):
    name = "dlib"

    def status(self, spec: ModelSpec, settings, base: ModelStatus | None = None) -> ModelStatus:
        return status(spec, settings)

    def build(self, spec: ModelSpec, settings, device, base: Embedder | None = None) -> DlibEmbedder:
        current = status(spec, settings)
        if not current.available:
            raise ModelUnavailableError(current.reason)
        return DlibEmbedder(spec)

    def native_aligner(self, spec: ModelSpec, settings) -> Aligner:
        """dlib's own alignment: its 5-point shape predictor inside the MTCNN box, then ``get_face_chip``,
        the crop dlib's descriptor was trained on. Calls are serialised like the descriptor's."""
        import dlib

        predictor = dlib.shape_predictor(str(dlib_model_files()["shape_predictor"]))
        lock = threading.Lock()

        def align(image: Image.Image, face: Face) -> Image.Image:
            with lock:
                return dlib_chip(image, face, predictor, spec.input_size)

        return align

    def weights_file(self, spec: ModelSpec, settings) -> Path | None:
        try:
            return dlib_model_files()["descriptor"]
        except ModelUnavailableError:
            return None
