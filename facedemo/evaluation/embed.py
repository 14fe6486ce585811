"""One embedding per photo for evaluation, through on-disk caches.

* Each photo's face is the detection nearest the image centre (LFW photos are centred on their subject;
  the largest face can be a bystander). Where MTCNN finds no face, a centre crop stands in
  (``vision.align.center_crop_face``, as the literature does) and the photo is counted as a detection failure.
* Detections and embeddings are cached per image path and mtime (``cache.ArrayCache``): detections per
  detector settings, embeddings per model + its weights + alignment + input layout + detector settings
  + test-time flip (a ``-flip`` suffix; without flip the key is what it was before flip existed).
* ``degradation=(condition, severity)`` embeds each photo as ``vision.degrade`` spoils it (before detection,
  so a face MTCNN loses counts), seeded by the photo's path; its detections and embeddings go to caches
  of their own, named with the condition's key (clean photos keep the caches they always had).
* ``chip_degradation=(condition, severity, seed)`` instead degrades the *aligned face chip*, placed where
  the clean photo's face was found (the clean detections are reused): what fine-tuning for a condition
  trains on (``training.augment`` says why), cached beside the clean embeddings under its own key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..progress import Progress, report
from ..vision.align import center_crop_face
from ..vision.degrade import FaceLayout, degradation_key, degrade, photo_seed
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
    """What a face's detection depends on: the detector and its limits, and the border it works in. MTCNN
    without a border keeps the key the shipped data was measured with; another detector (FACEDEMO_DETECTOR)
    or a border (FACEDEMO_EDGE_BORDER) finds other boxes, so it never reuses that data or those caches."""
    border = f"-border{settings.edge_border:g}" if settings.edge_border else ""
    return (
        f"{settings.detector}-min{settings.min_face_size}-score{settings.min_face_score:g}-side{settings.max_side}"
        f"-frac{settings.min_face_fraction:g}{border}"
    )


def embedding_key(pipeline, spec, alignment: str, flip: bool | None = None) -> str:
    """What a cached embedding depends on: the model, its exact weights, the alignment, the model's input
    layout (a new alignment template must never reuse old embeddings), the detector's settings and
    test-time flip (default: the pipeline's for the model)."""
    return _key(pipeline, spec, pipeline.fetch_weights_id(spec), alignment, flip)


def portable_key(pipeline, spec, alignment: str, flip: bool | None = None) -> str:
    """``embedding_key`` with the weights named by their content, not their file: the same on every machine
    with the same weights, so data measured once (the shipped strangers' vectors and robustness figures)
    is recognised where it applies."""
    from ..models.registry import weights_digest

    pipeline.fetch_weights_id(spec)  # the weights are fetched (or the reason raised) first
    return _key(pipeline, spec, weights_digest(spec, pipeline.settings) or "weights-unknown", alignment, flip)


def _key(pipeline, spec, tag: str, alignment: str, flip: bool | None) -> str:
    layout = hashlib.sha1(repr((spec.template, spec.crop_margin, spec.input_size)).encode()).hexdigest()[:8]
    flip = pipeline.flip(spec) if flip is None else flip
    return f"{spec.name}-{tag}-{alignment}-l{layout}-{detector_key(pipeline.settings)}{'-flip' if flip else ''}"


def embed_images(
    pipeline,
    paths: Sequence[Path],
    model: str | None = None,
    alignment: str | None = None,
    progress: Progress | None = None,
    chunk: int = 16,
    save_every: int = 512,
    degradation: tuple[str, int] | None = None,
    chip_degradation: tuple[str, int, int] | None = None,
    flip: bool | None = None,
    cache_dir: Path | None = None,
) -> EmbeddedImages:
    """One embedding per photo (its most central face), from the cache where it is still valid;
    ``degradation=(condition, severity)``: of the photo as that condition spoils it;
    ``chip_degradation=(condition, severity, seed)``: of its aligned chip under that condition;
    ``flip`` (default: the pipeline's for the model) averages each face with its mirror image;
    ``cache_dir`` (default: FACEDEMO_HOME/cache) is where the cache files live: a gallery's fine-tune puts
    them in a scratch folder that goes when it ends, since they hold faces of the gallery's people."""
    spec = pipeline.spec(model)
    alignment = alignment or pipeline.alignment(spec)
    paths = list(dict.fromkeys(Path(p) for p in paths))
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise PairsFileError(
            f"{len(missing)} of the {len(paths)} photos named by the pairs are missing, e.g. {missing[0]}."
        )
    folder = cache_dir or cache_folder(pipeline.settings.home)
    spoiled = "" if degradation is None else "-" + degradation_key(*degradation)
    detections = ArrayCache(folder / f"detections-{detector_key(pipeline.settings)}{spoiled}.npz", FACE_WIDTH)
    if chip_degradation is not None:
        condition, severity, seed = chip_degradation
        spoiled += f"-chip-{degradation_key(condition, severity)}-s{seed}"
    flip = pipeline.flip(spec) if flip is None else flip  # face and mirror image averaged: other vectors, another file
    embeddings = ArrayCache(
        folder / f"embeddings-{embedding_key(pipeline, spec, alignment, flip)}{spoiled}.npz", spec.dim
    )

    def load(path: Path):
        image = pipeline.load(path)
        return image if degradation is None else degrade(image, *degradation, seed=photo_seed(path))

    todo = [p for p in paths if embeddings.get(p) is None]
    done = 0
    report(progress, 0, len(todo), "embedding photos")
    for start in range(0, len(todo), chunk):
        batch = todo[start : start + chunk]
        _embed_chunk(pipeline, spec, alignment, flip, batch, detections, embeddings, load, chip_degradation)
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


def uncached(pipeline, paths: Sequence[Path], model: str | None = None) -> int:
    """How many of ``paths`` ``embed_images`` would embed now for ``model`` (clean photos, the model's own
    alignment and flip): those with no valid cached embedding. Reads the cache; embeds nothing."""
    spec = pipeline.spec(model)
    key = embedding_key(pipeline, spec, pipeline.alignment(spec), pipeline.flip(spec))
    embeddings = ArrayCache(cache_folder(pipeline.settings.home) / f"embeddings-{key}.npz", spec.dim)
    return sum(1 for p in dict.fromkeys(Path(p) for p in paths) if not p.is_file() or embeddings.get(p) is None)


def chip_layout(spec, size: tuple[int, int]) -> FaceLayout:
    """Where the eyes and mouth sit on a model's aligned chip: its landmark template, scaled to the chip."""
    return FaceLayout.from_landmarks([(x * size[0], y * size[1]) for x, y in spec.template], size)


def degrade_chip(chip, spec, chip_degradation: tuple[str, int, int]):
    """An aligned chip under (condition, severity, seed), the occluding bands placed from the template."""
    condition, severity, seed = chip_degradation
    return degrade(chip, condition, severity, seed, chip_layout(spec, chip.size))


def _embed_chunk(
    pipeline, spec, alignment, flip, batch, detections: ArrayCache, embeddings: ArrayCache, load, chip_degradation=None
) -> None:
    images = [load(p) for p in batch]
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
        crop = pipeline.aligned(image, face, spec, alignment)
        crops.append(crop if chip_degradation is None else degrade_chip(crop, spec, chip_degradation))
        failed.append(no_face)
    vectors = pipeline.embed_crops(spec, crops, flip)
    for path, vector, no_face in zip(batch, vectors, failed):
        embeddings.put(path, vector, no_face)


def chosen_models(pipeline, models=None) -> tuple[list[str], dict[str, str]]:
    """The models an evaluation runs, and the reasons for those it leaves out: the ones named (each must be
    able to run here: a named model that cannot is the user's to hear about at once), or every available
    model, the others listed with their reasons."""
    from ..errors import ModelUnavailableError

    statuses = {s.name: s for s in pipeline.models()}
    if models:
        names = list(dict.fromkeys(pipeline.spec(m).name for m in models))
        for name in names:
            status = statuses.get(name)
            if status is not None and not status.available:
                raise ModelUnavailableError(f"{name} cannot run here: {status.reason}")
        return names, {}
    names = [s.name for s in statuses.values() if s.available]
    return names, {s.name: s.reason or "unavailable" for s in statuses.values() if not s.available}
