"""Face detection with facenet-pytorch's MTCNN, wrapped once so the rest of the code never sees
its ``None`` results or ``dtype=object`` arrays."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

Point = tuple[float, float]


@dataclass(frozen=True)
class Face:
    """One detected face, in the pixel coordinates of the image it was found in."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    score: float
    landmarks: tuple[Point, Point, Point, Point, Point]  # left eye, right eye, nose, mouth left, mouth right

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> Point:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    def scaled(self, factor: float) -> Face:
        return Face(
            box=tuple(v * factor for v in self.box),
            score=self.score,
            landmarks=tuple((x * factor, y * factor) for x, y in self.landmarks),
        )

    def to_json(self) -> dict:
        return {
            "box": [round(v, 1) for v in self.box],
            "score": round(self.score, 4),
            "landmarks": [[round(x, 1), round(y, 1)] for x, y in self.landmarks],
        }


def largest_face(faces: Sequence[Face]) -> Face:
    return max(faces, key=lambda f: f.area)


def central_face(faces: Sequence[Face], size: tuple[int, int]) -> Face:
    """The face nearest the image centre (LFW-style photos are centred on their subject)."""
    cx, cy = size[0] / 2, size[1] / 2
    return min(faces, key=lambda f: (f.center[0] - cx) ** 2 + (f.center[1] - cy) ** 2)


class Detector:
    """MTCNN with a minimum face size and score; images are shrunk for detection only (boxes are mapped
    back): to ``max_side``, and further so that the smallest face that matters, ``min_face_fraction`` of
    the photo's shorter side (never under ``min_face_size`` pixels), is ``min_face_size`` pixels there.

    MTCNN's pyramid runs from that size down to the whole picture, one P-Net call per scale (the scales
    differ in size, so facenet-pytorch cannot batch them; it batches equal-sized images, which
    ``detect_many`` gives it). Shrinking the photo removes the largest, costliest scales.
    """

    def __init__(
        self,
        device,
        min_face_size: int = 20,
        min_score: float = 0.90,
        max_side: int = 1600,
        min_face_fraction: float = 0.0,
        engine: str = "torch",
        threads: int = 1,
    ):
        from facenet_pytorch import MTCNN

        self.device = device
        self.min_face_size = min_face_size
        self.min_score = min_score
        self.max_side = max_side
        self.min_face_fraction = min_face_fraction
        self._mtcnn = MTCNN(keep_all=True, min_face_size=min_face_size, device=device, select_largest=False)
        self.engine, self.engine_note = "torch", None
        if engine == "onnx" and not str(device).startswith("cuda"):
            self._run_on_onnx(threads)

    def _run_on_onnx(self, threads: int) -> None:
        """MTCNN's three networks on ONNX Runtime (``mtcnn_onnx``); torch's stay when that cannot be, with
        the reason in ``engine_note``."""
        from ..runtime import export_failure, missing

        reason = missing()
        if reason is None:
            try:
                from .mtcnn_onnx import onnx_nets

                nets = onnx_nets(self._mtcnn, threads)
            except Exception as exc:  # the exporter and onnxruntime raise their own types: torch still works
                reason = export_failure(exc, "into $TORCH_HOME/facedemo")
            else:
                for name, net in nets.items():
                    delattr(self._mtcnn, name)  # a torch child module, replaced by a plain callable
                    setattr(self._mtcnn, name, net)
                self.engine = "onnx"
                return
        self.engine_note = f"MTCNN runs on torch, not ONNX Runtime: {reason}"

    def detect(self, image: Image.Image) -> list[Face]:
        return self.detect_many([image])[0]

    def detect_many(self, images: Sequence[Image.Image]) -> list[list[Face]]:
        """Detect faces in several images, batching those of equal size (MTCNN's own constraint)."""
        results: list[list[Face] | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        prepared, factors = [], []
        for index, image in enumerate(images):
            small, factor = self.working_image(image)
            prepared.append(small)
            factors.append(factor)
            groups[small.size].append(index)
        for size, indices in groups.items():
            if min(size) < self.min_face_size:
                # Smaller than the smallest face we look for: MTCNN would build no image pyramid and
                # crash on an empty torch.cat, so answer "no face" ourselves.
                for i in indices:
                    results[i] = []
                continue
            batch = [prepared[i] for i in indices]
            boxes, probs, points = self._mtcnn.detect(batch, landmarks=True)
            for i, b, p, pts in zip(indices, boxes, probs, points):
                results[i] = self._faces(b, p, pts, factors[i], self.smallest_face(images[i]))
        return results  # type: ignore[return-value]

    def smallest_face(self, image: Image.Image) -> float:
        """The smallest face (box side, in the photo's pixels) this photo is searched for."""
        return max(float(self.min_face_size), self.min_face_fraction * min(image.size))

    def working_image(self, image: Image.Image) -> tuple[Image.Image, float]:
        """The picture MTCNN runs on and the factor that maps its pixels back to the photo's."""
        factor = max(max(image.size) / self.max_side, self.smallest_face(image) / self.min_face_size)
        if factor <= 1.0:
            return image, 1.0
        size = (max(1, round(image.width / factor)), max(1, round(image.height / factor)))
        return image.resize(size, Image.Resampling.BILINEAR), factor

    def _faces(self, boxes, probs, points, factor: float, smallest: float) -> list[Face]:
        if boxes is None or probs is None or points is None or len(boxes) == 0:
            return []
        faces = []
        for box, prob, pts in zip(np.asarray(boxes, dtype=np.float64), probs, np.asarray(points, dtype=np.float64)):
            if prob is None or float(prob) < self.min_score:
                continue
            face = Face(
                box=tuple(float(v) for v in box),
                score=float(prob),
                landmarks=tuple((float(x), float(y)) for x, y in pts),
            )
            if factor != 1.0:
                face = face.scaled(factor)
            if min(face.width, face.height) >= smallest:
                faces.append(face)
        faces.sort(key=lambda f: f.box[0])  # left to right, as people read a group photo
        return faces
