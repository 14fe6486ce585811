"""ONNX Runtime sessions on the CPU, for every network facedemo exports to it: the detector's (MTCNN's three
networks, ``vision/mtcnn_onnx.py``) and the embedders' (``models/onnx_engine.py``, a declared model's graph).
On a CPU ONNX Runtime runs these networks faster than torch (docs/BENCHMARKS.md); on CUDA torch runs them."""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path


def missing() -> str | None:
    """None when ONNX Runtime can run here, else what to install."""
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed (`pip install -r requirements.txt`)"
    return None


def cpu_threads(settings) -> int:
    """Threads for one session: the setting, else the cores this process may use."""
    if settings.cpu_threads:
        return settings.cpu_threads
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def open_session(path: Path, threads: int):
    """One session on the CPU with ``threads`` intra-op threads that sleep rather than spin when idle
    (the detector's torch threads want the same cores between two batches)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: its warnings are about graph rewrites, not for a user
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def export_graph(module, example, target: Path, outputs: Sequence[str], axes: dict, opset: int = 17) -> None:
    """``torch.onnx.export`` of ``module`` (on the CPU, eval mode) to ``target``, its input named ``pixels``;
    ``axes``: the dynamic axes of the input and each output."""
    import torch

    with warnings.catch_warnings():  # the TorchScript exporter is deprecated; it needs no onnxscript
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.from_numpy(example),),
            str(target),
            dynamo=False,
            input_names=["pixels"],
            output_names=list(outputs),
            dynamic_axes=axes,
            opset_version=opset,
        )


def cached_session(target: Path, threads: int, export: Callable[[Path], object]):
    """The session of the exported graph at ``target``; ``export(target)`` writes, checks and opens it when
    there is none, or when the file there does not load (truncated, or written by another exporter)."""
    if target.is_file():
        try:
            return open_session(target, threads)
        except Exception:  # onnxruntime's errors have no common base: any failure to load means export again
            target.unlink(missing_ok=True)
    return export(target)


def export_failure(exc: Exception, where: str) -> str:
    """Why an export to ONNX Runtime failed, in words, for a status note (torch still runs the network);
    ``where``: the folder it writes to, in words."""
    if isinstance(exc, ImportError):
        return f"exporting it needs {exc.name or 'onnx'} (`pip install -r requirements.txt`)"
    if isinstance(exc, OSError):  # e.g. a read-only folder
        return f"its export cannot be written {where} ({exc.strerror or exc})"
    if isinstance(exc, (ValueError, RuntimeError)):  # the check's figures, or the exporter's own words
        return str(exc).splitlines()[0][:300]
    return f"the ONNX export failed ({exc.__class__.__name__}: {str(exc).splitlines()[0][:200]})"
