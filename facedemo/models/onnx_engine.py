"""ONNX Runtime on the CPU for the torch embedders (InceptionResnetV1, dlib's converted ResNet).

On 2 cores ONNX Runtime runs InceptionResnetV1 in two thirds of torch's time (dlib's network: 1.2x), and
stays there when two or four requests embed at once (issue #22, docs/BENCHMARKS.md). So on the CPU a torch
embedder is exported once with ``torch.onnx.export`` to a file beside its weights (named by their content:
a changed checkpoint is exported again), checked against torch on a fixed batch before the file is kept,
and run by one ``InferenceSession`` per loaded model (the pipeline keeps one embedder per model). The
torch embedder stays behind it: training and the benchmarks take its ``module``, and a batch the exported
graph cannot take goes to it. CUDA never comes here.

The same function of the same weights: the cache keys (``weights_file``) are the torch embedder's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..files import atomic_path, file_sha256
from ..runtime import cached_session, cpu_threads, export_failure, export_graph, missing, open_session
from ..vectors import l2_normalise
from .base import ModelSpec

# Bumped when the export changes (opset, names, what the graph holds), so old files are not reused.
EXPORT_VERSION = 1
OPSET = 17
# The check on export, on normalised vectors of a fixed batch: InceptionResnetV1 agreed to 1e-7 (issue #22).
MIN_COSINE = 0.99999
MAX_ABS_DIFF = 1e-4
CHECK_BATCH = 8

Prepare = Callable[[np.ndarray], np.ndarray]  # (n, h, w, 3) uint8 RGB -> the network's NCHW float32 input


def onnx_file(weights: Path) -> Path:
    """The exported graph of these weights: beside them, named by their content and the export's version."""
    weights = Path(weights)
    return weights.with_name(f"{weights.stem}-{file_sha256(weights)[:16]}-ort{EXPORT_VERSION}.onnx")


def check_pixels(size: int, seed: int = 0) -> np.ndarray:
    """The fixed batch the export is checked on: smooth random images (a face's range of values and some
    structure, so a wrong stride or padding shows), the same on every machine."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (CHECK_BATCH, 8, 8, 3), dtype=np.uint8)
    smooth = [np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BILINEAR)) for img in coarse]
    noise = rng.integers(-12, 13, (CHECK_BATCH, size, size, 3))
    return np.clip(np.stack(smooth).astype(np.int16) + noise, 0, 255).astype(np.uint8)


def agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(smallest cosine, largest absolute difference) between the rows of two sets of vectors, normalised."""
    a, b = l2_normalise(np.asarray(a, np.float64)), l2_normalise(np.asarray(b, np.float64))
    return float((a * b).sum(axis=1).min()), float(np.abs(a - b).max())


def run_torch(module, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return module(torch.from_numpy(x)).float().numpy()


def export(module, prepare: Prepare, size: int, target: Path, threads: int):
    """Export ``module`` (on the CPU, eval mode) to ``target`` and return its session, once it gives torch's
    vectors on the check batch; the file is renamed into place only then. Raises ``ValueError`` with the
    figures when it does not. About 6 s for InceptionResnetV1 on 2 cores, most of it torch's first forward
    passes (the trace and the check), once per weights file."""
    x = prepare(check_pixels(size))
    with atomic_path(target) as tmp:
        export_graph(module, x[:2], tmp, ["vectors"], {"pixels": {0: "faces"}, "vectors": {0: "faces"}}, OPSET)
        session = open_session(tmp, threads)
        cosine, diff = agreement(run_torch(module, x), session.run(None, {"pixels": x})[0])
        if cosine < MIN_COSINE or diff > MAX_ABS_DIFF:
            raise ValueError(
                f"its ONNX export disagrees with torch on a fixed batch (min cosine {cosine:.7f}, "
                f"max abs diff {diff:.1e}; needed >= {MIN_COSINE} and <= {MAX_ABS_DIFF:g})"
            )
    return session  # it holds the graph in memory: the rename does not touch it


def load_or_export(module, prepare: Prepare, size: int, weights: Path, threads: int):
    """The session of the cached export of ``weights``; exported (and checked) when there is none, or when
    the file there does not load (truncated, or written by another exporter)."""
    return cached_session(onnx_file(weights), threads, lambda target: export(module, prepare, size, target, threads))


class OnnxEmbedder:
    """A torch embedder's network run by ONNX Runtime on the CPU: the same inputs, the same unit vectors
    (cosine >= 0.99999, checked on export and in ``tests/test_onnx.py``). One session per loaded model;
    calls are serialised on it and each gets all its threads: with two or four requests at once this
    kept 9.4 ms a face where letting them share the pool cost 11.5-12.4 (InceptionResnetV1, 2 cores).
    ``module`` and ``weights_file`` are the torch embedder's (training, benchmarks and cache keys)."""

    engine = "onnx"

    def __init__(self, spec: ModelSpec, torch_embedder, session, path: Path, prepare: Prepare):
        self.spec = spec
        self.device = "cpu"
        self.torch = torch_embedder
        self.weights_file = torch_embedder.weights_file
        self.batch_size = torch_embedder.batch_size
        self.workers = 1
        self.onnx_file = Path(path)
        self._session = session
        self._prepare = prepare
        self._lock = threading.Lock()

    @property
    def module(self):
        """The torch network (for training and benchmarks), not what ``embed`` runs."""
        return self.torch.module

    def embed(self, faces: Sequence[Image.Image]) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.spec.dim), dtype=np.float32)
        pixels = np.stack([np.asarray(face.convert("RGB"), dtype=np.uint8) for face in faces])
        size = self.spec.input_size
        if pixels.shape[1:3] != (size, size):  # the graph is exported for the model's own input size
            return self.torch.embed(faces)
        out = []
        for start in range(0, len(pixels), self.batch_size):
            x = self._prepare(pixels[start : start + self.batch_size])
            with self._lock:
                out.append(self._session.run(None, {"pixels": x})[0])
        return l2_normalise(np.concatenate(out).astype(np.float32))

    def close(self) -> None:
        close = getattr(self.torch, "close", None)
        if close is not None:
            close()


class CpuEngine:
    """What a family needs to run its torch embedders on ONNX Runtime: when to, and why it could not for
    a given weights file (kept for the process: an export that failed its check is not retried on every
    build, and the model's status note says why it runs on torch)."""

    def __init__(self):
        self._fallbacks: dict[str, str] = {}

    def wanted(self, settings, device) -> bool:
        return not device.is_cuda and settings.cpu_engine_name() == "onnx"

    def wrap(self, torch_embedder, settings, device, prepare: Prepare):
        """The ONNX Runtime embedder in front of ``torch_embedder`` on the CPU; the torch embedder itself on
        CUDA, with the torch engine chosen, or when the export fails (the reason is kept for ``note``)."""
        if not self.wanted(settings, device):
            return torch_embedder
        key = str(torch_embedder.weights_file)
        source = Path(getattr(torch_embedder, "source_file", torch_embedder.weights_file))
        if key in self._fallbacks:
            return torch_embedder
        reason = missing()
        if reason is None:
            try:
                module = torch_embedder.module
                session = load_or_export(module, prepare, torch_embedder.spec.input_size, source, cpu_threads(settings))
                return OnnxEmbedder(torch_embedder.spec, torch_embedder, session, onnx_file(source), prepare)
            except Exception as exc:  # the exporter and onnxruntime raise their own types: torch still works
                reason = export_failure(exc, f"beside {source.name}")
        self._fallbacks[key] = reason
        return torch_embedder

    def fallback(self, weights: Path | None) -> str | None:
        return self._fallbacks.get(str(weights)) if weights is not None else None

    def note(self, settings, weights: Path | None) -> str | None:
        """What a model's status says about its CPU engine; None on CUDA."""
        if str(settings.device).strip().lower().startswith("cuda"):
            return None
        why = self.fallback(weights)
        if why:
            return f"torch on the CPU, not ONNX Runtime: {why}"
        if settings.cpu_engine_name() == "torch":
            return "torch on the CPU, as FACEDEMO_CPU_ENGINE=torch asks"
        if missing():
            return f"torch on the CPU: {missing()}"
        return "ONNX Runtime on the CPU"
