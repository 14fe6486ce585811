"""The model registry: every built-in model as a ``ModelSpec`` (data: ``builtin.toml``), every family as the object that
knows how to find, build and identify its models, and the functions the rest of facedemo calls with a spec.

Distances everywhere are Euclidean distances between L2-normalised embeddings (0 = identical,
2 = opposite); ``similarity`` is the cosine similarity, ``1 - d**2 / 2``.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from ..errors import UnknownModelError
from ..files import file_sha256
from .adapter import AdapterFamily, read_specs
from .base import Aligner, Embedder, ModelFamily, ModelSpec, ModelStatus, Prepared
from .declared import builtin_specs, declared_specs
from .dlib_resnet import DlibFamily
from .facenet import FacenetFamily
from .onnx_model import OnnxModelFamily, calibration_words

# The built-in models, declared as data in builtin.toml (read once, as the package's code is), and the
# default order: the default model is the first available in it, the most accurate on LFW View 2 first.
MODELS, DEFAULT_ORDER = builtin_specs()

FAMILIES: dict[str, ModelFamily] = {
    family.name: family for family in (FacenetFamily(), DlibFamily(), AdapterFamily(), OnnxModelFamily())
}


def base_models(settings) -> dict[str, ModelSpec]:
    """The built-in models and the ONNX models ``settings`` declares (FACEDEMO_MODELS): the models every
    comparison and every enrolled face go through, fine-tuned ones aside."""
    return {**MODELS, **declared_specs(settings, taken=MODELS)}


def user_models(*homes) -> dict[str, ModelSpec]:
    """Fine-tuned models saved under ``HOME/models/NAME/model.json`` (see facedemo.training), for each home
    given: ``$FACEDEMO_HOME``, then a public-mode visitor's own folder."""
    found: dict[str, ModelSpec] = {}
    for home in dict.fromkeys(Path(h) for h in homes):
        found.update(read_specs(home, MODELS))
    return found


def get_spec(name: str, extra: dict[str, ModelSpec] | None = None) -> ModelSpec:
    table = {**MODELS, **(extra or {})}
    if name not in table:
        known = ", ".join(sorted(table))
        raise UnknownModelError(f"Unknown model '{name}'. Known models: {known}.")
    return table[name]


def family_of(spec: ModelSpec) -> ModelFamily:
    if spec.family not in FAMILIES:
        raise UnknownModelError(f"Model '{spec.name}' has an unknown family '{spec.family}'.")
    return FAMILIES[spec.family]


def model_status(spec: ModelSpec, settings) -> ModelStatus:
    base = model_status(MODELS[spec.base], settings) if spec.stacks_on_base else None
    return family_of(spec).status(spec, settings, base)


def list_models(settings, *homes) -> list[ModelStatus]:
    """Every built-in and declared model and every fine-tuned one under ``settings.home`` and ``homes``, with
    its status."""
    specs = {**base_models(settings), **user_models(settings.home, *homes)}
    return [model_status(spec, settings) for spec in specs.values()]


def uncalibrated(spec: ModelSpec, settings) -> str | None:
    """For a declared model with no calibration of its own, which threshold it uses, in words; else None."""
    return calibration_words(spec, settings) if spec.declared is not None else None


def build_embedder(spec: ModelSpec, settings, device, base: Embedder | None = None) -> Embedder:
    """Load the weights and return a ready embedder; ``ModelUnavailableError`` says why not. A model that
    stacks on a base gets ``base`` (the caller's already loaded one) or builds its own."""
    if spec.stacks_on_base and base is None:
        base = build_embedder(MODELS[spec.base], settings, device)
    return family_of(spec).build(spec, settings, device, base)


def prepare(spec: ModelSpec, settings) -> Prepared:
    """Put a model's weights on this machine now (convert or download them), rather than on first use."""
    if spec.stacks_on_base:
        prepare(MODELS[spec.base], settings)
    return family_of(spec).prepare(spec, settings)


def native_aligner(spec: ModelSpec, settings) -> Aligner:
    """The ``native`` alignment of a model; a fine-tuned model sees faces as its base does."""
    target = MODELS[spec.base] if spec.base else spec
    return family_of(target).native_aligner(target, settings)


def weights_file(spec: ModelSpec, settings) -> Path | None:
    """The file holding a model's weights, if it is on this machine (nothing is loaded or fetched)."""
    return family_of(spec).weights_file(spec, settings)


def weights_fingerprint(spec: ModelSpec, settings) -> str | None:
    """A short key for the exact weights a model would use now (their file's path, size and mtime, and
    its base's for a stacked model), or None while they are not on this machine."""
    parts = []
    for each in ([MODELS[spec.base]] if spec.stacks_on_base else []) + [spec]:
        file = weights_file(each, settings)
        if file is None or not Path(file).is_file():
            return None
        stat = Path(file).stat()
        parts.append(f"{Path(file).resolve()}|{stat.st_size}|{stat.st_mtime_ns}")
    return "w" + hashlib.sha1("||".join(parts).encode()).hexdigest()[:10]


def weights_digest(spec: ModelSpec, settings) -> str | None:
    """A key for the weights' content (sha256 of the file, and of its base's for a stacked model), the same
    on every machine that has the same bytes: what data measured once and shipped with facedemo is matched
    on (``weights_fingerprint`` is a fast, machine-local cache key). None while they are not here."""
    parts = []
    for each in ([MODELS[spec.base]] if spec.stacks_on_base else []) + [spec]:
        file = weights_file(each, settings)
        if file is None or not Path(file).is_file():
            return None
        parts.append(tensors_sha256(file) if Path(file).suffix in TORCH_FILES else file_sha256(file))
    return "d" + hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


TORCH_FILES = {".pt", ".pth"}


def tensors_sha256(path: str | Path) -> str:
    """sha256 of a torch checkpoint's tensors (names, dtypes, shapes and values), not of its file: torch.save
    names the zip's records after the file it writes, so one conversion written under two temporary names
    gives two different files of the same weights (a fresh machine's CASIA FaceNet never matched its
    shipped data)."""
    path = Path(path).resolve()
    info = path.stat()
    return _tensors_sha256(str(path), info.st_size, info.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _tensors_sha256(path: str, size: int, mtime_ns: int) -> str:
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name]
        if not isinstance(tensor, torch.Tensor):
            continue
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
