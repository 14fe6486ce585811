"""On-disk caches of per-image results (detections, embeddings), keyed on the image's path and mtime.

One ``.npz`` file per cache key (e.g. model + alignment + detector settings), under
``Settings.home / "cache"``. An entry is reused only while the image file's mtime is unchanged.
Saving merges with what is on disk, so two runs sharing a file do not erase each other's entries.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def cache_folder(home: Path) -> Path:
    return Path(home) / "cache"


def _mtime(path: Path) -> int:
    return os.stat(path).st_mtime_ns


class ArrayCache:
    """path -> (a float32 row of ``width`` values, a bool flag), e.g. an embedding and "face not found"."""

    def __init__(self, file: Path, width: int):
        self.file = Path(file)
        self.width = width
        self._rows: dict[str, tuple[int, np.ndarray, bool]] = {}
        self._dirty = False
        self._rows.update(self._read())

    def _read(self) -> dict[str, tuple[int, np.ndarray, bool]]:
        try:
            with np.load(self.file, allow_pickle=False) as data:
                keys, mtimes, values, flags = data["keys"], data["mtimes"], data["values"], data["flags"]
        except (FileNotFoundError, OSError, KeyError, ValueError):
            return {}  # missing or unreadable: start afresh (it is only a cache)
        if values.ndim != 2 or values.shape[1] != self.width:
            return {}
        return {str(k): (int(m), v, bool(f)) for k, m, v, f in zip(keys, mtimes, values, flags)}

    @staticmethod
    def key(path: Path) -> str:
        return str(Path(path).resolve())

    def get(self, path: Path) -> tuple[np.ndarray, bool] | None:
        row = self._rows.get(self.key(path))
        if row is None or row[0] != _mtime(path):
            return None
        return row[1], row[2]

    def put(self, path: Path, values: np.ndarray, flag: bool = False) -> None:
        values = np.asarray(values, dtype=np.float32).ravel()
        if values.size != self.width:
            raise ValueError(f"cache row of {values.size} values, expected {self.width}")
        self._rows[self.key(path)] = (_mtime(path), values, bool(flag))
        self._dirty = True

    def __len__(self) -> int:
        return len(self._rows)

    def save(self) -> None:
        if not self._dirty:
            return
        rows = {**self._read(), **self._rows}
        self.file.parent.mkdir(parents=True, exist_ok=True)
        keys = list(rows)
        with tempfile.NamedTemporaryFile(dir=self.file.parent, delete=False, suffix=".tmp") as tmp:
            np.savez(
                tmp,
                keys=np.array(keys, dtype=str),
                mtimes=np.array([rows[k][0] for k in keys], dtype=np.int64),
                values=np.stack([rows[k][1] for k in keys]) if keys else np.zeros((0, self.width), np.float32),
                flags=np.array([rows[k][2] for k in keys], dtype=bool),
            )
        os.replace(tmp.name, self.file)
        self._rows = rows
        self._dirty = False
