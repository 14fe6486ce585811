"""The training loop FaceNet describes: batches of P people x K faces, semi-hard triplet loss, early stopping
on held-out people. One loop serves the adapter head (on cached embeddings) and full fine-tuning of
InceptionResnetV1's last block (on aligned crops)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import FaceDemoError
from ..evaluation.metrics import all_pairs, contrastive_loss
from ..models.adapter import make_head
from ..progress import Progress
from .data import LabelledCrops, LabelledEmbeddings
from .losses import semi_hard_triplet_loss


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


TRAINABLE_BLOCKS = ("block8", "last_linear", "last_bn")  # the last Inception block and the embedding layer


def train_full(pipeline, spec, train: LabelledCrops, val: LabelledCrops, epochs: int, seed: int, progress: Progress | None = None):
    """Unfreeze InceptionResnetV1's last block and embedding layer; the rest, BatchNorm statistics
    included, stays as trained. Runs on the pipeline's device (the GPU when there is one)."""
    import copy

    from ..models.facenet import embed_pixels, standardise

    model = copy.deepcopy(pipeline.embedder(spec).module).float()
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
