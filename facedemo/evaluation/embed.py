"""One embedding per photo for evaluation, through on-disk caches.

* Each photo's face is the detection nearest the image centre (LFW photos are centred on their subject;
  the largest face can be a bystander). Where MTCNN finds no face, a centre crop stands in
  (``vision.align.center_crop_face``, as the literature does) and the photo is counted as a detection failure.
* Detections and embeddings are cached per image path and mtime (``cache.ArrayCache``): detections per
  detector settings, embeddings per model + its weights + alignment + input layout + detector settings
  + test-time flip (a ``-flip`` suffix; without flip the key is what it was before flip existed).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..progress import Progress, report
from ..vision.align import center_crop_face
from ..vision.detect import Face, central_face
from .cache import ArrayCache, cache_folder
from .pairs import PairsFileError


FACE_WIDTH = 15  # box (4) + score (1) + landmarks (10)


def _face_row(face: Face) -> np.ndarray:
    return np.array([*face.box, face.score, *(v for point in face.landmarks for v in point)], dtype=np.float32)


def _row_face(row: np.ndarray) -> Face:
    values = [float(v) for v in row]
    return Face(box=tuple(values[:4]), score=values[4], landmarks=tuple(zip(values[5::2], values[6::2])))


@dataclass(frozen=True)
class EmbeddedImages:
    vectors: dict[Path, np.ndarray]
    failures: tuple[Path, ...]  # photos where no face was found (a centre crop was embedded)
    computed: int  # photos embedded by this call; the others came from the cache


def detector_key(settings) -> str:
    return f"mtcnn-min{settings.min_face_size}-score{settings.min_face_score:g}-side{settings.max_side}"


def embed_images(
    pipeline, paths: Sequence[Path], model: str | None = None, alignment: str | None = None,
    progress: Progress | None = None, chunk: int = 16, save_every: int = 512, flip: bool | None = None,
) -> EmbeddedImages:
    """One embedding per photo (its most central face), from the cache where it is still valid; ``flip``
    (default: the pipeline's for the model) averages each face with its mirror image."""
    spec = pipeline.spec(model)
    alignment = alignment or pipeline.alignment(spec)
    paths = list(dict.fromkeys(Path(p) for p in paths))
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise PairsFileError(f"{len(missing)} of the {len(paths)} photos named by the pairs are missing, e.g. {missing[0]}.")
    folder = cache_folder(pipeline.settings.home)
    det_key = detector_key(pipeline.settings)
    detections = ArrayCache(folder / f"detections-{det_key}.npz", FACE_WIDTH)
    tag = pipeline.weights_id(spec)
    # The model's input layout is part of the key: a new alignment template must never reuse old embeddings.
    layout = hashlib.sha1(repr((spec.template, spec.crop_margin, spec.input_size)).encode()).hexdigest()[:8]
    flip = pipeline.flip(spec) if flip is None else flip  # face and mirror image averaged: other vectors, another file
    embeddings = ArrayCache(folder / f"embeddings-{spec.name}-{tag}-{alignment}-l{layout}-{det_key}{'-flip' if flip else ''}.npz", spec.dim)
    todo = [p for p in paths if embeddings.get(p) is None]
    done = 0
    report(progress, 0, len(todo), "embedding photos")
    for start in range(0, len(todo), chunk):
        batch = todo[start : start + chunk]
        _embed_chunk(pipeline, spec, alignment, flip, batch, detections, embeddings)
        done += len(batch)
        report(progress, done, len(todo), "embedding photos")
        if done % save_every < chunk:
            detections.save()
            embeddings.save()
    detections.save()
    embeddings.save()
    vectors, failures = {}, []
    for p in paths:
        vector, failed = embeddings.get(p)
        vectors[p] = vector
        if failed:
            failures.append(p)
    return EmbeddedImages(vectors, tuple(failures), len(todo))


def _embed_chunk(pipeline, spec, alignment, flip, batch, detections: ArrayCache, embeddings: ArrayCache) -> None:
    images = [pipeline.load(p) for p in batch]
    unknown = [i for i, p in enumerate(batch) if detections.get(p) is None]
    if unknown:
        found = pipeline.detector.detect_many([images[i] for i in unknown])
        for i, faces in zip(unknown, found):
            if faces:
                detections.put(batch[i], _face_row(central_face(faces, images[i].size)), False)
            else:
                detections.put(batch[i], np.zeros(FACE_WIDTH), True)
    crops, failed = [], []
    for path, image in zip(batch, images):
        row, no_face = detections.get(path)
        face = center_crop_face(image) if no_face else _row_face(row)
        crops.append(pipeline.aligned(image, face, spec, alignment))
        failed.append(no_face)
    vectors = pipeline.embed_crops(spec, crops, flip)
    for path, vector, no_face in zip(batch, vectors, failed):
        embeddings.put(path, vector, no_face)
