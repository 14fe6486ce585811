"""The training loop FaceNet describes: batches of P people x K faces, a loss (semi-hard triplet, or
ArcFace's angular margin over the training people), early stopping on held-out people. One loop serves
the adapter head (on cached embeddings) and full fine-tuning of InceptionResnetV1's last block (on aligned
crops). Every epoch leaves a point on the curves: the training loss, and the held-out people's loss and
mean same-person / different-person distance."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import TrainingError
from ..evaluation.metrics import all_pairs, contrastive_loss, distance_stats
from ..models.adapter import make_head
from ..progress import Progress
from .data import LabelledCrops, LabelledEmbeddings
from .losses import arcface_head, check_loss, semi_hard_triplet_loss


def _class_centres(forward, names: np.ndarray, people: list[str], chunk: int = 256) -> np.ndarray:
    """Each training person's mean embedding under the starting weights: where ArcFace's weights begin."""
    import torch

    with torch.no_grad():
        vectors = np.concatenate(
            [forward(np.arange(i, min(i + chunk, len(names)))).cpu().numpy() for i in range(0, len(names), chunk)]
        )
    return np.stack([vectors[names == p].mean(axis=0) for p in people])


def train_loop(
    module,
    forward,
    names: Sequence[str],
    val_embed,
    val_names: Sequence[str],
    epochs: int,
    seed: int,
    lr: float,
    patience: int = 5,
    people_per_batch: int = 16,
    faces_per_person: int = 4,
    progress: Progress | None = None,
    set_train: Callable[[], None] | None = None,
    loss: str = "triplet",
    cpu_budget_s: float | None = None,
):
    """FaceNet-style training: batches of P people x K faces, semi-hard triplet or ArcFace loss, early
    stopping on the validation people's contrastive loss (the best epoch's weights are kept). ArcFace's
    own loss cannot be computed on people it has no weights for, so both losses stop on the same
    pair loss, which also makes their curves comparable.

    ``forward(rows)`` embeds training rows with gradients; ``val_embed()`` embeds the validation set.
    ``cpu_budget_s``: stop after the epoch that spends it, like an early stop (the process's CPU time, every
    thread's: a public request's bound, on the safe side when other requests run beside it); each epoch's
    ``cpu_s`` says how much had been spent. Returns (history, best epoch): one dict per epoch run."""

    import torch

    check_loss(loss)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    names = np.asarray(names)
    people, rows_of, usable = _people_rows(names)
    label_index = {p: i for i, p in enumerate(people)}
    criterion, optimiser = _optimiser(module, forward, names, people, loss, lr)

    started = time.process_time()
    best = (_validate(module, val_embed, val_names)[0], 0, _snapshot(module))
    history, waited = [], 0
    steps = max(1, len(names) // (people_per_batch * faces_per_person))
    for epoch in range(1, epochs + 1):
        (set_train or module.train)()
        total, counted = 0.0, 0
        for _ in range(steps):
            rows = _sample_batch(rng, usable, rows_of, people_per_batch, faces_per_person)
            labels = torch.tensor([label_index[names[r]] for r in rows])
            value, n = _step(forward(rows), labels, criterion, optimiser)
            total += value
            counted += n
        current, mean_pos, mean_neg = _validate(module, val_embed, val_names)
        history.append(
            {
                "epoch": epoch,
                "loss": loss,
                "train_loss": total / steps,
                # triplet: how many triplets still violated the margin; arcface: faces classified right
                ("active_triplets" if criterion is None else "train_correct"): counted,
                "val_loss": current,
                "val_mean_pos_distance": mean_pos,
                "val_mean_neg_distance": mean_neg,
                "cpu_s": time.process_time() - started,
            }
        )
        if progress:
            progress(epoch, epochs, f"epoch {epoch}: validation loss {current:.4f}")
        if current < best[0] - 1e-5:
            best, waited = (current, epoch, _snapshot(module)), 0
        else:
            waited += 1
            if waited >= patience:
                break
        if cpu_budget_s is not None and history[-1]["cpu_s"] >= cpu_budget_s:
            break
    module.load_state_dict(best[2])
    module.eval()
    return history, best[1]


def _people_rows(names: np.ndarray) -> tuple[list[str], dict, list[str]]:
    """The training people (sorted), each one's rows, and those with two or more faces (a batch needs two)."""
    people = sorted(set(names.tolist()))
    rows_of = {p: np.flatnonzero(names == p) for p in people}
    usable = [p for p in people if len(rows_of[p]) >= 2]
    if len(usable) < 2:
        raise TrainingError("Fine-tuning needs at least two training people with two or more photos each.")
    return people, rows_of, usable


def _optimiser(module, forward, names: np.ndarray, people: list[str], loss: str, lr: float):
    """Adam over the module's trainable weights, and for ArcFace its head (started at the class centres)
    too: the head, or None for the triplet loss, and the optimiser."""
    import torch

    params = [p for p in module.parameters() if p.requires_grad]
    criterion = None
    if loss == "arcface":
        module.eval()
        criterion = arcface_head(_class_centres(forward, names, people)).to(next(iter(params)).device)
        params += list(criterion.parameters())
    return criterion, torch.optim.Adam(params, lr=lr, weight_decay=1e-4)


def _validate(module, val_embed, val_names: Sequence[str]) -> tuple[float, float, float]:
    """The held-out people's contrastive loss and mean same-person / different-person distance."""
    import torch

    module.eval()
    with torch.inference_mode():
        d, same = all_pairs(val_embed(), val_names)
    stats = distance_stats(d, same)
    return contrastive_loss(d, same), stats.mean_pos, stats.mean_neg


def _snapshot(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _sample_batch(rng, usable: list[str], rows_of: dict, people_per_batch: int, faces_per_person: int) -> np.ndarray:
    """The rows of one batch: P people drawn from those with two or more faces, up to K faces each."""
    batch_people = rng.choice(usable, size=min(people_per_batch, len(usable)), replace=False)
    return np.concatenate(
        [rng.choice(rows_of[p], size=min(faces_per_person, len(rows_of[p])), replace=False) for p in batch_people]
    )


def _step(embeddings, labels, criterion, optimiser) -> tuple[float, int]:
    """One optimiser step on a batch's embeddings: its loss, and the loss's count (active triplets, or
    faces ArcFace classified right)."""
    if criterion is None:
        value, n = semi_hard_triplet_loss(embeddings, labels.to(embeddings.device))
    else:
        value, n = criterion(embeddings, labels.to(embeddings.device))
    optimiser.zero_grad()
    value.backward()
    optimiser.step()
    return float(value.detach()), n


# ArcFace's margin first pushes every face off its person's centre, and on a small set (one batch an
# epoch) the held-out loss rises for several epochs at 1e-3 before it falls: at 1e-2 it falls within the
# patience (docs/FINETUNE.md says where this was measured).
ADAPTER_LR = {"triplet": 1e-3, "arcface": 1e-2}


def train_adapter(
    train: LabelledEmbeddings,
    val: LabelledEmbeddings,
    epochs: int = 30,
    seed: int = 0,
    progress: Progress | None = None,
    loss: str = "triplet",
    cpu_budget_s: float | None = None,
):
    """The residual head on cached embeddings (degraded versions, for a condition, are rows like any other);
    ``cpu_budget_s`` as ``train_loop``'s."""
    import torch

    torch.manual_seed(seed)
    head = make_head(train.vectors.shape[1])
    x_all = torch.from_numpy(train.vectors)
    x_val = torch.from_numpy(val.vectors)
    history, best_epoch = train_loop(
        head,
        lambda rows: head(x_all[rows]),
        train.names,
        lambda: head(x_val).numpy(),
        val.names,
        epochs,
        seed,
        lr=ADAPTER_LR[loss],
        progress=progress,
        loss=loss,
        cpu_budget_s=cpu_budget_s,
    )
    return head, history, best_epoch


TRAINABLE_BLOCKS = ("block8", "last_linear", "last_bn")  # the last Inception block and the embedding layer


def train_full(
    pipeline,
    spec,
    train: LabelledCrops,
    val: LabelledCrops,
    epochs: int,
    seed: int,
    progress: Progress | None = None,
    loss: str = "triplet",
    augment=None,
):
    """Unfreeze InceptionResnetV1's last block and embedding layer; the rest, BatchNorm statistics
    included, stays as trained. Runs on the pipeline's device (the GPU when there is one). With
    ``augment`` (an ``augment.Augment``), half of every batch's crops are degraded on the fly."""
    import copy

    from ..models.facenet import embed_pixels, standardise
    from .augment import augment_batch

    model = copy.deepcopy(pipeline.embedder(spec).module).float()
    device = pipeline.device.device
    for name, param in model.named_parameters():
        param.requires_grad = name.split(".")[0] in TRAINABLE_BLOCKS

    def set_train():
        model.eval()
        for block in TRAINABLE_BLOCKS:
            getattr(model, block).train()

    rng = np.random.default_rng(seed + 1)

    def forward(rows):
        crops = train.crops[rows]
        # Only a training step degrades: ArcFace's starting centres are the clean faces' means.
        if augment is not None and model.block8.training:
            crops = augment_batch(crops, spec, augment, rng)
        return model(standardise(crops, device))

    history, best_epoch = train_loop(
        model,
        forward,
        train.names,
        lambda: embed_pixels(model, val.crops, device),
        val.names,
        epochs,
        seed,
        lr=1e-4,
        people_per_batch=8,
        faces_per_person=4,
        progress=progress,
        set_train=set_train,
        loss=loss,
    )
    return model, history, best_epoch
