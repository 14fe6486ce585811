"""The face pipeline: image -> faces -> aligned crops -> embeddings.

A ``Pipeline`` is built once from ``Settings`` and passed to the CLI, the gallery and the dashboard.
Models load lazily, once each, behind a lock so two requests never load the same model twice. A model
is named by the caller once, at the top of a request (``spec``); from there on its ``ModelSpec`` is passed
down to the stages (``aligned``, ``embed_crops``, ``embed_faces``, ...). A stage handed a name resolves it,
for callers outside the request flows, but a request never asks by name twice.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps

from ..errors import ImageError
from ..vectors import l2_normalise
from ..vision.align import align_face, crop_face
from ..vision.detect import Face
from ..vision.images import ImageInput, load_image
from . import one_to_one
from .loaded import LoadedModels, ModelRef
from .results import AnalyzedImage, ChosenFace, EmbeddedFace, Explanation, ModelComparison, VerifyResult


class Pipeline(LoadedModels):
    """Detection, alignment and embedding, with the models loaded once and shared.

    Args:
        settings: every tunable (device, detector limits, alignment, model, weights); default ``Settings.from_env()``.

    Example:
        >>> pipeline = Pipeline(Settings(model="dlib-resnet"))
        >>> result, a, b = pipeline.verify("ada1.jpg", "ada2.jpg")
        >>> result.same_person, round(result.distance, 3)
    """

    def timed_embed_faces(
        self, image: Image.Image, faces: Sequence[Face], spec: ModelRef = None, flip: bool | None = None
    ) -> tuple[list[EmbeddedFace], float]:
        """``embed_faces`` and the milliseconds it took per face (aligning and embedding, the mirror image
        included when the model flips), with the model loaded before the clock starts."""
        spec = self.spec(spec)
        self.embedder(spec)
        start = time.perf_counter()
        embedded = self.embed_faces(image, faces, spec, flip=flip)
        return embedded, 1000.0 * (time.perf_counter() - start) / max(1, len(faces))

    # -- the pipeline ---------------------------------------------------------------------------
    def load(self, source: ImageInput) -> Image.Image:
        return load_image(source, self.settings.max_pixels)

    def detect(self, image: Image.Image) -> list[Face]:
        return self.detector.detect(image)

    def aligned(
        self, image: Image.Image, face: Face, spec: ModelRef = None, alignment: str | None = None
    ) -> Image.Image:
        """The model's input for one face. ``similarity``: MTCNN's 5 landmarks onto the model's template;
        ``crop``: facenet-pytorch's margin crop; ``native``: each model's own way (dlib: its shape
        predictor and face chip; facenet: the margin crop it was trained on)."""
        spec = self.spec(spec)
        mode = alignment or self.alignment(spec)
        if mode == "native":
            return self.native_aligner(spec)(image, face)
        if mode == "crop":
            return crop_face(image, face, spec.input_size, spec.crop_margin)
        return align_face(image, face, spec.input_size, spec.template)

    def embed_crops(self, spec: ModelRef, crops: Sequence[Image.Image], flip: bool | None = None) -> np.ndarray:
        """Aligned crops -> (n, dim) unit vectors, in batches of ``settings.embed_batch_size`` (by device).

        ``flip`` (default: ``self.flip(spec)``): each row is the re-normalised mean of the embeddings of
        the crop and of its mirror image, so a face and its mirror image get the same vector."""
        embedder = self.embedder(spec)
        if not crops:
            return np.zeros((0, embedder.spec.dim), dtype=np.float32)
        flip = self.flip(embedder.spec) if flip is None else flip
        inputs = list(crops) + ([ImageOps.mirror(c) for c in crops] if flip else [])
        size = self.settings.embed_batch_size(self.device.is_cuda)
        vectors = np.concatenate([embedder.embed(inputs[i : i + size]) for i in range(0, len(inputs), size)])
        return l2_normalise(vectors[: len(crops)] + vectors[len(crops) :]) if flip else vectors

    def embed_faces(
        self,
        image: Image.Image,
        faces: Sequence[Face],
        spec: ModelRef = None,
        alignment: str | None = None,
        flip: bool | None = None,
    ) -> list[EmbeddedFace]:
        spec = self.spec(spec)
        crops = [self.aligned(image, face, spec, alignment) for face in faces]
        vectors = self.embed_crops(spec, crops, flip)
        return [EmbeddedFace(face, crop, vector) for face, crop, vector in zip(faces, crops, vectors)]

    def analyze(
        self, source: ImageInput, model: ModelRef = None, flip: bool | None = None
    ) -> tuple[Image.Image, list[EmbeddedFace]]:
        """Every face in an image, embedded.

        Args:
            source: a path, bytes, a PIL image or an array.
            model: a model name or spec (default: the default model).
            flip: average each face with its mirror image (default: ``self.flip(model)``; a gallery passes
                the rule its collection was enrolled with).

        Returns:
            The decoded RGB image and one ``EmbeddedFace`` per face, left to right (empty: no face).
        """
        spec = self.spec(model)
        image = self.load(source)
        return image, self.embed_faces(image, self.detect(image), spec, flip=flip)

    def analyze_many(
        self, sources: Sequence[ImageInput], model: ModelRef = None, chunk: int = 16, flip: bool | None = None
    ) -> list[AnalyzedImage]:
        """Like ``analyze`` for many images: MTCNN runs on batches of equal-sized images and the embedder
        on batches of faces across images. A bad image gets its error; the others go on."""
        spec = self.spec(model)
        results: list[AnalyzedImage | None] = [None] * len(sources)
        for start in range(0, len(sources), chunk):
            loaded: list[tuple[int, Image.Image]] = []
            for index in range(start, min(start + chunk, len(sources))):
                try:
                    loaded.append((index, self.load(sources[index])))
                except ImageError as exc:  # this photo cannot be read; the others go on
                    results[index] = AnalyzedImage(sources[index], None, [], str(exc))
            detections = self.detector.detect_many([image for _, image in loaded])
            crops = [self.aligned(image, face, spec) for (_, image), faces in zip(loaded, detections) for face in faces]
            vectors = iter(self.embed_crops(spec, crops, flip))
            crop_iter = iter(crops)
            for (index, image), faces in zip(loaded, detections):
                embedded = [EmbeddedFace(face, next(crop_iter), next(vectors)) for face in faces]
                results[index] = AnalyzedImage(sources[index], image, embedded)
        return results  # type: ignore[return-value]

    # -- the 1:1 use cases (one_to_one.py) ------------------------------------------------------
    def choose_face(
        self, source: ImageInput, model: ModelRef = None, label: str = "The image", pick: str = "largest"
    ) -> ChosenFace:
        """The one face of an image to verify (``one_to_one.choose_face``)."""
        return one_to_one.choose_face(self, source, self.spec(model), label, pick)

    def verify(
        self, a: ImageInput, b: ImageInput, model: ModelRef = None, threshold: float | None = None
    ) -> tuple[VerifyResult, ChosenFace, ChosenFace]:
        """Are the faces in two images the same person (1:1)? See ``one_to_one.verify``."""
        return one_to_one.verify(self, a, b, model, threshold)

    def compare_models(self, a: ImageInput, b: ImageInput, models: Sequence[str] | None = None) -> ModelComparison:
        """The same pair verified by every available model (``one_to_one.compare_models``)."""
        return one_to_one.compare_models(self, a, b, models)

    def explain(
        self,
        a: ImageInput,
        b: ImageInput,
        models: Sequence[str] | None = None,
        grid: int | None = None,
        occlude: str = "a",
    ) -> Explanation:
        """Where each model looks when it compares two faces (``one_to_one.explain``)."""
        return one_to_one.explain(self, a, b, models, grid, occlude)
