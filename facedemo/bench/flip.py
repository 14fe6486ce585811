"""``bench flip``: what test-time flip costs. The same real aligned faces embedded without and with flip
(the face and its mirror image, averaged), each timed several times in turn; detection and alignment run
once beforehand, since flip does not change them."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from ..errors import NoFaceError
from ..pipeline import Pipeline
from ..vision.detect import central_face
from .pipeline import bench_images


@dataclass(frozen=True)
class FlipBench:
    model: str
    device: str
    faces: int
    repeats: int
    plain_s: float  # median seconds to embed every face, without flip
    flip_s: float  # the same with flip

    @property
    def plain_ms_per_face(self) -> float:
        return 1000 * self.plain_s / self.faces

    @property
    def flip_ms_per_face(self) -> float:
        return 1000 * self.flip_s / self.faces

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "device": self.device,
            "faces": self.faces,
            "repeats": self.repeats,
            "plain_ms_per_face": round(self.plain_ms_per_face, 2),
            "flip_ms_per_face": round(self.flip_ms_per_face, 2),
            "ratio": round(self.flip_s / self.plain_s, 2),
        }

    def text(self) -> str:
        return (
            f"{self.faces} aligned LFW faces, model {self.model}, device {self.device}, median of {self.repeats} runs\n"
            f"  without flip : {self.plain_ms_per_face:.1f} ms per face\n"
            f"  with flip    : {self.flip_ms_per_face:.1f} ms per face ({self.flip_s / self.plain_s:.2f}x)"
        )


def bench_flip(
    pipeline: Pipeline, model: str | None = None, images: str | None = None, limit: int = 64, repeats: int = 3
) -> FlipBench:
    spec = pipeline.spec(model)
    crops = []
    for path in bench_images(images, limit):
        image = pipeline.load(path)
        faces = pipeline.detect(image)
        if faces:
            crops.append(pipeline.aligned(image, central_face(faces, image.size), spec))
    if not crops:
        raise NoFaceError("No face was found in the benchmark photos.")
    pipeline.embed_crops(spec, crops[:2], flip=True)  # load the model (and warm it) before timing
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(max(1, repeats)):
        for flip in (False, True):  # in turn, so a change in the machine's load falls on both
            start = time.perf_counter()
            pipeline.embed_crops(spec, crops, flip=flip)
            times[flip].append(time.perf_counter() - start)
    return FlipBench(
        spec.name,
        pipeline.device.description,
        len(crops),
        max(1, repeats),
        statistics.median(times[False]),
        statistics.median(times[True]),
    )
