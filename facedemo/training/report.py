"""What a fine-tune reports, as the source studies do: loss, mean positive / negative distance, accuracy,
VAL, FAR and AUC on held-out people, before and after, and on general pairs (the price paid elsewhere); for
a fine-tune aimed at a condition, the same on the degraded slice; and the per-epoch curves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import TrainingError
from ..evaluation.embed import embed_images
from ..evaluation.metrics import (
    accuracy_at,
    all_pairs,
    contrastive_loss,
    distance_stats,
    pair_metrics,
    rates_at,
    roc,
    val_at_far,
)
from ..evaluation.pairs import describe_pairs, read_pairs
from ..models.adapter import apply_head


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
    history: list[dict]  # one point per epoch run: the curves
    skipped: list[tuple[str, str]]
    loss: str = "triplet"
    augment: dict | None = None  # the condition trained for, when there is one
    held_out: tuple[str, ...] = ()  # the people it never trained on: the before/after figures draw only them
    epochs_asked: int | None = None
    cpu_budget_s: float | None = None  # the CPU its training could spend (a public request's bound), if any

    def stopped_by_budget(self) -> bool:
        """Whether training stopped before the epochs asked because it had spent ``cpu_budget_s``."""
        spent = self.history[-1].get("cpu_s", 0.0) if self.history else 0.0
        budget, asked = self.cpu_budget_s, self.epochs_asked
        return budget is not None and asked is not None and spent >= budget and self.epochs_run < asked

    def versus_base(self) -> dict:
        """The fine-tuned model against its base where it counts, each at its own threshold: on the general
        pairs when they were measured (``general``: LFW's test pairs on the dashboard), else on the held-out
        people. ``verdict``: "better", "worse" or "same", by accuracy at the threshold (then by AUC)."""
        general = self.before.get("general", {})
        if "accuracy_at_threshold" in general:
            before, after, key = general, self.after["general"], "accuracy_at_threshold"
            on, where = (
                "general",
                f"{describe_pairs(self.before.get('general_source')) if self.before.get('general_source') else 'the general pairs'} ({general['pairs']:,} pairs)",
            )
        else:
            before, after, key = self.before, self.after, "accuracy"
            on, where = "held_out", f"the {self.val_people} held-out people ({before['pairs']:,} pairs)"
        delta = round(after[key] - before[key], 6)
        if delta == 0:
            delta = round(after["auc"] - before["auc"], 6)
        verdict = "better" if delta > 0 else "worse" if delta < 0 else "same"
        words = {"better": "Better than", "worse": "Worse than", "same": "As good as"}[verdict]
        text = (
            f"{words} the base ({self.base}) on {where}: accuracy {after[key]:.1%} against {before[key]:.1%} at "
            f"each model's own threshold, AUC {after['auc']:.4f} against {before['auc']:.4f}."
        )
        return {
            "on": on,
            "pairs": int(before["pairs"]),
            "accuracy": after[key],
            "base_accuracy": before[key],
            "auc": after["auc"],
            "base_auc": before["auc"],
            "verdict": verdict,
            "text": text,
        }

    def verdict(self) -> str:
        """In words: did the fine-tune help on the people it never saw (and on their degraded slice)? A
        fine-tune that made them worse says so, with what to try instead."""
        parts, worse = [], False
        for label, before, after in (
            ("held-out people", self.before, self.after),
            ("their degraded photos", self.before.get("slice"), self.after.get("slice")),
        ):
            if not before or not after:
                continue
            old, new = before["accuracy"], after["accuracy"]
            if abs(new - old) < 1e-9:
                parts.append(f"accuracy on {label} stayed at {old:.1%}")
            else:
                parts.append(f"accuracy on {label} {'rose' if new > old else 'fell'} from {old:.1%} to {new:.1%}")
                worse |= new < old
        if not parts:
            return ""
        text = "; ".join(parts)
        text = text[0].upper() + text[1:] + "."
        if worse:
            text += (
                " This fine-tune is worse than the model it started from on people it has not seen: keep using the "
                "base model, or try again with more people, fewer epochs or the other loss."
            )
        return text

    def to_json(self) -> dict:
        def clean(d: dict) -> dict:
            return {
                k: (clean(v) if isinstance(v, dict) else round(v, 4) if isinstance(v, float) else v)
                for k, v in d.items()
            }

        return {
            "name": self.name,
            "base": self.base,
            "mode": self.mode,
            "saved_in": str(self.path),
            "loss": self.loss,
            "augment": self.augment,
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "threshold": round(self.threshold, 4),
            "train_people": self.train_people,
            "val_people": self.val_people,
            "before": clean(self.before),
            "after": clean(self.after),
            "verdict": self.verdict(),
            "held_out_people": list(self.held_out),
            "versus_base": clean(self.versus_base()),
            "history": [clean(h) for h in self.history],
            "skipped": [{"photo": p, "reason": r} for p, r in self.skipped],
        }


def pair_report(vectors: np.ndarray, names: Sequence[str], threshold: float) -> dict:
    """The source studies' numbers on every pair of a labelled set."""
    return distance_report(*all_pairs(vectors, names), threshold)


def slice_report(clean: np.ndarray, degraded: np.ndarray, names: Sequence[str], threshold: float) -> dict:
    """The degraded slice: every pair of two different photos, one clean and one under the condition (a
    clean enrolment photo against a probe taken in poor light), as ``eval robustness`` pairs them."""
    from sklearn.metrics.pairwise import euclidean_distances

    d = euclidean_distances(np.asarray(clean, np.float64), np.asarray(degraded, np.float64))
    n = np.asarray(names, dtype=object)
    same = n[:, None] == n[None, :]
    off = ~np.eye(len(n), dtype=bool)
    return distance_report(d[off], same[off], threshold)


def distance_report(d: np.ndarray, same: np.ndarray, threshold: float) -> dict:
    """Loss, mean distances, accuracy, VAL and FAR at ``threshold``, VAL at FAR 1e-3, and ROC AUC."""
    if not same.any() or same.all():
        raise TrainingError("The validation set needs several people with at least two photos each.")
    stats = distance_stats(d, same)
    at = rates_at(d, same, threshold)
    return {
        "loss": contrastive_loss(d, same),
        "mean_pos_distance": stats.mean_pos,
        "mean_neg_distance": stats.mean_neg,
        "accuracy": accuracy_at(d, same, threshold),
        "val": at.val,
        "far": at.far,
        "val_at_far": val_at_far(d, same).val,
        "auc": roc(d, same).auc,
        "threshold": threshold,
        "pairs": int(d.size),
    }


def general_report(
    pipeline,
    base: str,
    head,
    pairs_file: Path,
    root: Path,
    chip_degradation: tuple[str, int, int] | None = None,
    thresholds: tuple[float, float] | None = None,
    progress=None,
) -> tuple[dict, dict]:
    """Before/after on a general set of labelled pairs (LFW's format or a CSV): the price, if any, that
    a narrow fine-tune pays elsewhere (one source study saw top-1 fall from 0.98 to 0.64). With
    ``chip_degradation``, the second photo of every pair is degraded (its aligned chip): the pairs' slice.
    ``thresholds`` (the base's, the fine-tuned model's): each one's accuracy at its own threshold too, what a
    deployed model gets."""
    pairs = read_pairs(Path(pairs_file), Path(root))
    embedded = embed_images(pipeline, [p for pair in pairs for p in (pair.a, pair.b)], base, progress=progress)
    second = (
        embedded
        if chip_degradation is None
        else embed_images(pipeline, [pair.b for pair in pairs], base, chip_degradation=chip_degradation)
    )
    a = np.stack([embedded.vectors[pair.a] for pair in pairs])
    b = np.stack([second.vectors[pair.b] for pair in pairs])
    labels = np.array([pair.same for pair in pairs], dtype=bool)
    folds = np.array([pair.fold for pair in pairs], dtype=int)
    reports = []
    for k, (x, y) in enumerate(((a, b), (apply_head(head, a), apply_head(head, b)))):
        d = np.linalg.norm(x - y, axis=1)
        m = pair_metrics(d, labels, folds)
        own = {} if thresholds is None else {"accuracy_at_threshold": accuracy_at(d, labels, thresholds[k])}
        reports.append(
            {
                **own,
                # accuracy: cross-validated over the pairs' folds; val / far: at the FAR target (1e-3), also as val_at_far
                "accuracy": m.cv.accuracy,
                "auc": m.roc.auc,
                "val": m.at_far.val,
                "far": m.at_far.far,
                "val_at_far": m.at_far.val,
                "loss": m.loss,
                "mean_pos_distance": m.stats.mean_pos,
                "mean_neg_distance": m.stats.mean_neg,
                "pairs": m.pairs,
            }
        )
    return reports[0], reports[1]
