"""Named face embedders: the registry (specs as data) and one module per model family."""

from .registry import MODELS, Embedder, ModelSpec, ModelStatus, build_embedder, get_spec, list_models, model_status

__all__ = ["MODELS", "Embedder", "ModelSpec", "ModelStatus", "build_embedder", "get_spec", "list_models", "model_status"]
