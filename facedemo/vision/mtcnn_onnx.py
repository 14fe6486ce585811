"""MTCNN's three networks (P-Net, R-Net, O-Net) on ONNX Runtime on the CPU: the embedders' pattern
(``models/onnx_engine.py``) for the detector, which is the floor of every request on a CPU.

Each network is exported once from facenet-pytorch's own weights with ``torch.onnx.export`` into
``$TORCH_HOME/facedemo/`` (beside facenet-pytorch's weight cache, shared by every facedemo home), in a folder
named by the weights' content and the export's version, and checked against torch on fixed inputs before
it is kept. facenet-pytorch's ``detect_face`` still runs everything around the networks (the image pyramid,
the boxes' regression, NMS), so the boxes are torch's (docs/BENCHMARKS.md: the same boxes to 1e-4 px).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np

from ..files import atomic_path
from ..runtime import cached_session, export_graph, open_session
from ..settings import torch_home

EXPORT_VERSION = 1
OPSET = 17
MAX_ABS_DIFF = 1e-4  # on every output of the fixed inputs: probabilities and box regressions
# Each network: an example input for the export, the shapes it is checked on (P-Net is fully convolutional:
# any photo size; R-Net and O-Net take fixed crops, in batches) and its outputs' names.
NETS = {
    "pnet": ((1, 3, 64, 80), ((1, 3, 64, 80), (2, 3, 31, 45), (1, 3, 217, 163)), ("reg", "prob")),
    "rnet": ((4, 3, 24, 24), ((1, 3, 24, 24), (37, 3, 24, 24)), ("reg", "prob")),
    "onet": ((4, 3, 48, 48), ((1, 3, 48, 48), (23, 3, 48, 48)), ("reg", "points", "prob")),
}


class OnnxNet:
    """One of MTCNN's networks run by ONNX Runtime, called as facenet-pytorch calls its torch module: a float
    tensor in, a tuple of tensors out. Calls are serialised on the session, each with all its threads."""

    def __init__(self, session, dtype):
        import torch

        self._session = session
        self._lock = threading.Lock()
        # detect_face reads the network's dtype from its first parameter
        self._parameter = torch.zeros(1, dtype=dtype)

    def parameters(self):
        return iter([self._parameter])

    def __call__(self, x):
        import torch

        pixels = x.detach().cpu().numpy().astype(np.float32, copy=False)
        with self._lock:
            outputs = self._session.run(None, {"pixels": pixels})
        return tuple(torch.from_numpy(o) for o in outputs)


def weights_digest(mtcnn) -> str:
    """The three networks' weights, by content: other weights are exported again."""
    digest = hashlib.sha256()
    for name in NETS:
        for key, tensor in sorted(getattr(mtcnn, name).state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def export_folder(mtcnn) -> Path:
    return torch_home() / "facedemo" / f"mtcnn-{weights_digest(mtcnn)}-ort{EXPORT_VERSION}"


def check_inputs(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Fixed inputs in MTCNN's range ((pixel - 127.5) / 128), smooth enough for a face-like response."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-1.0, 1.0, (*shape[:2], -(-shape[2] // 8), -(-shape[3] // 8)))
    smooth = np.repeat(np.repeat(coarse, 8, axis=2), 8, axis=3)[:, :, : shape[2], : shape[3]]
    return (smooth + rng.normal(0, 0.05, shape)).astype(np.float32)


def export_one(module, name: str, target: Path, threads: int):
    """Export one network to ``target`` and return its session, once it gives torch's outputs on the fixed
    inputs; the file is renamed into place only then. Raises ``ValueError`` with the figures when not."""
    import torch

    example, checks, outputs = NETS[name]
    spatial = {0: "n", 2: "h", 3: "w"} if name == "pnet" else {0: "n"}  # P-Net takes any photo size
    with atomic_path(target) as tmp:
        export_graph(
            module, check_inputs(example, 0), tmp, outputs, dict.fromkeys(("pixels", *outputs), spatial), OPSET
        )
        session = open_session(tmp, threads)
        for seed, shape in enumerate(checks, 1):
            x = check_inputs(shape, seed)
            with torch.inference_mode():
                ours = [t.float().numpy() for t in module(torch.from_numpy(x))]
            theirs = session.run(None, {"pixels": x})
            diff = max(float(np.abs(a - b).max()) for a, b in zip(ours, theirs))
            if diff > MAX_ABS_DIFF:
                raise ValueError(
                    f"MTCNN's {name} exported to ONNX disagrees with torch on a fixed input {shape} "
                    f"(max abs diff {diff:.1e}; needed <= {MAX_ABS_DIFF:g})"
                )
    return session


def onnx_nets(mtcnn, threads: int) -> dict[str, OnnxNet]:
    """The three networks of ``mtcnn`` on ONNX Runtime: the cached exports, else exported (and checked) now;
    a cached file that does not load is exported again."""
    folder = export_folder(mtcnn)
    nets = {}
    for name in NETS:
        module = getattr(mtcnn, name).eval()
        session = cached_session(
            folder / f"{name}.onnx", threads, lambda t, m=module, n=name: export_one(m, n, t, threads)
        )
        nets[name] = OnnxNet(session, next(module.parameters()).dtype)
    return nets
