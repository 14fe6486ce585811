"""The identification decision rules, one class each, in one table that every consumer reads: Identify (the
tab's choices and the Chroma search, ``gallery/identify.py``), the CLI's ``--method``, the scoreboard's leave one
out, the probe evaluation, the open-set benchmark and its calibration. A rule says what a face is compared with
(each person's mean face, or every enrolled face), how its candidates are ranked and the winner picked, when the
winner gets their name, and which calibrated impostor tail its size-following threshold comes from. A new
method is one subclass passed to ``register``.

Rules work on plain numbers (a face's neighbours as person ids and distances, or a matrix of distances), so
they run the same over a Chroma gallery and over a benchmark's vectors."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .errors import InvalidParameterError

KNN_K = 5  # neighbours that vote in the "knn" rule
CLASSIFIER_LIMIT = 0.5  # the classifier names a face when its person's probability is at least 1 - this
DEFAULT_METHOD = "centroid"

Neighbour = tuple[str, float]  # a person id and a distance: one column of a face's search, closest first


def titled(name: str, gallery: str | None) -> str:
    """A name as a page shows it: with its gallery when results mix galleries ("sheldon (demo gallery)")."""
    return f"{name} ({gallery})" if gallery else name


@dataclass(frozen=True)
class Candidate:
    """A person and their distance to a face (a centroid hit, or a person's nearest face)."""

    name: str
    distance: float
    person_id: str = ""
    gallery: str | None = None  # the searched gallery's label, when results mix galleries (public mode)

    @property
    def who(self) -> str:
        return titled(self.name, self.gallery)


class DecisionRule:
    """How a face is named from its distances to the gallery. Subclasses set the class attributes and, where
    the defaults do not hold, ``pick`` (the winner) and ``named`` (whether the winner gets the name)."""

    name: ClassVar[str]
    summary: ClassVar[str]  # one phrase a person reads (the Identify tab's choices, the CLI's help)
    compares_with: ClassVar[str] = "faces"  # "centroids": each person's mean face; "faces": every enrolled face
    # The calibrated impostor tail (``openset.json``) its size-following threshold follows: its own when the
    # open-set calibration fits one for it (``fits_tail``), else the rule whose threshold it shares; None: no
    # distance threshold (the rule has a limit of its own, ``fixed_limit``).
    tail: ClassVar[str | None] = None
    fixed_limit: ClassVar[float | None] = None
    from_distances: ClassVar[bool] = True  # False: it needs a model trained on the gallery (the classifier)
    ranks_without_limit: ClassVar[bool] = True  # the winner does not depend on the threshold (a DET from scores)

    @property
    def fits_tail(self) -> bool:
        """Whether the open-set calibration fits an impostor tail for this rule (else it borrows ``tail``)."""
        return self.tail == self.name

    def neighbours_needed(self, top_k: int) -> int:
        """How many of a face's nearest columns a search returns for this rule."""
        return max(KNN_K, 8 * top_k) if self.compares_with == "faces" else top_k

    def rank(self, neighbours: Sequence[Neighbour], names: dict[str, str]) -> list[Candidate]:
        """Each person once, closest first, at their best distance."""
        best: dict[str, float] = {}
        for person, distance in neighbours:
            if person not in best or distance < best[person]:
                best[person] = distance
        return [Candidate(names.get(p, ""), d, p) for p, d in sorted(best.items(), key=lambda kv: kv[1])]

    def pick(
        self, ranked: list[Candidate], neighbours: Sequence[Neighbour], limit: float, names: dict[str, str]
    ) -> Candidate | None:
        """The winner, named or not: by default the closest person."""
        return ranked[0] if ranked else None

    def named(self, best: Candidate | None, limit: float) -> bool:
        """Whether the winner gets their name: within the threshold."""
        return best is not None and best.distance <= limit

    def decide(
        self, neighbours: Sequence[Neighbour], names: dict[str, str], limit: float
    ) -> tuple[Candidate | None, list[Candidate]]:
        """One face: its named winner (None: unknown) and its ranked candidates."""
        ranked = self.rank(neighbours, names)
        best = self.pick(ranked, neighbours, limit, names)
        return (best if self.named(best, limit) else None), ranked

    # -- over a matrix of distances (the scoreboard, the evaluation, the benchmarks) ---------------------
    def person_scores(self, distances: np.ndarray, owner: np.ndarray, people: int) -> np.ndarray:
        """Each search's best distance to each person (the minimum over that person's columns), shape
        (searches, people); ``owner[j]`` is the person index of column j."""
        out = np.full((distances.shape[0], people), np.inf)
        for column, person in enumerate(owner):
            out[:, person] = np.minimum(out[:, person], distances[:, column])
        return out

    def decide_matrix(
        self, distances: np.ndarray, owners: Sequence[str], names: dict[str, str], limit: float
    ) -> list[Candidate | None]:
        """Many faces at once with no store (the scoreboard's leave one out, the benchmarks): row i holds face
        i's distances to the gallery's columns (each person's centroid, or each enrolled face, as
        ``compares_with`` says), ``owners[j]`` the person id of column j; an infinite distance leaves a column
        out of that face's gallery. Returns each face's named winner, or None (unknown)."""
        if not self.from_distances:
            raise InvalidParameterError(f"The {self.name} method needs a gallery to decide with, not plain distances.")
        out: list[Candidate | None] = []
        for row in np.asarray(distances, dtype=np.float64).reshape(len(distances), -1):
            order = [int(j) for j in np.argsort(row, kind="stable") if np.isfinite(row[j])]
            if self.compares_with == "faces":
                order = order[: self.neighbours_needed(1)]
            best, _ = self.decide([(owners[j], float(row[j])) for j in order], names, limit)
            out.append(best)
        return out

    def choose(self, distances: np.ndarray, owner: np.ndarray, limit: float) -> np.ndarray:
        """Each search's named person index at ``limit``, or -1 (unknown); ``owner[j]``: column j's person index."""
        named = self.decide_matrix(distances, [str(int(p)) for p in owner], {}, limit)
        return np.array([-1 if best is None else int(best.person_id) for best in named], dtype=int)


class Centroid(DecisionRule):
    name = "centroid"
    summary = "each person's mean face"
    compares_with = "centroids"
    tail = "centroid"


class Nearest(DecisionRule):
    name = "nearest"
    summary = "the closest photo"
    tail = "nearest"


class Knn(DecisionRule):
    """The person most often among the ``KNN_K`` nearest faces within the threshold; ties go to the closer person.
    Its threshold is the nearest rule's (``tail``): a vote is only counted within it, and the winner's distance
    is their closest face, the nearest rule's score."""

    name = "knn"
    summary = "a vote of the closest photos"
    tail = "nearest"
    ranks_without_limit = False  # only faces within the threshold vote

    def pick(self, ranked, neighbours, limit, names):
        near = [(p, d) for p, d in list(neighbours)[:KNN_K] if d <= limit]
        if not near:
            return ranked[0] if ranked else None
        votes: dict[str, list[float]] = defaultdict(list)
        for person, distance in near:
            votes[person].append(distance)
        person = min(votes, key=lambda p: (-len(votes[p]), min(votes[p])))
        return Candidate(names.get(person, ""), min(votes[person]), person)


class Classifier(DecisionRule):
    """Logistic regression over the gallery's faces with a "none of them" class of strangers
    (``gallery/classifier.py``); its candidates are the nearest centroids."""

    name = "classifier"
    summary = "logistic regression with a 'none of them' class of strangers"
    compares_with = "centroids"
    fixed_limit = CLASSIFIER_LIMIT
    from_distances = False

    def named(self, best, limit):  # the classifier has decided already: a winner is named
        return best is not None


RULES: dict[str, DecisionRule] = {}


def register(rule: DecisionRule) -> DecisionRule:
    """Add a rule to the table (the built-in ones are registered below); returns it."""
    if not getattr(rule, "name", "") or not getattr(rule, "summary", ""):
        raise ValueError("A decision rule needs a name and a summary.")
    RULES[rule.name] = rule
    return rule


def unregister(name: str) -> None:
    if name in BUILT_IN:
        raise ValueError(f"'{name}' is a built-in decision rule.")
    RULES.pop(name, None)


def methods() -> tuple[str, ...]:
    """Every rule's name, in the table's order: what Identify, the CLI and the benchmarks offer."""
    return tuple(RULES)


def distance_methods() -> tuple[str, ...]:
    """The rules that decide from distances alone (the scoreboard's leave one out, the open-set curves)."""
    return tuple(name for name, rule in RULES.items() if rule.from_distances)


def rule(method: str) -> DecisionRule:
    """The rule called ``method``; an unknown name is refused in words."""
    found = RULES.get(method) if isinstance(method, str) else None
    if found is None:
        raise InvalidParameterError(
            f"Unknown identification method '{str(method)[:40]}': use one of {', '.join(methods())}."
        )
    return found


def described() -> str:
    """The rules as a person reads them: "centroid: each person's mean face; nearest: ..."."""
    return "; ".join(f"{r.name}: {r.summary}" for r in RULES.values())


BUILT_IN = tuple(register(r()).name for r in (Centroid, Nearest, Knn, Classifier))
