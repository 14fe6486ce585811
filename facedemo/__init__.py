"""facedemo: see how a face-recognition model behaves.

The public API, in one place (each name is imported on first use, so ``import facedemo`` stays cheap)::

    from facedemo import Pipeline, Gallery, Settings, open_store

    pipeline = Pipeline(Settings.from_env())                # models load lazily, once
    result, a, b = pipeline.verify("a.jpg", "b.jpg")         # 1:1 -> VerifyResult
    print(result.same_person, result.distance, result.threshold)

    gallery = Gallery.open(pipeline, open_store("gallery"))       # Chroma on disk (or ephemeral=True, or host=...)
    gallery.enroll("Ada Lovelace", ["ada1.jpg", "ada2.jpg"])  # -> EnrollResult
    for match in gallery.identify("group.jpg").faces:        # 1:N -> IdentifyResult
        print(match.name or "unknown", match.distance)

    with cluster_album(pipeline, "album.zip") as album:       # every face grouped into people -> Album
        album.name(0, "Ada Lovelace", gallery)               # enroll the largest group

The package is laid out by stage, each importing only the stages below it (``tests/test_architecture.py``
checks this): ``vision`` (images, detection, alignment) -> ``models`` (embedders, thresholds) -> ``pipeline``
-> ``evaluation`` -> ``gallery`` -> ``training`` -> ``explorer`` -> ``bench`` -> ``services`` -> ``ui`` and
``cli``. Only ``ui`` imports gradio; only ``cli`` parses arguments.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    # settings and errors
    "Settings": "settings",
    "FaceDemoError": "errors",
    "ImageError": "errors",
    "NoFaceError": "errors",
    "TooManyFacesError": "errors",
    "ModelUnavailableError": "errors",
    "UnknownModelError": "errors",
    "InvalidNameError": "errors",
    "UnknownPersonError": "errors",
    "GalleryError": "errors",
    # vision and models
    "load_image": "vision.images",
    "Face": "vision.detect",
    "ModelSpec": "models.base",
    "ModelStatus": "models.base",
    "MODELS": "models.registry",
    "get_spec": "models.registry",
    "list_models": "models.registry",
    # the pipeline
    "Pipeline": "pipeline",
    "VerifyResult": "pipeline",
    "EmbeddedFace": "pipeline",
    "AnalyzedImage": "pipeline",
    "Explanation": "pipeline",
    "OcclusionMap": "vision.occlusion",
    # the gallery
    "Gallery": "gallery.core",
    "Person": "gallery.core",
    "open_store": "gallery.store",
    "EnrollResult": "gallery.enroll",
    "ImportReport": "gallery.enroll",
    "IdentifyResult": "gallery.identify",
    "FaceMatch": "gallery.identify",
    "IdentifyComparison": "gallery.identify",
    "annotate": "gallery.identify",
    "cluster_album": "gallery.album",
    "Album": "gallery.album",
    "cluster_vectors": "gallery.cluster",
    "clustering_scores": "evaluation.clustering",
    # evaluation, training, the explorer
    "read_pairs": "evaluation.pairs",
    "evaluate_pairs": "evaluation.verification",
    "calibrate": "evaluation.calibration",
    "compare_pairs": "evaluation.disagreement",
    "Disagreements": "evaluation.disagreement",
    "gallery_disagreements": "explorer.hard_pairs",
    "finetune": "training.finetune",
    "gallery_views": "explorer.views",
    "write_report": "explorer.views",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'facedemo' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
