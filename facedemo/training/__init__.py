"""Training: fine-tune a model on your own people with FaceNet's triplet loss (an adapter head on cached
embeddings, or InceptionResnetV1's last block on aligned crops), and report before and after."""

from .data import LabelledEmbeddings
from .finetune import finetune, finetune_gallery, validate_model_name
from .report import FinetuneResult

__all__ = ["FinetuneResult", "LabelledEmbeddings", "finetune", "finetune_gallery", "validate_model_name"]
