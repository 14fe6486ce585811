"""Kill a command just before its Nth write to a gallery folder, the way SQLite tests itself.

Run as a script, this wraps ``python -m facedemo ...``: it hooks every call that writes the gallery (Chroma's
collection add/upsert/update/delete/modify, a collection created or deleted; a file opened for writing,
renamed, replaced or unlinked, a folder removed, ``chroma vacuum``, each under ``$FACEDEMO_KILL_DIR``),
numbers them from 1, appends each to ``$FACEDEMO_KILL_LOG`` and, when the number reaches
``$FACEDEMO_KILL_AT`` (or at the first write whose description starts with ``$FACEDEMO_KILL_MATCH``), sends
itself SIGKILL before the write happens. Without either it only counts. Test code only: nothing of it ships
in the product.

    python tests/killpoints.py people delete NAME --gallery G
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent


def run(args, gallery: Path, log: Path, kill_at: int | str | None, env: dict, timeout: float = 600):
    """Run ``python -m facedemo ARGS`` under the hooks, killed before write number ``kill_at`` (or before the
    first write whose description starts with it); returns the CompletedProcess (returncode -9: killed)."""
    env = {**env, "FACEDEMO_KILL_DIR": str(Path(gallery).resolve()), "FACEDEMO_KILL_LOG": str(log)}
    env.pop("FACEDEMO_KILL_AT", None)
    env.pop("FACEDEMO_KILL_MATCH", None)
    if isinstance(kill_at, str):
        env["FACEDEMO_KILL_MATCH"] = kill_at
    elif kill_at is not None:
        env["FACEDEMO_KILL_AT"] = str(kill_at)
    log.unlink(missing_ok=True)
    return subprocess.run(
        [sys.executable, str(HERE), *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def writes(log: Path) -> list[str]:
    """The writes a run made (or reached), in order: 'N<TAB>what'."""
    return log.read_text().splitlines() if log.is_file() else []


def _install() -> None:
    import builtins
    import io
    import shutil

    root = os.path.realpath(os.environ["FACEDEMO_KILL_DIR"])
    kill_at = int(os.environ.get("FACEDEMO_KILL_AT") or 0)
    kill_match = os.environ.get("FACEDEMO_KILL_MATCH") or None
    log_path = os.environ["FACEDEMO_KILL_LOG"]
    real_open, real_os_open = builtins.open, os.open
    state = {"n": 0, "quiet": 0}

    def inside(path) -> bool:
        try:
            full = os.path.realpath(os.fspath(path))
        except TypeError:
            return False
        return full == root or full.startswith(root + os.sep)

    def write_point(what: str) -> None:
        if state["quiet"]:
            return
        state["n"] += 1
        fd = real_os_open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{state['n']}\t{what}\n".encode())
        finally:
            os.close(fd)
        if state["n"] == kill_at or (kill_match and what.startswith(kill_match)):
            os.kill(os.getpid(), signal.SIGKILL)

    def short(path) -> str:
        return os.path.relpath(os.path.realpath(os.fspath(path)), root)

    def wrap_path_call(module, name: str, label: str) -> None:
        real = getattr(module, name)

        def hooked(path, *args, **kwargs):
            if kwargs.get("dir_fd") is None and inside(path):
                write_point(f"{label} {short(path)}")
            return real(path, *args, **kwargs)

        setattr(module, name, hooked)

    for name, label in (("unlink", "unlink"), ("remove", "unlink"), ("rmdir", "rmdir")):
        wrap_path_call(os, name, label)

    for name in ("replace", "rename"):
        real = getattr(os, name)

        def hooked_move(src, dst, *args, _real=real, _name=name, **kwargs):
            if inside(src) or inside(dst):
                write_point(f"{_name} {short(src)} -> {short(dst)}")
            return _real(src, dst, *args, **kwargs)

        setattr(os, name, hooked_move)

    writing_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def hooked_os_open(path, flags, *args, **kwargs):
        if flags & writing_flags and kwargs.get("dir_fd") is None and inside(path):
            write_point(f"write {short(path)}")
        return real_os_open(path, flags, *args, **kwargs)

    os.open = hooked_os_open

    def hooked_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+") and inside(file):
            write_point(f"write {short(file)}")
        return real_open(file, mode, *args, **kwargs)

    builtins.open = hooked_open
    io.open = hooked_open

    real_rmtree = shutil.rmtree

    def hooked_rmtree(path, *args, **kwargs):
        if inside(path) and os.path.exists(path):
            write_point(f"rmtree {short(path)}")
        state["quiet"] += 1
        try:
            return real_rmtree(path, *args, **kwargs)
        finally:
            state["quiet"] -= 1

    hooked_rmtree.avoids_symlink_attacks = real_rmtree.avoids_symlink_attacks
    shutil.rmtree = hooked_rmtree

    real_run = subprocess.run

    def hooked_run(command, *args, **kwargs):
        if isinstance(command, (list, tuple)) and "vacuum" in map(str, command):
            write_point("chroma vacuum")
        return real_run(command, *args, **kwargs)

    subprocess.run = hooked_run

    from chromadb.api.client import Client
    from chromadb.api.models.Collection import Collection
    from chromadb.errors import NotFoundError

    for name in ("add", "upsert", "update", "delete", "modify"):
        real = getattr(Collection, name)

        def hooked_collection(self, *args, _real=real, _name=name, **kwargs):
            write_point(f"{_name} {self.name}")
            return _real(self, *args, **kwargs)

        setattr(Collection, name, hooked_collection)

    real_create, real_get_or_create, real_delete = (
        Client.create_collection,
        Client.get_or_create_collection,
        Client.delete_collection,
    )

    def hooked_create(self, name, *args, **kwargs):
        write_point(f"create collection {name}")
        return real_create(self, name, *args, **kwargs)

    def hooked_get_or_create(self, name, *args, **kwargs):
        try:
            self.get_collection(name, embedding_function=None)
        except NotFoundError:
            write_point(f"create collection {name}")
        return real_get_or_create(self, name, *args, **kwargs)

    def hooked_delete(self, name, *args, **kwargs):
        write_point(f"delete collection {name}")
        return real_delete(self, name, *args, **kwargs)

    Client.create_collection, Client.get_or_create_collection, Client.delete_collection = (
        hooked_create,
        hooked_get_or_create,
        hooked_delete,
    )


if __name__ == "__main__":
    import runpy

    sys.path.insert(0, str(REPO))
    _install()
    sys.argv = ["facedemo", *sys.argv[1:]]
    runpy.run_module("facedemo", run_name="__main__", alter_sys=True)
