"""Arguments and objects that several sub-commands share."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import InvalidParameterError
from ..models.registry import DEFAULT_ORDER
from ..pipeline import Pipeline
from ..settings import Settings


def add_pipeline_args(parser: argparse.ArgumentParser, model: bool = True, embeds: bool = True) -> None:
    if model:
        parser.add_argument(
            "--model",
            help="model name (see `models`); default: the first available of " + ", ".join(DEFAULT_ORDER),
        )
    parser.add_argument("--device", help="auto (default), cpu or cuda[:N]")
    parser.add_argument(
        "--alignment",
        choices=["similarity", "crop", "native"],
        help="for every model: similarity (MTCNN's 5 points onto the model's template), crop (facenet-pytorch's margin crop) or native (each model's own: dlib's shape predictor and face chip); default: each model's best on LFW",
    )
    if embeds:
        parser.add_argument(
            "--flip",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="test-time flip for every model: embed each face and its mirror image and average them (--no-flip: never); default: FACEDEMO_FLIP, else each model's own (docs/EVALUATION.md)",
        )
    parser.add_argument("--json", action="store_true", help="print JSON for machines")


def settings_from(args) -> Settings:
    """The environment's settings with the command line's overrides on top (never public mode: a command
    works on the gallery it is pointed at, not on a visitor's)."""
    gallery = getattr(args, "gallery", None)
    model = getattr(args, "model", None)
    return Settings.from_env(
        model=model if isinstance(model, str) else None,
        device=getattr(args, "device", None),
        alignment=getattr(args, "alignment", None),
        flip=getattr(args, "flip", None),
        gallery_dir=Path(gallery).expanduser() if gallery else None,
        chroma_host=getattr(args, "chroma_host", None),
        chroma_port=getattr(args, "chroma_port", None),
        public=False,
    )


def pipeline_from(args) -> Pipeline:
    return Pipeline(settings_from(args))


def services_from(args):
    """The front door the dashboard uses too (``facedemo.services.Services``), built from the arguments."""
    from ..services import Services

    settings = settings_from(args)
    if settings.chroma_port is not None and not settings.chroma_host:
        raise InvalidParameterError("--chroma-port needs --chroma-host (or CHROMA_HOST) too.")
    return Services(settings)


def progress_bar(unit: str, desc: str):
    """A tqdm bar on stderr as the core's ``progress(done, total, message)``; call ``.close()`` when done."""
    from tqdm import tqdm

    state = {"bar": None}

    def progress(done: int, total: int, message: str = "") -> None:
        if state["bar"] is None or state["bar"].total != total:
            if state["bar"] is not None:
                state["bar"].close()
            state["bar"] = tqdm(total=total, unit=unit, file=sys.stderr, desc=desc)
        state["bar"].set_postfix_str(message, refresh=False)
        state["bar"].update(done - state["bar"].n)

    progress.close = lambda: state["bar"] is not None and state["bar"].close()
    return progress


def emit(args, payload, text: str) -> None:
    """Print ``payload`` as JSON with --json, else the human-readable ``text``."""
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        print(text)
