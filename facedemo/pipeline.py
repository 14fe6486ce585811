"""The face pipeline: image -> faces -> aligned crops -> embeddings -> comparisons.

A ``Pipeline`` is built once from ``Settings`` and passed to the CLI, the gallery and the dashboard.
Models load lazily, once each, behind a lock so two requests never load the same model twice.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image

from .align import ALIGNMENTS, align_face, crop_face, dlib_chip
from .detect import Detector, Face, central_face, largest_face
from .device import DeviceInfo, resolve_device
from .errors import FaceDemoError, ModelUnavailableError, NoFaceError
from .images import ImageInput, load_image
from .models.registry import PREFERRED_DEFAULT, user_models, Embedder, ModelSpec, ModelStatus, build_embedder, get_spec, list_models
from .settings import Settings
from .thresholds import threshold_for
from .verify import VerifyResult, compare


@dataclass(frozen=True)
class EmbeddedFace:
    face: Face
    crop: Image.Image  # the aligned model input
    embedding: np.ndarray


@dataclass(frozen=True)
class ChosenFace:
    """One face picked out of an image for 1:1 work, and what the user should know about the choice."""

    image: Image.Image
    face: Face
    crop: Image.Image
    embedding: np.ndarray
    face_count: int
    note: str | None


class Pipeline:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        if self.settings.alignment not in ALIGNMENTS:
            raise FaceDemoError(f"Unknown alignment '{self.settings.alignment}': use one of {', '.join(ALIGNMENTS)}.")
        self._lock = threading.RLock()
        self._device: DeviceInfo | None = None
        self._detector: Detector | None = None
        self._embedders: dict[str, Embedder] = {}
        self._predictor = None  # dlib's 5-point shape predictor, for the "native" alignment

    # -- building blocks, each made once -------------------------------------------------------
    @property
    def device(self) -> DeviceInfo:
        with self._lock:
            if self._device is None:
                self._device = resolve_device(self.settings.device, self.settings.cpu_threads)
            return self._device

    @property
    def detector(self) -> Detector:
        with self._lock:
            if self._detector is None:
                s = self.settings
                self._detector = Detector(self.device.device, s.min_face_size, s.min_face_score, s.max_side)
            return self._detector

    def spec(self, name: str | None) -> ModelSpec:
        return get_spec(name or self.default_model(), user_models(self.settings.home))

    def embedder(self, name: str | None = None) -> Embedder:
        spec = self.spec(name)
        with self._lock:
            if spec.name not in self._embedders:
                if spec.family == "adapter" and spec.extra.get("mode") != "full":  # share the loaded base model
                    from .models import adapter

                    self._embedders[spec.name] = adapter.build(spec, self.settings, self.device, self.embedder(spec.extra["base"]))
                else:
                    self._embedders[spec.name] = build_embedder(spec, self.settings, self.device)
            return self._embedders[spec.name]

    def models(self) -> list[ModelStatus]:
        return list_models(self.settings)

    def default_model(self) -> str:
        """The configured model, else facenet-vggface2 where usable, else the first available model."""
        if self.settings.model:
            return self.settings.model
        statuses = {s.name: s for s in self.models()}
        if statuses.get(PREFERRED_DEFAULT) and statuses[PREFERRED_DEFAULT].available:
            return PREFERRED_DEFAULT
        for status in statuses.values():
            if status.available:
                return status.name
        reasons = "; ".join(f"{s.name}: {s.reason}" for s in statuses.values())
        raise ModelUnavailableError(f"No face model is available. {reasons}")

    def threshold(self, name: str | None = None, task: str = "verify") -> float:
        """The threshold in force for a model: ``verify`` (1:1) or the stricter ``identify`` (1:N)."""
        return threshold_for(self.spec(name), self.settings.home, task)

    # -- the pipeline ---------------------------------------------------------------------------
    def load(self, source: ImageInput) -> Image.Image:
        return load_image(source, self.settings.max_pixels)

    def detect(self, image: Image.Image) -> list[Face]:
        return self.detector.detect(image)

    def aligned(self, image: Image.Image, face: Face, spec: ModelSpec, alignment: str | None = None) -> Image.Image:
        """The model's input for one face. ``similarity``: MTCNN's 5 landmarks onto the model's template;
        ``crop``: facenet-pytorch's margin crop; ``native``: each model's own way (dlib: its shape
        predictor and face chip; facenet: the margin crop it was trained on)."""
        mode = alignment or self.settings.alignment
        family = spec.family if spec.family != "adapter" else get_spec(spec.extra["base"]).family
        if mode == "native" and family == "dlib":
            return dlib_chip(image, face, self._dlib_predictor(), spec.input_size)
        if mode in ("crop", "native"):
            return crop_face(image, face, spec.input_size, spec.crop_margin)
        return align_face(image, face, spec.input_size, spec.template)

    def _dlib_predictor(self):
        with self._lock:
            if self._predictor is None:
                import dlib

                from .models.dlib_resnet import dlib_model_files

                self._predictor = dlib.shape_predictor(str(dlib_model_files()["shape_predictor"]))
            return self._predictor

    def embed_faces(self, image: Image.Image, faces: Sequence[Face], model: str | None = None, alignment: str | None = None) -> list[EmbeddedFace]:
        embedder = self.embedder(model)
        crops = [self.aligned(image, face, embedder.spec, alignment) for face in faces]
        vectors = self._embed_batched(embedder, crops)
        return [EmbeddedFace(face, crop, vector) for face, crop, vector in zip(faces, crops, vectors)]

    def _embed_batched(self, embedder: Embedder, crops: list[Image.Image]) -> np.ndarray:
        if not crops:
            return np.zeros((0, embedder.spec.dim), dtype=np.float32)
        size = max(1, self.settings.batch_size)
        return np.concatenate([embedder.embed(crops[i : i + size]) for i in range(0, len(crops), size)])

    def analyze(self, source: ImageInput, model: str | None = None) -> tuple[Image.Image, list[EmbeddedFace]]:
        """Every face in an image, embedded."""
        image = self.load(source)
        return image, self.embed_faces(image, self.detect(image), model)

    def choose_face(self, source: ImageInput, model: str | None = None, label: str = "The image", pick: str = "largest") -> ChosenFace:
        """The one face of an image to verify: the largest (or the most central), saying so if there were several."""
        image = self.load(source)
        faces = self.detect(image)
        if not faces:
            raise NoFaceError(f"{label} has no face that could be detected; try a clearer, front-facing photo.")
        face = central_face(faces, image.size) if pick == "central" else largest_face(faces)
        note = None
        if len(faces) > 1:
            which = "the most central" if pick == "central" else "the largest"
            note = f"{label} holds {len(faces)} faces; {which} was used."
        (embedded,) = self.embed_faces(image, [face], model)
        return ChosenFace(image, face, embedded.crop, embedded.embedding, len(faces), note)

    def verify(self, a: ImageInput, b: ImageInput, model: str | None = None, threshold: float | None = None) -> tuple[VerifyResult, ChosenFace, ChosenFace]:
        name = self.spec(model).name
        first = self.choose_face(a, name, "Image A")
        second = self.choose_face(b, name, "Image B")
        limit = self.threshold(name) if threshold is None else float(threshold)
        notes = [n for n in (first.note, second.note) if n]
        return compare(name, first.embedding, second.embedding, limit, notes), first, second


@dataclass(frozen=True)
class AnalyzedImage:
    source: object
    image: Image.Image | None
    faces: list[EmbeddedFace]
    error: str | None = None  # the sentence for an image that could not be read


def analyze_many(pipeline: Pipeline, sources: Sequence[ImageInput], model: str | None = None, chunk: int = 16) -> list[AnalyzedImage]:
    """Like ``Pipeline.analyze`` for many images: MTCNN runs on batches of equal-sized images and the
    embedder on batches of faces across images. A bad image gets its error; the others go on."""
    embedder = pipeline.embedder(model)
    results: list[AnalyzedImage | None] = [None] * len(sources)
    for start in range(0, len(sources), chunk):
        loaded: list[tuple[int, Image.Image]] = []
        for index in range(start, min(start + chunk, len(sources))):
            try:
                loaded.append((index, pipeline.load(sources[index])))
            except FaceDemoError as exc:
                results[index] = AnalyzedImage(sources[index], None, [], str(exc))
        detections = pipeline.detector.detect_many([image for _, image in loaded])
        crops = [pipeline.aligned(image, face, embedder.spec) for (_, image), faces in zip(loaded, detections) for face in faces]
        vectors = iter(pipeline._embed_batched(embedder, crops))
        crop_iter = iter(crops)
        for (index, image), faces in zip(loaded, detections):
            embedded = [EmbeddedFace(face, next(crop_iter), next(vectors)) for face in faces]
            results[index] = AnalyzedImage(sources[index], image, embedded)
    return results  # type: ignore[return-value]
