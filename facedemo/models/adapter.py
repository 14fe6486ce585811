"""Fine-tuned models: a residual head on top of a frozen base embedder (``adapter`` mode), or a whole
fine-tuned InceptionResnetV1 (``full`` mode). Training them is ``facedemo.training``'s job; the head
itself, and how a saved model is loaded and used, live here, because the head is part of the model.

A fine-tuned model is a folder ``$FACEDEMO_HOME/models/NAME/`` with ``model.json`` (written last) and
``adapter.pt`` or ``model.pt``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ModelUnavailableError
from .base import Embedder, ModelFamily, ModelSpec, ModelStatus
from .onnx_engine import CpuEngine

ADAPTER_WEIGHTS, FULL_WEIGHTS, RECORD = "adapter.pt", "model.pt", "model.json"


def models_dir(home: Path) -> Path:
    """Where fine-tuned models are saved."""
    return Path(home) / "models"


# -- the head -------------------------------------------------------------------------------------
def make_head(dim: int, hidden: int | None = None):
    """x + W2 relu(W1 x), re-normalised; W2 starts at zero so a new head is exactly the identity."""
    import torch

    class ResidualHead(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(dim, hidden or dim)
            self.fc2 = torch.nn.Linear(hidden or dim, dim)
            torch.nn.init.zeros_(self.fc2.weight)
            torch.nn.init.zeros_(self.fc2.bias)

        def forward(self, x):
            return torch.nn.functional.normalize(x + self.fc2(torch.relu(self.fc1(x))), dim=1)

    return ResidualHead()


def load_head(folder: Path, dim: int):
    import torch

    head = make_head(dim)
    head.load_state_dict(torch.load(Path(folder) / ADAPTER_WEIGHTS, map_location="cpu", weights_only=True))
    return head.eval()


def apply_head(head, vectors: np.ndarray) -> np.ndarray:
    """The head on base embeddings, without gradients."""
    import torch

    if len(vectors) == 0:
        return np.asarray(vectors, dtype=np.float32)
    with torch.inference_mode():
        return head(torch.from_numpy(np.asarray(vectors, dtype=np.float32))).numpy()


# -- saved models ---------------------------------------------------------------------------------
def read_specs(home: Path, bases: dict[str, ModelSpec]) -> dict[str, ModelSpec]:
    """The fine-tuned models saved under ``home``, as specs that inherit their base's input layout."""
    found = {}
    for record_file in sorted(models_dir(home).glob(f"*/{RECORD}")):
        try:
            record = json.loads(record_file.read_text())
            base = bases[record["base"]]
            name = str(record["name"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a half-written or foreign folder is not a model
        found[name] = ModelSpec(
            name=name,
            family="adapter",
            dim=base.dim,
            input_size=base.input_size,
            template=base.template,
            crop_margin=base.crop_margin,
            alignment=base.alignment,
            flip=base.flip,
            threshold=float(record.get("threshold", base.threshold)),
            weights=f"fine-tuned adapter in {record_file.parent}",
            description=_describe(base.name, record),
            base=base.name,
            folder=record_file.parent,
            mode=record.get("mode", "adapter"),
        )
    return found


def trained_on(folder: Path) -> tuple[str, frozenset[str]] | None:
    """Whose faces trained the model saved in ``folder``: (the gallery's namespace, "" for the shared one;
    the person ids), or None for a model trained on a folder of photos rather than on a gallery."""
    try:
        record = json.loads((Path(folder) / RECORD).read_text()).get("trained_on")
        return str(record["namespace"]), frozenset(str(p) for p in record["people"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _describe(base: str, record: dict) -> str:
    what = "fine-tuned" if record.get("mode") == "full" else "+ a head fine-tuned"
    augment = record.get("augment") or {}
    condition = f", for {augment['condition']}:{augment['severity']}" if "condition" in augment else ""
    return f"{base} {what} with {record.get('loss', 'triplet')} loss{condition}"


class AdapterEmbedder:
    module = None  # the head is not the network; training works on the head itself

    def __init__(self, spec: ModelSpec, base: Embedder, head, weights_file: Path):
        self.spec = spec
        self.base = base
        self.device = base.device
        self.weights_file = weights_file
        self._head = head

    def embed(self, faces: Sequence[Image.Image]) -> np.ndarray:
        return apply_head(self._head, self.base.embed(faces))


class AdapterFamily(ModelFamily):
    name = "adapter"

    def __init__(self):
        self.cpu = CpuEngine()  # a full fine-tune is an InceptionResnetV1: ONNX Runtime on the CPU too

    def _file(self, spec: ModelSpec) -> Path:
        return Path(spec.folder) / (FULL_WEIGHTS if spec.mode == "full" else ADAPTER_WEIGHTS)

    def status(self, spec: ModelSpec, settings, base: ModelStatus | None = None) -> ModelStatus:
        if spec.stacks_on_base and base is not None and not base.available:  # a full fine-tune carries all its weights
            return ModelStatus(spec.name, spec.dim, False, f"Its base model {base.name} is unavailable: {base.reason}")
        if not self._file(spec).is_file():
            return ModelStatus(spec.name, spec.dim, False, f"{self._file(spec)} is missing; fine-tune it again.")
        note = self.cpu.note(settings, self._file(spec)) if spec.mode == "full" else None
        return ModelStatus(spec.name, spec.dim, True, None, note=note)

    def build(self, spec: ModelSpec, settings, device, base: Embedder | None = None) -> Embedder:
        current = self.status(spec, settings)
        if not current.available:
            raise ModelUnavailableError(current.reason)
        if spec.mode == "full":  # a whole fine-tuned InceptionResnetV1: loaded (and run) like the released weights
            from .facenet import on_device

            return on_device(spec, self._file(spec), settings, device, self.cpu)
        if base is None:
            raise ModelUnavailableError(f"{spec.name} needs its base model {spec.base} loaded first.")
        try:
            head = load_head(Path(spec.folder), spec.dim)
        except Exception as exc:
            raise ModelUnavailableError(
                f"The fine-tuned model {spec.name} cannot be loaded ({exc.__class__.__name__}); fine-tune it again."
            ) from None
        return AdapterEmbedder(spec, base, head, self._file(spec))

    def weights_file(self, spec: ModelSpec, settings) -> Path | None:
        return self._file(spec) if self._file(spec).is_file() else None
