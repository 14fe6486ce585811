"""The gallery: enrolled people in Chroma, enrollment and import, identification, and the zip archive.

``Gallery`` is the object a caller uses; ``open_store`` builds its store.
"""

from .core import Gallery, Person
from .enroll import Duplicate, EnrolledFace, EnrollResult, ImportReport, Skipped
from .identify import DEFAULT_METHOD, METHODS, FaceMatch, IdentifyComparison, IdentifyResult, annotate
from .names import validate_name
from .store import Candidate, ChromaStore, FaceRecord, FaceStore, make_client, open_store, record_id

__all__ = [
    "Candidate", "ChromaStore", "DEFAULT_METHOD", "Duplicate", "EnrollResult", "EnrolledFace", "FaceMatch", "FaceRecord",
    "FaceStore", "Gallery", "IdentifyComparison", "IdentifyResult", "ImportReport", "METHODS", "Person", "Skipped", "annotate", "make_client",
    "open_store", "record_id", "validate_name",
]
