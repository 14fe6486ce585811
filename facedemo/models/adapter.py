"""A fine-tuned model: its base embedder followed by the head trained by ``facedemo.finetune`` (adapter
mode), or a whole fine-tuned InceptionResnetV1 (full mode)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ..errors import ModelUnavailableError
from .registry import MODELS, ModelSpec, ModelStatus, build_embedder, model_status


def status(spec: ModelSpec, settings) -> ModelStatus:
    base = model_status(MODELS[spec.extra["base"]], settings)
    if not base.available and spec.extra.get("mode") != "full":  # a full fine-tune carries all its weights
        return ModelStatus(spec.name, spec.dim, False, f"Its base model {base.name} is unavailable: {base.reason}")
    weights = "model.pt" if spec.extra.get("mode") == "full" else "adapter.pt"
    if not (Path(spec.extra["path"]) / weights).is_file():
        return ModelStatus(spec.name, spec.dim, False, f"{spec.extra['path']}/{weights} is missing; fine-tune it again.")
    return ModelStatus(spec.name, spec.dim, True, None)


class AdapterEmbedder:
    def __init__(self, spec: ModelSpec, base, head):
        self.spec = spec
        self.base = base
        self.device = base.device
        self._head = head

    def embed(self, faces: Sequence[Image.Image]) -> np.ndarray:
        from ..finetune import apply_head

        return apply_head(self._head, self.base.embed(faces))


def build(spec: ModelSpec, settings, device, base=None) -> AdapterEmbedder:
    """``base``: the base model's embedder when the caller already has it loaded (the pipeline does)."""

    from ..finetune import load_head

    current = status(spec, settings)
    if not current.available:
        raise ModelUnavailableError(current.reason)
    if spec.extra.get("mode") == "full":  # a whole fine-tuned InceptionResnetV1: load it like the released weights
        from .facenet import FacenetEmbedder

        return FacenetEmbedder(spec, Path(spec.extra["path"]) / "model.pt", device)
    try:
        head = load_head(Path(spec.extra["path"]), spec.dim)
    except Exception as exc:
        raise ModelUnavailableError(f"The fine-tuned model {spec.name} cannot be loaded ({exc.__class__.__name__}); fine-tune it again.") from None
    base = base or build_embedder(MODELS[spec.extra["base"]], settings, device)
    return AdapterEmbedder(spec, base, head)
