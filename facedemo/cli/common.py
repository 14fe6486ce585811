"""Arguments and objects that several sub-commands share."""

from __future__ import annotations

import argparse

from ..pipeline import Pipeline
from ..settings import Settings


def add_pipeline_args(parser: argparse.ArgumentParser, model: bool = True) -> None:
    if model:
        parser.add_argument("--model", help="model name (see `models`); default: facenet-vggface2 if usable, else the first available")
    parser.add_argument("--device", help="auto (default), cpu or cuda[:N]")
    parser.add_argument("--alignment", choices=["similarity", "crop", "native"],
                        help="similarity: MTCNN's 5 points onto the model's template (default); crop: facenet-pytorch's margin crop; native: each model's own (dlib: its shape predictor and face chip)")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")


def pipeline_from(args) -> Pipeline:
    return Pipeline(Settings.from_env(device=getattr(args, "device", None), alignment=getattr(args, "alignment", None)))
