"""The numeric inputs a user can give (thresholds, top-k, a face's index), each with its range and a
sentence: one home, so the CLI, the API and the dashboard refuse the same values with the same words.

Values may arrive as numbers or as text (an API client can send anything); booleans, NaN and infinities
are refused rather than silently coerced.
"""

from __future__ import annotations

import math

from .errors import InvalidParameterError

# The L2 distance between two unit vectors lies in [0, 2]: a threshold outside (0, 2] decides nothing.
MAX_DISTANCE = 2.0
MAX_TOP_K = 50
# 32 x 32 = 1024 occluded copies embedded at once: beyond it the patch is a few pixels wide and the batch
# holds a CPU for minutes.
MAX_OCCLUSION_GRID = 32
# No request may cost more than this much CPU time (#33). An occlusion map embeds one copy of the face per grid
# cell: ~36 ms of CPU per cell for InceptionResnetV1 and ~11 for dlib's network on this project's 2 cores
# (docs/BENCHMARKS.md, "Bounded cost"); 40 ms per cell and model keeps the estimate on the safe side.
MAX_REQUEST_CPU_S = 30.0
CPU_MS_PER_OCCLUSION_CELL = 40.0
# Photos one public-mode request may detect and embed (an enrollment, an import, an album): enrolling costs
# ~0.2 s a photo with both offline models on 2 cores, about twice that in CPU time, and a large photo more.
MAX_PUBLIC_PHOTOS = 50
# A fine-tune for a condition finds, aligns and embeds each face's thumbnail once per training severity and
# once for the held-out slice: ~0.05 s of CPU per thumbnail for dlib-resnet and ~0.09 for facenet-casia-webface
# on this project's 2 cores (docs/BENCHMARKS.md, "Bounded cost"); 0.1 s keeps the estimate on the safe side.
CPU_S_PER_DEGRADED_FACE = 0.1
MIN_TRAINING_CPU_S = 10.0  # what a condition's degraded faces must leave to training (~1 s for 50 faces here)
# The scoreboard identifies every face against every other and measures every pair, for each model: ~7 s of
# CPU per million pairs and model on this project's 2 cores (docs/BENCHMARKS.md, "Bounded cost").
CPU_S_PER_MILLION_SCORED_PAIRS = 7.0
MAX_EPOCHS = 1000  # a fine-tune stops early anyway; more is a typo or a way to hold a worker for hours
# Each hardest pair is two thumbnails per list (the disagreements, each model's false accepts and rejects),
# sent inline in one answer: 25 keeps the dashboard's page under a few MB with LFW's photos.
MAX_HARDEST = 25


def number(value, what: str, low: float, high: float, integer: bool = False, low_open: bool = False) -> float | int:
    """``value`` as a float (or an int with ``integer``) within ``[low, high]`` (``(low, high]`` with
    ``low_open``), or ``InvalidParameterError`` naming ``what`` and the range."""
    kind = "a whole number" if integer else "a number"
    span = f"{'more than' if low_open else 'from'} {_show(low)} {'and at most' if low_open else 'to'} {_show(high)}"
    if isinstance(value, bool) or value is None:
        raise InvalidParameterError(f"{what} must be {kind} {span}, not {value!r}.")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            shown = text if len(text) <= 40 else text[:40] + "…"
            raise InvalidParameterError(f"{what} must be {kind} {span}, not '{shown}'.") from None
    try:
        as_float = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidParameterError(f"{what} must be {kind} {span}, not a {type(value).__name__}.") from None
    if math.isnan(as_float) or math.isinf(as_float):
        raise InvalidParameterError(f"{what} must be {kind} {span}, not {as_float}.")
    if integer and as_float != int(as_float):
        raise InvalidParameterError(f"{what} must be {kind} {span}, not {_show(as_float)}.")
    if as_float < low or as_float > high or (low_open and as_float == low):
        raise InvalidParameterError(f"{what} must be {kind} {span}, not {_show(as_float)}.")
    return int(as_float) if integer else as_float


def boolean(value, what: str) -> bool:
    """``value`` when it is ``True`` or ``False``, else ``InvalidParameterError``. No text is read as a
    yes or a no: "false", "no" and "0" are all non-empty strings, which Python calls true, and a delete
    confirmed by any of them would be a delete nobody confirmed."""
    if isinstance(value, bool):
        return value
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"
    raise InvalidParameterError(f"{what} must be true or false (a JSON boolean), not {shown}.")


def threshold(value) -> float | None:
    """A distance threshold: ``None`` means "the model's calibrated one"."""
    if value is None:
        return None
    return number(value, "The threshold (an L2 distance between unit vectors)", 0.0, MAX_DISTANCE, low_open=True)


def top_k(value) -> int:
    return number(value, "The number of candidates (top-k)", 1, MAX_TOP_K, integer=True)


def epochs(value) -> int:
    return number(value, "The number of epochs", 1, MAX_EPOCHS, integer=True)


def hardest(value) -> int:
    """How many of the hardest pairs (and of the disagreements) to list."""
    return number(value, "The number of hardest pairs", 1, MAX_HARDEST, integer=True)


def face_index(value) -> int | None:
    """Which face of a photo, counted left to right from 0; ``None``: the photo must hold exactly one."""
    if value is None:
        return None
    return number(value, "The face number", 0, 10_000, integer=True)


def occlusion_grid(value) -> int | None:
    """Positions per side of the occlusion map's sliding patch; ``None``: the device's default."""
    if value is None:
        return None
    return number(value, "The occlusion grid (patch positions per side)", 2, MAX_OCCLUSION_GRID, integer=True)


def occlusion_cost(grid: int, models: int) -> None:
    """Refuse, with its cost, an occlusion map that would hold a CPU longer than ``MAX_REQUEST_CPU_S``."""
    cells = grid * grid * models
    seconds = cells * CPU_MS_PER_OCCLUSION_CELL / 1000
    if seconds <= MAX_REQUEST_CPU_S:
        return
    largest = math.isqrt(int(MAX_REQUEST_CPU_S * 1000 / CPU_MS_PER_OCCLUSION_CELL / max(models, 1)))
    raise InvalidParameterError(
        f"A {grid} x {grid} grid for {models} model(s) is {cells:,} embeddings, about {seconds:.0f} s of CPU here "
        f"(~{CPU_MS_PER_OCCLUSION_CELL:.0f} ms each); one request may take {MAX_REQUEST_CPU_S:.0f} s at most. "
        f"Use a grid of {largest} or less" + (", or fewer models." if models > 1 else ".")
    )


def condition_cost(faces: int, copies: int, condition: str) -> float:
    """The CPU seconds a fine-tune for ``condition`` spends on its degraded faces (``copies`` of each of the
    gallery's ``faces``); refused, with that cost, where it would leave less than ``MIN_TRAINING_CPU_S`` to train
    within ``MAX_REQUEST_CPU_S``."""
    seconds = faces * copies * CPU_S_PER_DEGRADED_FACE
    if seconds <= MAX_REQUEST_CPU_S - MIN_TRAINING_CPU_S:
        return seconds
    raise InvalidParameterError(
        f"Training for '{condition}' looks again at the gallery's {faces:,} faces, {copies} degraded copies of each: "
        f"about {seconds:.0f} s of CPU here, and one request may take {MAX_REQUEST_CPU_S:.0f} s at most with its "
        "training. Fine-tune without a condition, or on a gallery of fewer faces."
    )


def scored_faces(models: int) -> int:
    """The most faces a scoreboard of ``models`` models scores within ``MAX_REQUEST_CPU_S`` (every pair of them,
    for each model); a larger gallery is scored on a sample of its people."""
    pairs = MAX_REQUEST_CPU_S / CPU_S_PER_MILLION_SCORED_PAIRS / max(models, 1) * 1e6
    return int(math.sqrt(2 * pairs))


def public_photos(count: int) -> None:
    """Refuse more photos in one public-mode request than ``MAX_PUBLIC_PHOTOS``, saying how to go on."""
    if count > MAX_PUBLIC_PHOTOS:
        raise InvalidParameterError(
            f"{count:,} photos at once are more than this public demo takes in one request ({MAX_PUBLIC_PHOTOS}: "
            f"each is a fraction of a second of CPU here, and one request may take {MAX_REQUEST_CPU_S:.0f} s at most). "
            "Send them in parts."
        )


def _show(value: float) -> str:
    return f"{value:g}"
