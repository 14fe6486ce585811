"""A local ``chroma run`` server on a free loopback port, for the gallery's server mode in tests and
benchmarks (the same client API as the embedded store, over HTTP)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from ..errors import GalleryError


def chroma_command() -> str | None:
    """The `chroma` CLI of this environment (beside the interpreter), else one on PATH."""
    beside = Path(sys.executable).parent / "chroma"
    return str(beside) if beside.exists() else shutil.which("chroma")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def chroma_server(path: str | Path, timeout_s: float = 60.0) -> Iterator[tuple[str, int]]:
    """``chroma run`` on a free loopback port for the duration of the block; yields (host, port)."""
    command = chroma_command()
    if command is None:
        raise GalleryError("The `chroma` command is not installed; `pip install chromadb` provides it.")
    port = free_port()
    log = open(Path(path).parent / f"chroma-{port}.log", "wb") if Path(path).parent.exists() else subprocess.DEVNULL
    process = subprocess.Popen(
        [command, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise GalleryError(f"`chroma run` exited with status {process.returncode} before it was ready.")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise GalleryError(f"`chroma run` did not answer on port {port} within {timeout_s:.0f} s.")
            time.sleep(0.2)
        yield "127.0.0.1", port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log is not subprocess.DEVNULL:
            log.close()
