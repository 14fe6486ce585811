"""Arguments and objects that several sub-commands share."""

from __future__ import annotations

import argparse
import json

from ..pipeline import Pipeline
from ..settings import Settings


def add_pipeline_args(parser: argparse.ArgumentParser, model: bool = True, embeds: bool = True) -> None:
    if model:
        parser.add_argument("--model", help="model name (see `models`); default: the first available of facenet-vggface2, dlib-resnet, facenet-casia-webface")
    parser.add_argument("--device", help="auto (default), cpu or cuda[:N]")
    parser.add_argument("--alignment", choices=["similarity", "crop", "native"],
                        help="for every model: similarity (MTCNN's 5 points onto the model's template), crop (facenet-pytorch's margin crop) or native (each model's own: dlib's shape predictor and face chip); default: each model's best on LFW")
    if embeds:
        parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                            help="test-time flip for every model: embed each face and its mirror image and average them (--no-flip: never); default: FACEDEMO_FLIP, else each model's own (docs/EVALUATION.md)")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")


def pipeline_from(args) -> Pipeline:
    return Pipeline(Settings.from_env(device=getattr(args, "device", None), alignment=getattr(args, "alignment", None),
                                      flip=getattr(args, "flip", None)))


def emit(args, payload, text: str) -> None:
    """Print ``payload`` as JSON with --json, else the human-readable ``text``."""
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        print(text)
