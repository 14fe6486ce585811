"""Hostile image files, generated at test time (no binary blobs in the repository): a mutation-fuzzed
corpus of every format Pillow can write, an EPS with a fake Ghostscript on PATH, a progressive-JPEG scan
bomb, and imports that hold one damaged file among good photos. Every file gets the user's sentence
(``ImageError``) or decodes; none escapes as another exception, none runs an external program, and one bad
file never stops an import."""

from __future__ import annotations

import io
import json
import os
import random
import re
import stat
import struct
import time
import zipfile
from pathlib import Path

import pytest
from PIL import EpsImagePlugin, Image, ImageOps, UnidentifiedImageError, features
from test_hostile_inputs import EXAMPLES, bounded, env, refused, run  # noqa: F401 (bounded, env: autouse fixtures)

from facedemo.errors import ImageError
from facedemo.vision import formats
from facedemo.vision.images import load_image

ACCEPTED_SAVES = {  # what Pillow writes that facedemo reads: (format, save options)
    "jpeg": ("JPEG", {}),
    "jpeg-progressive": ("JPEG", {"progressive": True}),
    "png": ("PNG", {}),
    "webp": ("WEBP", {}),
    "gif": ("GIF", {}),
    "bmp": ("BMP", {}),
    "tiff": ("TIFF", {}),
    "tiff-lzw": ("TIFF", {"compression": "tiff_lzw"}),
    "tiff-deflate": ("TIFF", {"compression": "tiff_adobe_deflate"}),
    "tiff-jpeg": ("TIFF", {"compression": "jpeg"}),
    "tiff-packbits": ("TIFF", {"compression": "packbits"}),
    "tiff-2-pages": ("TIFF", {"pages": 2}),
    "ppm": ("PPM", {}),
    **({"avif": ("AVIF", {})} if features.check("avif") else {}),
}
REFUSED_SAVES = {"qoi": "QOI", "dds": "DDS", "eps": "EPS", "pdf": "PDF", "ico": "ICO", "jpeg2000": "JPEG2000"}
# What the loader caught before this corpus: anything else escaped as a traceback or "went wrong on our side".
OLD_CAUGHT = (OSError, SyntaxError, ValueError, EOFError, UnidentifiedImageError)


def picture(size=(64, 48)) -> Image.Image:
    """A small image with structure (gradients and edges), so every encoder has something to compress."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    image.paste((200, 40, 40), (8, 8, 30, 30))
    return image


def encoded(fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    pages = options.pop("pages", 1)
    if pages > 1:
        options.update(save_all=True, append_images=[picture()] * (pages - 1))
    picture().save(buf, fmt, **options)
    return buf.getvalue()


def mutants(data: bytes, count: int, seed: int) -> list[bytes]:
    """Damaged copies: flipped bytes, truncations, inserted and zeroed runs, mostly past the signature so
    that they reach the format's own decoder."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        b = bytearray(data)
        kind = i % 4
        start = min(len(b) - 1, 8)
        if kind == 0:
            for _ in range(rng.randint(1, 12)):
                b[rng.randrange(start, len(b))] = rng.randrange(256)
        elif kind == 1:
            b = b[: rng.randrange(start, len(b))]
        elif kind == 2:
            at = rng.randrange(start, len(b))
            b[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        else:
            at = rng.randrange(start, len(b))
            b[at : at + rng.randint(4, 64)] = bytes([rng.choice((0, 0xFF))]) * rng.randint(4, 64)
        out.append(bytes(b))
    return out


def tiff_tag_drops(data: bytes) -> list[bytes]:
    """A little-endian TIFF with one tag of one of its directories (pages) at a time renamed to an unknown
    tag: the file stays well formed, but a page says nothing of its width, or its strips, or its colours."""
    out, start = [], struct.unpack_from("<I", data, 4)[0]
    while start and start + 2 <= len(data):
        count = struct.unpack_from("<H", data, start)[0]
        for i in range(count):
            b = bytearray(data)
            struct.pack_into("<H", b, start + 2 + 12 * i, 0xBEEF)
            out.append(bytes(b))
        start = struct.unpack_from("<I", data, start + 2 + 12 * count)[0]
    return out


def raw_pillow(data: bytes) -> BaseException | None:
    """What plain Pillow raises on ``data``, if anything, used as the loader used it before: every plugin,
    load, count the frames, turn by EXIF."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            getattr(image, "n_frames", 1)
            ImageOps.exif_transpose(image).convert("RGB")
    except BaseException as exc:  # noqa: BLE001 - the point is to see what escapes
        return exc
    return None


def test_a_fuzzed_corpus_of_every_format_gets_a_sentence_or_an_image():
    escaped, answered = {}, 0
    for seed, (label, (fmt, options)) in enumerate(sorted(ACCEPTED_SAVES.items())):
        base = encoded(fmt, **dict(options))
        for data in [base, *mutants(base, 60, seed), *(tiff_tag_drops(base) if fmt == "TIFF" else [])]:
            raw = raw_pillow(data)
            if raw is not None and not isinstance(raw, OLD_CAUGHT):
                escaped.setdefault(label, set()).add(type(raw).__name__)
            try:
                image = load_image(data)
            except ImageError as exc:
                assert str(exc).startswith("The uploaded data ") and str(exc).endswith("."), str(exc)
            else:
                assert image.mode == "RGB" and image.size[0] > 0
            answered += 1
    print({k: sorted(v) for k, v in escaped.items()})
    # The corpus is hostile: plain Pillow lets exceptions other than the ones the old loader caught escape
    # (TIFF's "Missing dimensions" TypeError among them), and every one of those files now gets a sentence.
    assert escaped and any(k.startswith("tiff") for k in escaped), escaped
    assert answered >= len(ACCEPTED_SAVES) * 61


@pytest.mark.parametrize("label", sorted(REFUSED_SAVES))
def test_formats_outside_the_allow_list_are_refused_by_their_signature(label):
    fmt = REFUSED_SAVES[label]
    data = encoded(fmt)
    kind, what = formats.sniff(data[: formats.HEAD])
    assert kind is None and what, (label, data[:16])
    for sample in [data, *mutants(data, 20, 7)]:
        with pytest.raises(ImageError) as caught:
            load_image(sample)
        assert "facedemo reads photos in JPEG, PNG" in str(caught.value) or "not an image file we can read" in str(
            caught.value
        )
    with pytest.raises(ImageError, match=re.escape(f"is {what}; facedemo reads photos in")):
        load_image(data)


@pytest.fixture
def fake_gs(tmp_path, monkeypatch) -> Path:
    """A `gs` first on PATH that logs every call; Pillow's cached answer to "is there a Ghostscript" is
    cleared so that it looks again."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "gs-calls.log"
    gs = bin_dir / "gs"
    gs.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexit 1\n')
    gs.chmod(gs.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", None)
    return log


def test_an_eps_never_reaches_ghostscript(fake_gs, tmp_path, capsys):
    eps = tmp_path / "portrait.eps"
    eps.write_bytes(encoded("EPS"))
    assert raw_pillow(eps.read_bytes()) is not None and fake_gs.exists()  # plain Pillow runs the fake gs
    fake_gs.unlink()
    EpsImagePlugin.gs_binary = None
    for source in (eps, eps.read_bytes()):
        with pytest.raises(ImageError, match="PostScript/EPS file; facedemo reads photos in"):
            load_image(source)
    line = refused(capsys, "identify", eps, "--gallery", tmp_path / "g")
    assert "'portrait.eps' is a PostScript/EPS file" in line
    renamed = tmp_path / "portrait.jpg"  # a suffix is no disguise: the bytes decide
    renamed.write_bytes(eps.read_bytes())
    assert "PostScript/EPS" in refused(capsys, "enroll", "Ada", renamed, "--gallery", tmp_path / "g")
    assert not fake_gs.exists(), fake_gs.read_text()


def scan_bomb(repeats: int) -> bytes:
    """A progressive JPEG whose last scan is repeated ``repeats`` times: each repeat is another full pass of
    the decoder over the image, a few bytes each in the file."""
    data = encoded("JPEG", progressive=True)
    sos = data.rfind(b"\xff\xda")
    eoi = data.rfind(b"\xff\xd9")
    return data[:eoi] + data[sos:eoi] * repeats + data[eoi:]


def test_a_progressive_jpeg_scan_bomb_is_refused_before_decoding():
    normal = encoded("JPEG", progressive=True)
    assert 2 <= formats.jpeg_scans(normal) <= 12 and load_image(normal).size == (64, 48)
    assert formats.jpeg_scans(encoded("JPEG")) == 1
    bomb = scan_bomb(3000)
    assert formats.jpeg_scans(bomb) > formats.MAX_JPEG_SCANS
    start = time.perf_counter()
    with pytest.raises(ImageError, match=f"more than {formats.MAX_JPEG_SCANS} scans"):
        load_image(bomb)
    print(f"scan bomb of {len(bomb)} bytes refused in {time.perf_counter() - start:.3f} s")
    assert load_image(scan_bomb(20)).size == (64, 48)  # within the budget it still decodes


def bad_tiff() -> bytes:
    """A damaged TIFF on which plain Pillow raises something the old loader did not catch."""
    for data in tiff_tag_drops(encoded("TIFF", pages=2)):
        raw = raw_pillow(data)
        if raw is not None and not isinstance(raw, OLD_CAUGHT):
            return data
    pytest.fail("no mutant of a TIFF made Pillow raise an uncaught exception")


def people_folder(root: Path) -> Path:
    """Three good photos of two people and one damaged TIFF."""
    (root / "Eileen").mkdir(parents=True)
    (root / "Grace").mkdir()
    for name in ("astronaut.jpg", "astronaut_2.jpg"):
        (root / "Eileen" / name).write_bytes((EXAMPLES / name).read_bytes())
    (root / "Grace" / "hopper.jpg").write_bytes((EXAMPLES / "hopper.jpg").read_bytes())
    (root / "Grace" / "scan.tif").write_bytes(bad_tiff())
    return root


def test_one_damaged_tiff_never_aborts_an_import_of_a_folder_or_a_zip(capsys, tmp_path):
    folder = people_folder(tmp_path / "people")
    archive = tmp_path / "people.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(tmp_path).as_posix())
    for source, gallery in ((folder, tmp_path / "g1"), (archive, tmp_path / "g2")):
        code, out, err = run(capsys, "import", source, "--gallery", gallery, "--json")
        assert code == 0, err
        report = json.loads(out)
        assert report["people"] == {"Eileen": 2, "Grace": 1}, report
        assert [s["path"].endswith("Grace/scan.tif") for s in report["skipped"]] == [True], report["skipped"]
        assert "could not be decoded" in report["skipped"][0]["reason"]
    line = refused(capsys, "identify", folder / "Grace" / "scan.tif", "--gallery", tmp_path / "g1")
    assert "'scan.tif' could not be decoded" in line
