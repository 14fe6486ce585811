"""What a declared ONNX graph is (``models/declared.py``): where its file is (a path, or a URL's download in
``$FACEDEMO_HOME/downloads``) and what it takes and gives, checked once per file version by ONNX Runtime."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..runtime import missing, open_session
from .base import Declared


def is_url(onnx: str) -> bool:
    return onnx.startswith(("http://", "https://"))


def local_path(declared: Declared) -> Path | None:
    """The graph's file for a path declaration (relative to the TOML file's folder); None for a URL."""
    if is_url(declared.onnx):
        return None
    path = Path(declared.onnx).expanduser()
    return path if path.is_absolute() else declared.file.parent / path


class GraphProblem(ValueError):
    """A graph that facedemo cannot use as a face embedder; the message ends a sentence."""


@dataclass(frozen=True)
class GraphFacts:
    input_name: str
    layout: str  # "nchw" or "nhwc"
    batch: int | None  # a fixed batch size, or None when the graph takes any
    dim: int


def download_file(declared: Declared, settings) -> Path:
    """Where a URL's graph is kept once downloaded: named by its sha256, so another file is never taken for it."""
    name = declared.onnx.rstrip("/").rsplit("/", 1)[-1] or "model.onnx"
    return Path(settings.home) / "downloads" / f"{(declared.sha256 or 'unknown')[:16]}-{name}"


def graph_file(declared: Declared, settings) -> Path | None:
    """The graph's file when it is on this machine (nothing is fetched), else None."""
    path = local_path(declared) if not is_url(declared.onnx) else download_file(declared, settings)
    return path if path is not None and path.is_file() else None


def graph_facts(path: Path, size: int) -> GraphFacts:
    """What a graph takes and gives, checked once per file version: one batch of 3-channel ``size`` images
    in, one vector per face out (a zero image is run through it to see). ``GraphProblem`` says what is wrong."""
    info = Path(path).stat()
    return _facts(str(Path(path).resolve()), info.st_size, info.st_mtime_ns, size)


@functools.lru_cache(maxsize=32)
def _facts(path: str, _size: int, _mtime_ns: int, size: int) -> GraphFacts:
    if missing():
        raise GraphProblem(missing())
    try:
        session = open_session(Path(path), 1)
    except Exception as exc:  # onnxruntime's errors have no common base
        raise GraphProblem(f"names {path}, which ONNX Runtime cannot load ({str(exc).splitlines()[0][:200]})") from None
    first = session.get_inputs()[0]
    shape = list(first.shape)
    layout = "nchw" if len(shape) == 4 and shape[1] == 3 else "nhwc" if len(shape) == 4 and shape[3] == 3 else None
    if layout is None:
        raise GraphProblem(f"has a graph whose input {shape} is not a batch of 3-channel images")
    sides = shape[2:] if layout == "nchw" else shape[1:3]
    if any(isinstance(s, int) and s != size for s in sides):
        raise GraphProblem(f"declares input_size = {size}, but its graph takes {sides[0]}x{sides[1]} images")
    batch = shape[0] if isinstance(shape[0], int) else None
    probe = np.zeros((1, 3, size, size) if layout == "nchw" else (1, size, size, 3), np.float32)
    try:
        out = np.asarray(session.run(None, {first.name: probe})[0])
    except Exception as exc:
        raise GraphProblem(
            f"has a graph that fails on a {size}x{size} face ({str(exc).splitlines()[0][:200]})"
        ) from None
    if out.ndim != 2 or out.shape[0] != 1 or out.shape[1] < 2 or not np.issubdtype(out.dtype, np.floating):
        raise GraphProblem(f"has a graph whose output {list(out.shape)} ({out.dtype}) is not one vector per face")
    return GraphFacts(first.name, layout, batch, int(out.shape[1]))
