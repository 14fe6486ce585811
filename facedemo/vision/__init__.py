"""Vision: pixels to faces. Loading images safely, detecting faces with MTCNN, aligning them for a model.

Knows nothing of models, galleries, evaluation or training.
"""

from .align import ALIGNMENTS, align_face, center_crop_face, crop_face
from .detect import Detector, Face, central_face, largest_face
from .images import IMAGE_SUFFIXES, ImageInput, identity_folders, image_sha, list_images, load_image

__all__ = [
    "ALIGNMENTS",
    "Detector",
    "Face",
    "IMAGE_SUFFIXES",
    "ImageInput",
    "align_face",
    "center_crop_face",
    "central_face",
    "crop_face",
    "identity_folders",
    "image_sha",
    "largest_face",
    "list_images",
    "load_image",
]
