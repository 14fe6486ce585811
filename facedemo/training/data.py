"""Training data: labelled embeddings (adapter mode) or labelled aligned crops (full mode) from a
folder-per-identity tree, and splits by person, never by photo."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataUnavailableError, TrainingError
from ..evaluation.embed import embed_images
from ..progress import Progress, report
from ..vision.images import identity_folders


@dataclass(frozen=True)
class LabelledEmbeddings:
    vectors: np.ndarray
    names: list[str]
    paths: list[str]
    skipped: list[tuple[str, str]]


def folder_images(folder: Path) -> list[tuple[str, Path]]:
    """(person, photo) for every photo of a folder-per-identity tree."""
    items = [(person, photo) for person, photos in identity_folders(folder) for photo in photos]
    if not items:
        raise DataUnavailableError(f"{folder} has no photos in per-person sub-folders.")
    return items


def embed_folder(pipeline, folder: Path, model: str, progress: Progress | None = None) -> LabelledEmbeddings:
    """The base embedding of every photo of a folder-per-identity tree, through the evaluation's on-disk
    cache (a second run, or photos already embedded by ``eval lfw``, cost nothing). Photos where no
    face was found are skipped: a centre crop is fine for a benchmark, not for training."""
    items = folder_images(folder)
    embedded = embed_images(pipeline, [p for _, p in items], model, progress=progress)
    failed = set(embedded.failures)
    keep = [(person, path) for person, path in items if path not in failed]
    dim = pipeline.spec(model).dim
    vectors = np.array([embedded.vectors[path] for _, path in keep], dtype=np.float32).reshape(-1, dim)
    return LabelledEmbeddings(
        vectors, [n for n, _ in keep], [str(p) for _, p in keep], [(str(p), "no face found") for p in sorted(failed)]
    )


def degraded_rows(
    pipeline,
    data: LabelledEmbeddings,
    model: str,
    degradation: tuple[str, int, int],
    progress: Progress | None = None,
    cache_dir: Path | None = None,
) -> LabelledEmbeddings:
    """The same photos, row for row, embedded with their aligned chip under ``degradation`` (condition,
    severity, seed), through the evaluation's cache (in ``cache_dir`` when given): a second run costs nothing."""
    photos = [Path(p) for p in data.paths]
    missing = [p for p in photos if not p.is_file()]
    if missing:
        raise TrainingError(
            f"Training for a condition needs the photos themselves; {len(missing)} of {len(photos)} are not files, e.g. {missing[0]}."
        )
    embedded = embed_images(
        pipeline, photos, model, progress=progress, chip_degradation=degradation, cache_dir=cache_dir
    )
    vectors = np.array([embedded.vectors[p] for p in photos], dtype=np.float32).reshape(len(photos), -1)
    return LabelledEmbeddings(vectors, list(data.names), list(data.paths), [])


def concat(*parts: LabelledEmbeddings) -> LabelledEmbeddings:
    return LabelledEmbeddings(
        np.concatenate([p.vectors for p in parts]),
        [n for p in parts for n in p.names],
        [x for p in parts for x in p.paths],
        [s for p in parts for s in p.skipped],
    )


def held_out_rows(names: Sequence[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split rows by person, never by photo: (training rows, validation rows)."""
    people = sorted(set(names))
    if len(people) < 4:
        raise TrainingError(
            f"Fine-tuning needs at least 4 people (some are held out for validation); the data has {len(people)}."
        )
    random.Random(seed).shuffle(people)
    held = set(people[: max(2, round(len(people) * fraction))])
    return [i for i, n in enumerate(names) if n not in held], [i for i, n in enumerate(names) if n in held]


def split_by_person(
    data: LabelledEmbeddings, fraction: float, seed: int
) -> tuple[LabelledEmbeddings, LabelledEmbeddings]:
    train, held = held_out_rows(data.names, fraction, seed)
    return subset(data, train), subset(data, held)


def subset(data: LabelledEmbeddings, rows: list[int]) -> LabelledEmbeddings:
    return LabelledEmbeddings(data.vectors[rows], [data.names[i] for i in rows], [data.paths[i] for i in rows], [])


@dataclass(frozen=True)
class LabelledCrops:
    crops: np.ndarray  # (n, size, size, 3) uint8, aligned as the model expects
    names: list[str]
    skipped: list[tuple[str, str]]


def crop_folder(pipeline, folder: Path, model: str, progress: Progress | None = None) -> LabelledCrops:
    items = folder_images(folder)
    spec = pipeline.spec(model)
    crops, names, skipped = [], [], []
    for start in range(0, len(items), 16):
        part = items[start : start + 16]
        for (person, path), result in zip(part, pipeline.analyze_many([str(p) for _, p in part], spec)):
            if result.error or not result.faces:
                skipped.append((str(path), result.error or "no face found"))
                continue
            face = max(result.faces, key=lambda f: f.face.area)
            crops.append(np.asarray(face.crop.convert("RGB").resize((spec.input_size, spec.input_size))))
            names.append(person)
        report(progress, min(start + 16, len(items)), len(items), "aligning faces")
    return LabelledCrops(
        np.stack(crops) if crops else np.zeros((0, spec.input_size, spec.input_size, 3), np.uint8), names, skipped
    )


def split_crops(data: LabelledCrops, fraction: float, seed: int) -> tuple[LabelledCrops, LabelledCrops]:
    def part(rows):
        return LabelledCrops(data.crops[rows], [data.names[i] for i in rows], [])

    train, held = held_out_rows(data.names, fraction, seed)
    return part(train), part(held)
