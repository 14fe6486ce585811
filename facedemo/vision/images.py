"""Images in, safely: turn whatever the user gave (path, bytes, PIL image, numpy array) into an RGB PIL
image, and the one home of what counts as a photo on disk (suffixes, folder-per-person trees, the hash
that recognises a photo by its bytes)."""

from __future__ import annotations

import hashlib
import io
import logging
import mmap
import os
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ArchiveError, ImageError
from . import formats

log = logging.getLogger("facedemo.images")

ImageInput = str | Path | bytes | bytearray | Image.Image | np.ndarray

DEFAULT_MAX_PIXELS = 64_000_000
# Every suffix the loader takes in a folder or a zip (what it decodes is decided by the bytes: formats.py).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".pgm", ".ppm", ".avif"})


def is_photo(path: Path) -> bool:
    """A regular, non-hidden file with an image suffix."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and path.is_file()


def list_images(folder: str | Path) -> list[Path]:
    """Every photo below ``folder``, sorted."""
    return sorted(p for p in Path(folder).rglob("*") if is_photo(p))


def identity_folders(root: str | Path) -> list[tuple[str, list[Path]]]:
    """A folder-per-identity tree: each sub-folder of ``root`` is a person, except those whose name
    starts with ``_`` (group photos, extras) or ``.``; a person's photos are every photo below their
    folder. Returns ``(folder name, photos)`` pairs sorted by name; people with no photo are kept (with
    an empty list) so a caller can say so."""
    root = Path(root)
    if not root.is_dir():
        raise ArchiveError(f"'{root}' is not a folder; give a folder with one sub-folder per person.")
    people = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    return [(person.name, list_images(person)) for person in people]


def open_regular(path: str | Path, name: str | None = None):
    """Open ``path`` for reading in binary, refusing anything that is not a regular file *before* a read
    can block: a FIFO or a terminal would hang ``open()``/``read()`` forever, a device never ends. The file is
    opened non-blocking and checked with ``fstat`` on the open descriptor, so nothing can be swapped in
    between the check and the read."""
    path = Path(path)
    name = name or f"'{path.name}'"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise ImageError(f"{name} does not exist.") from None
    except IsADirectoryError:
        raise ImageError(f"{name} is a folder, not an image.") from None
    except OSError as exc:
        try:  # opening a socket fails (ENXIO) before fstat could say what it is
            if stat.S_ISSOCK(os.stat(path).st_mode):
                raise ImageError(f"{name} is a socket, not a regular file; only image files can be read.") from None
        except OSError:
            pass
        raise ImageError(f"{name} cannot be opened ({exc.strerror or exc}).") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ImageError(f"{name} is a folder, not an image.")
        if not stat.S_ISREG(mode):
            kind = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
            raise ImageError(f"{name} is {kind}, not a regular file; only image files can be read.")
        if getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def refuse_special(path: str | Path) -> None:
    """For a path about to be written: an existing FIFO, socket or device would block or swallow the write."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # nothing there yet (or unreachable: the write itself will say so)
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise ImageError(f"'{Path(path).name}' is {kind}, not a regular file; give a file name to write to.")


def image_sha(source: ImageInput) -> str:
    """sha256 of a photo's bytes (of its pixels when it is already decoded): how a photo already in the
    gallery is recognised before any model runs."""
    digest = hashlib.sha256()
    if isinstance(source, (str, Path)):
        with open_regular(source) as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    elif isinstance(source, (bytes, bytearray)):
        digest.update(source)
    elif isinstance(source, Image.Image):
        digest.update(f"{source.mode}{source.size}".encode())
        digest.update(source.tobytes())
    else:
        array = np.ascontiguousarray(source)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def load_image(source: ImageInput, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Return an RGB image with its EXIF orientation applied.

    Raises ``ImageError`` with a plain sentence for a missing, unreadable, truncated, oversized or
    unsupported file: only the formats of ``formats.ACCEPTED`` are decoded, each by its own decoder, and
    any exception a decoder raises on a damaged file becomes that sentence.
    """
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, Image.Image):
        _check_size(source.size, max_pixels, "The image")
        return _to_rgb(_upright(source))
    if isinstance(source, (bytes, bytearray)):
        name = "The uploaded data"
        return _decode(bytes(source), name, max_pixels)
    if isinstance(source, (str, Path)):
        path = Path(source)
        name = f"'{path.name}'"
        with open_regular(path, name) as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                raise ImageError(f"{name} is empty (0 bytes), not an image file we can read.")
            try:
                data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):  # a file system without mmap: read it
                data = fh.read()
            try:
                return _decode(data, name, max_pixels)
            finally:
                if isinstance(data, mmap.mmap):
                    data.close()
    raise ImageError(f"Cannot read an image from a {type(source).__name__}.")


def _decode(data, name: str, max_pixels: int) -> Image.Image:
    """Decode bytes (or an mmap) of one file, refusing by signature what facedemo does not read."""
    if len(data) == 0:
        raise ImageError(f"{name} is empty (0 bytes), not an image file we can read.")
    kind, what = formats.sniff(bytes(data[: formats.HEAD]))
    if kind is None:
        if what:
            raise ImageError(f"{name} is {what}; facedemo reads photos in {formats.accepted_names()}.")
        raise ImageError(f"{name} is not an image file we can read ({formats.accepted_names()}).")
    scans = formats.jpeg_scans(data) if kind == "JPEG" else 1
    if scans > formats.MAX_JPEG_SCANS:
        raise ImageError(
            f"{name} is a JPEG with more than {formats.MAX_JPEG_SCANS} scans (a photo has about 10); "
            "decoding it would take minutes, so it was refused."
        )
    try:
        # Pillow warns (and past 2x raises) on decompression bombs; treat both as a refusal. Its other
        # warnings (a damaged EXIF block, an odd tag) are not the user's business: the image decodes or not.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[kind])
            _check_size(image.size, max_pixels, name)
            if scans * image.size[0] * image.size[1] > formats.MAX_SCAN_PIXELS:
                raise ImageError(
                    f"{name} is a {image.size[0]}x{image.size[1]} JPEG in {scans} scans, each a pass over the "
                    "whole image; it would take too long to decode. Save it as a baseline (non-progressive) "
                    "JPEG or smaller."
                )
            image.load()
            frames = _frames(image)
            rgb = _to_rgb(_upright(image))
            rgb.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, MemoryError):
        raise ImageError(f"{name} is too large to open safely.") from None
    except UnidentifiedImageError:
        raise ImageError(
            f"{name} is not an image file we can read: it starts like a {formats.ACCEPTED[kind]} but is damaged."
        ) from None
    except Exception as exc:  # noqa: BLE001 - any decoder's failure on a damaged file is the user's sentence
        # the decoder's own words ("broken data stream", "(Truncated File Read)") are for the log, not the person
        log.info("could not decode %s: %s: %s", name, type(exc).__name__, str(exc).strip()[:200])
        raise ImageError(f"{name} could not be decoded: it may be truncated or damaged.") from None
    if frames > 1:  # an animated GIF/WebP/PNG or a multi-page TIFF: only the first frame is used, and said so
        rgb.info[FRAMES_KEY] = frames
        rgb.info[FORMAT_KEY] = kind
    return rgb


def _frames(image: Image.Image) -> int:
    """How many frames (an animation) or pages (a multi-page TIFF) an image has."""
    return int(getattr(image, "n_frames", 1) or 1)


def _upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says; a damaged EXIF block leaves it as stored."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - a broken orientation tag is not worth refusing the photo for
        return image


FRAMES_KEY, FORMAT_KEY = "facedemo.frames", "facedemo.format"


def frames_note(image: Image.Image, label: str) -> str | None:
    """The sentence for an image that had several frames (an animation, a multi-page scan), else None."""
    frames = image.info.get(FRAMES_KEY, 1)
    if frames <= 1:
        return None
    what = "pages" if image.info.get(FORMAT_KEY) == "TIFF" else "frames"
    return f"{label} has {frames} {what}; only the first was used."


def _check_size(size: tuple[int, int], max_pixels: int, name: str) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageError(f"{name} is empty (0 pixels).")
    if width * height > max_pixels:
        raise ImageError(
            f"{name} is {width}x{height} pixels ({width * height / 1e6:.0f} MP), more than the "
            f"{max_pixels / 1e6:.0f} MP allowed; please upload a smaller image."
        )


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit and float images: Pillow's convert("L") clips instead of scaling, so stretch the range.
        array = np.asarray(image, dtype=np.float64)
        return _from_array(array)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        # Transparent pixels go onto white, as a browser would show them.
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def _from_array(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(f"An image array must be HxW, HxWx3 or HxWx4, not {array.shape}.")
    if array.size == 0:
        raise ImageError("The image is empty (0 pixels).")
    if array.dtype != np.uint8:
        array = array.astype(np.float64)
        low, high = float(np.nanmin(array)), float(np.nanmax(array))
        if high <= 1.0 and low >= 0.0 and array.dtype.kind == "f" and high > 0:
            array = array * 255.0  # float images in [0, 1]
        elif high > 255.0 or low < 0.0:
            array = (array - low) * (255.0 / max(high - low, 1e-9))
        array = np.nan_to_num(array).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(np.ascontiguousarray(array))
    return _to_rgb(image)
