"""Which image files facedemo decodes, decided from their first bytes before Pillow sees them.

Pillow can open about forty formats, and some of them are not safe to hand an upload: EPS and PostScript
are rendered by running Ghostscript (an external interpreter) on the file's content, and rarely used
decoders (QOI, BLP, DDS, ...) raise whatever their parsers hit on a damaged file. So a file is decoded only
when its signature is one of the photo formats below, and only by that format's decoder
(``Image.open(..., formats=[kind])``); everything else is refused by name. A progressive JPEG is also
checked for its number of scans first: each scan is another pass over the whole image, and a small file
that repeats one scan thousands of times (a "scan bomb") costs a minute of decoding.
"""

from __future__ import annotations

from PIL import features

# Pillow's format name for each accepted signature, and how the user knows it.
ACCEPTED = {
    "JPEG": "JPEG",
    "PNG": "PNG",
    "WEBP": "WebP",
    "GIF": "GIF",
    "BMP": "BMP",
    "TIFF": "TIFF",
    "PPM": "PPM/PGM",
    "AVIF": "AVIF",
}
# Signatures recognised only to be refused by name (the user learns what they sent).
_REFUSED = (
    (b"%!PS", "a PostScript/EPS file"),
    (b"\xc5\xd0\xd3\xc6", "an EPS file"),
    (b"%PDF", "a PDF"),
    (b"qoif", "a QOI image"),
    (b"BLP1", "a BLP texture"),
    (b"BLP2", "a BLP texture"),
    (b"DDS ", "a DDS texture"),
    (b"8BPS", "a Photoshop (PSD) file"),
    (b"\x00\x00\x01\x00", "an icon (ICO)"),
    (b"icns", "an icon (ICNS)"),
    (b"\xff\x4f\xff\x51", "a JPEG 2000 image"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
    (b"II+\x00", "a BigTIFF"),
    (b"MM\x00+", "a BigTIFF"),
    (b"PK\x03\x04", "a zip archive"),
    (b"<?xml", "an XML/SVG file"),
    (b"<svg", "an SVG drawing"),
    (b"\x1a\x45\xdf\xa3", "a video (WebM/Matroska)"),
)
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1", b"heim", b"heis"}
_AVIF_BRANDS = {b"avif", b"avis"}
MAX_JPEG_SCANS = 64  # libjpeg's progressive scripts use about 10; mozjpeg's up to ~20
# Scans x pixels a JPEG may cost: a 64 MP photo in its usual 10 progressive scans is 640 M, so this refuses
# only files that ask for more passes than a camera or an encoder makes (7900x7900 in 16 scans: 1.1 s here).
MAX_SCAN_PIXELS = 1_000_000_000
HEAD = 32  # bytes enough for every signature above


def accepted_names() -> str:
    """The formats a user may upload, for a sentence."""
    names = [v for k, v in ACCEPTED.items() if k != "AVIF" or _avif()]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _avif() -> bool:
    return bool(features.check("avif"))


def sniff(head: bytes) -> tuple[str | None, str | None]:
    """``(Pillow format, None)`` for a file facedemo decodes, ``(None, what it is)`` ("a PDF") for a known format
    it refuses, ``(None, None)`` for anything unrecognised."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG", None
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG", None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP", None
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF", None
    if head.startswith(b"BM"):
        return "BMP", None
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF", None
    if len(head) > 2 and head[:1] == b"P" and head[1:2] in b"123456" and head[2:3] in b" \t\r\n#":
        return "PPM", None
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AVIF_BRANDS:
            return ("AVIF", None) if _avif() else (None, "an AVIF image (this installation of Pillow cannot read it)")
        if brand in _HEIF_BRANDS:
            return None, "a HEIC/HEIF photo (export it as JPEG)"
        return None, "a video (MP4/QuickTime)"
    for signature, what in _REFUSED:
        if head.startswith(signature):
            return None, what
    return None, None


def jpeg_scans(data) -> int:
    """How many scans (SOS segments) a JPEG has, by walking its markers; ``data`` is bytes or an mmap.
    A damaged file stops the walk: the decoder then says what is wrong with it."""
    scans, pos, end = 0, 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # end of image
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # restart markers and TEM carry no length
            pos += 2
            continue
        length = (data[pos + 2] << 8) | data[pos + 3]
        pos += 2 + length
        if marker != 0xDA:
            continue
        scans += 1
        if scans > MAX_JPEG_SCANS:
            return scans
        # The entropy-coded data runs to the next marker: a 0xFF not followed by a stuffed 0x00 or a restart.
        while True:
            pos = data.find(b"\xff", pos)
            if pos < 0 or pos + 1 >= end:
                return scans
            following = data[pos + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7:
                pos += 2
                continue
            break
    return scans
