"""Unpacking an uploaded zip of folder-per-identity photos, safely, one entry at a time.

A zip comes from a stranger. Each entry is streamed to disk in small blocks with a cap on its *real*
uncompressed size (counted while reading, whatever the headers say) and on the archive's total; an entry
that compresses suspiciously well (a zip bomb: gigabytes of zeros in a few megabytes) is refused before a
byte of it is inflated. Memory stays bounded by one block whatever the zip holds. One bad entry (a name too
long for the file system, a file and a folder of the same name, a flipped byte, a password, a compression
method Python cannot read) is skipped with its reason, named as it is inside the zip; the rest unpacks.
"""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import ArchiveError, ImageError
from ..vision.images import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, open_regular

MAX_ENTRIES = 20_000
MAX_TOTAL_BYTES = 2_000_000_000  # real bytes unpacked, counted while reading
MAX_RATIO = 100  # uncompressed / compressed: photos barely compress, bombs compress a thousandfold
MAX_NAME_BYTES = 255  # one path component, as most file systems allow
MAX_PATH_BYTES = 1024
BLOCK = 1 << 20
READABLE = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


def entry_cap(max_pixels: int = DEFAULT_MAX_PIXELS) -> int:
    """The most bytes one photo can need: the decoder's pixel cap at 4 bytes a pixel (an uncompressed
    RGBA BMP or TIFF), plus room for headers and metadata."""
    return max_pixels * 4 + BLOCK


@dataclass(frozen=True)
class Refused:
    name: str  # as it is written inside the zip
    reason: str


@dataclass
class Unpacked:
    count: int = 0  # photos written
    refused: list[Refused] = field(default_factory=list)


def extract_images(
    archive: str | Path, target: Path, max_entry_bytes: int | None = None, max_total_bytes: int = MAX_TOTAL_BYTES
) -> Unpacked:
    """Write the photos of ``archive`` below ``target`` (an empty folder), mirroring their names in the zip.

    Raises ``ArchiveError`` only for the archive as a whole (not a zip, no photo, too many entries, more
    than ``max_total_bytes`` unpacked); every other problem skips one entry with its reason."""
    cap = max_entry_bytes or entry_cap()
    try:
        with open_regular(archive, "The upload") as fh:
            zf = zipfile.ZipFile(fh)
            with zf:
                return _extract(zf, Path(target), cap, max_total_bytes)
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise ArchiveError(f"The upload is not a readable zip file ({detail}).") from None


def photo_count(archive: str | Path) -> int:
    """How many photos a zip names (its entries with a photo's suffix), read from its directory alone; 0 for a
    file that is not a readable zip (``unpack`` says why when it is opened)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            return sum(
                1
                for m in zf.infolist()
                if not m.is_dir() and PurePosixPath(m.filename.replace("\\", "/")).suffix.lower() in IMAGE_SUFFIXES
            )
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError):
        return 0


def _extract(zf: zipfile.ZipFile, target: Path, cap: int, max_total: int) -> Unpacked:
    entries = zf.infolist()
    if len(entries) > MAX_ENTRIES:
        raise ArchiveError(f"The zip holds {len(entries)} entries; at most {MAX_ENTRIES} can be imported at once.")
    photos = [
        m
        for m in entries
        if not m.is_dir() and PurePosixPath(m.filename.replace("\\", "/")).suffix.lower() in IMAGE_SUFFIXES
    ]
    if not photos:
        raise ArchiveError("The zip holds no photos: put one folder per person, each with JPEG or PNG photos.")
    if sum(m.file_size for m in photos) > max_total:
        raise ArchiveError(
            f"The zip says it unpacks to more than {max_total / 1e9:.0f} GB; split it into smaller archives."
        )
    root = target.resolve()
    result = Unpacked()
    written = 0
    for member in photos:
        shown = _printable(member.filename)
        parts, why = _safe_parts(member.filename)
        if why:
            if why != "hidden":
                result.refused.append(Refused(shown, why))
            continue
        why = _unreadable(member, cap)
        if why:
            result.refused.append(Refused(shown, why))
            continue
        try:
            written += _copy(zf, member, root, parts, cap, max_total - written)
        except _Skip as skip:
            result.refused.append(Refused(shown, str(skip)))
            continue
        result.count += 1
    return result


class _Skip(Exception):
    """One entry cannot be unpacked; the message is the reason shown in the import summary."""


def _safe_parts(name: str) -> tuple[tuple[str, ...], str | None]:
    """The entry's path components, or why it is not unpacked (``"hidden"`` is skipped silently)."""
    posix = name.replace("\\", "/")
    parts = tuple(p for p in PurePosixPath(posix).parts if p not in ("", "."))
    if posix.startswith("/") or ".." in parts or (parts and len(parts[0]) == 2 and parts[0][1] == ":"):
        return parts, "its name points outside the zip's folder."
    if any(p.startswith(("__MACOSX", ".")) for p in parts):
        return parts, "hidden"
    if any("\x00" in p or any(ord(c) < 32 for c in p) for p in parts):
        return parts, "its name holds control characters."
    if any(len(p.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for p in parts):
        return parts, f"a part of its name is longer than {MAX_NAME_BYTES} bytes, which the file system refuses."
    if len(posix.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        return parts, f"its name is longer than {MAX_PATH_BYTES} bytes."
    return parts, None


def _unreadable(member: zipfile.ZipInfo, cap: int) -> str | None:
    """Why an entry is refused from its headers alone, before anything is inflated."""
    if member.flag_bits & 0x1:
        return "it is encrypted; zip the photos again without a password."
    if member.compress_type not in READABLE:
        method = zipfile.compressor_names.get(member.compress_type, f"method {member.compress_type}")
        return f"it is compressed with {method}, which cannot be read here; zip it again with ordinary (deflate) compression."
    if member.file_size > BLOCK and member.file_size > MAX_RATIO * max(member.compress_size, 1):
        return (
            f"it compresses {member.file_size / max(member.compress_size, 1):.0f} to 1 "
            f"({member.compress_size} bytes unpack to {member.file_size}), like a zip bomb, not like a photo."
        )
    if member.file_size > cap:
        return f"it unpacks to {member.file_size / 1e6:.0f} MB, more than any photo within the size limit needs ({cap / 1e6:.0f} MB)."
    return None


def _copy(
    zf: zipfile.ZipFile, member: zipfile.ZipInfo, root: Path, parts: tuple[str, ...], cap: int, budget: int
) -> int:
    """Stream one entry into ``root/parts``, counting real bytes; returns how many were written."""
    destination = root.joinpath(*parts)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise _Skip("a file of the same name as one of its folders is also in the zip.") from None
    except OSError as exc:
        raise _Skip(f"it cannot be written ({exc.strerror or type(exc).__name__}).") from None
    if not destination.parent.resolve().is_relative_to(root):
        raise _Skip("its name points outside the zip's folder.")
    try:
        fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        if destination.is_dir():
            raise _Skip("a folder of the same name is also in the zip.") from None
        raise _Skip("another entry of the same name is already in the zip.") from None
    except (NotADirectoryError, FileNotFoundError):
        raise _Skip("a file of the same name as one of its folders is also in the zip.") from None
    except OSError as exc:
        raise _Skip(f"it cannot be written ({exc.strerror or type(exc).__name__}).") from None
    written = 0
    try:
        with os.fdopen(fd, "wb") as out, zf.open(member) as src:
            while block := src.read(BLOCK):
                written += len(block)
                if written > cap:  # headers can lie; the real size cannot
                    raise _Skip(
                        f"it unpacks to more than {cap / 1e6:.0f} MB, more than any photo within the size limit needs."
                    )
                if written > budget:
                    raise ArchiveError(
                        f"The zip unpacks to more than {MAX_TOTAL_BYTES / 1e9:.0f} GB; split it into smaller archives."
                    )
                out.write(block)
    except (_Skip, ArchiveError):
        destination.unlink(missing_ok=True)
        raise
    except zipfile.BadZipFile as exc:
        destination.unlink(missing_ok=True)
        raise _Skip(f"it is damaged ({exc}).") from None
    except (zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError, OSError) as exc:
        destination.unlink(missing_ok=True)
        detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise _Skip(f"it cannot be unpacked ({detail}).") from None
    except Exception as exc:  # lzma and bz2 raise their own error types for corrupt streams
        destination.unlink(missing_ok=True)
        if type(exc).__module__ not in ("_lzma", "lzma", "_bz2", "bz2"):
            raise
        raise _Skip(f"it is damaged ({exc}).") from None
    return written


def _printable(name: str) -> str:
    """An entry's name as the summary shows it: control characters escaped, at most 120 characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)
    return text if len(text) <= 120 else text[:80] + "…" + text[-30:]


def identity_root(folder: Path) -> Path:
    """A zip often wraps everything in one top folder; step into it when it is the only thing there."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir() and any(child.is_dir() for child in entries[0].iterdir()):
        return entries[0]
    return folder


def is_zip(path: str | Path) -> bool:
    """A regular file that starts like a zip (never opens a FIFO or a device)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open_regular(path) as fh:
            return zipfile.is_zipfile(fh)
    except (OSError, ImageError):  # gone, unreadable or not a regular file: not a zip we open
        return False
