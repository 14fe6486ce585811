"""ONNX Runtime sessions on the CPU, for every network facedemo exports to it: the detector's (MTCNN's three
networks, ``vision/mtcnn_onnx.py``) and the embedders' (``models/onnx_engine.py``, a declared model's graph).
On a CPU ONNX Runtime runs these networks faster than torch (docs/BENCHMARKS.md); on CUDA torch runs them."""

from __future__ import annotations

import importlib.util
import os
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
