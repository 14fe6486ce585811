"""A bad-input corpus, generated at test time (no binary blobs in the repository): files, names, zips and
parameters as a careless user or an attacker would give them. Each kind asserts the exact answer: one
line ``error: <sentence>`` and exit status 2, or the correct result (with a note where something was
left out). Every test runs under an alarm, so a call that blocks (a FIFO) fails instead of hanging CI,
and nothing may be written outside the gallery and temporary folders."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from facedemo import params
from facedemo.cli import main
from facedemo.errors import ArchiveError, ImageError, InvalidParameterError
from facedemo.gallery.archive import extract_images
from facedemo.vision.images import frames_note, load_image

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "facedemo" / "ui" / "examples"
MODEL = "dlib-resnet"
LIMIT_S = 90  # no single test may take longer; a blocked read trips it


@pytest.fixture(autouse=True)
def bounded():
    def trip(signum, frame):
        raise TimeoutError(f"the call blocked for more than {LIMIT_S} s")

    old = signal.signal(signal.SIGALRM, trip)
    signal.alarm(LIMIT_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture(autouse=True)
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("FACEDEMO_MODEL", MODEL)
    monkeypatch.setenv("FACEDEMO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FACEDEMO_GALLERY", str(tmp_path / "gallery"))
    monkeypatch.delenv("CHROMA_HOST", raising=False)
    monkeypatch.delenv("CHROMA_PORT", raising=False)


@pytest.fixture(scope="module", autouse=True)
def writes_nowhere_else():
    """Nothing lands in the checkout, and no unpacked upload is left in the temp folder."""

    def state():
        listed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO, capture_output=True, text=True
        ).stdout
        leftovers = sorted(Path(tempfile.gettempdir()).glob("facedemo-import-*"))
        return {l for l in listed.splitlines() if not l.endswith(".py")}, leftovers

    before = state()
    yield
    assert state() == before


def run(capsys, *argv) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit:  # argparse's own refusals (a word where a number goes) exit from the parser
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, *argv) -> str:
    """The command fails as a user error: exit 2 and exactly one line ``error: ...``, no traceback."""
    code, out, err = run(capsys, *argv)
    lines = [l for l in err.splitlines() if l.strip()]
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def jpeg_bytes(image: Image.Image | None = None, color=(180, 120, 90)) -> bytes:
    buf = io.BytesIO()
    (image or Image.new("RGB", (48, 48), color)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


# -- files: everything a path can be that is not a photo --------------------------------------------
def _fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "x.jpg")
    return tmp / "x.jpg"


def _socket(tmp: Path) -> Path:
    path = tmp / "s.jpg"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()  # the socket file stays on disk
    return path


def _symlink_to_fifo(tmp: Path) -> Path:
    os.symlink(_fifo(tmp), tmp / "link.jpg")
    return tmp / "link.jpg"


def _dangling(tmp: Path) -> Path:
    os.symlink(tmp / "gone.jpg", tmp / "dangling.jpg")
    return tmp / "dangling.jpg"


def _loop(tmp: Path) -> Path:
    os.symlink(tmp / "b.jpg", tmp / "a.jpg")
    os.symlink(tmp / "a.jpg", tmp / "b.jpg")
    return tmp / "a.jpg"


def _write(name: str, data: bytes):
    def make(tmp: Path) -> Path:
        (tmp / name).write_bytes(data)
        return tmp / name

    return make


def _truncated(tmp: Path) -> Path:
    data = jpeg_bytes(Image.open(EXAMPLES / "hopper.jpg"))
    (tmp / "cut.jpg").write_bytes(data[: len(data) // 3])
    return tmp / "cut.jpg"


def _png_bomb(tmp: Path) -> Path:
    """A valid 1x1 PNG whose header says 100 000 x 100 000 (10 gigapixels)."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    struct.pack_into(">II", data, 16, 100_000, 100_000)
    crc = __import__("zlib").crc32(bytes(data[12:29]))
    struct.pack_into(">I", data, 29, crc)
    (tmp / "bomb.png").write_bytes(bytes(data))
    return tmp / "bomb.png"


FILES = {
    "fifo": (_fifo, "named pipe (FIFO), not a regular file"),
    "unix socket": (_socket, "is a socket, not a regular file"),
    "symlink to a fifo": (_symlink_to_fifo, "named pipe (FIFO), not a regular file"),
    "character device": (lambda tmp: Path("/dev/zero"), "is a device, not a regular file"),
    "folder": (lambda tmp: tmp, "is a folder, not an image"),
    "missing file": (lambda tmp: tmp / "nowhere.jpg", "does not exist"),
    "dangling symlink": (_dangling, "does not exist"),
    "symlink loop": (_loop, "cannot be opened"),
    "empty file": (_write("empty.jpg", b""), "not an image file we can read"),
    "text named .jpg": (_write("notes.jpg", b"hello, I am not a photo\n" * 20), "not an image file we can read"),
    "html named .png": (_write("page.png", b"<html><body>hi</body></html>"), "not an image file we can read"),
    "truncated jpeg": (_truncated, "could not be decoded"),
    "png header of 10 gigapixels": (_png_bomb, "is too large to open safely"),
    "gif header only": (_write("head.gif", b"GIF89a\x10\x00\x10\x00"), "not an image file we can read"),
}


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory) -> Path:
    """A gallery with one person, so that `identify` gets as far as reading its photo."""
    gallery = tmp_path_factory.mktemp("enrolled")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACEDEMO_HOME", str(gallery / "home"))
        assert main(["enroll", "Grace", str(EXAMPLES / "hopper.jpg"), "--model", MODEL, "--gallery", str(gallery)]) == 0
    return gallery


@pytest.mark.parametrize("kind", list(FILES))
@pytest.mark.parametrize("command", ["detect", "verify", "enroll", "identify"])
def test_bad_files_are_refused_by_every_command(capsys, tmp_path, enrolled, kind, command):
    make, sentence = FILES[kind]
    bad = make(tmp_path)
    good = EXAMPLES / "hopper.jpg"
    argv = {
        "detect": ["detect", bad],
        "verify": ["verify", good, bad, "--model", MODEL],
        "enroll": ["enroll", "Grace", bad, "--gallery", tmp_path / "g"],
        "identify": ["identify", bad, "--gallery", enrolled],
    }[command]
    started = time.monotonic()
    line = refused(capsys, *argv)
    assert sentence in line and str(tmp_path) not in line.replace(str(bad), "")
    assert time.monotonic() - started < 30


def test_a_fifo_does_not_hang_the_real_cli(tmp_path):
    """The issue's reproduction as a user types it: `mkfifo x.jpg; python -m facedemo detect x.jpg`."""
    fifo = _fifo(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "facedemo", "detect", str(fifo)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert (
        done.returncode == 2
        and done.stderr.strip()
        == "error: 'x.jpg' is a named pipe (FIFO), not a regular file; only image files can be read."
    )


def test_import_refuses_a_fifo_and_a_non_zip_file(capsys, tmp_path):
    assert "'x.jpg' is neither a folder nor a zip file" in refused(
        capsys, "import", _fifo(tmp_path), "--gallery", tmp_path / "g"
    )
    line = refused(capsys, "import", _write("x.txt", b"plain text")(tmp_path), "--gallery", tmp_path / "g")
    assert "neither a folder nor a zip file" in line
    assert "does not exist" in refused(capsys, "import", tmp_path / "none", "--gallery", tmp_path / "g")


def test_identify_refuses_to_write_its_picture_into_a_fifo(capsys, tmp_path, enrolled):
    """`--out` is a path that comes in too: opening a FIFO for writing would block until someone reads it."""
    out = tmp_path / "named.jpg"
    os.mkfifo(out)
    line = refused(capsys, "identify", EXAMPLES / "hopper.jpg", "--gallery", enrolled, "--out", out)
    assert "'named.jpg' is a named pipe (FIFO), not a regular file" in line


# -- files that are images, but more than one picture: the first is used, and said so -----------------
@pytest.mark.slow
def test_animated_gif_and_multipage_tiff_use_the_first_frame_and_say_so(tmp_path, pipeline):
    hopper = Image.open(EXAMPLES / "hopper.jpg").convert("RGB")
    frames = [hopper, hopper.rotate(180), Image.new("RGB", hopper.size, "white")]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(tmp_path / "a.tif", save_all=True, append_images=frames[1:])
    assert frames_note(load_image(tmp_path / "a.gif"), "'a.gif'") == "'a.gif' has 3 frames; only the first was used."
    assert frames_note(load_image(tmp_path / "a.tif"), "'a.tif'") == "'a.tif' has 3 pages; only the first was used."
    assert frames_note(load_image(EXAMPLES / "hopper.jpg"), "x") is None
    result, _, _ = pipeline.verify(tmp_path / "a.gif", EXAMPLES / "hopper.jpg", MODEL)
    assert result.same_person and "Image A has 3 frames; only the first was used." in result.notes


# -- names --------------------------------------------------------------------------------------------
NAMES = {
    "empty": ("", "cannot be empty"),
    "spaces only": ("   ", "cannot be empty"),
    "path escape": ("../x", "cannot be a name"),
    "slash": ("a/b", "cannot be a name"),
    "backslash": ("a\\b", "cannot be a name"),
    "leading dot": (".hidden", "cannot be a name"),
    "terminal escape": ("Ada\x1b[31m", "control or invisible"),
    "newline": ("Ada\nLovelace", "control or invisible"),
    "zero-width space": ("Ada\u200bLovelace", "control or invisible"),
    "101 characters": ("a" * 101, "at most 100 characters"),
}


@pytest.mark.parametrize("kind", list(NAMES))
def test_bad_names_are_refused_before_any_photo_is_read(capsys, tmp_path, kind):
    name, sentence = NAMES[kind]
    assert sentence in refused(capsys, "enroll", name, EXAMPLES / "hopper.jpg", "--gallery", tmp_path / "g")
    assert sentence in refused(capsys, "people", "--gallery", tmp_path / "g", "delete", name)


def test_unknown_person_is_a_sentence(capsys, tmp_path):
    assert "Nobody called 'Nemo'" in refused(capsys, "people", "--gallery", tmp_path / "g", "rename", "Nemo", "Ned")


def test_a_pairs_csv_with_a_1_mb_cell_is_a_sentence(capsys, tmp_path):
    """`eval pairs --pairs FILE` with a cell over csv's field limit printed `_csv.Error` with a traceback."""
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("a,b,same\n" + "x" * 1_000_000 + ",b.jpg,1\n", encoding="utf-8")
    line = refused(capsys, "eval", "pairs", "--pairs", pairs, "--root", tmp_path)
    assert line.startswith("error: pairs.csv cannot be read as CSV after line ") and len(line) < 300


# -- parameters ---------------------------------------------------------------------------------------
PARAMETERS = {
    "threshold 1e9": (["verify", "{a}", "{b}", "--threshold", "1e9"], "threshold"),
    "threshold negative": (["verify", "{a}", "{b}", "--threshold", "-0.5"], "threshold"),
    "threshold zero": (["verify", "{a}", "{b}", "--threshold", "0"], "more than 0"),
    "threshold nan": (["verify", "{a}", "{b}", "--threshold", "nan"], "not nan"),
    "threshold inf": (["verify", "{a}", "{b}", "--threshold", "inf"], "not inf"),
    "threshold text": (["verify", "{a}", "{b}", "--threshold", "abc"], "invalid float value"),
    "identify threshold 5": (["identify", "{a}", "--gallery", "{g}", "--threshold", "5"], "at most 2"),
    "top-k zero": (["identify", "{a}", "--gallery", "{g}", "--top-k", "0"], "top-k"),
    "top-k huge": (["identify", "{a}", "--gallery", "{g}", "--top-k", "100000"], "from 1 to 50, not 100000"),
    "top-k text": (["identify", "{a}", "--gallery", "{g}", "--top-k", "abc"], "invalid int value"),
    "unknown method": (["identify", "{a}", "--gallery", "{g}", "--method", "magic"], "invalid choice"),
    "face index negative": (["enroll", "Grace", "{a}", "--gallery", "{g}", "--face", "-1"], "face number"),
    "face index text": (["enroll", "Grace", "{a}", "--gallery", "{g}", "--face", "abc"], "invalid int value"),
}


@pytest.mark.parametrize("kind", list(PARAMETERS))
def test_bad_parameters_are_refused_with_their_range(capsys, tmp_path, kind):
    argv, sentence = PARAMETERS[kind]
    values = {"a": EXAMPLES / "hopper.jpg", "b": EXAMPLES / "astronaut.jpg", "g": tmp_path / "g"}
    line = refused(capsys, *[a.format(**values) for a in argv])
    assert sentence in line
    assert not (tmp_path / "g" / "thumbs").exists()  # refused before anything was stored


@pytest.mark.parametrize(
    "value, sentence",
    [
        ("abc", "not 'abc'"),
        (1.5, "not 1.5"),
        (-1, "not -1"),
        (True, "not True"),
        ("", "not ''"),
        ([0], "not a list"),
    ],
)
def test_face_index_as_an_api_client_may_send_it(value, sentence):
    with pytest.raises(InvalidParameterError, match="The face number must be a whole number") as caught:
        params.face_index(value)
    assert sentence in str(caught.value)
    assert params.face_index("2") == 2 and params.face_index(None) is None


def test_parameters_in_range_pass_unchanged():
    assert params.threshold("0.4") == 0.4 and params.threshold(2) == 2.0 and params.threshold(None) is None
    assert params.top_k(1) == 1 and params.top_k("50") == 50 and params.top_k(3.0) == 3
    with pytest.raises(InvalidParameterError, match="threshold.*not 1e\\+09"):
        params.threshold(1e9)


# -- zips ---------------------------------------------------------------------------------------------
def _patch_entry(
    data: bytes, name: str, offset_local: int, offset_central: int, value: int, bits: bool = False
) -> bytes:
    """Change one 16-bit field of one entry in both its local header and its central directory record."""
    data, encoded = bytearray(data), name.encode()
    for signature, name_len_at, name_at, field_at in (
        (b"PK\x03\x04", 26, 30, offset_local),
        (b"PK\x01\x02", 28, 46, offset_central),
    ):
        pos = 0
        while (pos := data.find(signature, pos)) != -1:
            length = struct.unpack_from("<H", data, pos + name_len_at)[0]
            if bytes(data[pos + name_at : pos + name_at + length]) == encoded:
                old = struct.unpack_from("<H", data, pos + field_at)[0]
                struct.pack_into("<H", data, pos + field_at, (old | value) if bits else value)
            pos += 4
    return bytes(data)


def hostile_zip(path: Path) -> Path:
    """One real face (Grace Hopper, twice, under two people) among every kind of bad entry."""
    hopper = (EXAMPLES / "hopper.jpg").read_bytes()
    astronaut = (EXAMPLES / "astronaut.jpg").read_bytes()
    crc_victim = jpeg_bytes(color=(1, 2, 3))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("people/Grace/hopper.jpg", hopper)
        zf.writestr("people/Hopper/hopper-again.jpg", hopper)  # the same photo under a second person
        zf.writestr("people/Eileen/astronaut.jpg", astronaut, compress_type=zipfile.ZIP_BZIP2)
        zf.writestr("people/Grace/" + "x" * 300 + ".jpg", hopper)
        zf.writestr("people/Clash/a.jpg", jpeg_bytes(color=(10, 200, 10)))
        zf.writestr("people/Clash/a.jpg/b.jpg", jpeg_bytes(color=(10, 10, 200)))
        zf.writestr("people/Crc/c.jpg", crc_victim, compress_type=zipfile.ZIP_STORED)
        zf.writestr("people/Secret/e.jpg", jpeg_bytes())
        zf.writestr("people/Deflate64/d.jpg", jpeg_bytes(color=(9, 9, 9)))
        zf.writestr("../escape.jpg", jpeg_bytes())
        zf.writestr("/etc/absolute.jpg", jpeg_bytes())
        zf.writestr("people/Bell\x07/ring.jpg", jpeg_bytes())
        zf.writestr("people/" + "n" * 120 + "/long-name.jpg", jpeg_bytes())
        zf.writestr("people/loose.jpg", jpeg_bytes())
        zf.writestr("people/Blank/blank.jpg", jpeg_bytes())  # a photo with no face
        zf.writestr("people/Text/notes.jpg", b"not a photo at all")
        zf.writestr("__MACOSX/people/Grace/._hopper.jpg", b"resource fork")
        zf.writestr("people/Grace/.DS_Store.jpg", b"finder")
        zf.writestr("people/readme.txt", b"not a photo, ignored")
        with zf.open("people/Bomb/zeros.jpg", "w", force_zip64=True) as out:
            for _ in range(64):
                out.write(bytes(1 << 20))
    data = bytearray(buf.getvalue())
    position = data.find(crc_victim)
    data[position + len(crc_victim) // 2] ^= 0xFF  # one flipped byte
    data = _patch_entry(bytes(data), "people/Secret/e.jpg", 6, 8, 0x1, bits=True)  # the encrypted flag
    data = _patch_entry(data, "people/Deflate64/d.jpg", 8, 10, 9)  # compression method 9: deflate64
    path.write_bytes(data)
    return path


EXPECTED_SKIPS = {
    "people/Grace/" + "x" * 67 + "*": "longer than 255 bytes",  # *: a long name, shortened in the summary
    "people/Clash/a.jpg/b.jpg": "a file of the same name as one of its folders",
    "people/Clash/a.jpg": "no face",
    "people/Crc/c.jpg": "damaged (Bad CRC-32",
    "people/Secret/e.jpg": "encrypted",
    "people/Deflate64/d.jpg": "deflate64",
    "../escape.jpg": "points outside",
    "/etc/absolute.jpg": "points outside",
    "people/Bell\\x07/ring.jpg": "control characters",
    "people/Bomb/zeros.jpg": "like a zip bomb",
    "people/loose.jpg": "not inside a person's folder",
    "people/" + "n" * 120 + "*": "at most 100 characters",
    "people/Blank/blank.jpg": "no face",
    "people/Text/notes.jpg": "not an image file we can read",
}


def test_a_hostile_zip_imports_what_it_can_and_says_why_for_the_rest(capsys, tmp_path):
    archive = hostile_zip(tmp_path / "upload.zip")
    code, out, err = run(capsys, "import", archive, "--gallery", tmp_path / "g", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["people"] == {"Eileen": 1, "Grace": 1}
    skipped = {s["path"]: s["reason"] for s in report["skipped"]}
    for start, reason in EXPECTED_SKIPS.items():
        hits = (
            [p for p in skipped if p.startswith(start[:-1])]
            if start.endswith("*")
            else [p for p in skipped if p == start]
        )
        assert len(hits) == 1 and reason in skipped[hits[0]], (start, skipped)
    assert len(skipped) == len(EXPECTED_SKIPS)  # hidden files, __MACOSX and non-photos are not reported
    assert all(tempfile.gettempdir() not in p + r for p, r in skipped.items())  # named as in the zip, not on the server
    assert report["warnings"] == [
        "'people/Hopper/hopper-again.jpg' is the same photo as 'people/Grace/hopper.jpg': it stays with Grace only, not Hopper."
    ]
    code, out, _ = run(capsys, "people", "--gallery", tmp_path / "g", "--json")
    assert [(p["name"], p["images"], p["faces"]["dlib-resnet"]) for p in json.loads(out)] == [
        ("Eileen", 1, 1),
        ("Grace", 1, 1),
    ]


def test_a_zip_without_a_top_folder_names_its_entries_as_they_are_in_the_zip(capsys, tmp_path):
    archive = tmp_path / "flat.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Ada/notes.jpg", b"not a photo")
        zf.writestr("Ada/empty.jpg", b"")
    code, out, err = run(capsys, "import", archive, "--gallery", tmp_path / "g", "--json")
    assert code == 0, err
    assert sorted(s["path"] for s in json.loads(out)["skipped"]) == ["Ada/empty.jpg", "Ada/notes.jpg"]


def test_the_same_photo_already_enrolled_under_someone_else_is_a_warning(capsys, tmp_path):
    assert run(capsys, "enroll", "Grace", EXAMPLES / "hopper.jpg", "--gallery", tmp_path / "g")[0] == 0
    folder = tmp_path / "people" / "Amazing Grace"
    folder.mkdir(parents=True)
    (folder / "h.jpg").write_bytes((EXAMPLES / "hopper.jpg").read_bytes())
    code, out, _ = run(capsys, "import", tmp_path / "people", "--gallery", tmp_path / "g")
    assert (
        code == 0
        and f"note: '{tmp_path / 'people'}/Amazing Grace/h.jpg' is already in the gallery as Grace: it was not added to Amazing Grace."
        in out
    )


@pytest.mark.parametrize(
    "kind, content, sentence",
    [
        ("a photo named .zip", jpeg_bytes(), "not a readable zip"),
        ("no photos", None, "holds no photos"),
        ("half a zip", "half", "not a readable zip"),
    ],
)
def test_zips_that_cannot_be_imported_at_all(capsys, tmp_path, kind, content, sentence):
    path = tmp_path / "upload.zip"
    if content is None or content == "half":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("readme.txt", b"nothing here" * 100)
            if content == "half":
                zf.writestr("Ada/a.jpg", jpeg_bytes())
        content = buf.getvalue() if content is None else buf.getvalue()[: len(buf.getvalue()) - 30]
    path.write_bytes(content)
    assert sentence in refused(capsys, "import", path, "--gallery", tmp_path / "g")


def test_a_zip_bomb_is_refused_with_bounded_memory_and_disk(tmp_path):
    """256 MB of zeros in a quarter of a megabyte: refused from its headers, nothing inflated."""
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr("Ada/a.jpg", jpeg_bytes())
        with zf.open("Ada/zeros.jpg", "w", force_zip64=True) as out:
            block = bytes(8 << 20)
            for _ in range(32):
                out.write(block)
    assert bomb.stat().st_size < 2_000_000
    target = tmp_path / "unpacked"
    target.mkdir()
    tracemalloc.start()
    started = time.monotonic()
    try:
        unpacked = extract_images(bomb, target)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 5 and peak < 20_000_000
    assert unpacked.count == 1 and [r.name for r in unpacked.refused] == ["Ada/zeros.jpg"]
    assert "like a zip bomb" in unpacked.refused[0].reason
    assert sum(p.stat().st_size for p in target.rglob("*") if p.is_file()) < 10_000


def test_headers_that_lie_about_the_size_cannot_get_past_the_real_count(tmp_path):
    """An entry whose headers claim 1 000 bytes but holds 4 MB: zipfile stops at the claim and the CRC
    check fails, so at most the claimed bytes are ever written; an honest 4 MB entry over a 1 MB cap is
    refused from its header."""
    payload = os.urandom(4 << 20)  # incompressible: no ratio alarm
    honest, liar = tmp_path / "honest.zip", tmp_path / "liar.zip"
    with zipfile.ZipFile(honest, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("Ada/big.jpg", payload)
        zf.writestr("Ada/a.jpg", jpeg_bytes())
    data = bytearray(honest.read_bytes())
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, 1000)  # uncompressed size in the local header
    struct.pack_into("<I", data, central + 24, 1000)  # and in the central directory
    liar.write_bytes(bytes(data))
    for archive, reason in ((honest, "more than any photo"), (liar, "damaged")):
        target = tmp_path / archive.stem
        target.mkdir()
        unpacked = extract_images(archive, target, max_entry_bytes=1 << 20)
        assert unpacked.count == 1 and reason in unpacked.refused[0].reason, unpacked
        assert not (target / "Ada" / "big.jpg").exists()


def test_every_readable_compression_method_imports(tmp_path):
    buf = tmp_path / "methods.zip"
    with zipfile.ZipFile(buf, "w") as zf:
        for i, method in enumerate((zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)):
            zf.writestr(f"Ada/{i}.jpg", jpeg_bytes(color=(i * 40, 0, 0)), compress_type=method)
    target = tmp_path / "out"
    target.mkdir()
    unpacked = extract_images(buf, target)
    assert unpacked.count == 4 and not unpacked.refused
    assert all(isinstance(load_image(p), Image.Image) for p in (target / "Ada").iterdir())


def test_archive_errors_never_show_a_path(tmp_path):
    with pytest.raises(ArchiveError) as caught:
        extract_images(_write("x.zip", b"PK\x03\x04garbage")(tmp_path), tmp_path)
    assert str(tmp_path) not in str(caught.value)
    with pytest.raises(ImageError, match="named pipe"):
        extract_images(_fifo(tmp_path), tmp_path)
