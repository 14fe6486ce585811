"""The face pipeline: image -> faces -> aligned crops -> embeddings -> verdicts.

``core.py`` holds the ``Pipeline`` (the models loaded once and shared, and the stages a request chains),
``one_to_one.py`` the 1:1 use cases on it (verify, every model side by side, where each model looks) and
``results.py`` what they return.
"""

from .core import ModelRef, Pipeline
from .results import AnalyzedImage, ChosenFace, EmbeddedFace, Explanation, ModelComparison, VerifyResult, compare

__all__ = [
    "AnalyzedImage",
    "ChosenFace",
    "EmbeddedFace",
    "Explanation",
    "ModelComparison",
    "ModelRef",
    "Pipeline",
    "VerifyResult",
    "compare",
]
