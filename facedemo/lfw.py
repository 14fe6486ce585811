"""Labelled pairs (LFW ``pairs.txt`` or a CSV ``a,b,same``), their embeddings, and the LFW protocol.

* Each photo's face is the detection nearest the image centre (LFW photos are centred on their
  subject; the largest face can be a bystander). Where MTCNN finds no face, a centre crop stands in
  (``align.center_crop_face``, as the literature does) and the photo is counted as a detection failure.
* Detections and embeddings are cached on disk per image path and mtime (``embedding_cache``):
  detections per detector settings, embeddings per model + weights file + alignment + detector settings.
* Accuracy follows the 10-fold protocol: the threshold of fold i is the best one on the other folds.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .align import center_crop_face
from .detect import Face, central_face
from .embedding_cache import ArrayCache, cache_folder
from .errors import FaceDemoError
from .metrics import DEFAULT_FAR, PairMetrics, pair_metrics

Progress = Callable[[int, int], None]  # (images done, images to do)


class PairsFileError(FaceDemoError):
    """A pairs file that cannot be read or names photos that do not exist."""


@dataclass(frozen=True)
class Pair:
    a: Path
    b: Path
    same: bool
    fold: int  # 0-based


# -- reading pairs -----------------------------------------------------------------------------
def lfw_image(root: Path, name: str, number: str, where: str) -> Path:
    try:
        index = int(number)
    except ValueError:
        raise PairsFileError(f"{where}: '{number}' should be an image number.") from None
    return Path(root) / name / f"{name}_{index:04d}.jpg"


def read_lfw_pairs(path: Path, root: Path, folds: int | None = None) -> list[Pair]:
    """LFW's pairs format: View 2's ``pairs.txt`` starts with ``folds pairs_per_class`` (10 300); View 1's
    ``pairsDevTrain.txt``/``pairsDevTest.txt`` with one number (one fold). Each fold lists its same-person
    lines ``name n1 n2``, then its different-person lines ``name1 n1 name2 n2``. ``folds`` keeps the
    first N folds only."""
    path = Path(path)
    lines = _read_lines(path)
    header = lines[0].split()
    try:
        counts = [int(v) for v in header]
    except ValueError:
        counts = []
    if len(counts) not in (1, 2) or min(counts) < 1:
        raise PairsFileError(
            f"The first line of {path.name} should be 'folds pairs-per-class' (View 2, e.g. '10 300') or "
            f"'pairs-per-class' (View 1), not '{lines[0].strip()}'."
        )
    n_folds, per_class = (1, counts[0]) if len(counts) == 1 else counts
    body = [line for line in lines[1:] if line.strip()]
    if len(body) != n_folds * 2 * per_class:
        raise PairsFileError(
            f"{path.name} promises {n_folds} fold(s) of {per_class} same-person and {per_class} "
            f"different-person pairs ({n_folds * 2 * per_class} lines) but holds {len(body)} pair lines."
        )
    if folds is not None:
        if not 1 <= folds <= n_folds:
            raise PairsFileError(f"{path.name} has {n_folds} fold(s); --folds must be between 1 and {n_folds}, not {folds}.")
        body = body[: folds * 2 * per_class]
    pairs = []
    for number, line in enumerate(body, start=2):
        fields = line.split()
        where = f"Line {number} of {path.name}"
        if len(fields) == 3:
            name, i, j = fields
            pair = Pair(lfw_image(root, name, i, where), lfw_image(root, name, j, where), True, 0)
        elif len(fields) == 4:
            n1, i, n2, j = fields
            pair = Pair(lfw_image(root, n1, i, where), lfw_image(root, n2, j, where), False, 0)
        else:
            raise PairsFileError(f"{where} should be 'name n1 n2' or 'name1 n1 name2 n2', not '{line.strip()}'.")
        pairs.append(Pair(pair.a, pair.b, pair.same, (number - 2) // (2 * per_class)))
    return pairs


TRUE = {"1", "true", "yes"}
FALSE = {"0", "false", "no"}


def read_csv_pairs(path: Path, root: Path, max_folds: int = 10) -> list[Pair]:
    """A CSV with a header row holding ``a,b,same`` (and optionally ``fold``); ``a`` and ``b`` are image paths
    relative to ``root``; ``same`` is 1/0, true/false or yes/no. Without a ``fold`` column the pairs are split
    into up to ``max_folds`` stratified folds (scikit-learn's StratifiedKFold, in file order)."""
    path = Path(path)
    lines = _read_lines(path)
    reader = csv.DictReader(lines)
    columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
    if not {"a", "b", "same"} <= set(columns):
        found = ", ".join(c for c in columns if c) or "nothing"
        raise PairsFileError(f"{path.name} needs a header row with the columns a, b, same (found: {found}).")
    pairs, has_fold = [], "fold" in columns
    for number, row in enumerate(reader, start=2):
        a = (row.get(columns["a"]) or "").strip()
        b = (row.get(columns["b"]) or "").strip()
        flag = (row.get(columns["same"]) or "").strip().lower()
        if not a and not b and not flag:
            continue  # a blank line
        if not a or not b:
            raise PairsFileError(f"Row {number} of {path.name} needs two image paths in columns a and b.")
        if flag not in TRUE | FALSE:
            raise PairsFileError(f"Row {number} of {path.name}: 'same' must be 1/0, true/false or yes/no, not '{flag}'.")
        fold = 0
        if has_fold:
            try:
                fold = int((row.get(columns["fold"]) or "").strip())
            except ValueError:
                raise PairsFileError(f"Row {number} of {path.name}: 'fold' must be a whole number.") from None
        pairs.append(Pair(Path(root) / a, Path(root) / b, flag in TRUE, fold))
    if not pairs:
        raise PairsFileError(f"{path.name} has a header but no pairs.")
    return pairs if has_fold else _stratified_folds(pairs, max_folds)


def _stratified_folds(pairs: list[Pair], max_folds: int) -> list[Pair]:
    from sklearn.model_selection import StratifiedKFold

    labels = np.array([p.same for p in pairs])
    k = min(max_folds, int(labels.sum()), int((~labels).sum()))
    if k < 2:
        return pairs
    fold_of = np.zeros(len(pairs), dtype=int)
    for fold, (_, test) in enumerate(StratifiedKFold(n_splits=k).split(np.zeros(len(pairs)), labels)):
        fold_of[test] = fold
    return [Pair(p.a, p.b, p.same, int(f)) for p, f in zip(pairs, fold_of)]


def read_pairs(path: Path, root: Path, folds: int | None = None) -> list[Pair]:
    """A ``.csv`` file is read as ``a,b,same``; anything else as LFW's pairs format."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        if folds is not None:
            raise PairsFileError("--folds applies to LFW pairs files, not to a CSV (add a 'fold' column instead).")
        return read_csv_pairs(path, root)
    return read_lfw_pairs(path, root, folds)


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise PairsFileError(f"The pairs file {path} does not exist.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PairsFileError(f"The pairs file {path} cannot be read as text ({exc.__class__.__name__}).") from None
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise PairsFileError(f"The pairs file {path} is empty.")
    return lines


# -- embedding the photos ----------------------------------------------------------------------
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


def weights_key(pipeline, spec) -> str:
    """A short fingerprint of the weights file, so embeddings from other weights are never reused."""
    def path():
        if spec.family == "facenet":
            from .models import facenet

            return facenet.configured_path(spec, pipeline.settings) or facenet.cache_path(spec)
        if spec.family == "dlib":
            from .models.dlib_resnet import dlib_model_files

            return dlib_model_files()["descriptor"]
        if spec.family == "adapter":  # a fine-tuned model: its own weights file (a retrain changes it)
            return Path(spec.extra["path"]) / ("model.pt" if spec.extra.get("mode") == "full" else "adapter.pt")
        return None

    file = path()
    if file is not None and not Path(file).is_file():
        pipeline.embedder(spec.name)  # fetches the weights, or says why it cannot
        file = path()
    if file is None or not Path(file).is_file():
        return "weights-unknown"
    stat = Path(file).stat()
    digest = hashlib.sha1(f"{Path(file).resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:10]
    return f"w{digest}"


def embed_images(
    pipeline, paths: Sequence[Path], model: str | None = None, alignment: str | None = None,
    progress: Progress | None = None, chunk: int = 16, save_every: int = 512,
) -> EmbeddedImages:
    """One embedding per photo (its most central face), from the cache where it is still valid."""
    spec = pipeline.spec(model)
    alignment = alignment or pipeline.settings.alignment
    paths = list(dict.fromkeys(Path(p) for p in paths))
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise PairsFileError(f"{len(missing)} of the {len(paths)} photos named by the pairs are missing, e.g. {missing[0]}.")
    folder = cache_folder(pipeline.settings.home)
    det_key = detector_key(pipeline.settings)
    detections = ArrayCache(folder / f"detections-{det_key}.npz", FACE_WIDTH)
    tag = weights_key(pipeline, spec)
    # The model's input layout is part of the key: a new alignment template must never reuse old embeddings.
    layout = hashlib.sha1(repr((spec.template, spec.crop_margin, spec.input_size)).encode()).hexdigest()[:8]
    embeddings = ArrayCache(folder / f"embeddings-{spec.name}-{tag}-{alignment}-l{layout}-{det_key}.npz", spec.dim)
    todo = [p for p in paths if embeddings.get(p) is None]
    done = 0
    if progress:
        progress(0, len(todo))
    for start in range(0, len(todo), chunk):
        batch = todo[start : start + chunk]
        _embed_chunk(pipeline, spec, alignment, batch, detections, embeddings)
        done += len(batch)
        if progress:
            progress(done, len(todo))
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


def _embed_chunk(pipeline, spec, alignment, batch, detections: ArrayCache, embeddings: ArrayCache) -> None:
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
    embedder = pipeline.embedder(spec.name)
    size = max(1, pipeline.settings.batch_size)
    vectors = np.concatenate([embedder.embed(crops[i : i + size]) for i in range(0, len(crops), size)])
    for path, vector, no_face in zip(batch, vectors, failed):
        embeddings.put(path, vector, no_face)


# -- evaluating --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairsEvaluation:
    model: str
    alignment: str
    metrics: PairMetrics
    distances: np.ndarray
    labels: np.ndarray
    folds: np.ndarray
    failed_images: tuple[str, ...]
    images: int
    computed: int  # photos embedded in this run (the rest came from the cache)

    @property
    def detection_failures(self) -> int:
        return len(self.failed_images)

    @property
    def accuracy(self) -> float:
        return self.metrics.cv.accuracy

    @property
    def threshold(self) -> float:
        return self.metrics.cv.threshold

    def to_json(self) -> dict:
        m = self.metrics
        return {
            "model": self.model,
            "accuracy": round(m.cv.accuracy, 6),
            "accuracy_std": round(m.cv.accuracy_std, 6),
            "auc": round(m.roc.auc, 6),
            "val": round(m.at_far.val, 6),
            "far": round(m.at_far.far, 6),
            "threshold": round(m.cv.threshold, 6),
            "mean_pos_distance": round(m.stats.mean_pos, 6),
            "mean_neg_distance": round(m.stats.mean_neg, 6),
            "loss": round(m.loss, 6),
            "pairs": m.pairs,
            "detection_failures": self.detection_failures,
        }


def evaluate_pairs(
    pipeline, pairs: Sequence[Pair], model: str | None = None, alignment: str | None = None,
    far: float = DEFAULT_FAR, progress: Progress | None = None,
) -> PairsEvaluation:
    if not pairs:
        raise PairsFileError("There are no pairs to evaluate.")
    spec = pipeline.spec(model)
    alignment = alignment or pipeline.settings.alignment
    embedded = embed_images(pipeline, [p for pair in pairs for p in (pair.a, pair.b)], spec.name, alignment, progress)
    a = np.stack([embedded.vectors[pair.a] for pair in pairs]).astype(np.float64)
    b = np.stack([embedded.vectors[pair.b] for pair in pairs]).astype(np.float64)
    distances = np.linalg.norm(a - b, axis=1)
    labels = np.array([pair.same for pair in pairs], dtype=bool)
    folds = np.array([pair.fold for pair in pairs], dtype=int)
    return PairsEvaluation(
        model=spec.name,
        alignment=alignment,
        metrics=pair_metrics(distances, labels, folds, far),
        distances=distances,
        labels=labels,
        folds=folds,
        failed_images=tuple(str(p) for p in embedded.failures),
        images=len(embedded.vectors),
        computed=embedded.computed,
    )
