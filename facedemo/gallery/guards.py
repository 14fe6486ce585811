"""Guards against enrolling the wrong person, asked before anything is stored.

- **Photos that are not one person.** Enrolling several photos under one name, each photo's face is compared
  with every other photo's face by each model that embedded them, at that model's verification threshold
  (the 1:1 "same person" line). A photo is *odd* when, for every model, its face is farther than the
  threshold from more than half of the other photos' faces: one stray photo among three of the same person
  is odd; three photos of the same person are not, even when one pair among them is hard. Requiring every
  model to agree keeps a hard photo of the right person (one model's miss) from being called someone else.
  When more than half of the photos are odd, they are several people, not one person and a stray photo.
- **A face the gallery already names.** Each face to enroll is identified against the galleries a visitor's
  Identify searches by every model that has people enrolled there (the default method at the size-following
  threshold, as Identify names it); one that all of them name as the same person, other than the name given,
  is asked about: "This face looks like rose_leslie (0.26). Enroll it as Test Stranger anyway?" (the distance
  is the default model's).

The answers travel with the request (``confirm``, ``odd_photos``: ``ask``, ``keep`` or ``drop``); the page
shows the question with its buttons, the API and the CLI refuse with it until they are given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import pairwise_distances

from ..errors import InvalidParameterError, LooksLikeSomeoneError, OddPhotosError
from ..pipeline import EmbeddedFace
from ..rules import DEFAULT_METHOD
from .identify import identify_faces
from .names import name_key

ODD_CHOICES = ("ask", "keep", "drop")  # what to do with photos that do not look like the others
MAX_NAMED = 10  # photos named in a question; the rest are counted


def odd_choice(value) -> str:
    """``odd_photos`` as a caller may send it (None: ask)."""
    choice = "ask" if value in (None, "") else str(value).strip().lower()
    if choice not in ODD_CHOICES:
        raise InvalidParameterError(f"The choice for photos that do not fit must be ask, keep or drop, not '{value}'.")
    return choice


def odd_photos(vectors: dict[str, np.ndarray], thresholds: dict[str, float]) -> list[int]:
    """The photos (indices) whose face, for every model in ``vectors`` (model -> one unit vector per photo),
    is farther than that model's threshold from more than half of the other photos' faces."""
    odd: set[int] | None = None
    for model, v in vectors.items():
        n = len(v)
        if n < 2:
            return []
        far = (pairwise_distances(np.asarray(v, np.float64)) > thresholds[model]).sum(axis=1)  # the diagonal is 0
        flagged = {i for i in range(n) if 2 * far[i] > n - 1}
        odd = flagged if odd is None else odd & flagged
    return sorted(odd or ())


def _listed(labels: Sequence[str]) -> str:
    quoted = [f"'{label}'" for label in labels[:MAX_NAMED]]
    if len(labels) > MAX_NAMED:
        quoted.append(f"{len(labels) - MAX_NAMED} more")
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def odd_question(labels: Sequence[str], odd: Sequence[int]) -> OddPhotosError:
    """The question about photos that do not fit, naming them."""
    named = [labels[i] for i in odd]
    several = 2 * len(odd) > len(labels)
    if several:
        text = (
            f"These {len(labels)} photos do not look like one person: {len(named)} of them ({_listed(named)}) look "
            f"unlike most of the others. Enroll each person under their own name; or keep them all, or leave those "
            f"{len(named)} out?"
        )
    else:
        others = len(labels) - len(odd)
        it = "it" if len(odd) == 1 else "them"
        text = (
            f"{_listed(named)} {'does' if len(odd) == 1 else 'do'} not look like the same person as the other "
            f"{others} photo{'s' if others != 1 else ''}. Keep {it}, or leave {it} out?"
        )
    return OddPhotosError(text, named, several)


def look_alikes(
    pipeline,
    galleries: Sequence,
    name: str,
    faces: Sequence,
    vectors: dict[str, np.ndarray],
    labels: Sequence[str],
    shown_model: str,
) -> list[tuple[str, str, float]]:
    """(label, person, distance) for each face that ``galleries`` name, with confidence, as somebody other than
    ``name``: every model in ``vectors`` (model -> one vector per face) that has people enrolled names it, as
    Identify would (the default method at the size-following threshold), and they all name the same person.
    One model's guess is not enough: with one or two people enrolled the size-following threshold is wide, and
    dlib-resnet names one cast member as another that CASIA places far beyond its own threshold. The distance
    is ``shown_model``'s where it voted."""
    verdicts = []
    for model, vecs in vectors.items():
        embedded = [EmbeddedFace(face, None, vector) for face, vector in zip(faces, vecs)]
        result = identify_faces(pipeline, galleries, None, list(faces), model, 1, DEFAULT_METHOD, embedded=embedded)
        if result.people:  # a model with nobody enrolled has no say
            verdicts.append((model, result.faces))
    if not verdicts:
        return []
    shown = next((found for model, found in verdicts if model == shown_model), verdicts[0][1])
    key, out = name_key(name), []
    for i, label in enumerate(labels):
        named = {found[i].name for _, found in verdicts}
        person = named.pop() if len(named) == 1 else None
        if person is not None and name_key(person) != key:
            out.append((label, person, float(shown[i].distance)))
    return out


def looks_like_question(name: str, matches: Sequence[tuple[str, str, float]], photos: int) -> LooksLikeSomeoneError:
    if photos == 1 and len(matches) == 1:
        _, person, distance = matches[0]
        text = f"This face looks like {person} ({distance:.2f}). Enroll it as {name} anyway?"
    else:
        said = "; ".join(
            f"'{label}' looks like {person} ({distance:.2f})" for label, person, distance in matches[:MAX_NAMED]
        )
        more = f"; and {len(matches) - MAX_NAMED} more" if len(matches) > MAX_NAMED else ""
        them = "it" if len(matches) == 1 else "them"
        text = f"{said}{more}. Enroll {them} as {name} anyway?"
    return LooksLikeSomeoneError(text, list(matches))
