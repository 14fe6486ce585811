"""The gallery: people enrolled once in Chroma and seen by every model; enrollment and import,
identification, the zip archive, an unlabelled album.

``Gallery`` (read and write) and ``GalleryView`` (read only) are what a caller uses; ``open_store``
builds their store.
"""

from ..rules import DEFAULT_METHOD, Candidate, methods
from .core import BackfillReport, Deletion, FaceRemoval, Gallery, GalleryFace, GalleryView, Person
from .enroll import Duplicate, EnrolledFace, EnrollResult, FaceToEnroll, ImportReport, Skipped
from .identify import (
    FaceMatch,
    IdentifyComparison,
    IdentifyResult,
    SearchContext,
    annotate,
    identify_faces,
)
from .names import validate_name
from .store import (
    ChromaStore,
    FaceRecord,
    FaceStore,
    ModelRecord,
    PersonRecord,
    face_id,
    make_client,
    open_store,
    record_id,
)

__all__ = [
    "BackfillReport",
    "Candidate",
    "Deletion",
    "ChromaStore",
    "DEFAULT_METHOD",
    "Duplicate",
    "EnrollResult",
    "EnrolledFace",
    "FaceMatch",
    "FaceRemoval",
    "FaceRecord",
    "FaceStore",
    "FaceToEnroll",
    "Gallery",
    "GalleryFace",
    "GalleryView",
    "IdentifyComparison",
    "IdentifyResult",
    "ImportReport",
    "ModelRecord",
    "Person",
    "PersonRecord",
    "SearchContext",
    "Skipped",
    "annotate",
    "methods",
    "face_id",
    "identify_faces",
    "make_client",
    "open_store",
    "record_id",
    "validate_name",
]
