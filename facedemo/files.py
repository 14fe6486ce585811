"""Writing files so that a crash never leaves half of one (write beside the target, then rename), the
scratch folders a request works in, kept under one root per visitor so that they go with the visitor, and
the content digest of a file."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import tempfile
import threading
import uuid
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


def download(url: str, target: str | Path, timeout_s: float) -> Path:
    """Fetch ``url`` into ``target``: bounded by ``timeout_s`` per network wait, written to a temporary file
    and renamed, so an interrupted download never leaves a broken file. Raises ``OSError`` (``URLError``
    is one) or ``TimeoutError``; the caller says what failed in its own words."""
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "facedemo"})
    with (
        atomic_path(target) as tmp,
        urllib.request.urlopen(request, timeout=timeout_s) as response,
        open(tmp, "wb") as out,
    ):
        while chunk := response.read(1 << 20):
            out.write(chunk)
    return Path(target)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read once per version of the file (its path, size and mtime) in a process:
    what weights are keyed on, the same on every machine that has the same bytes."""
    path = Path(path).resolve()
    info = path.stat()
    return _sha256(str(path), info.st_size, info.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


# -- scratch folders: everything a request unpacks or draws for a moment, under one root per owner --------
# An owner is a public-mode visitor's namespace ("shared" for everyone else): a visitor who expires takes
# their folders with them (``purge_scratch``), and a folder whose process died (kill -9, a crash) is
# removed by the next start (``purge_stale_scratch``). Each folder's name says which process made it.
_RUN = uuid.uuid4().hex[:8]  # this process, told apart from an earlier one with the same pid
_SHARED = "shared"


def scratch_root() -> Path:
    """``<tempdir>/facedemo-scratch-<uid>``: private to this user (0700)."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    root = Path(tempfile.gettempdir()) / f"facedemo-scratch-{uid}"
    root.mkdir(mode=0o700, exist_ok=True)
    return root


def make_scratch(owner: str | None, kind: str) -> Path:
    """A new empty folder of ``owner``'s for ``kind`` (album, import, finetune); the caller removes it (or
    the owner's purge does)."""
    folder = scratch_root() / (owner or _SHARED)
    folder.mkdir(mode=0o700, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{kind}-{os.getpid()}-{_RUN}-", dir=folder))


@contextlib.contextmanager
def scratch(owner: str | None, kind: str) -> Iterator[Path]:
    """``make_scratch`` for the length of a block, removed after it however it ends."""
    folder = make_scratch(owner, kind)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def purge_scratch(owner: str) -> None:
    """Every scratch folder of ``owner`` (a visitor who left or expired)."""
    shutil.rmtree(scratch_root() / owner, ignore_errors=True)


def scratch_owners() -> set[str]:
    root = scratch_root()
    return {p.name for p in root.iterdir() if p.is_dir() and p.name != _SHARED}


def purge_stale_scratch() -> list[Path]:
    """Remove the scratch folders of processes that are gone (and an earlier run's that had this pid)."""
    removed = []
    for owner in scratch_root().iterdir():
        if not owner.is_dir():
            continue
        for folder in owner.iterdir():
            parts = folder.name.split("-")
            pid, run = (int(parts[1]), parts[2]) if len(parts) >= 4 and parts[1].isdigit() else (None, None)
            if pid is None or not alive(pid) or (pid == os.getpid() and run != _RUN):
                shutil.rmtree(folder, ignore_errors=True) if folder.is_dir() else folder.unlink(missing_ok=True)
                removed.append(folder)
        with contextlib.suppress(OSError):
            owner.rmdir()  # only when empty
    return removed


def alive(pid: int) -> bool:
    """Whether a process with this id runs (a lock or marker file's owner may have been killed)."""
    if os.name == "nt":  # os.kill there ends the process: treat every pid as alive
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True
