"""The ``onnx`` family: face-embedding networks a user declares as ONNX graphs (``models/declared.py``), run by
ONNX Runtime on the CPU, or with its CUDA provider where that is installed and the device is CUDA.

A graph takes a batch of aligned faces (NCHW or NHWC, 3 channels, the declared square size) made from the
RGB pixels as the declaration says (channel order, ``(pixel - mean) / std``) and gives one vector per face;
facedemo normalises the vectors and compares them like every other model's. A graph fetched from a URL is
downloaded once (bounded and atomic, ``files.download``) into ``$FACEDEMO_HOME/downloads`` and checked
against its declared sha256.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ModelUnavailableError
from ..files import download, file_sha256
from ..runtime import cpu_threads, missing, open_session
from ..vectors import l2_normalise
from .base import Declared, Embedder, ModelFamily, ModelSpec, ModelStatus, Prepared
from .declared import DEFAULT_THRESHOLD
from .onnx_graph import GraphFacts, GraphProblem, download_file, graph_facts, graph_file
from .thresholds import calibration


def pixels_to_input(pixels: np.ndarray, declared: Declared, layout: str) -> np.ndarray:
    """(n, h, w, 3) uint8 RGB -> the graph's float32 input, as the declaration says."""
    x = pixels[..., ::-1] if declared.channels == "bgr" else pixels
    x = (x.astype(np.float32) - np.float32(declared.mean)) / np.float32(declared.std)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if layout == "nchw" else x)


class OnnxModelEmbedder:
    """A declared ONNX graph in one ONNX Runtime session; calls are serialised on it (``onnx_engine``'s reason)."""

    engine = "onnx"
    module = None  # not a torch network: nothing to fine-tune a full model from

    def __init__(self, spec: ModelSpec, path: Path, session, facts: GraphFacts, device: str, batch_size: int):
        self.spec = spec
        self.device = device
        self.weights_file = Path(path)
        self.batch_size = facts.batch or batch_size
        self.facts = facts
        self._session = session
        self._lock = threading.Lock()

    def embed(self, faces: Sequence[Image.Image]) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.facts.dim), dtype=np.float32)
        size = self.spec.input_size
        crops = [face.convert("RGB") for face in faces]
        crops = [c if c.size == (size, size) else c.resize((size, size), Image.Resampling.BILINEAR) for c in crops]
        pixels = np.stack([np.asarray(c, dtype=np.uint8) for c in crops])
        out = []
        for start in range(0, len(pixels), self.batch_size):
            x = pixels_to_input(pixels[start : start + self.batch_size], self.spec.declared, self.facts.layout)
            with self._lock:
                out.append(np.asarray(self._session.run(None, {self.facts.input_name: x})[0], np.float32))
        return l2_normalise(np.concatenate(out).reshape(len(pixels), -1).astype(np.float32))


def session_for(path: Path, settings, device):
    """The graph's session: CUDA's provider on a CUDA device where onnxruntime has it, else the CPU's."""
    import onnxruntime as ort

    if device.is_cuda and "CUDAExecutionProvider" in ort.get_available_providers():
        options = ort.SessionOptions()
        options.log_severity_level = 3
        providers = [("CUDAExecutionProvider", {"device_id": device.device.index or 0}), "CPUExecutionProvider"]
        return ort.InferenceSession(str(path), options, providers=providers), "cuda"
    return open_session(path, cpu_threads(settings)), "cpu"


def calibration_words(spec: ModelSpec, settings) -> str | None:
    """None for a model with a calibration of its own; else which threshold it uses, in words."""
    if calibration(spec, settings.home) is not None:
        return None
    d = spec.threshold
    source = "its declaration's" if spec.declared and spec.declared.threshold_given else "facedemo's default"
    return (
        f"uncalibrated: it uses {source} threshold, distance {d:.3f} between unit vectors (cosine similarity "
        f"{1 - d * d / 2:.3f}), until `python -m facedemo calibrate --model {spec.name}` measures one on LFW"
    )


class OnnxModelFamily(ModelFamily):
    name = "onnx"

    def status(self, spec: ModelSpec, settings, base: ModelStatus | None = None) -> ModelStatus:
        declared = spec.declared
        if declared is None or declared.error:
            return ModelStatus(spec.name, spec.dim, False, declared.error if declared else "It is not declared.")
        if missing():
            return ModelStatus(spec.name, spec.dim, False, f"{spec.name} needs ONNX Runtime: {missing()}.")
        words = calibration_words(spec, settings)
        if graph_file(declared, settings) is None:
            return ModelStatus(
                spec.name,
                spec.dim,
                False,
                f"{spec.name}'s graph is not on this machine yet: `python -m facedemo models prepare {spec.name}` "
                f"downloads it from {declared.onnx}.",
                calibration=words,
            )
        return ModelStatus(spec.name, spec.dim, True, None, note=words, calibration=words)

    def build(self, spec: ModelSpec, settings, device, base: Embedder | None = None) -> Embedder:
        path = self.prepare(spec, settings).path  # may download
        try:
            facts = graph_facts(path, spec.input_size)
        except GraphProblem as exc:
            raise ModelUnavailableError(f"{spec.declared.file}: model '{spec.name}' {exc}.") from None
        session, where = session_for(path, settings, device)
        return OnnxModelEmbedder(spec, path, session, facts, where, settings.embed_batch_size(device.is_cuda))

    def prepare(self, spec: ModelSpec, settings) -> Prepared:
        """The graph's file: there already, or downloaded from its URL and checked against its sha256."""
        declared = spec.declared
        if declared is None or declared.error:
            raise ModelUnavailableError(declared.error if declared else f"{spec.name} is not declared.")
        present = graph_file(declared, settings)
        if present is not None:
            return Prepared(spec.name, present, "present", "already on this machine", 0.0, present.stat().st_size)
        start, target = time.monotonic(), download_file(declared, settings)
        try:
            download(declared.onnx, target, settings.download_timeout_s)
        except (OSError, TimeoutError) as exc:
            raise ModelUnavailableError(
                f"Downloading {spec.name}'s graph from {declared.onnx} failed ({exc})."
            ) from None
        got = file_sha256(target)
        if got != declared.sha256:
            target.unlink(missing_ok=True)
            raise ModelUnavailableError(
                f"{declared.file}: model '{spec.name}': the file downloaded from {declared.onnx} has sha256 {got}, "
                f"not the declared {declared.sha256}; it was not kept."
            )
        return Prepared(spec.name, target, "downloaded", declared.onnx, time.monotonic() - start, target.stat().st_size)

    def weights_file(self, spec: ModelSpec, settings) -> Path | None:
        return graph_file(spec.declared, settings) if spec.declared and not spec.declared.error else None


__all__ = ["DEFAULT_THRESHOLD", "GraphProblem", "OnnxModelFamily", "graph_facts", "graph_file"]
