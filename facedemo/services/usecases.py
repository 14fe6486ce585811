"""What a request does, as functions of what the façade built for it (``Request``): identify, enroll, group
an album, explain, judge and score the models, fine-tune. The dashboard's tabs and the CLI call these.

No gradio here: the UI only renders what they return.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from .. import params
from ..errors import UnknownPersonError
from ..evaluation import read_pairs
from ..evaluation.disagreement import DEFAULT_HARDEST, Disagreements
from ..evaluation.embed import uncached
from ..gallery import Gallery, GalleryView, IdentifyResult
from ..gallery.album import Album, cluster_album
from ..gallery.archive import photo_count
from ..gallery.cluster import DEFAULT_CLUSTER_METHOD
from ..gallery.identify import IdentifyComparison, compare_models, identify_faces, load_faces
from ..pipeline import ChosenFace, Explanation, ModelComparison, Pipeline, VerifyResult
from ..progress import Progress
from ..rules import DEFAULT_METHOD
from ..training import Augment, FinetuneResult, finetune_gallery, saved_report
from ..vision.detectors import DetectorRun, check_detector, draw_faces, timed_detect
from ..vision.images import ImageInput, frames_note
from .facade import YOURS, Request
from .lfw import LFW_CPU_S_PER_PHOTO, lfw_test_pairs


@dataclass(frozen=True)
class Verified:
    """A 1:1 verification as the dashboard shows it: the verdict, the two chosen faces and the model's
    distance distributions on LFW (None for a model never calibrated)."""

    result: VerifyResult
    first: ChosenFace
    second: ChosenFace
    distributions: dict | None


@dataclass(frozen=True)
class FinetuneAnswer:
    """A fine-tune as the dashboard reports it: the result, and sentences on what a bound left out."""

    result: FinetuneResult
    notes: tuple[str, ...] = ()


def fill_in(galleries, models, progress: Progress | None = None) -> list[str]:
    """Fill in each model of ``models`` for each writable gallery that lacks faces of it (a model that came
    after the faces were enrolled), once per process: the first use of a new model embeds the stored face
    regions, with a progress bar (``Gallery.fill_in``). Returns notes for the user (faces that could not be
    filled in)."""
    notes = []
    for gallery in galleries:
        if not gallery.writable:
            continue
        todo = [m for m in models if not gallery.store.state.get(("complete", gallery.store.namespace, m))]
        reports = gallery.fill_in(todo, progress)
        for name in todo:
            if name in reports and reports[name].note():
                notes.append(reports[name].note())
            if name in reports or not gallery.missing(name):
                gallery.store.state[("complete", gallery.store.namespace, name)] = True
    return notes


def available_models(request: Request) -> list[str]:
    return [s.name for s in request.pipeline.models() if s.available]


def identify(
    request: Request,
    image: ImageInput,
    model: str | None = None,
    top_k: int = 3,
    method: str | None = None,
    progress=None,
) -> tuple[Image.Image, IdentifyResult]:
    """Every face of a photo named against what the request searches (the visitor's gallery, then the demo's)."""
    top_k = params.top_k(top_k)  # refused before any model runs
    spec = request.pipeline.spec(model)
    picture, faces = load_faces(request.pipeline, image)
    fill_in(request.searched, [spec.name], progress)
    result = identify_faces(
        request.pipeline, list(request.searched), picture, faces, spec, top_k, method or DEFAULT_METHOD
    )
    note = frames_note(picture, "The photo")
    return picture, replace(result, notes=(note,)) if note else result


def compare_identify(
    request: Request, image: ImageInput, top_k: int = 3, method: str | None = None, progress=None
) -> IdentifyComparison:
    """The same photo identified by every model with people enrolled in what this visitor searches."""
    fill_in(request.searched, available_models(request), progress)
    return compare_models(request.pipeline, list(request.searched), image, top_k, method or DEFAULT_METHOD)


def shared_names(request: Request) -> set[str]:
    """Public mode: the names of the demo gallery's people (every visitor sees them, nobody changes them)."""
    return {p.name for p in request.shared.store.persons()} if request.shared is not None else set()


def enroll(request: Request, name: str, images, **answers):
    """Enroll into the visitor's gallery (``Gallery.enroll``), asking first about a face that anything their
    Identify searches (the shared gallery too, in public mode) names as someone else. ``answers``:
    face_index, labels, confirm, odd_photos."""
    result = request.gallery.enroll(name, images, searched=list(request.searched), **answers)
    if result.person in shared_names(request):
        result.notes.append(
            f"The demo gallery has a **{result.person}** too: Identify says which gallery each name comes from "
            f'("{result.person} ({YOURS})" is the one you enrolled).'
        )
    return result


def mine(request: Request, name: str) -> Gallery:
    """The visitor's gallery, once ``name`` is a person of it they may change; a name of the shared demo
    gallery is said to be the demo's (it used to answer "Nobody called 'sheldon' is in the gallery." while
    Identify named sheldon)."""
    try:
        request.gallery.person(name)
    except UnknownPersonError:
        if name in shared_names(request):
            raise UnknownPersonError(
                f"'{name}' belongs to the demo gallery, which every visitor shares: you can use it but not "
                "change it. You can rename, delete or edit only the people you enrolled."
            ) from None
        raise
    return request.gallery


def photos_allowed(request: Request, sources) -> None:
    """In public mode, refuse a request of more photos than one request may embed (``params.public_photos``);
    a zip counts its photos."""
    if request.public:
        paths = [Path(sources)] if isinstance(sources, (str, Path)) else [Path(s) for s in sources]
        params.public_photos(sum(photo_count(p) if p.suffix.lower() == ".zip" else 1 for p in paths))


def album(request: Request, sources, model: str | None = None, method: str | None = None, progress=None) -> Album:
    """Every face of the photos grouped into people, with thumbnails for the page; faces matching
    someone in the visitor's gallery (and, in public mode, the shared one) are labelled."""
    photos_allowed(request, sources)
    fill_in(request.searched, [request.pipeline.spec(model).name])
    return cluster_album(
        request.pipeline,
        sources,
        model,
        method or DEFAULT_CLUSTER_METHOD,
        galleries=list(request.searched),
        thumbnails=True,
        progress=progress,
    )


def verify(pipeline: Pipeline, a: ImageInput, b: ImageInput, model: str | None = None, threshold=None) -> Verified:
    """Are the faces of two photos the same person, with the distributions the distance is drawn on. A 1:1
    question needs no gallery: it takes the request's pipeline (``Services.pipeline_for``)."""
    result, first, second = pipeline.verify(a, b, model, threshold)
    return Verified(result, first, second, pipeline.read_distributions(result.model))


def compare_verify(pipeline: Pipeline, a: ImageInput, b: ImageInput) -> tuple[ModelComparison, dict[str, dict | None]]:
    """The same pair verified by every model this visitor can use, with each model's distributions."""
    result = pipeline.compare_models(a, b)
    return result, {r.model: pipeline.read_distributions(r.model) for r in result.results}


def explain(pipeline: Pipeline, a: ImageInput, b: ImageInput, models=None, grid: int | None = None) -> Explanation:
    """Where each model this visitor can use looks on a pair (``Pipeline.explain``); draw it with
    ``explorer.figures.occlusion_figure``."""
    return pipeline.explain(a, b, models, grid)


@dataclass(frozen=True)
class ExploredGallery:
    """The gallery the Explorer draws, and why that one.

    Attributes:
        gallery: the visitor's own, or (public mode) the demo gallery.
        models: the models asked for, by their resolved names (a visitor's own fine-tuned ones too).
        which: "yours", "demo" (asked for), or "demo instead" (the visitor's own holds no faces of them yet).
        people: how many people ``gallery`` holds when it is the demo's (0 otherwise: not counted).
        complete: whether every model holds faces of ``gallery`` (else there is nothing to draw).
    """

    gallery: GalleryView
    models: list[str]
    which: str
    people: int
    complete: bool


def gallery_to_explore(request: Request, models, demo: bool, progress=None) -> ExploredGallery:
    """The gallery the Explorer draws for ``models``: the visitor's own, with the models that came after its
    faces filled in first, or in public mode the demo gallery, asked for or because theirs is empty (the demo
    gallery is filled in for every model at start-up; a visitor only reads it)."""
    names = [request.pipeline.spec(n).name for n in models]
    if request.shared is not None and demo:
        which, gallery = "demo", request.shared
    else:
        which, gallery = "yours", request.gallery
        fill_in([gallery], names, progress)
        shared = request.shared
        if shared is not None and not any(gallery.store.count(n) for n in names):
            if any(shared.store.count(n) for n in names):
                which, gallery = "demo instead", shared
    people = len(gallery.store.persons()) if which != "yours" else 0
    return ExploredGallery(gallery, names, which, people, all(gallery.store.count(n) for n in names))


def gallery_disagreements(request: Request, models=None, hardest: int = DEFAULT_HARDEST) -> Disagreements:
    """The visitor's own gallery's pairs judged by every model it holds (``explorer.hard_pairs``); the
    models that arrived after an enrollment are filled in first."""
    from ..explorer.hard_pairs import gallery_disagreements as judged  # here: the explorer brings plotly with it

    fill_in([request.gallery], list(models) if models else available_models(request))
    return judged(request.gallery, models, hardest)


def scoreboard(request: Request, models=None, method: str | None = None, progress=None):
    """Every model scored on this visitor's own gallery (``explorer.scoreboard``; in public mode theirs
    only, never the shared one): the models that arrived after an enrollment are filled in first."""
    from ..explorer.scoreboard import scoreboard as scored  # here: the explorer brings plotly with it

    fill_in([request.gallery], list(models) if models else available_models(request), progress)
    return scored(request.gallery, models, method or DEFAULT_METHOD, progress)


def fine_tuned(pipeline: Pipeline) -> list[str]:
    """The fine-tuned models ``pipeline`` sees (in public mode, the visitor's own)."""
    return [s.name for s in pipeline.models() if pipeline.spec(s.name).base is not None]


def fine_tune_report(pipeline: Pipeline, name: str) -> dict:
    """What a fine-tuned model's run saved beside it: its curves, and its figures before and after."""
    return saved_report(pipeline, name)


def _public_finetune_bounds(gallery: Gallery, base, augment, general) -> tuple[float, object, list[str]]:
    """Public mode's bound on a fine-tune: CPU seconds left for training once a condition's degraded faces are
    paid for, and LFW's test pairs only when their embeddings are kept (else None, with a note why)."""
    model = gallery.model_name(base)
    budget, notes = params.MAX_REQUEST_CPU_S, []
    if augment:
        condition = Augment.parse(augment)
        # each training severity for three quarters of the faces, the held-out slice for the rest
        copies = len(condition.variants())
        budget -= params.condition_cost(gallery.store.count(model), copies, condition.condition)
    if general is not None:
        photos = [p for pair in read_pairs(*general) for p in (pair.a, pair.b)]
        todo = len(set(photos)) if augment else uncached(gallery.pipeline, photos, model)
        if todo:
            general = None
            notes.append(
                f"LFW's test pairs were left out: through {model}{' degraded' if augment else ''} they are "
                f"{todo:,} photo embeddings, about {todo * LFW_CPU_S_PER_PHOTO:.0f} s of CPU, more than one "
                "request may take here; it is compared with its base on the held-out people only."
            )
    return budget, general, notes


def finetune(
    request: Request,
    base,
    name: str,
    epochs: int,
    loss: str = "triplet",
    augment=None,
    progress=None,
    lfw_root: Path | None = None,
) -> FinetuneAnswer:
    """The dashboard's fine-tune (``training.finetune_gallery``) of the visitor's gallery, compared with its
    base on LFW's test pairs where they are (under ``lfw_root``). In public mode it is bounded like every request
    (``params.MAX_REQUEST_CPU_S``): a condition's degraded faces are refused above half of it, with their
    cost; LFW is used only once its embeddings are kept (never for a condition: its degraded pairs are not
    kept); training stops once the rest of the bound is spent, keeping its best epoch so far."""
    general, notes, budget = lfw_test_pairs(lfw_root) if lfw_root else None, [], None
    if request.public:
        budget, general, notes = _public_finetune_bounds(request.gallery, base, augment, general)
    result = finetune_gallery(
        request.gallery,
        base,
        name,
        epochs,
        loss=loss,
        augment=augment,
        progress=progress,
        general=general,
        cpu_budget_s=budget,
    )
    if result.stopped_by_budget():
        notes.append(
            f"Training stopped after {result.epochs_run} of {epochs} epochs: one request may take "
            f"{params.MAX_REQUEST_CPU_S:.0f} s of CPU here. The best epoch so far is kept."
        )
    return FinetuneAnswer(result, tuple(notes))


__all__ = [
    "FinetuneAnswer",
    "album",
    "available_models",
    "Verified",
    "compare_identify",
    "compare_verify",
    "enroll",
    "explain",
    "fill_in",
    "fine_tune_report",
    "fine_tuned",
    "finetune",
    "ExploredGallery",
    "gallery_disagreements",
    "gallery_to_explore",
    "identify",
    "mine",
    "photos_allowed",
    "scoreboard",
    "shared_names",
    "verify",
]


@dataclass(frozen=True)
class DetectorComparison:
    """Every face detector on one photo: each one's faces and milliseconds, and the photo drawn with its faces."""

    runs: tuple[DetectorRun, ...]
    pictures: tuple[Image.Image, ...]
    size: tuple[int, int]

    def to_json(self) -> dict:
        return {"size": list(self.size), "detectors": [run.to_json() for run in self.runs]}


def compare_detectors(pipeline: Pipeline, image: ImageInput, names=None) -> DetectorComparison:
    """The photo through every detector (or those named), timed one after the other, each drawn on a copy."""
    picture = pipeline.load(image)
    runs = pipeline.compare_detectors(picture, names)
    return DetectorComparison(tuple(runs), tuple(draw_faces(picture, run.faces) for run in runs), picture.size)


def detect_with(pipeline: Pipeline, image: ImageInput, name: str | None = None) -> DetectorRun:
    """One detector's faces on a photo (None: the settings' detector), timed; an unknown or unavailable
    detector is a sentence."""
    picture = pipeline.load(image)
    name = check_detector(name or pipeline.settings.detector)
    return timed_detect(name, pipeline.detector_named(name), picture)
