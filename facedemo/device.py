"""Choosing the torch device: CUDA when present, else CPU with a sensible thread count. Never silent."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import DeviceError


@dataclass(frozen=True)
class DeviceInfo:
    device: str  # "cpu" or "cuda:0"
    description: str  # what a person reads: "CUDA 0 (NVIDIA H100)" or "CPU, 2 threads"
    fp16: bool

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")


def resolve_device(requested: str = "auto", cpu_threads: int = 0) -> DeviceInfo:
    import torch

    requested = (requested or "auto").strip().lower()
    if requested == "auto":
        requested = "cuda:0" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"Device '{requested}' was asked for, but this machine has no CUDA GPU that torch can use; "
                "set the device to 'cpu' or 'auto'."
            )
        index = int(requested.split(":", 1)[1]) if ":" in requested else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"Device '{requested}' does not exist: this machine has {torch.cuda.device_count()} GPU(s)."
            )
        name = torch.cuda.get_device_name(index)
        return DeviceInfo(device=f"cuda:{index}", description=f"CUDA {index} ({name}), fp16", fp16=True)
    if requested != "cpu":
        raise DeviceError(f"Unknown device '{requested}': use 'auto', 'cpu' or 'cuda[:N]'.")
    threads = cpu_threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    torch.set_num_threads(max(1, threads))
    return DeviceInfo(device="cpu", description=f"CPU, {torch.get_num_threads()} threads", fp16=False)
