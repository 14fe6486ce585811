"""Models: aligned faces to embeddings. Specs as data, one module per family, the fine-tuned adapter and its
head, and the thresholds each model uses. Knows nothing of galleries, evaluation or training."""

from .base import Aligner, Embedder, ModelFamily, ModelSpec, ModelStatus, Prepared
from .registry import (
    DEFAULT_ORDER,
    FAMILIES,
    MODELS,
    build_embedder,
    family_of,
    get_spec,
    list_models,
    model_status,
    native_aligner,
    prepare,
    user_models,
    weights_file,
    weights_fingerprint,
)

__all__ = [
    "Aligner",
    "Embedder",
    "FAMILIES",
    "MODELS",
    "ModelFamily",
    "ModelSpec",
    "ModelStatus",
    "DEFAULT_ORDER",
    "Prepared",
    "prepare",
    "build_embedder",
    "family_of",
    "get_spec",
    "list_models",
    "model_status",
    "native_aligner",
    "user_models",
    "weights_file",
    "weights_fingerprint",
]
