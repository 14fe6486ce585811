"""The 1:1 use cases on a ``Pipeline``: choose the face of a photo, verify a pair with one model, with every
model side by side, and show where each model looks. Each resolves its model once at the top and passes
the ``ModelSpec`` down to the pipeline's stages; ``Pipeline.verify`` and its siblings call these."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps

from .. import params
from ..errors import InvalidParameterError, ModelUnavailableError, NoFaceError
from ..models.base import ModelSpec
from ..vectors import l2_normalise
from ..vision.detect import Face, central_face, largest_face
from ..vision.images import ImageInput, frames_note
from ..vision.occlusion import default_grid, occlusion_map
from .results import ChosenFace, Explanation, ModelComparison, VerifyResult, compare


def pick_face(
    pipeline, source: ImageInput, label: str, pick: str = "largest"
) -> tuple[Image.Image, Face, int, str | None]:
    """The photo decoded and its one face for 1:1 work (the largest, or the most central), with the number of
    faces found and what the user should know about the choice; NoFaceError when there is none."""
    image = pipeline.load(source)
    faces = pipeline.detect(image)
    if not faces:
        raise NoFaceError(f"{label} has no face that could be detected; try a clearer, front-facing photo.")
    face = central_face(faces, image.size) if pick == "central" else largest_face(faces)
    notes = [frames_note(image, label)]
    if len(faces) > 1:
        which = "the most central" if pick == "central" else "the largest"
        notes.append(f"{label} holds {len(faces)} faces; {which} was used.")
    return image, face, len(faces), " ".join(n for n in notes if n) or None


def choose_face(
    pipeline, source: ImageInput, spec: ModelSpec, label: str = "The image", pick: str = "largest"
) -> ChosenFace:
    """The one face of an image to verify: the largest (or the most central), saying so if there were several."""
    image, face, count, note = pick_face(pipeline, source, label, pick)
    (embedded,) = pipeline.embed_faces(image, [face], spec)
    return ChosenFace(image, face, embedded.crop, embedded.embedding, count, note)


def verify(
    pipeline, a: ImageInput, b: ImageInput, model=None, threshold: float | None = None
) -> tuple[VerifyResult, ChosenFace, ChosenFace]:
    """Are the faces in two images the same person (1:1)?

    Args:
        a, b: the two photos (path, bytes, PIL image or array); the largest face of each is used.
        model: a model name or spec (default: the default model).
        threshold: the L2 distance at or below which it is the same person (default: the model's calibrated one).

    Returns:
        ``(VerifyResult, ChosenFace A, ChosenFace B)``; the chosen faces hold the aligned crops.

    Raises:
        NoFaceError: a photo has no face. ImageError: a photo cannot be read.
    """
    threshold = params.threshold(threshold)  # refused before any model runs
    a, b = pipeline.load(a), pipeline.load(b)  # and so is a photo that cannot be read, whichever it is
    spec = pipeline.spec(model)
    chosen = []
    for image, label in ((a, "Image A"), (b, "Image B")):
        image, face, count, note = pick_face(pipeline, image, label)
        (embedded,), ms = pipeline.timed_embed_faces(image, [face], spec)
        chosen.append((ChosenFace(image, face, embedded.crop, embedded.embedding, count, note), ms))
    (first, ms_a), (second, ms_b) = chosen
    limit = pipeline.threshold(spec) if threshold is None else threshold
    notes = [
        n for n in (first.note, second.note, None if threshold is not None else pipeline.calibration_note(spec)) if n
    ]
    record = pipeline.read_distributions(spec)
    result = compare(spec.name, first.embedding, second.embedding, limit, notes, record, (ms_a + ms_b) / 2)
    return result, first, second


def none_could_run(unavailable: dict[str, str]) -> ModelUnavailableError:
    return ModelUnavailableError(
        "None of the models could run: " + "; ".join(f"{m}: {r}" for m, r in unavailable.items())
    )


def compare_models(pipeline, a: ImageInput, b: ImageInput, models: Sequence[str] | None = None) -> ModelComparison:
    """Verify the same pair with every available model (or ``models``): the faces are found once and
    embedded by each model, each verdict at that model's own threshold.

    Returns:
        A ``ModelComparison``: one ``VerifyResult`` per model that ran, the reasons for the others.
    """
    image_a, face_a, count_a, note_a = pick_face(pipeline, a, "Image A")
    image_b, face_b, count_b, note_b = pick_face(pipeline, b, "Image B")
    specs, unavailable = pipeline.models_to_run(models)
    results, crops = [], None
    for spec in specs:
        try:
            (ea,), ms_a = pipeline.timed_embed_faces(image_a, [face_a], spec)
            (eb,), ms_b = pipeline.timed_embed_faces(image_b, [face_b], spec)
        except ModelUnavailableError as exc:
            unavailable[spec.name] = str(exc)
            continue
        crops = crops or (ea, eb)
        notes = [n for n in (note_a, note_b, pipeline.calibration_note(spec)) if n]
        record = pipeline.read_distributions(spec)
        results.append(
            compare(spec.name, ea.embedding, eb.embedding, pipeline.threshold(spec), notes, record, (ms_a + ms_b) / 2)
        )
    if not results:
        raise none_could_run(unavailable)
    first = ChosenFace(image_a, face_a, crops[0].crop, crops[0].embedding, count_a, note_a)
    second = ChosenFace(image_b, face_b, crops[1].crop, crops[1].embedding, count_b, note_b)
    return ModelComparison(results, unavailable, first, second)


def explain(
    pipeline,
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
    grid = params.occlusion_grid(grid) or default_grid(pipeline.device.is_cuda)
    if occlude not in ("a", "b"):
        raise InvalidParameterError(f"Occlude face 'a' or 'b', not {occlude!r}.")
    specs, unavailable = pipeline.models_to_run(models)
    if not pipeline.device.is_cuda:  # refused before any face is found: a GPU takes seconds, a CPU minutes
        params.occlusion_cost(grid, len(specs))
    image_a, face_a, _, note_a = pick_face(pipeline, a, "Image A")
    image_b, face_b, _, note_b = pick_face(pipeline, b, "Image B")
    maps = []
    for spec in specs:
        try:
            embed = one_batch_embed(pipeline, spec)
        except ModelUnavailableError as exc:
            unavailable[spec.name] = str(exc)
            continue
        chip_a, chip_b = pipeline.aligned(image_a, face_a, spec), pipeline.aligned(image_b, face_b, spec)
        chip, other = (chip_a, chip_b) if occlude == "a" else (chip_b, chip_a)
        maps.append(occlusion_map(spec.name, embed, chip, other, grid, pipeline.threshold(spec), occlude))
    if not maps:
        raise none_could_run(unavailable)
    return Explanation(maps, unavailable, tuple(n for n in (note_a, note_b) if n))


def one_batch_embed(pipeline, spec: ModelSpec):
    """The model's ``embed`` on every chip in one call, with its mirror images in the same call when the
    model flips (so the map's base distance is the one ``verify`` reports)."""
    embedder = pipeline.embedder(spec)
    flip = pipeline.flip(spec)

    def embed(chips: Sequence[Image.Image]) -> np.ndarray:
        chips = list(chips)
        vectors = embedder.embed(chips + ([ImageOps.mirror(c) for c in chips] if flip else []))
        return l2_normalise(vectors[: len(chips)] + vectors[len(chips) :]) if flip else vectors

    return embed
