"""Where models go wrong, and where they part ways: on labelled pairs, each model's hardest false accepts
and false rejects at its own calibrated threshold, and the pairs on which the models' verdicts differ.

``compare_verdicts`` is the pure part (pairs, one distance per pair and model, the thresholds);
``compare_pairs`` runs it on a pairs file with every available model, each photo embedded through the
evaluation cache (``embed.embed_images``), so a second run only reads the cache. The gallery's own pairs
go through the same ``compare_verdicts`` (``explorer.hard_pairs``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import ModelUnavailableError
from ..progress import Progress
from .embed import chosen_models
from .metrics import DEFAULT_FAR
from .pairs import Pair, PairsFileError
from .verification import PairsEvaluation, evaluate_pairs

DEFAULT_HARDEST = 10


@dataclass(frozen=True)
class LabelledPair:
    """A pair to judge: what names each face (a photo's path, or a gallery face's id), its person, a
    picture to show (None where there is none) and whether it is the same person."""

    a: str
    b: str
    same: bool
    names: tuple[str, str] = ("", "")
    images: tuple[str | None, str | None] = (None, None)
    no_face: bool = False  # a photo where no face was found (a centre crop stood in)


@dataclass(frozen=True)
class PairVerdicts:
    """One pair as every model saw it: its distance and verdict per model."""

    pair: LabelledPair
    distances: dict[str, float]  # model -> L2 distance
    same_person: dict[str, bool]  # model -> its verdict at its own threshold

    def correct(self, model: str) -> bool:
        return self.same_person[model] == self.pair.same

    def to_json(self) -> dict:
        p = self.pair
        return {
            "a": p.a,
            "b": p.b,
            "same": p.same,
            "names": list(p.names),
            "images": list(p.images),
            "no_face": p.no_face,
            "distances": {m: round(d, 4) for m, d in self.distances.items()},
            "same_person": dict(self.same_person),
            "correct": {m: self.correct(m) for m in self.distances},
        }


@dataclass(frozen=True)
class HardestPairs:
    """One model's worst mistakes: different people closest under its threshold (closest first), the same
    person farthest over it (farthest first), and how many of each there were in all."""

    false_accepts: list[PairVerdicts]
    false_rejects: list[PairVerdicts]
    false_accept_count: int
    false_reject_count: int

    def to_json(self) -> dict:
        return {
            "false_accept_count": self.false_accept_count,
            "false_reject_count": self.false_reject_count,
            "false_accepts": [p.to_json() for p in self.false_accepts],
            "false_rejects": [p.to_json() for p in self.false_rejects],
        }


@dataclass(frozen=True)
class Disagreements:
    """Several models on the same labelled pairs, each at its own threshold."""

    source: str  # the pairs file's name, or "gallery"
    models: list[str]
    thresholds: dict[str, float]
    pairs: int
    accuracy: dict[str, float]  # model -> accuracy at its threshold on these pairs
    disagreements: list[PairVerdicts]  # the verdicts differ; the most decided split first
    hardest: dict[str, HardestPairs]
    unavailable: dict[str, str] = field(default_factory=dict)  # model -> why it did not run
    evaluations: list[PairsEvaluation] = field(default_factory=list)  # each model's metrics (pairs files)
    judged: list[PairVerdicts] = field(default_factory=list, repr=False)  # every pair (not in the JSON)

    def right_on_disagreements(self, model: str) -> int:
        """On how many of the disagreements ``model``'s verdict was the right one."""
        return sum(p.correct(model) for p in self.disagreements)

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "pairs": self.pairs,
            "models": [
                {
                    "model": m,
                    "threshold": round(self.thresholds[m], 4),
                    "accuracy": round(self.accuracy[m], 6),
                    "right_on_disagreements": self.right_on_disagreements(m),
                }
                for m in self.models
            ],
            "disagreement_count": len(self.disagreements),
            "disagreements": [p.to_json() for p in self.disagreements],
            "hardest": {m: h.to_json() for m, h in self.hardest.items()},
            "unavailable": [{"model": m, "reason": r} for m, r in self.unavailable.items()],
            "metrics": [e.to_json() for e in self.evaluations],
        }


def compare_verdicts(
    pairs: Sequence[LabelledPair],
    distances: Mapping[str, Sequence[float]],
    thresholds: Mapping[str, float],
    hardest: int = DEFAULT_HARDEST,
    source: str = "",
) -> Disagreements:
    """Each model's verdict on each pair (same person at or under its threshold), its ``hardest`` worst
    false accepts and false rejects, and every pair on which two models' verdicts differ, ordered by how
    decided the split is (the spread of the models' distances from their thresholds, relative to them)."""
    models = list(distances)
    if any(len(distances[m]) != len(pairs) for m in models):
        raise ValueError("one distance per pair and model is needed")
    judged = [
        PairVerdicts(
            pair,
            {m: float(distances[m][i]) for m in models},
            {m: bool(distances[m][i] <= thresholds[m]) for m in models},
        )
        for i, pair in enumerate(pairs)
    ]

    def margin(p: PairVerdicts, m: str) -> float:  # > 0: sure it is the same person; < 0: sure it is not
        return (thresholds[m] - p.distances[m]) / thresholds[m]

    split = [p for p in judged if len(set(p.same_person.values())) > 1]
    split.sort(key=lambda p: -(max(margin(p, m) for m in models) - min(margin(p, m) for m in models)))
    worst = {}
    for m in models:
        accepts = sorted((p for p in judged if not p.pair.same and p.same_person[m]), key=lambda p: p.distances[m])
        rejects = sorted((p for p in judged if p.pair.same and not p.same_person[m]), key=lambda p: -p.distances[m])
        worst[m] = HardestPairs(accepts[:hardest], rejects[:hardest], len(accepts), len(rejects))
    accuracy = {m: float(np.mean([p.correct(m) for p in judged])) if judged else 0.0 for m in models}
    limits = {m: float(thresholds[m]) for m in models}
    return Disagreements(source, models, limits, len(pairs), accuracy, split, worst, judged=judged)


def compare_pairs(
    pipeline,
    pairs: Sequence[Pair],
    models: Sequence[str] | None = None,
    hardest: int = DEFAULT_HARDEST,
    source: str = "",
    far: float = DEFAULT_FAR,
    progress_for: Callable[[str], Progress] | None = None,
) -> Disagreements:
    """``compare_verdicts`` on labelled photo pairs with every model named (default: every available model,
    the others listed with their reason), each photo embedded through the evaluation cache and each model
    at its own calibrated threshold. ``progress_for(model)`` gives a progress callback per model."""
    if not pairs:
        raise PairsFileError("There are no pairs to compare.")
    names, unavailable = chosen_models(pipeline, models)
    evaluations = []
    for name in names:
        try:
            evaluations.append(
                evaluate_pairs(pipeline, pairs, name, far=far, progress=progress_for(name) if progress_for else None)
            )
        except ModelUnavailableError as exc:
            if models:
                raise
            unavailable[name] = str(exc)
    if not evaluations:
        raise ModelUnavailableError(
            "None of the models could run: " + "; ".join(f"{m}: {r}" for m, r in unavailable.items())
        )
    failed = {Path(p) for e in evaluations for p in e.failed_images}  # one detector: the same photos for all
    labelled = [
        LabelledPair(
            str(p.a),
            str(p.b),
            p.same,
            (p.a.parent.name, p.b.parent.name),
            (str(p.a), str(p.b)),
            bool({p.a, p.b} & failed),
        )
        for p in pairs
    ]
    result = compare_verdicts(
        labelled,
        {e.model: e.distances for e in evaluations},
        {e.model: pipeline.threshold(e.model) for e in evaluations},
        hardest,
        source,
    )
    return replace(result, unavailable=unavailable, evaluations=evaluations)
