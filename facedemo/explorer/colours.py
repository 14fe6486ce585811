"""The one home of the figures' colours: a colour per model, the same in every figure (ROC, histograms,
robustness, DET, disagreements, the Verify distribution) and on every run, and a colour per person on the
embedding maps that does not repeat up to ``len(PERSON_PALETTE)`` people."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from ..models.registry import MODELS

# The built-in models keep the colour their declaration gives (models/builtin.toml: plotly's first three; a
# reader who learnt "dlib-resnet is blue" on one figure finds it blue on the next).
BUILT_IN = {name: spec.colour for name, spec in MODELS.items() if spec.colour}
# Any other model (a fine-tuned one) gets one of these, picked by a hash of its name: stable across runs
# and processes (Python's own hash() is salted per process), and never a built-in model's colour.
OTHERS = (
    "#AB63FA",
    "#FFA15A",
    "#19D3F3",
    "#FF6692",
    "#8C564B",
    "#BCBD22",
    "#1C8356",
    "#B10DA1",
    "#7F7F7F",
    "#222A2A",
    "#B68100",
    "#0D2A63",
)

# 46 colours at least 20 apart in CIELAB (delta E 1976; about 2.3 is a just-noticeable difference), none too
# pale for a white background (L* <= 88): the greedy pick, in this order, from plotly's qualitative
# palettes Plotly, D3, Alphabet, Dark24, Light24, G10, T10, Bold, Vivid and Safe.
PERSON_PALETTE = (
    "#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880", "#FF97FF", "#FECB52",
    "#1F77B4", "#FF7F0E", "#2CA02C", "#9467BD", "#8C564B", "#7F7F7F", "#BCBD22", "#AA0DFE", "#85660D", "#782AB6",
    "#1C8356", "#16FF32", "#FE00FA", "#F8A19F", "#B10DA1", "#C075A6", "#FC1CBF", "#B00068", "#FA0087", "#FB0D0D",
    "#222A2A", "#B68100", "#511CFB", "#B2828D", "#6C7C32", "#778AAE", "#862A16", "#620042", "#1616A7", "#6C4516",
    "#0D2A63", "#AF0038", "#00B5F7", "#86CE00", "#3366CC", "#72B7B2",
)  # fmt: skip


def model_colour(model: str) -> str:
    """The colour ``model`` has in every figure."""
    name = str(model)
    if name in BUILT_IN:
        return BUILT_IN[name]
    digest = int(hashlib.sha1(name.encode()).hexdigest(), 16)
    return OTHERS[digest % len(OTHERS)]


def person_colours(people: Iterable[str]) -> dict[str, str]:
    """A colour for each person, by the sorted order of every name given: maps of one gallery drawn side by
    side (two models, before and after a fine-tune) give a person the same colour, and no two people share one
    up to ``len(PERSON_PALETTE)``; past that the palette starts again."""
    names = sorted({str(p) for p in people})
    return {p: PERSON_PALETTE[i % len(PERSON_PALETTE)] for i, p in enumerate(names)}
