"""Verification and identification metrics on L2 distances between L2-normalised embeddings.

Pure numpy + scikit-learn. Conventions used throughout:

* ``distances``: one L2 distance per pair (0..2; smaller = more alike).
* ``labels``: 1/True where the pair is the same person, 0/False where it is not.
* A pair is predicted *same* when ``distance <= threshold``.
* VAL (validation rate) = true accepts / same pairs; FAR (false accept rate) = false accepts /
  different pairs (Schroff et al. 2015, FaceNet, section 5.1).

The ROC is scikit-learn's ``roc_curve`` on the score ``-distance``; accuracies and rates are read from
its counts or from ``confusion_matrix``, never re-derived by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, auc, confusion_matrix, roc_curve, top_k_accuracy_score
from sklearn.metrics.pairwise import euclidean_distances

from ..errors import FaceDemoError

DEFAULT_FAR = 1e-3
CONTRASTIVE_MARGIN = 1.0


class MetricsError(FaceDemoError):
    """The pairs given cannot produce the metric asked for (e.g. no different-person pairs)."""


def _clean(value: float) -> float | None:
    """JSON-safe float: None for inf/nan."""
    return float(value) if np.isfinite(value) else None


def _check(distances, labels) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(distances, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    if d.shape != y.shape:
        raise MetricsError(f"There are {d.size} distances but {y.size} labels; each pair needs one of each.")
    if d.size == 0:
        raise MetricsError("There are no pairs to evaluate.")
    if not np.all(np.isfinite(d)):
        raise MetricsError("Some distances are not finite numbers.")
    return d, y


def _check_both_classes(y: np.ndarray) -> None:
    if y.all() or not y.any():
        kind = "different-person" if y.all() else "same-person"
        raise MetricsError(f"The pairs hold no {kind} pairs, so this metric cannot be computed; add some.")


# -- ROC ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RocCurve:
    """ROC points ordered from the strictest threshold (accept nothing) to the loosest (accept all).

    ``thresholds[i]`` is the distance threshold of point i (the first is ``-inf``: nothing accepted)."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    auc: float

    def to_json(self) -> dict:
        return {
            "fpr": [float(v) for v in self.fpr],
            "tpr": [float(v) for v in self.tpr],
            "thresholds": [_clean(v) for v in self.thresholds],
            "auc": float(self.auc),
        }


def roc(distances, labels, drop_intermediate: bool = True) -> RocCurve:
    d, y = _check(distances, labels)
    _check_both_classes(y)
    fpr, tpr, scores = roc_curve(y, -d, drop_intermediate=drop_intermediate)
    return RocCurve(fpr=fpr, tpr=tpr, thresholds=-scores, auc=float(auc(fpr, tpr)))


# -- accuracy at the best threshold ------------------------------------------------------------
@dataclass(frozen=True)
class ThresholdAccuracy:
    threshold: float
    accuracy: float

    def to_json(self) -> dict:
        return {"threshold": float(self.threshold), "accuracy": float(self.accuracy)}


def best_threshold(distances, labels) -> ThresholdAccuracy:
    """The threshold with the highest accuracy on these pairs.

    Every distinct distance is tried as a cut; the returned threshold is the midpoint between the best
    cut and the next larger distance (so it sits in the gap, not on a sample). Ties go to the smallest
    (strictest) cut. With only one class present the answer still exists (accept all / accept none)."""
    d, y = _check(distances, labels)
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives and negatives:
        fpr, tpr, scores = roc_curve(y, -d, drop_intermediate=False)
        cuts = -scores  # cuts[0] = -inf: nothing accepted
        correct = tpr * positives + (1.0 - fpr) * negatives
    else:  # one class only: accept all or accept none
        cuts = np.concatenate([[-np.inf], np.unique(d)])
        accepted = np.array([(d <= c).sum() for c in cuts], dtype=float)
        correct = accepted if positives else d.size - accepted
    best = int(np.argmax(correct))
    accuracy = float(correct[best] / d.size)
    values = np.unique(d)
    if best == 0 or not np.isfinite(cuts[best]):
        threshold = float(np.nextafter(values[0], -np.inf))
    else:
        above = values[values > cuts[best]]
        threshold = float((cuts[best] + above[0]) / 2) if above.size else float(cuts[best])
    return ThresholdAccuracy(threshold=threshold, accuracy=accuracy)


def accuracy_at(distances, labels, threshold: float) -> float:
    d, y = _check(distances, labels)
    return float(accuracy_score(y, d <= threshold))


@dataclass(frozen=True)
class CrossValidated:
    """k-fold accuracy: for each fold the threshold is chosen on the other folds and applied to it."""

    accuracy: float  # mean over folds
    accuracy_std: float  # population std over folds (numpy default, as the LFW literature reports)
    threshold: float  # mean of the per-fold thresholds
    fold_accuracies: tuple[float, ...]
    fold_thresholds: tuple[float, ...]

    def to_json(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "accuracy_std": self.accuracy_std,
            "threshold": self.threshold,
            "fold_accuracies": list(self.fold_accuracies),
            "fold_thresholds": list(self.fold_thresholds),
        }


def cross_validated_accuracy(distances, labels, folds) -> CrossValidated:
    """The LFW protocol: with k >= 2 folds, fold i is scored at the best threshold of the other k-1.

    With a single fold there is nothing to hold out: the best threshold of that fold is used on itself
    (an optimistic figure) and the std is 0."""
    d, y = _check(distances, labels)
    f = np.asarray(folds).ravel()
    if f.shape != d.shape:
        raise MetricsError(f"There are {d.size} pairs but {f.size} fold numbers.")
    ids = list(dict.fromkeys(f.tolist()))
    if len(ids) < 2:
        best = best_threshold(d, y)
        return CrossValidated(best.accuracy, 0.0, best.threshold, (best.accuracy,), (best.threshold,))
    accuracies, thresholds = [], []
    for fold in ids:
        test = f == fold
        chosen = best_threshold(d[~test], y[~test]).threshold
        thresholds.append(chosen)
        accuracies.append(accuracy_at(d[test], y[test], chosen))
    return CrossValidated(
        accuracy=float(np.mean(accuracies)),
        accuracy_std=float(np.std(accuracies)),
        threshold=float(np.mean(thresholds)),
        fold_accuracies=tuple(float(a) for a in accuracies),
        fold_thresholds=tuple(float(t) for t in thresholds),
    )


# -- VAL and FAR -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ValFar:
    val: float  # share of same-person pairs accepted
    far: float  # share of different-person pairs accepted
    threshold: float

    def to_json(self) -> dict:
        return {"val": self.val, "far": self.far, "threshold": _clean(self.threshold)}


def rates_at(distances, labels, threshold: float) -> ValFar:
    """VAL and FAR when pairs with ``distance <= threshold`` are accepted."""
    d, y = _check(distances, labels)
    _check_both_classes(y)
    tn, fp, fn, tp = confusion_matrix(y, d <= threshold, labels=[False, True]).ravel()
    return ValFar(val=float(tp / (tp + fn)), far=float(fp / (fp + tn)), threshold=float(threshold))


def val_at_far(distances, labels, far: float = DEFAULT_FAR) -> ValFar:
    """The highest VAL whose FAR does not exceed ``far``, at the loosest threshold that achieves it.

    The threshold is an observed distance (pairs at exactly it are accepted); ``-inf`` when even the
    closest different-person pair is closer than every same-person pair (VAL 0)."""
    if not 0.0 <= far <= 1.0:
        raise MetricsError(f"A false accept rate must be between 0 and 1, not {far}.")
    curve = roc(distances, labels, drop_intermediate=False)
    index = int(np.flatnonzero(curve.fpr <= far + 1e-12)[-1])
    return ValFar(val=float(curve.tpr[index]), far=float(curve.fpr[index]), threshold=float(curve.thresholds[index]))


# -- distances and loss ------------------------------------------------------------------------
@dataclass(frozen=True)
class DistanceStats:
    mean_pos: float  # same-person pairs (nan when there are none)
    std_pos: float
    mean_neg: float  # different-person pairs
    std_neg: float
    n_pos: int
    n_neg: int

    def to_json(self) -> dict:
        return {k: (_clean(v) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def distance_stats(distances, labels) -> DistanceStats:
    d, y = _check(distances, labels)
    pos, neg = d[y], d[~y]

    def mean(a):
        return float(a.mean()) if a.size else float("nan")

    def std(a):
        return float(a.std()) if a.size else float("nan")

    return DistanceStats(mean(pos), std(pos), mean(neg), std(neg), int(pos.size), int(neg.size))


def contrastive_loss(distances, labels, margin: float = CONTRASTIVE_MARGIN) -> float:
    """The pair-based contrastive loss of Hadsell, Chopra & LeCun (2006), averaged over pairs:

        L = mean_i [ y_i * d_i**2 + (1 - y_i) * max(0, margin - d_i)**2 ] / 2

    Same-person pairs pay for any distance, different-person pairs only for coming closer than
    ``margin``. (FaceNet's triplet loss needs anchor/positive/negative triplets, which a list of pairs
    does not have; this is the standard loss defined on pairs.) 0 is perfect."""
    d, y = _check(distances, labels)
    if margin <= 0:
        raise MetricsError(f"The contrastive margin must be positive, not {margin}.")
    per_pair = np.where(y, d**2, np.maximum(0.0, margin - d) ** 2)
    return float(per_pair.mean() / 2)


# -- everything at once ------------------------------------------------------------------------
@dataclass(frozen=True)
class PairMetrics:
    """All verification metrics of one set of labelled pairs."""

    cv: CrossValidated
    roc: RocCurve
    at_far: ValFar  # VAL at the FAR target, on all pairs pooled
    far_target: float
    stats: DistanceStats
    loss: float
    pairs: int

    def to_json(self) -> dict:
        return {
            **self.cv.to_json(),
            "auc": self.roc.auc,
            "val": self.at_far.val,
            "far": self.at_far.far,
            "far_target": self.far_target,
            "far_threshold": _clean(self.at_far.threshold),
            **{f"distance_{k}": v for k, v in self.stats.to_json().items()},
            "loss": self.loss,
            "pairs": self.pairs,
        }


def pair_metrics(distances, labels, folds=None, far: float = DEFAULT_FAR) -> PairMetrics:
    d, y = _check(distances, labels)
    _check_both_classes(y)
    folds = np.zeros(d.size, dtype=int) if folds is None else folds
    return PairMetrics(
        cv=cross_validated_accuracy(d, y, folds),
        roc=roc(d, y),
        at_far=val_at_far(d, y, far),
        far_target=float(far),
        stats=distance_stats(d, y),
        loss=contrastive_loss(d, y),
        pairs=int(d.size),
    )


def all_pairs(vectors: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every unordered pair of rows: (distances, same-person labels). For a gallery without a pairs file."""
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 2 or v.shape[0] != len(names):
        raise MetricsError(f"There are {len(v)} vectors but {len(names)} names.")
    # The n x n matrix, not n^2/2 difference vectors: a few thousand faces stay a few dozen MB.
    i, j = np.triu_indices(len(v), k=1)
    d = euclidean_distances(v)[i, j]
    n = np.asarray(names, dtype=object)
    return d, n[i] == n[j]


def pair_count(n: int) -> int:
    return n * (n - 1) // 2


def some_pairs(vectors: np.ndarray, names: Sequence[str], limit: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of rows while there are at most ``limit`` (``all_pairs``), else every same-person pair (at most
    half of ``limit``, drawn at random beyond) and different-person pairs drawn uniformly at random up to
    ``limit``: a 10,000-face gallery has 50 million pairs, whose distances alone are 400 MB and whose figures
    were 730 MB of plotly data, and a uniform sample of them would hold a dozen same-person pairs. Each class's
    statistics (its histogram, ROC, VAL at FAR) are estimates of the whole's; the mix of the two is not."""
    if pair_count(len(names)) <= limit:
        return all_pairs(vectors, names)
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 2 or v.shape[0] != len(names):
        raise MetricsError(f"There are {len(v)} vectors but {len(names)} names.")
    rng = np.random.default_rng(seed)
    _, person = np.unique(np.asarray(names, dtype=object).astype(str), return_inverse=True)
    order = np.argsort(person, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(person[order])) + 1)
    same = [np.stack(np.triu_indices(len(g), k=1)) for g in groups if len(g) > 1]
    si, sj = (np.zeros(0, int), np.zeros(0, int))
    if same:
        pairs = np.concatenate([g[p] for g, p in zip([g for g in groups if len(g) > 1], same)], axis=1)
        if pairs.shape[1] > limit // 2:
            pairs = pairs[:, rng.choice(pairs.shape[1], limit // 2, replace=False)]
        si, sj = pairs
    wanted = limit - len(si)
    di, dj = [], []
    while wanted > 0:  # different people: draw pairs, keep those of two people (most of them in a large gallery)
        i = rng.integers(0, len(v), size=2 * wanted)
        j = (i + rng.integers(1, len(v), size=2 * wanted)) % len(v)
        keep = person[i] != person[j]
        if not keep.any():
            break  # one person only: there are no different-person pairs
        di.append(i[keep][:wanted])
        dj.append(j[keep][:wanted])
        wanted -= len(di[-1])
    i = np.concatenate([si, *di]).astype(int)
    j = np.concatenate([sj, *dj]).astype(int)
    step = 65536
    d = np.concatenate(
        [np.linalg.norm(v[i[k : k + step]] - v[j[k : k + step]], axis=1) for k in range(0, len(i), step)]
    )
    return d, person[i] == person[j]


# -- identification ----------------------------------------------------------------------------
@dataclass(frozen=True)
class IdentificationResult:
    """Closed-set identification: each probe's identities ranked by their nearest gallery vector."""

    top1: float
    topk: dict[int, float]  # k -> share of probes whose identity is among the k nearest identities
    probes: int
    identities: int
    unknown_probes: int  # probes of people absent from the gallery (left out of the rates)

    def to_json(self) -> dict:
        return {
            "top1": self.top1,
            "topk": {str(k): v for k, v in self.topk.items()},
            "probes": self.probes,
            "identities": self.identities,
            "unknown_probes": self.unknown_probes,
        }


def identification_accuracy(
    probe_vectors, probe_names: Sequence[str], gallery_vectors, gallery_names: Sequence[str], ks: Sequence[int] = (1, 5)
) -> IdentificationResult:
    from ..vectors import distance_matrix

    probes = np.asarray(probe_vectors, dtype=np.float64)
    gallery = np.asarray(gallery_vectors, dtype=np.float64)
    if len(probes) != len(probe_names) or len(gallery) != len(gallery_names):
        raise MetricsError("Each probe and each gallery vector needs exactly one name.")
    if len(gallery) == 0:
        raise MetricsError("The gallery is empty; enroll some people first.")
    classes = sorted(set(gallery_names))
    known = np.array([name in set(classes) for name in probe_names], dtype=bool)
    if not known.any():
        raise MetricsError("None of the probe identities is in the gallery, so identification cannot be scored.")
    distances = distance_matrix(probes[known], gallery)
    gallery_names = np.asarray(gallery_names, dtype=object)
    # An identity's score is minus the distance to its nearest gallery vector.
    scores = np.stack([-distances[:, gallery_names == c].min(axis=1) for c in classes], axis=1)
    y_true = [name for name, k in zip(probe_names, known) if k]
    top1 = float(accuracy_score(y_true, [classes[i] for i in scores.argmax(axis=1)]))
    topk = {}
    for k in sorted(set(int(k) for k in ks)):
        if k < 1:
            raise MetricsError(f"k must be at least 1, not {k}.")
        if k == 1:
            topk[k] = top1
        elif k >= len(classes):
            topk[k] = 1.0
        else:
            topk[k] = float(top_k_accuracy_score(y_true, scores, k=k, labels=classes))
    return IdentificationResult(top1, topk, int(known.sum()), len(classes), int((~known).sum()))
