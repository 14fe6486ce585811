"""Unpacking an uploaded zip of folder-per-identity photos, safely: no path escapes, no zip bombs."""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

from ..errors import FaceDemoError
from ..vision.images import IMAGE_SUFFIXES
MAX_FILES = 20_000
MAX_TOTAL_BYTES = 2_000_000_000


def extract_images(archive: str | Path, target: Path) -> int:
    """Extract the image files of ``archive`` into ``target``; returns how many. Entries that would land
    outside ``target`` (``../``, absolute paths) are refused, and so is an archive that unpacks too big."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise FaceDemoError(f"The upload is not a readable zip file ({exc}).") from None
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir() and PurePosixPath(m.filename).suffix.lower() in IMAGE_SUFFIXES]
        if not members:
            raise FaceDemoError("The zip holds no photos: put one folder per person, each with JPEG or PNG photos.")
        if len(members) > MAX_FILES:
            raise FaceDemoError(f"The zip holds {len(members)} photos; at most {MAX_FILES} can be imported at once.")
        if sum(m.file_size for m in members) > MAX_TOTAL_BYTES:
            raise FaceDemoError("The zip unpacks to more than 2 GB; split it into smaller archives.")
        root = target.resolve()
        count = 0
        for member in members:
            parts = PurePosixPath(member.filename.replace("\\", "/")).parts
            if member.filename.startswith("/") or ".." in parts or any(p.startswith("__MACOSX") for p in parts):
                continue
            destination = (root / Path(*parts)).resolve()
            if root not in destination.parents:
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(destination, "wb") as dst:
                dst.write(src.read(member.file_size + 1))
            count += 1
    return count


def identity_root(folder: Path) -> Path:
    """A zip often wraps everything in one top folder; step into it when it is the only thing there."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir() and any(child.is_dir() for child in entries[0].iterdir()):
        return entries[0]
    return folder
