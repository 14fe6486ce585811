"""Identification of a labelled probe set: each probe photo's largest face against the gallery's people,
top-1 and top-k; and, when some probes are of people not in the gallery, the open-set DET curve of every
decision rule that decides from distances (FNIR at FPIR, ``openset.rule_det``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataUnavailableError, GalleryError, NoFaceError
from ..rules import RULES
from ..vectors import centroid, distance_matrix
from ..vision.images import identity_folders
from .metrics import IdentificationResult, identification_accuracy
from .openset import DetCurve, rule_det


@dataclass(frozen=True)
class ProbeIdentification:
    model: str
    result: IdentificationResult
    no_face: int  # probe photos where no face was found (left out)
    unreadable: int  # probe files that could not be read as images (left out)
    open_set: dict[str, DetCurve] | None = None  # per decision rule, when the probes include people not in the gallery

    def to_json(self) -> dict:
        return {
            "model": self.model,
            **self.result.to_json(),
            "no_face": self.no_face,
            "unreadable": self.unreadable,
            "open_set": None if self.open_set is None else {m: c.to_json() for m, c in self.open_set.items()},
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
    spec = gallery.pipeline.spec(model)
    name = spec.name
    threshold = gallery.pipeline.threshold(spec, "identify")  # the scale the k-NN vote's curve is swept around
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
        name, result, no_face, unreadable, open_set_curves(np.stack(found), labels, vectors, people, threshold)
    )


def open_set_curves(
    probes: np.ndarray, labels: Sequence[str], vectors: np.ndarray, people: Sequence[str], threshold: float
) -> dict[str, DetCurve] | None:
    """The open-set DET curve of every rule that decides from distances: probes of enrolled people are mated
    searches, the others non-mated; None unless there are both. A rule decided again at each threshold is
    swept around ``threshold`` (the model's 1:N threshold: ``openset.rule_det``)."""
    names = sorted(set(people))
    index = {n: i for i, n in enumerate(names)}
    owner = np.array([index[p] for p in people])
    truth = np.array([index.get(label, -1) for label in labels])
    if (truth >= 0).all() or not (truth >= 0).any():
        return None
    centroids = np.stack([centroid(vectors[owner == i]) for i in range(len(names))])
    curves = {}
    for rule in RULES.values():
        if rule.from_distances:
            d, cols = (
                (distance_matrix(probes, centroids), np.arange(len(names)))
                if rule.compares_with == "centroids"
                else (distance_matrix(probes, vectors), owner)
            )
            curves[rule.name] = rule_det(rule, d, cols, len(names), truth, threshold)
    return curves
