"""dlib's ResNet face descriptor, weights from the PyPI package face-recognition-models (no network).

Two engines run the same network: by default dlib's weights converted to a torch module
(``dlib_torch.py``, cached beside facenet-pytorch's checkpoints), batched and on the pipeline's device;
and dlib's own ``compute_face_descriptor`` (one core, the GIL held), the reference the conversion is
tested against (``tests/test_dlib_torch.py``) and the fall-back when the conversion fails. Both are keyed
on the ``.dat`` itself (``weights_file``): they are the same model, so caches and shipped data keyed on it
stay valid whichever engine computed a descriptor.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ModelUnavailableError
from ..files import atomic_path, file_sha256
from ..settings import torch_home
from ..vectors import l2_normalise
from ..vision.align import dlib_chip
from ..vision.detect import Face
from .base import Aligner, Embedder, ModelFamily, ModelSpec, ModelStatus, Prepared
from .onnx_engine import CpuEngine

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


def status(spec: ModelSpec, settings, fallback: str | None = None) -> ModelStatus:
    """Whether dlib-resnet can run here; ``fallback``: why this process runs it on dlib's own engine
    after the torch conversion failed (the note says so)."""
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
        files = dlib_model_files()
    except ModelUnavailableError as exc:
        return ModelStatus(spec.name, spec.dim, False, str(exc))
    if settings.dlib_engine_name() == "dlib":
        note = "dlib's own descriptor (FACEDEMO_DLIB_ENGINE=dlib): one face at a time, on one core"
    elif fallback:
        note = f"dlib's own descriptor, one face at a time: {fallback}"
    elif not converted_file(files["descriptor"]).is_file():
        note = "converted to a torch module on first use (under a second, no network needed)"
    else:
        note = None
    return ModelStatus(spec.name, spec.dim, True, None, note=note)


def converted_file(weights: Path) -> Path:
    """Where the torch conversion of these dlib weights is cached: with facenet-pytorch's checkpoints
    (``$TORCH_HOME/checkpoints``), named by the ``.dat``'s content and the converter's version, so other
    weights, or a converter that reads them differently, never reuse an old file."""
    from .dlib_torch import CONVERTER_VERSION

    digest = file_sha256(weights)[:16]
    return torch_home() / "checkpoints" / f"{weights.stem}-{digest}-torch{CONVERTER_VERSION}.pt"


_CONVERTING = threading.Lock()  # the cache file is process-wide: one conversion at a time in a process


def prepare_torch(spec: ModelSpec) -> Prepared:
    """Convert dlib's ``.dat`` into a ``DlibResNet`` state_dict once, written under a temporary name and
    renamed (a killed conversion leaves nothing half-written); nothing to do when it is there."""
    start = time.monotonic()
    source = dlib_model_files()["descriptor"]
    target = converted_file(source)
    with _CONVERTING:
        if target.is_file():
            return Prepared(spec.name, target, "present", "already on this machine", 0.0, target.stat().st_size)
        import torch

        from .dlib_torch import convert

        try:
            state = convert(source)
        except (ValueError, OSError) as exc:
            raise ModelUnavailableError(f"converting {source.name} into a torch module failed ({exc})") from None
        with atomic_path(target) as tmp:
            torch.save(state, tmp)
    return Prepared(spec.name, target, "converted", str(source), time.monotonic() - start, target.stat().st_size)


def load_torch_module(spec: ModelSpec):
    """The converted network on the CPU, in eval mode, converted first if needed. A cached file that does
    not load (truncated, or written by another torch) is converted again rather than trusted."""
    import torch

    from .dlib_torch import DlibResNet

    path = prepare_torch(spec).path
    model = DlibResNet()
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    except Exception:  # anything torch.load or a mismatched state_dict raises: make the file again
        with _CONVERTING:
            path.unlink(missing_ok=True)
        path = prepare_torch(spec).path
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        except Exception as exc:
            raise ModelUnavailableError(f"the converted file {path} does not load ({exc.__class__.__name__})") from None
    return model.eval()


class DlibTorchEmbedder:
    """dlib's network as a torch module: batches of chips in one forward pass, on the pipeline's device
    (CUDA when there is one), in float32 as dlib computes (TF32 convolutions off: dlib's descriptor
    distances are read against thresholds to two decimals). On 2 cores, batches of 32: 3.1 ms a face
    against dlib's 78 (docs/BENCHMARKS.md). ``weights_file`` is dlib's ``.dat``: the same model, the same
    cache keys."""

    engine = "torch"

    def __init__(self, spec: ModelSpec, module, device, batch_size: int = 32, source_file: Path | None = None):
        self.spec = spec
        self.device = device.device
        self.weights_file = dlib_model_files()["descriptor"]
        # the converted state_dict the module was loaded from: what an ONNX export of it is named after
        self.source_file = source_file or converted_file(self.weights_file)
        self.batch_size = max(1, batch_size)
        self.module = module.to(self.device)
        self.workers = 1  # one process: torch's own threads use every core

    def embed(self, faces: Sequence[Image.Image]) -> np.ndarray:
        import torch

        if not faces:
            return np.zeros((0, self.spec.dim), dtype=np.float32)
        pixels = np.stack([np.asarray(face.convert("RGB"), dtype=np.uint8) for face in faces])
        size = self.spec.input_size
        if pixels.shape[1:3] != (size, size):
            raise ValueError(f"dlib-resnet takes {size}x{size} chips, not {pixels.shape[2]}x{pixels.shape[1]}")
        out = []
        with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            for start in range(0, len(pixels), self.batch_size):
                batch = torch.from_numpy(pixels[start : start + self.batch_size]).to(self.device)
                out.append(self.module(batch.permute(0, 3, 1, 2).float()).cpu().numpy())
        return l2_normalise(np.concatenate(out).astype(np.float32))

    def close(self) -> None:
        """Nothing to stop (the same interface as ``DlibEmbedder``)."""


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


def chw_pixels(pixels: np.ndarray) -> np.ndarray:
    """(n, 150, 150, 3) uint8 chips -> the float32 NCHW pixels ``DlibResNet`` takes (for ONNX Runtime)."""
    return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2).astype(np.float32))


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

    def __init__(self):
        # Why the torch conversion failed, per weights file, in this process: the status note says it
        # and the model runs on dlib's own engine instead (the conversion is not retried on every build).
        self._fallbacks: dict[str, str] = {}
        self.cpu = CpuEngine()  # the torch module on ONNX Runtime on the CPU, and why not when it cannot

    def status(self, spec: ModelSpec, settings, base: ModelStatus | None = None) -> ModelStatus:
        current = status(spec, settings, self._fallback(spec))
        if not current.available or settings.dlib_engine_name() == "dlib" or self._fallback(spec):
            return current
        engine = self.cpu.note(settings, self.weights_file(spec, settings))
        note = "; ".join(n for n in (current.note, engine) if n) or None
        return ModelStatus(current.name, current.dim, True, None, note=note)

    def _fallback(self, spec: ModelSpec) -> str | None:
        file = self.weights_file(spec, None)
        return self._fallbacks.get(str(file)) if file is not None else None

    def build(self, spec: ModelSpec, settings, device, base: Embedder | None = None) -> Embedder:
        current = status(spec, settings)
        if not current.available:
            raise ModelUnavailableError(current.reason)
        if settings.dlib_engine_name() == "torch" and self._fallback(spec) is None:
            try:
                embedder = DlibTorchEmbedder(
                    spec, load_torch_module(spec), device, settings.embed_batch_size(device.is_cuda)
                )
            except (ModelUnavailableError, ImportError, RuntimeError) as exc:
                self._fallbacks[str(dlib_model_files()["descriptor"])] = str(exc)
            else:
                return self.cpu.wrap(embedder, settings, device, chw_pixels)
        return DlibEmbedder(spec, settings.dlib_processes())  # dlib runs on the CPU whatever the torch device

    def prepare(self, spec: ModelSpec, settings) -> Prepared:
        """``models prepare dlib-resnet``: the torch conversion, now rather than on first use."""
        current = status(spec, settings)
        if not current.available:
            raise ModelUnavailableError(f"{spec.name} is unavailable. {current.reason}")
        if settings.dlib_engine_name() == "dlib":
            return super().prepare(spec, settings)
        return prepare_torch(spec)

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
        """dlib's ``.dat``, whichever engine runs it (the torch module is a conversion of it)."""
        try:
            return dlib_model_files()["descriptor"]
        except ModelUnavailableError:
            return None
