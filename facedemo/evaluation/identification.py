"""Identification of a labelled probe set: each probe photo's largest face against the gallery's people,
top-1 and top-k; and, when some probes are of people not in the gallery, the open-set DET curve of the
centroid rule (FNIR at FPIR, ``openset``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataUnavailableError, GalleryError, NoFaceError
from ..vectors import centroid, distance_matrix
from ..vision.images import identity_folders
from .metrics import IdentificationResult, identification_accuracy
from .openset import DetCurve, Searches, det


@dataclass(frozen=True)
class ProbeIdentification:
    model: str
    result: IdentificationResult
    no_face: int  # probe photos where no face was found (left out)
    unreadable: int  # probe files that could not be read as images (left out)
    open_set: DetCurve | None = None  # when the probes include people not in the gallery

    def to_json(self) -> dict:
        return {
            "model": self.model,
            **self.result.to_json(),
            "no_face": self.no_face,
            "unreadable": self.unreadable,
            "open_set": None if self.open_set is None else self.open_set.to_json(),
        }


def probe_photos(folder: Path) -> tuple[list[Path], list[str]]:
    """A folder-per-identity tree: every image under ``folder/<person>/`` (folders starting with '_' skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataUnavailableError(f"The probe folder {folder} does not exist.")
    paths, names = [], []
    for person, photos in identity_folders(folder):
        paths += photos
        names += [person] * len(photos)
    if not paths:
        raise DataUnavailableError(f"{folder} holds no photos in per-person folders ({folder}/<name>/<photo>.jpg).")
    return paths, names


def identify_probes(gallery, folder: Path, model: str | None = None, ks: Sequence[int] = (1, 5)) -> ProbeIdentification:
    """Top-1/top-k identification of each probe photo's largest face against the gallery's people."""
    name = gallery.pipeline.spec(model).name
    vectors, people, _, _ = gallery.embeddings(name)
    if len(vectors) == 0:
        raise GalleryError(
            f"Nobody in the gallery is embedded with {name} yet: enroll someone, and every available model embeds them."
        )
    paths, names = probe_photos(folder)
    found, labels, no_face, unreadable = [], [], 0, 0
    for analyzed, label in zip(gallery.pipeline.analyze_many(paths, name), names):
        if analyzed.error:
            unreadable += 1
        elif not analyzed.faces:
            no_face += 1
        else:
            found.append(max(analyzed.faces, key=lambda f: f.face.area).embedding)
            labels.append(label)
    if not found:
        raise NoFaceError(f"No face was found in any of the {len(paths)} probe photos.")
    result = identification_accuracy(np.stack(found), labels, vectors, people, ks)
    return ProbeIdentification(
        name, result, no_face, unreadable, centroid_det(np.stack(found), labels, vectors, people)
    )


def centroid_det(
    probes: np.ndarray, labels: Sequence[str], vectors: np.ndarray, people: Sequence[str]
) -> DetCurve | None:
    """The open-set DET curve of the centroid rule: probes of enrolled people are mated searches, the
    others non-mated; None unless there are both."""
    names = sorted(set(people))
    owner = np.array(people)
    centroids = np.stack([centroid(vectors[owner == n]) for n in names])
    d = distance_matrix(probes, centroids)
    best, score = d.argmin(1), d.min(1)
    mated = np.array([label in set(names) for label in labels])
    if mated.all() or not mated.any():
        return None
    right = np.array([names[b] == label for b, label in zip(best, labels)])
    return det(Searches.of(score[mated], right[mated], score[~mated]), "centroid")
