"""Fine-tuning for a condition (``--augment dark:3``): train on degraded versions of the training faces as
well as the clean ones, and measure the held-out people on the degraded slice and clean.

Where the degradation is applied: to the **aligned face chip**, found where the clean photo's face was.
Training needs the same face under the condition, and the chip is what the model sees, so this costs one
detection per photo (the clean one, cached) instead of one per degraded version, and a photo where MTCNN
would lose the face still teaches the model (the detector is not what is being trained). The price in
realism is small for the pointwise conditions (darkness, exposure, grayscale, noise, JPEG); blur and low
resolution act at the chip's scale rather than the photo's. ``eval robustness`` degrades whole photos
before detection, so its figures count the faces MTCNN loses as well.

Which versions: the asked severity and its neighbours (``variants``), each with its own seed, mixed with
the clean faces, so the model learns the condition without forgetting clean faces and without fitting one
exact rendering of it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidParameterError
from ..vision.degrade import SEVERITIES, parse_condition

SLICE_SEED = 0  # the held-out slice's seed; training versions use 1, 2, 3


@dataclass(frozen=True)
class Augment:
    condition: str
    severity: int

    @classmethod
    def parse(cls, text: str | None) -> Augment | None:
        """``"dark"`` / ``"dark:4"`` -> an Augment; ``None`` or ``""`` -> no augmentation."""
        if text is None or not str(text).strip():
            return None
        try:
            return cls(*parse_condition(str(text).strip()))
        except InvalidParameterError as exc:  # an unknown condition or severity, said in the condition's words
            raise InvalidParameterError(
                f"Cannot train for '{text}': {exc} Write it as CONDITION or CONDITION:SEVERITY, e.g. dark:3."
            ) from None

    @property
    def label(self) -> str:
        return f"{self.condition}:{self.severity}"

    def variants(self) -> list[tuple[str, int, int]]:
        """(condition, severity, seed) of every training version: the asked severity and its neighbours."""
        severities = [s for s in (self.severity - 1, self.severity, self.severity + 1) if s in SEVERITIES]
        return [(self.condition, s, seed) for seed, s in enumerate(severities, start=1)]

    def held_out(self) -> tuple[str, int, int]:
        """The degraded slice the report measures: the asked severity, a seed training never used."""
        return (self.condition, self.severity, SLICE_SEED)

    def to_json(self) -> dict:
        return {"condition": self.condition, "severity": self.severity, "variants": [s for _, s, _ in self.variants()]}


def degrade_crops(crops: np.ndarray, spec, degradation: tuple[str, int, int]) -> np.ndarray:
    """Aligned crops (n, size, size, 3 uint8) under one degradation."""
    from PIL import Image

    from ..evaluation.embed import degrade_chip

    return (
        np.stack([np.asarray(degrade_chip(Image.fromarray(c), spec, degradation)) for c in crops])
        if len(crops)
        else crops
    )


def augment_batch(crops: np.ndarray, spec, augment: Augment, rng: np.random.Generator) -> np.ndarray:
    """Full mode's on-the-fly augmentation: half of a batch's crops (at random) under one of the training
    versions, each with a fresh seed, so no two epochs see the same rendering."""
    out = crops.copy()
    variants = augment.variants()
    for i in np.flatnonzero(rng.random(len(crops)) < 0.5):
        condition, severity, _ = variants[rng.integers(len(variants))]
        out[i] = degrade_crops(crops[i : i + 1], spec, (condition, severity, int(rng.integers(1 << 30))))[0]
    return out
