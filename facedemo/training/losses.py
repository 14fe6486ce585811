"""The two losses fine-tuning can train with: FaceNet's triplet loss with online semi-hard mining (Schroff
et al. 2015, section 3.2) and ArcFace's additive angular margin (Deng et al. 2019)."""

from __future__ import annotations

import math

from ..errors import InvalidParameterError

MARGIN = 0.2  # FaceNet's alpha, for L2-normalised embeddings
# ArcFace: m = 0.5 as in the paper. The paper's s = 64 suits 85,000 classes; a fine-tune has tens to a few
# hundred, and the scale a softmax over C classes needs to reach a posterior P is about
# log((C - 1) P / (1 - P)) (AdaCos, Zhang et al. 2019): under 10 for C = 200, P = 0.9. s = 30, the common
# choice for small sets, is ample and keeps the gradients of a freshly initialised head tame.
ARCFACE_SCALE, ARCFACE_MARGIN = 30.0, 0.5
LOSSES = ("triplet", "arcface")


def check_loss(name: str) -> str:

    if name not in LOSSES:
        raise InvalidParameterError(f"Unknown loss '{name}': use {' or '.join(LOSSES)}.")
    return name


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


def arcface_head(centres, scale: float = ARCFACE_SCALE, margin: float = ARCFACE_MARGIN):
    """ArcFace's classifier over the training people: one weight vector per person, normalised, so a logit
    is the cosine between a face and a person; the true person's angle gets ``margin`` added before the
    softmax, which pulls each person's faces into a tighter cone than plain softmax would.

    ``centres`` (people x dim) start the weights at each person's mean embedding: a fine-tune starts from a
    trained embedding, and random weights would spend the first epochs (and the head's identity start)
    undoing a classifier that knows nothing. Call it with ``(embeddings, labels)``; it returns
    ``(loss, correct)``, the batch's mean loss and how many faces the margin-free classifier gets right."""
    import torch

    class ArcFace(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(
                torch.nn.functional.normalize(torch.as_tensor(centres, dtype=torch.float32), dim=1)
            )
            self.scale, self.margin = scale, margin
            # Past theta = pi - m, cos(theta + m) would start rising again; insightface's linear extension
            # keeps the target logit monotonic there.
            self.threshold = math.cos(math.pi - margin)
            self.extension = math.sin(math.pi - margin) * margin

        def forward(self, embeddings, labels):
            cosine = torch.nn.functional.linear(
                torch.nn.functional.normalize(embeddings, dim=1), torch.nn.functional.normalize(self.weight, dim=1)
            ).clamp(-1 + 1e-7, 1 - 1e-7)
            target = cosine.gather(1, labels[:, None])
            sine = torch.sqrt(1.0 - target**2)
            with_margin = target * math.cos(self.margin) - sine * math.sin(self.margin)
            with_margin = torch.where(target > self.threshold, with_margin, target - self.extension)
            logits = cosine.scatter(1, labels[:, None], with_margin) * self.scale
            correct = int((cosine.argmax(dim=1) == labels).sum())
            return torch.nn.functional.cross_entropy(logits, labels), correct

    return ArcFace()
