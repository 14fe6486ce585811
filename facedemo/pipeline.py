"""The face pipeline: image -> faces -> aligned crops -> embeddings -> verdicts.

A ``Pipeline`` is built once from ``Settings`` and passed to the CLI, the gallery and the dashboard.
Models load lazily, once each, behind a lock so two requests never load the same model twice. A model
is named by the caller once; from there on its ``ModelSpec`` is passed down.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from . import params
from .device import DeviceInfo, resolve_device
from .errors import ImageError, InvalidParameterError, ModelUnavailableError, NoFaceError
from .models import distributions
from .models.base import Aligner, Embedder, ModelSpec, ModelStatus
from .models.distributions import CommonScore, common_score
from .models.registry import (
    DEFAULT_ORDER,
    build_embedder,
    get_spec,
    list_models,
    native_aligner,
    user_models,
    weights_fingerprint,
)
from .models.thresholds import threshold_for
from .settings import Settings
from .vectors import cosine_similarity, l2_distance, l2_normalise
from .vision.align import ALIGNMENTS, align_face, crop_face
from .vision.detect import Detector, Face, central_face, largest_face
from .vision.images import ImageInput, frames_note, load_image
from .vision.occlusion import OcclusionMap, default_grid, occlusion_map

ModelRef = str | ModelSpec | None  # a model's name, its spec, or None for the default model


@dataclass(frozen=True)
class EmbeddedFace:
    face: Face
    crop: Image.Image  # the aligned model input
    embedding: np.ndarray


@dataclass(frozen=True)
class AnalyzedImage:
    source: object
    image: Image.Image | None
    faces: list[EmbeddedFace]
    error: str | None = None  # the sentence for an image that could not be read


@dataclass(frozen=True)
class ChosenFace:
    """One face picked out of an image for 1:1 work, and what the user should know about the choice."""

    image: Image.Image
    face: Face
    crop: Image.Image
    embedding: np.ndarray
    face_count: int
    note: str | None


@dataclass(frozen=True)
class VerifyResult:
    """A 1:1 verdict: ``same_person`` when the distance is at or below the threshold."""

    model: str
    distance: float
    similarity: float
    threshold: float
    notes: tuple[str, ...] = field(default_factory=tuple)  # e.g. "image A holds 3 faces; the largest was used"
    score: CommonScore | None = None  # the distance on the scale every model shares (None: no distributions)
    ms_per_face: float | None = None  # aligning and embedding one face, measured in this request

    @property
    def same_person(self) -> bool:
        return self.distance <= self.threshold

    @property
    def margin(self) -> float:
        """Distance minus threshold: below zero is the same-person side, and how far in."""
        return self.distance - self.threshold

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "distance": round(self.distance, 4),
            "similarity": round(self.similarity, 4),
            "threshold": round(self.threshold, 4),
            "same_person": self.same_person,
            "margin": round(self.margin, 4),
            "score": None if self.score is None else self.score.to_json(),
            "ms_per_face": None if self.ms_per_face is None else round(self.ms_per_face, 1),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ModelComparison:
    """The same two faces verified by every available model: one ``VerifyResult`` per model that ran,
    and why each other model could not."""

    results: list[VerifyResult]
    unavailable: dict[str, str]  # model -> the reason, in words
    first: ChosenFace  # the faces compared (found once, embedded by every model)
    second: ChosenFace

    @property
    def agree(self) -> bool:
        return len({r.same_person for r in self.results}) <= 1

    @property
    def split(self) -> str | None:
        """The one line that says how the verdicts split, or None when the models agree."""
        if self.agree:
            return None
        says = ", ".join(
            f"{r.model} says {'same person' if r.same_person else 'different people'}" for r in self.results
        )
        return f"The models disagree: {says}."

    def to_json(self) -> dict:
        return {
            "models": [r.to_json() for r in self.results],
            "agree": self.agree,
            "split": self.split,
            "unavailable": [{"model": m, "reason": r} for m, r in self.unavailable.items()],
        }


@dataclass(frozen=True)
class Explanation:
    """Where each model looks on one pair: an ``OcclusionMap`` per model that ran (each over the chip that
    model itself sees), and why each other model could not."""

    maps: list[OcclusionMap]
    unavailable: dict[str, str]  # model -> the reason, in words
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict:
        return {
            "models": [m.to_json() for m in self.maps],
            "unavailable": [{"model": m, "reason": r} for m, r in self.unavailable.items()],
            "notes": list(self.notes),
        }


def compare(
    model: str,
    a: np.ndarray,
    b: np.ndarray,
    threshold: float,
    notes=(),
    record: dict | None = None,
    ms_per_face: float | None = None,
) -> VerifyResult:
    """Two embeddings' verdict; ``record``: the model's distance distributions, for the common score."""
    distance = l2_distance(a, b)
    return VerifyResult(
        model=model,
        distance=distance,
        similarity=cosine_similarity(a, b),
        threshold=threshold,
        notes=tuple(notes),
        score=common_score(record, distance, model),
        ms_per_face=ms_per_face,
    )


class Pipeline:
    """Detection, alignment and embedding, with the models loaded once and shared.

    Args:
        settings: every tunable (device, detector limits, alignment, model, weights); default ``Settings.from_env()``.

    Example:
        >>> pipeline = Pipeline(Settings(model="dlib-resnet"))
        >>> result, a, b = pipeline.verify("ada1.jpg", "ada2.jpg")
        >>> result.same_person, round(result.distance, 3)
    """

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        # Where fine-tuned models are saved, and read besides those of settings.home: settings.home itself,
        # or a public-mode visitor's own folder (see ``with_models_home``).
        self.models_home = Path(self.settings.home)
        if self.settings.alignment is not None and self.settings.alignment not in ALIGNMENTS:
            raise InvalidParameterError(
                f"Unknown alignment '{self.settings.alignment}': use one of {', '.join(ALIGNMENTS)}."
            )
        self._lock = threading.RLock()
        self._device: DeviceInfo | None = None
        self._detector: Detector | None = None
        self._embedders: dict[str, Embedder] = {}
        self._aligners: dict[str, Aligner] = {}  # each model's "native" alignment

    def with_models_home(self, home: str | Path) -> Pipeline:
        """This pipeline (the same device, detector and loaded models) seeing, besides the fine-tuned models
        of ``settings.home``, those saved under ``home``, where it also saves new ones: a public-mode
        visitor's models stay in that visitor's folder and are listed for nobody else."""
        _ = (self.device, self.detector)  # made once here, so that every view shares them
        view = copy.copy(self)  # the lock and the dicts of loaded models are shared, not copied
        view.models_home = Path(home)
        return view

    def loaded(self) -> list[tuple[str, Path | None]]:
        """The models loaded so far, as (name, folder): folder is None for a built-in model."""
        with self._lock:
            return list(self._embedders)

    def readiness(self) -> dict[str, bool]:
        """What is loaded already, asked without loading anything: the face detector, then each available
        built-in model (fine-tuned ones load in a moment on their base)."""
        with self._lock:
            names = {name for name, folder in self._embedders if folder is None}
            parts = {"face detector": self._detector is not None}
        for status in list_models(self.settings):
            if status.available and not self.spec(status.name).base:
                parts[status.name] = status.name in names
        return parts

    def unload(self, home: str | Path) -> None:
        """Forget every loaded fine-tuned model saved under ``home`` (a departed visitor's): the weights
        they trained on their faces do not outlive them in memory either."""
        root = Path(home).resolve()
        with self._lock:
            for key in [k for k in self._embedders if k[1] is not None and Path(k[1]).resolve().is_relative_to(root)]:
                del self._embedders[key]

    def user_models(self) -> dict[str, ModelSpec]:
        """The fine-tuned models this pipeline sees (see ``with_models_home``)."""
        return user_models(self.settings.home, self.models_home)

    # -- building blocks, each made once -------------------------------------------------------
    @property
    def device(self) -> DeviceInfo:
        with self._lock:
            if self._device is None:
                self._device = resolve_device(self.settings.device, self.settings.cpu_threads)
            return self._device

    @property
    def photo_chunk(self) -> int:
        """How many photos an import or an album detects and embeds at once: batches pay on a GPU; on a CPU
        a batch of 4 keeps the progress bar moving a few photos at a time (not 16), for about 10% of the
        speed (an album of 64 LFW photos on 2 cores: 36.7 / 38.5 photos/s in 16s, 32.6 / 34.8 in 4s)."""
        return 16 if self.device.is_cuda else 4

    @property
    def detector(self) -> Detector:
        with self._lock:
            if self._detector is None:
                s = self.settings
                self._detector = Detector(
                    self.device.device, s.min_face_size, s.min_face_score, s.max_side, s.min_face_fraction
                )
            return self._detector

    def spec(self, model: ModelRef = None) -> ModelSpec:
        """The spec of a model name (fine-tuned models included), or of the default model."""
        if isinstance(model, ModelSpec):
            return model
        return get_spec(model or self.default_model(), self.user_models())

    def embedder(self, model: ModelRef = None) -> Embedder:
        """The loaded model, built on first use; a fine-tuned adapter shares its loaded base model."""
        spec = self.spec(model)
        key = (spec.name, spec.folder)  # two visitors' models may share a name, never a folder
        with self._lock:
            if key not in self._embedders:
                base = self.embedder(spec.base) if spec.stacks_on_base else None
                self._embedders[key] = build_embedder(spec, self.settings, self.device, base)
            return self._embedders[key]

    def models_to_run(self, models: Sequence[str] | None = None) -> tuple[list[ModelSpec], dict[str, str]]:
        """The models a comparison runs (those named, else every model), and the reason for each that is
        unavailable here; a model that fails only when it loads is the caller's to add."""
        statuses = {s.name: s for s in self.models()}
        specs, unavailable = [], {}
        for name in list(models) if models else list(statuses):
            spec = self.spec(name)
            status = statuses.get(spec.name)
            if status is not None and not status.available:
                unavailable[spec.name] = status.reason or "unavailable"
            else:
                specs.append(spec)
        return specs, unavailable

    def models(self) -> list[ModelStatus]:
        return list_models(self.settings, self.models_home)

    def default_model(self) -> str:
        """The configured model, else the first available in ``DEFAULT_ORDER`` (the most accurate on
        LFW first), else the first available model (a fine-tuned one)."""
        if self.settings.model:
            return self.settings.model
        statuses = {s.name: s for s in self.models()}
        for name in DEFAULT_ORDER:
            if statuses.get(name) and statuses[name].available:
                return name
        for status in statuses.values():
            if status.available:
                return status.name
        reasons = "; ".join(f"{s.name}: {s.reason}" for s in statuses.values())
        raise ModelUnavailableError(f"No face model is available. {reasons}")

    def threshold(self, model: ModelRef = None, task: str = "verify") -> float:
        """The threshold in force for a model: ``verify`` (1:1) or the stricter ``identify`` (1:N)."""
        return threshold_for(self.spec(model), self.settings.home, task)

    def read_distributions(self, model: ModelRef = None) -> dict | None:
        """The model's same/different distance histograms on LFW (the user's calibration, else the shipped
        one; None for a model never calibrated): what its common score is read from. Reads a file."""
        return distributions.load(self.spec(model).name, self.settings.home)

    def timed_embed_faces(
        self, image: Image.Image, faces: Sequence[Face], model: ModelRef = None, flip: bool | None = None
    ) -> tuple[list[EmbeddedFace], float]:
        """``embed_faces`` and the milliseconds it took per face (aligning and embedding, the mirror image
        included when the model flips), with the model loaded before the clock starts."""
        spec = self.spec(model)
        self.embedder(spec)
        start = time.perf_counter()
        embedded = self.embed_faces(image, faces, spec, flip=flip)
        return embedded, 1000.0 * (time.perf_counter() - start) / max(1, len(faces))

    def alignment(self, model: ModelRef = None) -> str:
        """The alignment in force for a model: the setting when one is given, else the model's own."""
        return self.settings.alignment or self.spec(model).alignment

    def flip(self, model: ModelRef = None) -> bool:
        """Whether a model's embeddings average each face with its mirror image: the setting when one is
        given, else the model's own default."""
        return self.settings.flip if self.settings.flip is not None else self.spec(model).flip

    def weights_id(self, model: ModelRef = None) -> str:
        """A key for the exact weights a model uses (caches of embeddings are keyed on it); fetches
        the weights first where they are not on this machine yet, or says why they cannot be."""
        spec = self.spec(model)
        key = weights_fingerprint(spec, self.settings)
        if key is None:
            self.embedder(spec)  # fetches the weights, or raises with the reason
            key = weights_fingerprint(spec, self.settings)
        return key or "weights-unknown"

    # -- the pipeline ---------------------------------------------------------------------------
    def load(self, source: ImageInput) -> Image.Image:
        return load_image(source, self.settings.max_pixels)

    def detect(self, image: Image.Image) -> list[Face]:
        return self.detector.detect(image)

    def aligned(
        self, image: Image.Image, face: Face, model: ModelRef = None, alignment: str | None = None
    ) -> Image.Image:
        """The model's input for one face. ``similarity``: MTCNN's 5 landmarks onto the model's template;
        ``crop``: facenet-pytorch's margin crop; ``native``: each model's own way (dlib: its shape
        predictor and face chip; facenet: the margin crop it was trained on)."""
        spec = self.spec(model)
        mode = alignment or self.alignment(spec)
        if mode == "native":
            with self._lock:
                if spec.name not in self._aligners:
                    self._aligners[spec.name] = native_aligner(spec, self.settings)
            return self._aligners[spec.name](image, face)
        if mode == "crop":
            return crop_face(image, face, spec.input_size, spec.crop_margin)
        return align_face(image, face, spec.input_size, spec.template)

    def embed_crops(self, model: ModelRef, crops: Sequence[Image.Image], flip: bool | None = None) -> np.ndarray:
        """Aligned crops -> (n, dim) unit vectors, in batches of ``settings.embed_batch_size`` (by device).

        ``flip`` (default: ``self.flip(model)``): each row is the re-normalised mean of the embeddings of
        the crop and of its mirror image, so a face and its mirror image get the same vector."""
        embedder = self.embedder(model)
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
        model: ModelRef = None,
        alignment: str | None = None,
        flip: bool | None = None,
    ) -> list[EmbeddedFace]:
        spec = self.spec(model)
        crops = [self.aligned(image, face, spec, alignment) for face in faces]
        vectors = self.embed_crops(spec, crops, flip)
        return [EmbeddedFace(face, crop, vector) for face, crop, vector in zip(faces, crops, vectors)]

    def analyze(
        self, source: ImageInput, model: ModelRef = None, flip: bool | None = None
    ) -> tuple[Image.Image, list[EmbeddedFace]]:
        """Every face in an image, embedded.

        Args:
            source: a path, bytes, a PIL image or an array.
            model: a model name (default: the default model).
            flip: average each face with its mirror image (default: ``self.flip(model)``; a gallery passes
                the rule its collection was enrolled with).

        Returns:
            The decoded RGB image and one ``EmbeddedFace`` per face, left to right (empty: no face).
        """
        image = self.load(source)
        return image, self.embed_faces(image, self.detect(image), model, flip=flip)

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

    def choose_face(
        self, source: ImageInput, model: ModelRef = None, label: str = "The image", pick: str = "largest"
    ) -> ChosenFace:
        """The one face of an image to verify: the largest (or the most central), saying so if there were several."""
        image, face, count, note = self._pick_face(source, label, pick)
        (embedded,) = self.embed_faces(image, [face], model)
        return ChosenFace(image, face, embedded.crop, embedded.embedding, count, note)

    def _pick_face(
        self, source: ImageInput, label: str, pick: str = "largest"
    ) -> tuple[Image.Image, Face, int, str | None]:
        image = self.load(source)
        faces = self.detect(image)
        if not faces:
            raise NoFaceError(f"{label} has no face that could be detected; try a clearer, front-facing photo.")
        face = central_face(faces, image.size) if pick == "central" else largest_face(faces)
        notes = [frames_note(image, label)]
        if len(faces) > 1:
            which = "the most central" if pick == "central" else "the largest"
            notes.append(f"{label} holds {len(faces)} faces; {which} was used.")
        return image, face, len(faces), " ".join(n for n in notes if n) or None

    def verify(
        self, a: ImageInput, b: ImageInput, model: ModelRef = None, threshold: float | None = None
    ) -> tuple[VerifyResult, ChosenFace, ChosenFace]:
        """Are the faces in two images the same person (1:1)?

        Args:
            a, b: the two photos (path, bytes, PIL image or array); the largest face of each is used.
            model: a model name (default: the default model).
            threshold: the L2 distance at or below which it is the same person (default: the model's calibrated one).

        Returns:
            ``(VerifyResult, ChosenFace A, ChosenFace B)``; the chosen faces hold the aligned crops.

        Raises:
            NoFaceError: a photo has no face. ImageError: a photo cannot be read.
        """
        threshold = params.threshold(threshold)  # refused before any model runs
        a, b = self.load(a), self.load(b)  # and so is a photo that cannot be read, whichever it is
        spec = self.spec(model)
        chosen = []
        for image, label in ((a, "Image A"), (b, "Image B")):
            image, face, count, note = self._pick_face(image, label)
            (embedded,), ms = self.timed_embed_faces(image, [face], spec)
            chosen.append((ChosenFace(image, face, embedded.crop, embedded.embedding, count, note), ms))
        (first, ms_a), (second, ms_b) = chosen
        limit = self.threshold(spec) if threshold is None else threshold
        notes = [n for n in (first.note, second.note) if n]
        record = self.read_distributions(spec)
        result = compare(spec.name, first.embedding, second.embedding, limit, notes, record, (ms_a + ms_b) / 2)
        return result, first, second

    def compare_models(self, a: ImageInput, b: ImageInput, models: Sequence[str] | None = None) -> ModelComparison:
        """Verify the same pair with every available model (or ``models``): the faces are found once and
        embedded by each model, each verdict at that model's own threshold.

        Returns:
            A ``ModelComparison``: one ``VerifyResult`` per model that ran, the reasons for the others.
        """
        image_a, face_a, count_a, note_a = self._pick_face(a, "Image A")
        image_b, face_b, count_b, note_b = self._pick_face(b, "Image B")
        specs, unavailable = self.models_to_run(models)
        results, crops = [], None
        for spec in specs:
            try:
                (ea,), ms_a = self.timed_embed_faces(image_a, [face_a], spec)
                (eb,), ms_b = self.timed_embed_faces(image_b, [face_b], spec)
            except ModelUnavailableError as exc:
                unavailable[spec.name] = str(exc)
                continue
            crops = crops or (ea, eb)
            notes = [n for n in (note_a, note_b) if n]
            record = self.read_distributions(spec)
            results.append(
                compare(spec.name, ea.embedding, eb.embedding, self.threshold(spec), notes, record, (ms_a + ms_b) / 2)
            )
        if not results:
            raise ModelUnavailableError(
                "None of the models could run: " + "; ".join(f"{m}: {r}" for m, r in unavailable.items())
            )
        first = ChosenFace(image_a, face_a, crops[0].crop, crops[0].embedding, count_a, note_a)
        second = ChosenFace(image_b, face_b, crops[1].crop, crops[1].embedding, count_b, note_b)
        return ModelComparison(results, unavailable, first, second)

    def explain(
        self,
        a: ImageInput,
        b: ImageInput,
        models: Sequence[str] | None = None,
        grid: int | None = None,
        occlude: str = "a",
    ) -> Explanation:
        """Where each model looks when it compares two faces: an occlusion-sensitivity map per model.

        Args:
            a, b: the two photos; the largest face of each is used (found once, aligned for each model).
            models: model names (default: every available model).
            grid: patch positions per side (default: 7 on a CPU, 14 on CUDA); on a CPU, a grid that would cost
                more than ``params.MAX_REQUEST_CPU_S`` for these models is refused with its cost.
            occlude: whose chip the grey patch slides over, ``"a"`` or ``"b"``.

        Returns:
            An ``Explanation``: one ``OcclusionMap`` per model that ran, the reasons for the others.

        Raises:
            NoFaceError: a photo has no face. ImageError: a photo cannot be read.
        """
        grid = params.occlusion_grid(grid) or default_grid(self.device.is_cuda)
        if occlude not in ("a", "b"):
            raise InvalidParameterError(f"Occlude face 'a' or 'b', not {occlude!r}.")
        specs, unavailable = self.models_to_run(models)
        if not self.device.is_cuda:  # refused before any face is found: a GPU takes seconds, a CPU minutes
            params.occlusion_cost(grid, len(specs))
        image_a, face_a, _, note_a = self._pick_face(a, "Image A")
        image_b, face_b, _, note_b = self._pick_face(b, "Image B")
        maps = []
        for spec in specs:
            try:
                embed = self._one_batch_embed(spec)
            except ModelUnavailableError as exc:
                unavailable[spec.name] = str(exc)
                continue
            chip_a, chip_b = self.aligned(image_a, face_a, spec), self.aligned(image_b, face_b, spec)
            chip, other = (chip_a, chip_b) if occlude == "a" else (chip_b, chip_a)
            maps.append(occlusion_map(spec.name, embed, chip, other, grid, self.threshold(spec), occlude))
        if not maps:
            raise ModelUnavailableError(
                "None of the models could run: " + "; ".join(f"{m}: {r}" for m, r in unavailable.items())
            )
        return Explanation(maps, unavailable, tuple(n for n in (note_a, note_b) if n))

    def _one_batch_embed(self, spec: ModelSpec):
        """The model's ``embed`` on every chip in one call, with its mirror images in the same call when the
        model flips (so the map's base distance is the one ``verify`` reports)."""
        embedder = self.embedder(spec)
        flip = self.flip(spec)

        def embed(chips: Sequence[Image.Image]) -> np.ndarray:
            chips = list(chips)
            vectors = embedder.embed(chips + ([ImageOps.mirror(c) for c in chips] if flip else []))
            return l2_normalise(vectors[: len(chips)] + vectors[len(chips) :]) if flip else vectors

        return embed
