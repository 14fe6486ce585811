"""What the dashboard (and anything else long-running) needs: ``Services``, the façade built once at start-up
(the pipeline, the gallery store, public mode's visitors), and the use cases that take what it builds
(``usecases``: a request's identify, enroll, album, scoreboard, fine-tune; ``lfw``: what comes from LFW and
the shipped measurements).

No gradio here: the UI calls these functions and only renders what they return.
"""

from __future__ import annotations

from . import lfw, usecases
from .facade import DEMO, YOURS, Flights, Request, Services, on_gpu
from .usecases import FinetuneAnswer
from .visitors import SWEEP_S, VISITOR, VISITOR_KEY, Visitors

__all__ = [
    "DEMO",
    "SWEEP_S",
    "VISITOR",
    "VISITOR_KEY",
    "YOURS",
    "FinetuneAnswer",
    "Flights",
    "Request",
    "Services",
    "Visitors",
    "lfw",
    "on_gpu",
    "usecases",
]
