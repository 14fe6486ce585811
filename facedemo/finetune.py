"""Fine-tuning: adapt a model to your own faces with FaceNet's triplet loss and online semi-hard mining,
and compare it with its base on people it never trained on.

``adapter`` mode (the default) trains a small residual head on top of the frozen base embeddings. The
head starts as the identity (its last layer is zero), so "before" is exactly the base model; training
runs on cached embeddings, so it is fast on a CPU and works for every base, dlib-resnet included.
``full`` mode unfreezes InceptionResnetV1's last blocks and trains them on the aligned face crops.

The result is a named model under ``$FACEDEMO_HOME/models/NAME/`` (``model.json`` + weights) that every
command and the dashboard list and use like a built-in one.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .errors import FaceDemoError, InvalidNameError
from .metrics import all_pairs, best_threshold, contrastive_loss, distance_stats, rates_at, roc

MARGIN = 0.2  # FaceNet's alpha, for L2-normalised embeddings
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".pgm", ".ppm", ".tif", ".tiff"}
Progress = Callable[[int, int, str], None]


def models_dir(home: Path) -> Path:
    return Path(home) / "models"


def validate_model_name(name: str, taken: Sequence[str]) -> str:
    name = (name or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", name):
        raise InvalidNameError(f"'{name}' cannot be a model name: use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit.")
    if name in taken:
        raise InvalidNameError(f"A model called '{name}' already exists; choose another name or delete {name} first.")
    return name


# -- the head ------------------------------------------------------------------------------------
def make_head(dim: int, hidden: int | None = None):
    import torch

    class ResidualHead(torch.nn.Module):
        """x + W2 relu(W1 x), re-normalised; W2 starts at zero so the head starts as the identity."""

        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(dim, hidden or dim)
            self.fc2 = torch.nn.Linear(hidden or dim, dim)
            torch.nn.init.zeros_(self.fc2.weight)
            torch.nn.init.zeros_(self.fc2.bias)

        def forward(self, x):
            return torch.nn.functional.normalize(x + self.fc2(torch.relu(self.fc1(x))), dim=1)

    return ResidualHead()


def load_head(folder: Path, dim: int):
    import torch

    head = make_head(dim)
    head.load_state_dict(torch.load(Path(folder) / "adapter.pt", map_location="cpu", weights_only=True))
    return head.eval()


def apply_head(head, vectors: np.ndarray) -> np.ndarray:
    import torch

    if len(vectors) == 0:
        return np.asarray(vectors, dtype=np.float32)
    with torch.inference_mode():
        return head(torch.from_numpy(np.asarray(vectors, dtype=np.float32))).numpy()


def semi_hard_triplet_loss(embeddings, labels, margin: float = MARGIN):
    """FaceNet's loss with online semi-hard mining over a batch: for every anchor-positive pair, the
    negative farther than the positive but within the margin (the hardest beyond the positive if none is
    within it, the farthest-inside one if every negative is closer)."""
    import torch

    d = torch.cdist(embeddings, embeddings)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    anchors, positives = torch.nonzero(same & ~eye, as_tuple=True)
    if len(anchors) == 0:
        return embeddings.sum() * 0.0, 0
    d_ap = d[anchors, positives]
    d_an = d[anchors]  # (pairs, batch)
    negative = ~same[anchors]
    inf = torch.tensor(float("inf"), device=d.device)
    semi = negative & (d_an > d_ap[:, None]) & (d_an < d_ap[:, None] + margin)
    beyond = negative & (d_an > d_ap[:, None])
    chosen = torch.where(semi, d_an, inf).min(dim=1).values
    chosen = torch.where(torch.isinf(chosen), torch.where(beyond, d_an, inf).min(dim=1).values, chosen)
    hardest = torch.where(negative, d_an, inf).min(dim=1).values
    chosen = torch.where(torch.isinf(chosen), hardest, chosen)
    valid = ~torch.isinf(chosen)
    losses = torch.relu(d_ap[valid] - chosen[valid] + margin)
    active = int((losses > 0).sum())
    return (losses.mean() if len(losses) else embeddings.sum() * 0.0), active


# -- data ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabelledEmbeddings:
    vectors: np.ndarray
    names: list[str]
    paths: list[str]
    skipped: list[tuple[str, str]]


def folder_images(folder: Path) -> list[tuple[str, Path]]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FaceDemoError(f"{folder} is not a folder; give a folder with one sub-folder per person.")
    items = []
    for person in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        items += [(person.name, f) for f in sorted(person.rglob("*")) if f.suffix.lower() in IMAGE_SUFFIXES]
    if not items:
        raise FaceDemoError(f"{folder} has no photos in per-person sub-folders.")
    return items


def embed_folder(pipeline, folder: Path, model: str, progress: Progress | None = None) -> LabelledEmbeddings:
    """The base embedding of every photo of a folder-per-identity tree, through the evaluation's on-disk
    cache (a second run, or photos already embedded by ``eval lfw``, cost nothing). Photos where no
    face was found are skipped: a centre crop is fine for a benchmark, not for training."""
    from .lfw import embed_images

    items = folder_images(folder)
    embedded = embed_images(pipeline, [p for _, p in items], model, progress=(lambda d, t: progress(d, t, "embedding photos")) if progress else None)
    failed = set(embedded.failures)
    keep = [(person, path) for person, path in items if path not in failed]
    dim = pipeline.spec(model).dim
    vectors = np.array([embedded.vectors[path] for _, path in keep], dtype=np.float32).reshape(-1, dim)
    return LabelledEmbeddings(vectors, [n for n, _ in keep], [str(p) for _, p in keep], [(str(p), "no face found") for p in sorted(failed)])


def held_out_rows(names: Sequence[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split rows by person, never by photo: (training rows, validation rows)."""
    people = sorted(set(names))
    if len(people) < 4:
        raise FaceDemoError(f"Fine-tuning needs at least 4 people (some are held out for validation); the data has {len(people)}.")
    random.Random(seed).shuffle(people)
    held = set(people[: max(2, round(len(people) * fraction))])
    return [i for i, n in enumerate(names) if n not in held], [i for i, n in enumerate(names) if n in held]


def split_by_person(data: LabelledEmbeddings, fraction: float, seed: int) -> tuple[LabelledEmbeddings, LabelledEmbeddings]:
    train, held = held_out_rows(data.names, fraction, seed)
    return _subset(data, train), _subset(data, held)


def _subset(data: LabelledEmbeddings, rows: list[int]) -> LabelledEmbeddings:
    return LabelledEmbeddings(data.vectors[rows], [data.names[i] for i in rows], [data.paths[i] for i in rows], [])


# -- evaluation ----------------------------------------------------------------------------------
def pair_report(vectors: np.ndarray, names: Sequence[str], threshold: float) -> dict:
    """The source studies' numbers on every pair of a labelled set: loss, mean distances, VAL and FAR at
    ``threshold``, and ROC AUC."""
    d, same = all_pairs(vectors, names)
    if not same.any() or same.all():
        raise FaceDemoError("The validation set needs several people with at least two photos each.")
    stats = distance_stats(d, same)
    at = rates_at(d, same, threshold)
    return {
        "loss": contrastive_loss(d, same),
        "mean_pos_distance": stats.mean_pos,
        "mean_neg_distance": stats.mean_neg,
        "val": at.val,
        "far": at.far,
        "auc": roc(d, same).auc,
        "threshold": threshold,
        "pairs": int(d.size),
    }


def general_report(pipeline, base: str, head, pairs_file: Path, root: Path) -> tuple[dict, dict]:
    """Before/after on a general set of labelled pairs (LFW's format or a CSV): the price, if any, that
    a narrow fine-tune pays elsewhere (one source study saw top-1 fall from 0.98 to 0.64)."""
    from .lfw import embed_images, read_pairs
    from .metrics import pair_metrics

    pairs = read_pairs(Path(pairs_file), Path(root))
    embedded = embed_images(pipeline, [p for pair in pairs for p in (pair.a, pair.b)], base)
    a = np.stack([embedded.vectors[pair.a] for pair in pairs])
    b = np.stack([embedded.vectors[pair.b] for pair in pairs])
    labels = np.array([pair.same for pair in pairs], dtype=bool)
    folds = np.array([pair.fold for pair in pairs], dtype=int)
    reports = []
    for x, y in ((a, b), (apply_head(head, a), apply_head(head, b))):
        m = pair_metrics(np.linalg.norm(x - y, axis=1), labels, folds)
        reports.append({
            "accuracy": m.cv.accuracy, "auc": m.roc.auc, "val": m.at_far.val, "far": m.at_far.far,
            "loss": m.loss, "mean_pos_distance": m.stats.mean_pos, "mean_neg_distance": m.stats.mean_neg, "pairs": m.pairs,
        })
    return reports[0], reports[1]


# -- training ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FinetuneResult:
    name: str
    base: str
    mode: str
    path: Path
    epochs_run: int
    best_epoch: int
    threshold: float
    train_people: int
    val_people: int
    before: dict
    after: dict
    history: list[dict]
    skipped: list[tuple[str, str]]

    def to_json(self) -> dict:
        def clean(d: dict) -> dict:
            return {k: (clean(v) if isinstance(v, dict) else round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}

        return {
            "name": self.name, "base": self.base, "mode": self.mode, "saved_in": str(self.path),
            "epochs_run": self.epochs_run, "best_epoch": self.best_epoch, "threshold": round(self.threshold, 4),
            "train_people": self.train_people, "val_people": self.val_people,
            "before": clean(self.before), "after": clean(self.after),
            "history": [clean(h) for h in self.history], "skipped": [{"photo": p, "reason": r} for p, r in self.skipped],
        }


def train_loop(
    module, forward, names: Sequence[str], val_embed, val_names: Sequence[str], epochs: int, seed: int,
    lr: float, patience: int = 5, people_per_batch: int = 16, faces_per_person: int = 4, progress: Progress | None = None,
    set_train=None,
):
    """FaceNet-style training: batches of P people x K faces, semi-hard triplet loss, early stopping on
    the validation people's contrastive loss (the best epoch's weights are kept).

    ``forward(rows)`` embeds training rows with gradients; ``val_embed()`` embeds the validation set."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    params = [p for p in module.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(params, lr=lr, weight_decay=1e-4)
    names = np.asarray(names)
    people = sorted(set(names.tolist()))
    rows_of = {p: np.flatnonzero(names == p) for p in people}
    usable = [p for p in people if len(rows_of[p]) >= 2]
    if len(usable) < 2:
        raise FaceDemoError("Fine-tuning needs at least two training people with two or more photos each.")
    label_index = {p: i for i, p in enumerate(people)}

    def val_loss() -> float:
        module.eval()
        with torch.inference_mode():
            d, same = all_pairs(val_embed(), val_names)
        return contrastive_loss(d, same)

    def snapshot():
        return {k: v.detach().clone() for k, v in module.state_dict().items()}

    best = (val_loss(), 0, snapshot())
    history, waited = [], 0
    steps = max(1, len(names) // (people_per_batch * faces_per_person))
    for epoch in range(1, epochs + 1):
        (set_train or module.train)()
        total, active = 0.0, 0
        for _ in range(steps):
            batch_people = rng.choice(usable, size=min(people_per_batch, len(usable)), replace=False)
            rows = np.concatenate([rng.choice(rows_of[p], size=min(faces_per_person, len(rows_of[p])), replace=False) for p in batch_people])
            labels = torch.tensor([label_index[names[r]] for r in rows])
            loss, n_active = semi_hard_triplet_loss(forward(rows), labels)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach())
            active += n_active
        current = val_loss()
        history.append({"epoch": epoch, "train_triplet_loss": total / steps, "active_triplets": active, "val_loss": current})
        if progress:
            progress(epoch, epochs, f"epoch {epoch}: validation loss {current:.4f}")
        if current < best[0] - 1e-5:
            best, waited = (current, epoch, snapshot()), 0
        else:
            waited += 1
            if waited >= patience:
                break
    module.load_state_dict(best[2])
    module.eval()
    return history, best[1]


def train_adapter(train: LabelledEmbeddings, val: LabelledEmbeddings, epochs: int = 30, seed: int = 0, progress: Progress | None = None):
    """The residual head on cached embeddings."""
    import torch

    torch.manual_seed(seed)
    head = make_head(train.vectors.shape[1])
    x_all = torch.from_numpy(train.vectors)
    x_val = torch.from_numpy(val.vectors)
    history, best_epoch = train_loop(
        head, lambda rows: head(x_all[rows]), train.names, lambda: head(x_val).numpy(), val.names, epochs, seed, lr=1e-3, progress=progress
    )
    return head, history, best_epoch


# -- full fine-tuning of InceptionResnetV1 ---------------------------------------------------------
TRAINABLE_BLOCKS = ("block8", "last_linear", "last_bn")  # the last Inception block and the embedding layer


@dataclass(frozen=True)
class LabelledCrops:
    crops: np.ndarray  # (n, size, size, 3) uint8, aligned as the model expects
    names: list[str]
    skipped: list[tuple[str, str]]


def crop_folder(pipeline, folder: Path, model: str, progress: Progress | None = None) -> LabelledCrops:
    from .pipeline import analyze_many

    items = folder_images(folder)
    spec = pipeline.spec(model)
    crops, names, skipped = [], [], []
    for start in range(0, len(items), 16):
        part = items[start : start + 16]
        for (person, path), result in zip(part, analyze_many(pipeline, [str(p) for _, p in part], model)):
            if result.error or not result.faces:
                skipped.append((str(path), result.error or "no face found"))
                continue
            face = max(result.faces, key=lambda f: f.face.area)
            crops.append(np.asarray(face.crop.convert("RGB").resize((spec.input_size, spec.input_size))))
            names.append(person)
        if progress:
            progress(min(start + 16, len(items)), len(items), "aligning faces")
    return LabelledCrops(np.stack(crops) if crops else np.zeros((0, spec.input_size, spec.input_size, 3), np.uint8), names, skipped)


def _split_crops(data: LabelledCrops, fraction: float, seed: int) -> tuple[LabelledCrops, LabelledCrops]:
    def part(rows):
        return LabelledCrops(data.crops[rows], [data.names[i] for i in rows], [])

    train, held = held_out_rows(data.names, fraction, seed)
    return part(train), part(held)


def train_full(pipeline, spec, train: LabelledCrops, val: LabelledCrops, epochs: int, seed: int, progress: Progress | None = None):
    """Unfreeze InceptionResnetV1's last block and embedding layer; the rest, BatchNorm statistics
    included, stays as trained. Runs on the pipeline's device (the GPU when there is one)."""
    import copy

    from .models.facenet import standardise, embed_pixels

    base = pipeline.embedder(spec.name)
    model = copy.deepcopy(base._model).float()
    device = pipeline.device.device
    for name, param in model.named_parameters():
        param.requires_grad = name.split(".")[0] in TRAINABLE_BLOCKS

    def set_train():
        model.eval()
        for block in TRAINABLE_BLOCKS:
            getattr(model, block).train()

    history, best_epoch = train_loop(
        model, lambda rows: model(standardise(train.crops[rows], device)), train.names,
        lambda: embed_pixels(model, val.crops, device), val.names, epochs, seed,
        lr=1e-4, people_per_batch=8, faces_per_person=4, progress=progress, set_train=set_train,
    )
    return model, history, best_epoch


def _finetune_full(pipeline, spec, name, data, val, epochs, seed, progress) -> FinetuneResult:
    import torch

    from .models.facenet import embed_pixels

    train = crop_folder(pipeline, Path(data), spec.name, progress)
    skipped = list(train.skipped)
    if val is None:
        train, held = _split_crops(train, 0.25, seed)
    else:
        held = crop_folder(pipeline, Path(val), spec.name, progress)
        skipped += held.skipped
    base_embedder = pipeline.embedder(spec.name)
    from PIL import Image

    def base_vectors(crops):
        return base_embedder.embed([Image.fromarray(c) for c in crops])

    base_threshold = pipeline.threshold(spec.name)
    before = pair_report(base_vectors(held.crops), held.names, base_threshold)
    model, history, best_epoch = train_full(pipeline, spec, train, held, epochs, seed, progress)
    device = pipeline.device.device
    d_train, same_train = all_pairs(embed_pixels(model, train.crops, device), train.names)
    threshold = float(best_threshold(d_train, same_train).threshold)
    after = pair_report(embed_pixels(model, held.crops, device), held.names, threshold)
    folder = models_dir(pipeline.settings.home) / name
    folder.mkdir(parents=True, exist_ok=False)
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, folder / "model.pt")
    return FinetuneResult(name, spec.name, "full", folder, len(history), best_epoch, threshold,
                          len(set(train.names)), len(set(held.names)), before, after, history, skipped)


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
) -> FinetuneResult:
    """Fine-tune ``base`` on ``data`` (a folder-per-identity tree, or embeddings already labelled, as the
    dashboard passes from the gallery) and save the result as model ``name``."""
    import torch

    from .models.registry import user_models

    spec = pipeline.spec(base)
    if spec.family == "adapter":
        raise FaceDemoError(f"'{base}' is itself a fine-tuned model; fine-tune its base ({spec.extra['base']}) instead.")
    taken = [s.name for s in pipeline.models()] + list(user_models(pipeline.settings.home))
    name = validate_model_name(name, taken)
    if mode == "full":
        if spec.family != "facenet":
            raise FaceDemoError(f"Full fine-tuning needs a facenet-* model; {spec.name} can only be adapted (use --mode adapter).")
        if isinstance(data, LabelledEmbeddings):
            raise FaceDemoError("Full fine-tuning needs the photos themselves, not stored embeddings; give a folder.")
        result = _finetune_full(pipeline, spec, name, data, val, epochs, seed, progress)
        _save_record(result, spec, seed)
        return result
    if mode != "adapter":
        raise FaceDemoError(f"Unknown mode '{mode}': use adapter or full.")
    train = data if isinstance(data, LabelledEmbeddings) else embed_folder(pipeline, Path(data), spec.name, progress)
    skipped = list(train.skipped)
    if val is None:
        train, held = split_by_person(train, 0.25, seed)
    else:
        held = val if isinstance(val, LabelledEmbeddings) else embed_folder(pipeline, Path(val), spec.name, progress)
        skipped += held.skipped
        overlap = set(train.names) & set(held.names)
        if overlap:
            raise FaceDemoError(f"The validation people must not be in the training data; both have {', '.join(sorted(overlap)[:5])}.")
    base_threshold = pipeline.threshold(spec.name)
    before = pair_report(held.vectors, held.names, base_threshold)
    head, history, best_epoch = train_adapter(train, held, epochs, seed, progress=progress)
    # The adapter's own threshold: the best-accuracy one on the training people's pairs.
    d_train, same_train = all_pairs(apply_head(head, train.vectors), train.names)
    threshold = float(best_threshold(d_train, same_train).threshold)
    after = pair_report(apply_head(head, held.vectors), held.names, threshold)
    if general is not None:
        before["general"], after["general"] = general_report(pipeline, spec.name, head, *general)
    folder = models_dir(pipeline.settings.home) / name
    folder.mkdir(parents=True, exist_ok=False)
    torch.save(head.state_dict(), folder / "adapter.pt")
    result = FinetuneResult(
        name, spec.name, mode, folder, len(history), best_epoch, threshold,
        len(set(train.names)), len(set(held.names)), before, after, history, skipped,
    )
    _save_record(result, spec, seed)
    return result


def _save_record(result: FinetuneResult, spec, seed: int) -> None:
    """model.json is written last: a folder without it (a run killed mid-way) is not listed as a model."""
    record = {"name": result.name, "base": spec.name, "mode": result.mode, "dim": spec.dim, "threshold": result.threshold, "seed": seed, "report": result.to_json()}
    (result.path / "model.json").write_text(json.dumps(record, indent=2))


def finetune_gallery(gallery, base: str, name: str, epochs: int = 30, seed: int = 0, progress: Progress | None = None) -> FinetuneResult:
    """The dashboard's fine-tune: train on the gallery's own people (a quarter held out for validation),
    then store the adapted embeddings of every gallery face under the new model, so it can identify and
    be explored at once without re-reading any photo."""
    from .store import FaceRecord, record_id

    base = gallery.model_name(base)
    records, vectors = gallery.store.get(base, embeddings=True)
    if not records:
        raise FaceDemoError(f"Nobody is enrolled for {base}; enroll or import people first.")
    data = LabelledEmbeddings(np.asarray(vectors, dtype=np.float32), [r.person for r in records], [r.id for r in records], [])
    result = finetune(gallery.pipeline, data, base, name, "adapter", epochs, None, seed, progress)
    adapted = apply_head(load_head(result.path, gallery.pipeline.spec(base).dim), data.vectors)
    new_records, thumbs = [], []
    for r in records:
        new_records.append(FaceRecord(record_id(result.name, r.image_sha, r.box), r.person, r.image, r.image_sha, r.box, result.name, r.enrolled_at))
        old = gallery.store.thumb_path(r.id)
        thumbs.append(_open(old))
    with gallery.store.lock:
        gallery.store.add(result.name, new_records, adapted, thumbs)
    gallery.reindex(result.name)
    return result


def _open(path):
    from PIL import Image

    if path is None:
        return None
    with Image.open(path) as image:
        return image.copy()
