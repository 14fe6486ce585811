"""dlib's ResNet face descriptor, weights from the PyPI package face-recognition-models (no network)."""

from __future__ import annotations

import importlib.util
import multiprocessing
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

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
        raise ModelUnavailableError(
            f"dlib-resnet's weights are missing ({', '.join(missing)}); reinstall face-recognition-models."
        )
    return files


def status(spec: ModelSpec, settings) -> ModelStatus:
    try:
        import dlib  # noqa: F401
    except ImportError:
        return ModelStatus(
            spec.name,
            spec.dim,
            False,
            "dlib is not installed: run `pip install -r requirements.txt` (it installs dlib-bin).",
        )
    try:
        dlib_model_files()
    except ModelUnavailableError as exc:
        return ModelStatus(spec.name, spec.dim, False, str(exc))
    return ModelStatus(spec.name, spec.dim, True, None)


class DlibEmbedder:
    """dlib's face descriptor. One call per batch of chips; dlib runs it on one core and holds the GIL
    throughout, so with ``workers`` > 1 the chips of a call are split over that many worker processes
    (each with its own copy of the network, started on first use), which is what puts every core to work:
    on 2 cores, 24 chips took 1.76 s in this process and 0.93 s in two (docs/BENCHMARKS.md)."""

    module = None  # not a torch model

    def __init__(self, spec: ModelSpec, workers: int = 1):
        import dlib

        self.spec = spec
        self.device = "cpu"  # dlib-bin is a CPU build
        self.weights_file = dlib_model_files()["descriptor"]
        self.workers = max(1, workers)
        self._model = dlib.face_recognition_model_v1(str(self.weights_file))
        # A dlib network keeps its working buffers inside the object and dlib does not promise that one
        # net may be used from two threads at once (two visitors clicking together), so calls are serialised.
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def embed(self, faces: Sequence[Image.Image]) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.spec.dim), dtype=np.float32)
        chips = [np.ascontiguousarray(np.asarray(face.convert("RGB"), dtype=np.uint8)) for face in faces]
        vectors = self._in_workers(chips) if self.workers > 1 and len(chips) > 1 else None
        if vectors is None:
            with self._lock:
                vectors = descriptors(self._model, chips)
        return l2_normalise(vectors)

    def _in_workers(self, chips: list[np.ndarray]) -> np.ndarray | None:
        """The chips' descriptors from the worker processes, in order; None when the pool broke (a worker
        was killed, e.g. for memory): it is dropped, this call runs in the process, the next starts a new one."""
        parts = np.array_split(np.arange(len(chips)), min(self.workers, len(chips)))
        try:
            pool = self._workers()
            futures = [pool.submit(describe, [chips[i] for i in part]) for part in parts]
            return np.concatenate([future.result() for future in futures])
        except BrokenProcessPool:
            self.close()
            return None

    def _workers(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # fork: the workers start in milliseconds and import nothing again (spawn would re-run the
                # caller's main module: the whole dashboard). They only ever run dlib, never torch.
                self._pool = ProcessPoolExecutor(
                    self.workers,
                    multiprocessing.get_context("fork"),
                    initializer=load_worker_net,
                    initargs=(str(self.weights_file),),
                )
                weakref.finalize(self, self._pool.shutdown, wait=False, cancel_futures=True)
            return self._pool

    def close(self) -> None:
        """Stop the worker processes (they are started again if the embedder is used after this)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def descriptors(net, chips: Sequence[np.ndarray]) -> np.ndarray:
    return np.array([list(v) for v in net.compute_face_descriptor(list(chips))], dtype=np.float32)  # one batched call


class WorkerNet:
    """The network of a worker process, loaded once by the pool's initializer (a worker is one process:
    no other thread shares it)."""

    net = None


def load_worker_net(weights: str) -> None:
    import dlib

    WorkerNet.net = dlib.face_recognition_model_v1(weights)


def describe(chips: Sequence[np.ndarray]) -> np.ndarray:
    return descriptors(WorkerNet.net, chips)


class DlibFamily(ModelFamily):
    name = "dlib"

    def status(self, spec: ModelSpec, settings, base: ModelStatus | None = None) -> ModelStatus:
        return status(spec, settings)

    def build(self, spec: ModelSpec, settings, device, base: Embedder | None = None) -> DlibEmbedder:
        current = status(spec, settings)
        if not current.available:
            raise ModelUnavailableError(current.reason)
        return DlibEmbedder(spec, settings.dlib_processes())  # dlib runs on the CPU whatever the torch device

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
