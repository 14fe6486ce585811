"""The files beside the store: each face's thumbnail and face region, small JPEGs in
``<gallery>/thumbs/<namespace>/`` (regions in its ``regions/`` folder).

A face region is the face with a margin, enough to align and embed it again with a model that comes
later. Files are written to a temporary name and moved into place, so a file is whole or absent.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

from PIL import Image

THUMB_SIZE = 112  # longest side, pixels


class FaceFiles:
    """One namespace's face files under ``root`` (None: a store with no files, whose faces have none)."""

    def __init__(self, root: str | Path | None):
        self.root = Path(root) if root else None

    @property
    def marker(self) -> Path | None:
        """The write marker's file beside the folder (``recovery.WriteMarker``)."""
        if self.root is None:
            return None
        return self.root.with_name(self.root.name + ".pending.json")

    def thumb_file(self, fid: str) -> Path | None:
        if self.root is None or not re.fullmatch(r"[0-9a-f]{8,64}", fid):
            return None
        return self.root / f"{fid}.jpg"

    def region_file(self, fid: str) -> Path | None:
        path = self.thumb_file(fid)
        return None if path is None else path.parent / "regions" / path.name

    def write(self, fid: str, thumb: Image.Image | None, region: Image.Image | None) -> None:
        if thumb is not None:
            self._write_image(self.thumb_file(fid), thumb, THUMB_SIZE, 85)
        if region is not None:
            self._write_image(self.region_file(fid), region, None, 95)

    def _write_image(self, path: Path | None, image: Image.Image, size: int | None, quality: int) -> None:
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        picture = image.convert("RGB")
        if size:
            picture.thumbnail((size, size))
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".part", delete=False) as tmp:
            picture.save(tmp, format="JPEG", quality=quality)
        os.replace(tmp.name, path)

    def remove(self, fid: str) -> None:
        for path in (self.thumb_file(fid), self.region_file(fid)):
            if path is not None:
                path.unlink(missing_ok=True)

    def thumb_path(self, face_id: str, must_exist: bool = True) -> Path | None:
        path = self.thumb_file(face_id)
        return path if path is not None and (path.exists() or not must_exist) else None

    def face_files(self, face_id: str) -> list[Path]:
        """The files on disk that hold this face (its thumbnail and its region), those that exist."""
        return [p for p in (self.thumb_file(face_id), self.region_file(face_id)) if p is not None and p.is_file()]

    def region(self, face_id: str) -> Image.Image | None:
        """A face's stored region (the face with a margin), or None where none was kept."""
        path = self.region_file(face_id)
        if path is None or not path.is_file():
            return None
        with Image.open(path, formats=["JPEG"]) as image:
            return image.convert("RGB")

    def listing(self) -> dict[str, list[Path]]:
        """The files beside the store: thumbnails, regions, and half-written ones (``*.part``, a marker's
        temporary copy) that a killed process left."""
        out: dict[str, list[Path]] = {"thumbs": [], "regions": [], "part": []}
        if self.root is None:
            return out
        for kind, folder in (("thumbs", self.root), ("regions", self.root / "regions")):
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(folder):
                    if not entry.is_file():
                        continue
                    if entry.name.endswith((".part", ".tmp")):
                        out["part"].append(Path(entry.path))
                    elif entry.name.endswith(".jpg"):
                        out[kind].append(Path(entry.path))
        marker = self.marker
        with contextlib.suppress(FileNotFoundError):
            out["part"] += [p for p in marker.parent.glob(f".{marker.name}.*") if p.is_file()]
        return out
