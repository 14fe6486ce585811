"""Occlusion sensitivity: where on an aligned face chip a model looks when it compares two faces.

A grey square slides over the chip on an ``n x n`` grid of positions (neighbouring squares overlap by
half, so together they cover the chip); each occluded copy is embedded, and a cell's value is the
distance to the other face with the square there minus the distance without it (Zeiler & Fergus 2014,
"Visualizing and Understanding Convolutional Networks", section 4.2). Positive: that region made the two
faces look alike (hiding it pushes them apart); negative: it made them look different.

Only an embedding function is needed, so every model can be explained the same way; the copies go to it
in one call, so a model batches them as it batches any faces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

GREY = (128, 128, 128)  # the mean of an 8-bit channel: a patch that says nothing about the face
CPU_GRID = 7  # 49 copies: about a second for dlib-resnet, two to four for FaceNet on a 2-core CPU
CUDA_GRID = 14  # 196 copies: one batch on a GPU


@dataclass(frozen=True)
class OcclusionMap:
    """One model's sensitivity map of one pair: ``values[row][col]`` is how much the distance moved with
    the patch whose top-left corner is ``(col * stride, row * stride)`` on the occluded chip."""

    model: str
    grid: int
    patch: int  # the square's side, in chip pixels
    stride: float  # the step between neighbouring squares, in chip pixels
    chip_size: tuple[int, int]  # (width, height) of the aligned chip the model sees
    values: list[list[float]]  # grid x grid: distance with the patch minus ``base_distance``
    base_distance: float  # the pair's distance with nothing hidden
    threshold: float  # the model's threshold in force, for reading ``base_distance``
    occluded: str  # "a" or "b": whose chip the patch went over
    chip: Image.Image | None = None  # the occluded face's chip, for drawing; not part of the JSON
    other: Image.Image | None = None  # the other face's chip

    @property
    def same_person(self) -> bool:
        return self.base_distance <= self.threshold

    def value_at(self, x: float, y: float) -> float:
        """The mean change over every square covering the point ``(x, y)`` (fractions of the chip's width
        and height): how much hiding that spot moved the distance."""
        px, py = x * self.chip_size[0], y * self.chip_size[1]
        hits = [
            self.values[r][c]
            for r in range(self.grid)
            for c in range(self.grid)
            if c * self.stride <= px < c * self.stride + self.patch
            and r * self.stride <= py < r * self.stride + self.patch
        ]
        return float(np.mean(hits)) if hits else 0.0

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "grid": self.grid,
            "patch": self.patch,
            "stride": round(self.stride, 3),
            "chip_size": list(self.chip_size),
            "occluded": self.occluded,
            "base_distance": round(self.base_distance, 4),
            "threshold": round(self.threshold, 4),
            "same_person": self.same_person,
            "map": [[round(v, 4) for v in row] for row in self.values],
        }


def default_grid(is_cuda: bool) -> int:
    return CUDA_GRID if is_cuda else CPU_GRID


def patch_layout(size: int, grid: int) -> tuple[int, float]:
    """The square's side and the stride for ``grid`` positions per axis over ``size`` pixels, neighbours
    overlapping by half: side = 2 * size / (grid + 1)."""
    patch = max(1, round(2 * size / (grid + 1)))
    stride = (size - patch) / (grid - 1) if grid > 1 else 0.0
    return patch, stride


def occluded_copies(chip: Image.Image, grid: int, fill=GREY) -> tuple[list[Image.Image], int, float]:
    """``grid * grid`` copies of ``chip``, row by row, each with one grey square; and the square's side and stride."""
    width, height = chip.size
    patch, stride = patch_layout(min(width, height), grid)
    copies = []
    for row in range(grid):
        for col in range(grid):
            copy = chip.copy()
            x, y = round(col * stride), round(row * stride)
            copy.paste(fill, (x, y, min(width, x + patch), min(height, y + patch)))
            copies.append(copy)
    return copies, patch, stride


def occlusion_map(
    model: str,
    embed: Callable[[Sequence[Image.Image]], np.ndarray],
    chip: Image.Image,
    other: Image.Image,
    grid: int,
    threshold: float,
    occluded: str = "a",
) -> OcclusionMap:
    """Embed ``chip``, ``other`` and every occluded copy of ``chip`` in one call of ``embed`` (unit rows),
    and map each copy's distance to ``other`` against the unoccluded distance."""
    copies, patch, stride = occluded_copies(chip, grid)
    vectors = np.asarray(embed([chip, other, *copies]), dtype=np.float64)
    base_vector, other_vector, moved = vectors[0], vectors[1], vectors[2:]
    base = float(np.linalg.norm(base_vector - other_vector))
    changes = np.linalg.norm(moved - other_vector, axis=1) - base
    values = changes.reshape(grid, grid).tolist()
    return OcclusionMap(model, grid, patch, stride, chip.size, values, base, threshold, occluded, chip, other)
