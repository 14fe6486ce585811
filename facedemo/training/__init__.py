"""Training: fine-tune a model on your own people with FaceNet's triplet loss or ArcFace's angular margin
(an adapter head on cached embeddings, or InceptionResnetV1's last block on aligned crops), optionally
for a condition (darkness, blur, a mask...), and report before and after with the per-epoch curves."""

from .augment import Augment
from .data import LabelledEmbeddings
from .finetune import finetune, finetune_gallery, saved_report, validate_model_name
from .losses import LOSSES
from .report import FinetuneResult

__all__ = [
    "LOSSES",
    "Augment",
    "FinetuneResult",
    "LabelledEmbeddings",
    "finetune",
    "finetune_gallery",
    "saved_report",
    "validate_model_name",
]
