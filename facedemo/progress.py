"""The progress callback every long task takes: ``progress(done, total, message)``.

The core reports through it and never draws anything; the CLI turns it into a tqdm bar on stderr and the
dashboard into Gradio's progress bar.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int, str], None]


def report(progress: Progress | None, done: int, total: int, message: str = "") -> None:
    """Call ``progress`` if there is one."""
    if progress is not None:
        progress(done, total, message)
