"""FaceNet's triplet loss with online semi-hard mining (Schroff et al. 2015, section 3.2)."""

from __future__ import annotations

MARGIN = 0.2  # FaceNet's alpha, for L2-normalised embeddings


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
