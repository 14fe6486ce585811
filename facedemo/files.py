"""Writing files so that a crash never leaves half of one: write beside the target, then rename."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = ".part") -> Iterator[Path]:
    """A temporary path in the target's folder; renamed onto ``target`` when the block succeeds,
    removed when it fails. Readers see the old file or the new one, never a partial one."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def read_json(path: str | Path) -> dict:
    """A JSON object from ``path``; ``{}`` when the file is missing, unreadable or not an object.

    Parsed once per version of the file: the data files (thresholds, open-set tails, distributions) are
    read on every request, and a ``stat`` is all that costs once they are parsed. The answer is shared:
    read it, do not change it (``update_json`` copies it first)."""
    path = Path(path)
    try:
        info = path.stat()
    except OSError:
        return {}
    key = (str(path), info.st_mtime_ns, info.st_size)
    with _PARSED_LOCK:
        cached = _PARSED.get(str(path))
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, OSError, UnicodeDecodeError):
        return {}
    data = data if isinstance(data, dict) else {}
    with _PARSED_LOCK:
        _PARSED[str(path)] = (key, data)
    return data


# The parsed data files, by path (a cache of file contents, not of any model or client).
_PARSED: dict[str, tuple[tuple, dict]] = {}
_PARSED_LOCK = threading.Lock()


def write_json(path: str | Path, data, **options) -> Path:
    """``json.dump`` to ``path``, atomically."""
    with atomic_path(path, ".tmp") as tmp:
        tmp.write_text(json.dumps(data, **options))
    return Path(path)


def update_json(path: str | Path, key: str, value, **options) -> Path:
    """Set one key of a JSON object file (e.g. one model's calibration), atomically."""
    data = dict(read_json(path))  # the parsed copy is shared: never change it in place
    data[key] = value
    return write_json(path, data, **options)
