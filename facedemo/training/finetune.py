"""Fine-tuning: adapt a model to your own faces with FaceNet's triplet loss and online semi-hard mining
(or ArcFace's angular margin, ``loss="arcface"``), optionally for a condition such as darkness
(``augment="dark:3"``, see ``augment``), and compare it with its base on people it never trained on.

``adapter`` mode (the default) trains a small residual head on top of the frozen base embeddings. The
head starts as the identity (its last layer is zero), so "before" is exactly the base model; training
runs on cached embeddings, so it is fast on a CPU and works for every base, dlib-resnet included.
``full`` mode unfreezes InceptionResnetV1's last blocks and trains them on the aligned face crops.

The result is a named model under ``$FACEDEMO_HOME/models/NAME/`` (``model.json`` + weights) that every
command and the dashboard list and use like a built-in one (``models.adapter`` loads it). The pieces:
``data`` (labelled faces, splits by person), ``augment`` (the condition), ``losses``, ``loop`` (the
training loop and its curves), ``report``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import params
from ..errors import (
    DataUnavailableError,
    GalleryError,
    InvalidNameError,
    InvalidParameterError,
    TrainingError,
)
from ..evaluation.metrics import all_pairs, best_threshold
from ..files import scratch, write_json
from ..gallery.store import check_model_name
from ..models.adapter import ADAPTER_WEIGHTS, FULL_WEIGHTS, RECORD, apply_head, load_head, models_dir
from ..models.facenet import embed_pixels
from ..progress import Progress
from .augment import Augment, degrade_crops
from .data import (
    LabelledCrops,
    LabelledEmbeddings,
    concat,
    crop_folder,
    degraded_rows,
    embed_folder,
    split_by_person,
    split_crops,
)
from .loop import TRAINABLE_BLOCKS, train_adapter, train_full
from .losses import check_loss
from .report import FinetuneResult, general_report, pair_report, slice_report


def validate_model_name(name: str, taken: Sequence[str]) -> str:
    name = check_model_name(name or "")  # the gallery's collection rules, before anything trains or is saved
    if name in taken:
        raise InvalidNameError(f"A model called '{name}' already exists; choose another name or delete {name} first.")
    return name


def _finetune_full(pipeline, spec, name, data, val, epochs, seed, progress, loss, augment) -> FinetuneResult:
    import torch
    from PIL import Image

    train = crop_folder(pipeline, Path(data), spec, progress)
    skipped = list(train.skipped)
    if val is None:
        train, held = split_crops(train, 0.25, seed)
    else:
        held = crop_folder(pipeline, Path(val), spec, progress)
        skipped += held.skipped
    base_embedder = pipeline.embedder(spec)

    def base_vectors(crops):
        return base_embedder.embed([Image.fromarray(c) for c in crops])

    base_threshold = pipeline.threshold(spec)
    before = pair_report(base_vectors(held.crops), held.names, base_threshold)
    # With a condition, early stopping watches the held-out people clean and degraded together.
    slice_crops = degrade_crops(held.crops, spec, augment.held_out()) if augment else None
    val_set = held if augment is None else LabelledCrops(np.concatenate([held.crops, slice_crops]), held.names * 2, [])
    if augment:
        before["slice"] = slice_report(base_vectors(held.crops), base_vectors(slice_crops), held.names, base_threshold)
    model, history, best_epoch = train_full(
        pipeline, spec, train, val_set, epochs, seed, progress, loss=loss, augment=augment
    )
    device = pipeline.device.device
    d_train, same_train = all_pairs(embed_pixels(model, train.crops, device), train.names)
    threshold = float(best_threshold(d_train, same_train).threshold)
    held_after = embed_pixels(model, held.crops, device)
    after = pair_report(held_after, held.names, threshold)
    if augment:
        after["slice"] = slice_report(held_after, embed_pixels(model, slice_crops, device), held.names, threshold)
    folder = models_dir(pipeline.models_home) / name
    folder.mkdir(parents=True, exist_ok=False)
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, folder / FULL_WEIGHTS)
    return FinetuneResult(
        name,
        spec.name,
        "full",
        folder,
        len(history),
        best_epoch,
        threshold,
        len(set(train.names)),
        len(set(held.names)),
        before,
        after,
        history,
        skipped,
        loss,
        augment.to_json() if augment else None,
        tuple(sorted(set(held.names))),
    )


def finetune(
    pipeline,
    data: Path | LabelledEmbeddings,
    base: str,
    name: str,
    mode: str = "adapter",
    epochs: int = 30,
    val: Path | LabelledEmbeddings | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    general: tuple[Path, Path] | None = None,
    loss: str = "triplet",
    augment: str | Augment | None = None,
    cache_dir: Path | None = None,
    trained_on: dict | None = None,
    cpu_budget_s: float | None = None,
) -> FinetuneResult:
    """Fine-tune ``base`` on ``data`` (a folder-per-identity tree, or embeddings already labelled, as the
    dashboard passes from the gallery) and save the result as model ``name``. ``loss`` is ``triplet`` or
    ``arcface``; ``augment`` (``"dark:3"``) trains for a condition and reports its degraded slice too.
    ``cache_dir``: where the degraded embeddings are cached (default FACEDEMO_HOME/cache); ``trained_on``:
    whose faces trained it (a gallery's namespace and person ids), kept in model.json so that deleting one
    of those people deletes the model too. ``cpu_budget_s``: the adapter's training stops once it has spent
    that much CPU (``loop.train_loop``; a public request's bound)."""
    loss, epochs = check_loss(loss), params.epochs(epochs)
    augment = augment if isinstance(augment, Augment) or augment is None else Augment.parse(augment)
    spec = pipeline.spec(base)
    if spec.base is not None:
        raise InvalidParameterError(f"'{base}' is itself a fine-tuned model; fine-tune its base ({spec.base}) instead.")
    taken = [s.name for s in pipeline.models()] + list(pipeline.user_models())
    name = validate_model_name(name, taken)
    if mode == "full":
        _check_full(pipeline, spec, data)
        result = _finetune_full(pipeline, spec, name, data, val, epochs, seed, progress, loss, augment)
    elif mode != "adapter":
        raise InvalidParameterError(f"Unknown mode '{mode}': use adapter or full.")
    else:
        result = _finetune_adapter(
            pipeline, spec, name, data, val, epochs, seed, progress, general, loss, augment, cache_dir, cpu_budget_s
        )
    _save_record(result, spec, seed, trained_on)
    return result


def _check_full(pipeline, spec, data) -> None:
    """Refuse a full fine-tune that cannot run, before anything is embedded."""
    # full mode trains InceptionResnetV1's last block (loop.TRAINABLE_BLOCKS); dlib-resnet's torch module
    # is another network, without them
    module = getattr(pipeline.embedder(spec), "module", None)
    if module is None or not all(hasattr(module, block) for block in TRAINABLE_BLOCKS):
        raise TrainingError(
            f"Full fine-tuning needs a facenet-* model; {spec.name} can only be adapted (use --mode adapter)."
        )
    if isinstance(data, LabelledEmbeddings):
        raise TrainingError("Full fine-tuning needs the photos themselves, not stored embeddings; give a folder.")


def _adapter_people(
    pipeline, spec, data, val, seed: int, progress
) -> tuple[LabelledEmbeddings, LabelledEmbeddings, list]:
    """The training and held-out people's embeddings (a quarter of ``data``'s people when ``val`` is None),
    and the photos skipped for want of a face."""
    train = data if isinstance(data, LabelledEmbeddings) else embed_folder(pipeline, Path(data), spec, progress)
    skipped = list(train.skipped)
    if val is None:
        train, held = split_by_person(train, 0.25, seed)
    else:
        held = val if isinstance(val, LabelledEmbeddings) else embed_folder(pipeline, Path(val), spec, progress)
        skipped += held.skipped
        overlap = set(train.names) & set(held.names)
        if overlap:
            raise TrainingError(
                f"The validation people must not be in the training data; both have {', '.join(sorted(overlap)[:5])}."
            )
    return train, held, skipped


def _finetune_adapter(
    pipeline, spec, name, data, val, epochs, seed, progress, general, loss, augment, cache_dir, cpu_budget_s
) -> FinetuneResult:
    """``adapter`` mode: a head trained on the base's embeddings; its weights are saved, model.json is left
    to the caller (written last)."""
    import torch

    train, held, skipped = _adapter_people(pipeline, spec, data, val, seed, progress)
    base_threshold = pipeline.threshold(spec)
    before = pair_report(held.vectors, held.names, base_threshold)
    fit, val_set, held_slice = train, held, None
    if augment:
        # Each training photo under the asked severity and its neighbours, beside its clean self; the
        # held-out people's slice at the asked severity with a seed training never saw.
        fit = concat(
            train, *(degraded_rows(pipeline, train, spec.name, v, progress, cache_dir) for v in augment.variants())
        )
        held_slice = degraded_rows(pipeline, held, spec.name, augment.held_out(), progress, cache_dir)
        val_set = concat(held, held_slice)
        before["slice"] = slice_report(held.vectors, held_slice.vectors, held.names, base_threshold)
    head, history, best_epoch = train_adapter(
        fit, val_set, epochs, seed, progress=progress, loss=loss, cpu_budget_s=cpu_budget_s
    )
    # The adapter's own threshold: the best-accuracy one on the (clean) training people's pairs.
    d_train, same_train = all_pairs(apply_head(head, train.vectors), train.names)
    threshold = float(best_threshold(d_train, same_train).threshold)
    after = pair_report(apply_head(head, held.vectors), held.names, threshold)
    if augment:
        after["slice"] = slice_report(
            apply_head(head, held.vectors), apply_head(head, held_slice.vectors), held.names, threshold
        )
    if general is not None:
        _general_reports(pipeline, spec, head, general, augment, (base_threshold, threshold), progress, before, after)
    folder = models_dir(pipeline.models_home) / name
    folder.mkdir(parents=True, exist_ok=False)
    torch.save(head.state_dict(), folder / ADAPTER_WEIGHTS)
    return FinetuneResult(
        name,
        spec.name,
        "adapter",
        folder,
        len(history),
        best_epoch,
        threshold,
        len(set(train.names)),
        len(set(held.names)),
        before,
        after,
        history,
        skipped,
        loss,
        augment.to_json() if augment else None,
        tuple(sorted(set(held.names))),
        epochs,
        cpu_budget_s,
    )


def _general_reports(pipeline, spec, head, general, augment, thresholds, progress, before: dict, after: dict) -> None:
    """What the fine-tune costs elsewhere: the general pairs before and after (and their degraded slice
    with a condition), added to ``before`` and ``after``."""
    before["general"], after["general"] = general_report(
        pipeline, spec.name, head, *general, thresholds=thresholds, progress=progress
    )
    before["general_source"] = Path(general[0]).name
    if augment:
        before["general_slice"], after["general_slice"] = general_report(
            pipeline, spec.name, head, *general, chip_degradation=augment.held_out()
        )


def _save_record(result: FinetuneResult, spec, seed: int, trained_on: dict | None = None) -> None:
    """model.json is written last: a folder without it (a run killed mid-way) is not listed as a model."""
    record = {
        "name": result.name,
        "base": spec.name,
        "mode": result.mode,
        "dim": spec.dim,
        "threshold": result.threshold,
        "seed": seed,
        "loss": result.loss,
        "augment": result.augment,
        "report": result.to_json(),
        **({"trained_on": trained_on} if trained_on else {}),
    }
    write_json(result.path / RECORD, record, indent=2)


def finetune_gallery(
    gallery,
    base: str,
    name: str,
    epochs: int = 30,
    seed: int = 0,
    progress: Progress | None = None,
    loss: str = "triplet",
    augment: str | Augment | None = None,
    general: tuple[Path, Path] | None = None,
    cpu_budget_s: float | None = None,
) -> FinetuneResult:
    """The dashboard's fine-tune: train on the gallery's own people (a quarter held out for validation),
    then store the adapted embeddings of every gallery face under the new model, so it can identify and
    be explored at once without re-reading any photo. ``general``: (pairs file, photo folder), LFW's test
    pairs where they are on the machine, on which it is compared with its base too.

    For a condition, the photos the gallery keeps are its face thumbnails (the face with a margin, at
    most 112 px): those are found again, aligned and degraded; the clean rows stay the stored embeddings."""
    loss, epochs = check_loss(loss), params.epochs(epochs)
    check_model_name(name)  # before the gallery is read (finetune checks it again, with the names taken)
    augment = augment if isinstance(augment, Augment) or augment is None else Augment.parse(augment)
    base = gallery.model_name(base)
    vectors, names, face_ids, thumbs = gallery.embeddings(base)
    if not face_ids:
        raise GalleryError(f"Nobody is enrolled for {base}; enroll or import people first.")
    paths = [str(t or f) for t, f in zip(thumbs, face_ids)] if augment else list(face_ids)
    data = LabelledEmbeddings(np.asarray(vectors, dtype=np.float32), names, paths, [])
    registry = {f.id: f for f in gallery.store.faces(ids=list(face_ids))}
    faces = [registry[f] for f in face_ids]
    trained_on = {"namespace": gallery.store.namespace or "", "people": sorted({f.person_id for f in faces})}
    # The degraded thumbnails' detections and embeddings are the gallery's people's faces: cached only for
    # this run, in the gallery owner's scratch folder, and gone with it.
    with scratch(gallery.store.namespace, "finetune") as cache:
        result = finetune(
            gallery.pipeline,
            data,
            base,
            name,
            "adapter",
            epochs,
            None,
            seed,
            progress,
            loss=loss,
            augment=augment,
            cache_dir=cache,
            trained_on=trained_on,
            general=general,
            cpu_budget_s=cpu_budget_s,
        )
    adapted = apply_head(load_head(result.path, gallery.pipeline.spec(base).dim), data.vectors)
    # The new model holds every face its base holds at once (the head applied to the stored vectors); faces
    # enrolled later are embedded with it like with every model the gallery holds.
    gallery.write_vectors(result.name, faces, adapted, gallery.flip(base))
    return result


def saved_report(pipeline, name: str) -> dict:
    """The report a fine-tuned model was saved with (its ``model.json``): before/after and the curves.
    Looked up through ``pipeline``, so a public-mode visitor's view finds their own models and only those."""
    spec = pipeline.spec(str(name or "").strip() or None)
    if spec.base is None:
        raise InvalidParameterError(
            f"'{spec.name}' is a released model, not a fine-tuned one: it has no training report."
        )
    record_file = Path(spec.folder) / RECORD
    try:
        return dict(json.loads(record_file.read_text())["report"])
    except (OSError, ValueError, KeyError, TypeError):
        raise DataUnavailableError(f"{record_file} cannot be read; fine-tune {spec.name} again.") from None
