"""facenet-pytorch's InceptionResnetV1 (VGGFace2 or CASIA-Webface weights).

facenet-pytorch downloads its weights on first use with no timeout; here the file is looked for first
(an explicit setting, then facenet-pytorch's own cache), and any download is bounded and atomic.
"""

from __future__ import annotations

import os
import socket
import tempfile
import urllib.error
import urllib.request
from functools import lru_cache
from pathlib import Path
from typing import Sequence
from urllib.parse import urlparse

import numpy as np
from PIL import Image

from ..errors import ModelUnavailableError
from ..settings import torch_home
from .base import Embedder, ModelFamily, ModelSpec, ModelStatus

ENV_VARS = {
    "facenet-vggface2": "FACEDEMO_FACENET_VGGFACE2_WEIGHTS",
    "facenet-casia-webface": "FACEDEMO_FACENET_CASIA_WEBFACE_WEIGHTS",
}


def cache_path(spec: ModelSpec) -> Path:
    """Where facenet-pytorch itself caches this model's weights."""
    return torch_home() / "checkpoints" / os.path.basename(spec.url)


def configured_path(spec: ModelSpec, settings) -> Path | None:
    value = (settings.facenet_weights or {}).get(spec.name)
    return Path(value).expanduser() if value else None


def how_to_provide(spec: ModelSpec) -> str:
    return (
        f"Download {spec.url} on a machine with internet access and save it as {cache_path(spec)}, "
        f"or set {ENV_VARS.get(spec.name, 'the weights setting')} to the file's path."
    )


@lru_cache(maxsize=8)
def _reachable(host: str, timeout: float) -> str | None:
    """None if a TCP connection to ``host`` opens within ``timeout`` seconds, else the reason."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return None
    except OSError as exc:
        return f"{host} cannot be reached ({exc.__class__.__name__}: {exc})"


def status(spec: ModelSpec, settings) -> ModelStatus:
    explicit = configured_path(spec, settings)
    if explicit is not None:
        if explicit.is_file():
            return ModelStatus(spec.name, spec.dim, True, None)
        return ModelStatus(spec.name, spec.dim, False, f"The weights file {explicit} (from {ENV_VARS[spec.name]}) does not exist.")
    if cache_path(spec).is_file():
        return ModelStatus(spec.name, spec.dim, True, None)
    problem = _reachable(urlparse(spec.url).hostname, min(3.0, settings.download_timeout_s))
    if problem is None:
        return ModelStatus(spec.name, spec.dim, True, None, note="weights download on first use (about 110 MB)")
    return ModelStatus(
        spec.name, spec.dim, False, f"Its weights are not on this machine and cannot be downloaded: {problem}. {how_to_provide(spec)}"
    )


def download(spec: ModelSpec, timeout_s: float) -> Path:
    """Fetch the weights into facenet-pytorch's cache: bounded by ``timeout_s`` per network wait,
    written to a temporary file and renamed, so an interrupted download never leaves a broken file."""
    target = cache_path(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(spec.url, headers={"User-Agent": "facedemo"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response, tempfile.NamedTemporaryFile(
            dir=target.parent, delete=False, suffix=".part"
        ) as tmp:
            while chunk := response.read(1 << 20):
                tmp.write(chunk)
        os.replace(tmp.name, target)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        if "tmp" in locals():
            Path(tmp.name).unlink(missing_ok=True)
        raise ModelUnavailableError(f"Downloading the {spec.name} weights failed ({exc}). {how_to_provide(spec)}") from None
    return target


def weights_path(spec: ModelSpec, settings) -> Path:
    explicit = configured_path(spec, settings)
    if explicit is not None:
        if not explicit.is_file():
            raise ModelUnavailableError(f"The weights file {explicit} (from {ENV_VARS[spec.name]}) does not exist.")
        return explicit
    if cache_path(spec).is_file():
        return cache_path(spec)
    current = status(spec, settings)
    if not current.available:
        raise ModelUnavailableError(f"{spec.name} is unavailable. {current.reason}")
    return download(spec, settings.download_timeout_s)


def load_state_dict(path: Path) -> dict:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which file and what to do
        raise ModelUnavailableError(f"{path} is not a readable PyTorch weights file ({exc.__class__.__name__}).") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelUnavailableError(f"{path} does not hold a state_dict.")
    # The released files include the training classifier ("logits"); embeddings do not use it.
    return {k: v for k, v in state.items() if not k.startswith("logits.")}


class FacenetEmbedder:
    """InceptionResnetV1 in eval mode on the pipeline's device (fp16 on CUDA). ``module`` is the network
    itself, for full fine-tuning and the benchmarks."""

    def __init__(self, spec: ModelSpec, path: Path, device):
        from facenet_pytorch import InceptionResnetV1

        self.spec = spec
        self.device = device.device
        self.weights_file = Path(path)
        self._fp16 = device.fp16
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
        return embed_pixels(self.module, pixels, self.device, self._fp16)


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

    def status(self, spec: ModelSpec, settings, base: ModelStatus | None = None) -> ModelStatus:
        return status(spec, settings)

    def build(self, spec: ModelSpec, settings, device, base: Embedder | None = None) -> FacenetEmbedder:
        return FacenetEmbedder(spec, weights_path(spec, settings), device)

    def weights_file(self, spec: ModelSpec, settings) -> Path | None:
        path = configured_path(spec, settings) or cache_path(spec)
        return path if path.is_file() else None
