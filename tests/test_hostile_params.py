"""Hostile parameters (#19 items 4-8): names that are not text or draw nothing, a delete "confirmed" by a
string, group numbers and fine-tune settings of the wrong kind, bad environment variables, and a gallery
outside the working and temp dirs. Each refusal is a sentence, and nothing is left behind on disk."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest

from facedemo import params
from facedemo.cli import main
from facedemo.errors import InvalidNameError, InvalidParameterError
from facedemo.gallery import Gallery, open_store, validate_name
from facedemo.gallery.album import Album, AlbumFace
from facedemo.gallery.enroll import store_embedded
from facedemo.pipeline import Pipeline
from facedemo.training import LabelledEmbeddings, finetune, finetune_gallery
from facedemo.vision.detect import Face

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from test_app import EXAMPLES, free_port  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MODEL = "dlib-resnet"
NOT_TEXT = "is not valid text"


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def thumbnails(gallery: Path) -> list[Path]:
    return sorted((gallery / "thumbs" / "default").glob("*.jpg"))


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def cli_env(monkeypatch, tmp_path):
    monkeypatch.setenv("FACEDEMO_MODEL", MODEL)
    monkeypatch.setenv("FACEDEMO_GALLERY_MODELS", MODEL)
    monkeypatch.setenv("FACEDEMO_GALLERY", str(tmp_path / "default-gallery"))
    monkeypatch.setenv("FACEDEMO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CHROMA_HOST", raising=False)
    monkeypatch.delenv("CHROMA_PORT", raising=False)


# -- names: valid text with something to see -----------------------------------------------------------
@pytest.mark.parametrize(
    "name, sentence",
    [
        ("Ada\udcff", NOT_TEXT),  # b"Ada\xff" from argv or os.listdir, by surrogateescape
        ("Ren\udce9", NOT_TEXT),
        ("\ud800", NOT_TEXT),  # a lone surrogate a JSON client sent as "\ud800"
        ("\u3164", "at least one visible character"),  # HANGUL FILLER
        ("\u2800\u2800", "at least one visible character"),  # BRAILLE PATTERN BLANK, twice
        ("\u0301\u0308", "at least one visible character"),  # combining marks only
        ("\u115f\u1160 \uffa0", "at least one visible character"),
        ("\u3000\u20dd", "at least one visible character"),  # an ideographic space and an enclosing mark
    ],
)
def test_names_that_are_not_text_or_draw_nothing_are_refused(name, sentence):
    with pytest.raises(InvalidNameError, match=sentence) as caught:
        validate_name(name)
    str(caught.value).encode("utf-8")  # the sentence itself can be printed and sent as JSON


@pytest.mark.parametrize("name", ["Ada", "Zoë", "李雷", "Renée", "Ada\u0301", "O'Brien"])
def test_real_names_still_pass(name):
    assert validate_name(name)


def test_cli_enroll_with_undecodable_name_bytes_stores_nothing(tmp_path):
    gallery = tmp_path / "g"
    env = {**os.environ, "FACEDEMO_MODEL": MODEL, "FACEDEMO_GALLERY_MODELS": MODEL, "FACEDEMO_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "facedemo", "enroll", b"Ada\xff", EXAMPLES / "hopper.jpg", "--gallery", gallery],
        capture_output=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    err = done.stderr.decode("utf-8")
    assert done.returncode == 2 and NOT_TEXT in one_error_line(err)
    assert thumbnails(gallery) == []
    if gallery.exists():
        assert open_store(gallery).persons() == []


def test_cli_enroll_photo_with_undecodable_file_name(cli_env, capsys, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    bad = os.path.join(os.fsencode(photos), b"h\xff.jpg")
    shutil.copyfile(EXAMPLES / "hopper.jpg", bad)
    gallery = tmp_path / "g"
    code, out, err = run_cli(capsys, "enroll", "Grace", os.fsdecode(bad), "--gallery", gallery, "--json")
    assert code == 0, err
    assert [a["image"] for a in json.loads(out)["added"]] == ["h\ufffd.jpg"]
    faces = open_store(gallery).faces()
    assert [f.image for f in faces] == ["h\ufffd.jpg"] and len(thumbnails(gallery)) == 1


def test_import_skips_an_undecodable_folder_and_goes_on(cli_env, capsys, tmp_path):
    people = tmp_path / "people"
    people.mkdir()
    bad_folder = os.path.join(os.fsencode(people), b"Ren\xe9")
    os.mkdir(bad_folder)
    shutil.copyfile(EXAMPLES / "astronaut.jpg", os.path.join(bad_folder, b"a.jpg"))
    (people / "Grace").mkdir()
    shutil.copyfile(EXAMPLES / "hopper.jpg", os.path.join(os.fsencode(people / "Grace"), b"h\xe9.jpg"))
    gallery = tmp_path / "g"
    code, out, err = run_cli(capsys, "import", people, "--gallery", gallery, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["people"] == {"Grace": 1}
    assert [s["path"] for s in report["skipped"]] == [f"{people}/Ren\ufffd"]
    assert NOT_TEXT in report["skipped"][0]["reason"]
    store = open_store(gallery)
    assert [p.name for p in store.persons()] == ["Grace"]
    assert [f.image for f in store.faces()] == ["h\ufffd.jpg"] and len(thumbnails(gallery)) == 1


# -- album group and face numbers ------------------------------------------------------------------------
def test_album_group_numbers_must_be_whole_numbers():
    face = Face((0.0, 0.0, 10.0, 10.0), 0.99, ((1.0, 1.0),) * 5)
    faces = [AlbumFace(i, f"{i}.jpg", Path(f"{i}.jpg"), "0" * 64, face, np.ones(4, np.float32)) for i in range(3)]
    album = Album(MODEL, "agglomerative", 0.5, 3, faces, [0, 0, 1], [])
    for bad in (1.5, True, "1.5", float("nan"), "abc"):
        with pytest.raises(InvalidParameterError, match="The group number must be a whole number"):
            album.group(bad)
        with pytest.raises(InvalidParameterError, match="The face number must be a whole number"):
            album.take_out(bad)
    with pytest.raises(InvalidParameterError, match="Pick two different groups"):
        album.merge(1, "1")  # a number sent as text is still that number


# -- fine-tune names and epochs --------------------------------------------------------------------------
def cast_vectors(people: int = 6, photos: int = 4) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(people, 128))
    vectors = np.concatenate([c + 0.3 * rng.normal(size=(photos, 128)) for c in centres]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, [f"p{i}" for i in range(people) for _ in range(photos)]


@pytest.mark.parametrize("name", ["a..b", "x-", "y_", "z."])
def test_finetune_refuses_a_name_chroma_refuses_before_saving(settings, tmp_path, name):
    pipeline = Pipeline(replace(settings, home=tmp_path))
    vectors, names = cast_vectors()
    data = LabelledEmbeddings(vectors, names, [str(i) for i in range(len(names))], [])
    with pytest.raises(InvalidNameError, match="cannot be a model name"):
        finetune(pipeline, data, MODEL, name, epochs=1)
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_dashboard_finetune_refuses_a_bad_name_before_training(settings, tmp_path):
    pipeline = Pipeline(replace(settings, home=tmp_path))
    gallery = Gallery.open(pipeline, open_store(ephemeral=True, namespace=f"t{uuid.uuid4().hex[:12]}"))
    vectors, names = cast_vectors()
    rows = [(n, f"{i}.jpg", f"{i:064x}", (0.0, 0.0, 50.0, 50.0), v) for i, (n, v) in enumerate(zip(names, vectors))]
    store_embedded(gallery, MODEL, rows)
    with pytest.raises(InvalidNameError, match="cannot be a model name"):
        finetune_gallery(gallery, MODEL, "a..b", epochs=1)
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())
    assert gallery.store.models() == [MODEL]


@pytest.mark.parametrize("bad", ["abc", math.nan, math.inf, 0, 2.5, True, 10_000])
def test_epochs_are_a_whole_number_in_range(bad):
    with pytest.raises(InvalidParameterError, match="The number of epochs must be a whole number from 1 to 1000"):
        params.epochs(bad)


def test_boolean_accepts_only_booleans():
    assert params.boolean(True, "x") is True and params.boolean(False, "x") is False
    for bad in ("false", "no", "true", "", 1, 0, None, [True]):
        with pytest.raises(InvalidParameterError, match="must be true or false"):
            params.boolean(bad, "The confirmation")


# -- settings from the environment -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "variable, value, command, sentence",
    [
        (
            "FACEDEMO_MAX_PIXELS",
            "abc",
            ["app.py"],
            "FACEDEMO_MAX_PIXELS must be a whole number from 1 to 1e+09, not 'abc'.",
        ),
        (
            "FACEDEMO_TARGET_FPIR",
            "5",
            ["app.py"],
            "FACEDEMO_TARGET_FPIR must be a number more than 0 and at most 0.5, not 5.",
        ),
        ("FACEDEMO_TARGET_FPIR", "5", ["-m", "facedemo", "models"], "FACEDEMO_TARGET_FPIR must be a number"),
        ("FACEDEMO_MAX_PIXELS", "nan", ["-m", "facedemo", "models"], "FACEDEMO_MAX_PIXELS must be a whole number"),
        (
            "FACEDEMO_CONCURRENCY",
            "0",
            ["-m", "facedemo", "models"],
            "FACEDEMO_CONCURRENCY must be a whole number from 1",
        ),
    ],
)
def test_a_bad_setting_is_one_line_and_a_nonzero_exit(tmp_path, variable, value, command, sentence):
    env = {**os.environ, variable: value, "FACEDEMO_GALLERY": str(tmp_path / "g"), "FACEDEMO_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, *command], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert done.returncode == 2 and sentence in one_error_line(done.stderr), done.stderr


# -- the real dashboard, its gallery outside the working and temp dirs ------------------------------------
@pytest.fixture(scope="module")
def outside():
    """A gallery folder outside cwd and the temp dir, as FACEDEMO_GALLERY=/data/gallery is on a Space."""
    folder = Path.home() / ".cache" / f"facedemo-test-{uuid.uuid4().hex}"
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def dashboard(settings, outside, tmp_path_factory):
    from facedemo.services import Services
    from facedemo.ui import build_app, serve

    home = tmp_path_factory.mktemp("params-home")
    services = Services(replace(settings, gallery_dir=outside / "gallery", home=home, gallery_models=(MODEL,)))
    demo = build_app(services)
    port = free_port()
    serve(demo, services, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    client = Client(url, verbose=False)
    client.predict("Confirm Target", [handle_file(str(EXAMPLES / "hopper.jpg"))], api_name="/enroll")
    yield services, url, client, home
    demo.close()


def people(client) -> list[str]:
    *_, listed = client.predict(api_name="/people")
    return [p["name"] for p in listed]


def raw_call(url: str, api: str, body: bytes) -> tuple[str, str]:
    """One event over plain HTTP, the JSON written by hand (lone surrogates, NaN): (last event, its data)."""
    posted = httpx.post(f"{url}gradio_api/call/{api}", content=body, headers={"Content-Type": "application/json"})
    posted.raise_for_status()
    stream = httpx.get(f"{url}gradio_api/call/{api}/{posted.json()['event_id']}", timeout=120).text
    events = [line[7:] for line in stream.splitlines() if line.startswith("event: ")]
    data = [line[6:] for line in stream.splitlines() if line.startswith("data: ")]
    return events[-1], data[-1] if data else ""


def test_gallery_outside_cwd_and_tmp_lists_people_with_thumbnails(dashboard, outside):
    services, url, client, _ = dashboard
    tiles, _, _, listed = client.predict(api_name="/people")
    assert [p["name"] for p in listed] == ["Confirm Target"]
    assert tiles.count("data:image/jpeg;base64,") == 1 and "Confirm Target (1)" in tiles  # inline, any folder
    # Nothing of the gallery folder is served: not the thumbnails (they travel inline), not the regions beside
    # them, not the Chroma database.
    from facedemo.ui import file_paths

    gallery = (outside / "gallery").resolve()
    assert file_paths(services) == {"blocked_paths": [str(gallery)]}
    thumbs = gallery / "thumbs" / "default"
    for private in (gallery / "chroma.sqlite3", next(thumbs.glob("*.jpg")), next((thumbs / "regions").glob("*.jpg"))):
        assert private.is_file()
        assert httpx.get(f"{url}gradio_api/file={private}").status_code != 200


def test_public_mode_serves_no_gallery_file(settings, tmp_path):
    from facedemo.services import Services
    from facedemo.ui import file_paths

    services = Services(replace(settings, gallery_dir=tmp_path / "g", public=True))
    assert file_paths(services) == {"blocked_paths": [str((tmp_path / "g").resolve())]}


@pytest.mark.parametrize("sure", ["false", "no", "true", "", 0, 1, None])
def test_delete_is_not_confirmed_by_anything_but_true(dashboard, sure):
    _, _, client, _ = dashboard
    with pytest.raises(Exception) as caught:
        client.predict("Confirm Target", sure, api_name="/delete")
    assert "Confirm the delete" in str(caught.value) or "must be true or false" in str(caught.value)
    assert "went wrong on our side" not in str(caught.value)
    assert people(client) == ["Confirm Target"]


def test_delete_over_plain_http_with_sure_no(dashboard):
    _, url, client, _ = dashboard
    event, data = raw_call(url, "delete", b'{"data": ["Confirm Target", "no"]}')
    assert event == "error" and "must be true or false" in data
    assert people(client) == ["Confirm Target"]


def test_rename_to_a_lone_surrogate_or_a_blank_looking_name(dashboard):
    _, url, client, _ = dashboard
    event, data = raw_call(url, "rename", b'{"data": ["Confirm Target", "\\ud800"]}')
    assert event == "error" and NOT_TEXT in data
    for blank in ("\u3164", "\u2800\u2800", "\u0301"):
        with pytest.raises(Exception, match="at least one visible character"):
            client.predict("Confirm Target", blank, api_name="/rename")
    assert people(client) == ["Confirm Target"]


@pytest.mark.parametrize(
    "args, sentence",
    [
        ((MODEL, "a..b", 1), "'a..b' cannot be a model name"),
        ((MODEL, "x-", 1), "'x-' cannot be a model name"),
        ((["dlib-resnet"], "ok-name", 1), "Unknown model '['dlib-resnet']'"),  # raw inputs: not a crash either
        ((MODEL, "ok-name", "abc"), "The number of epochs must be a whole number from 1 to 1000, not 'abc'."),
        (
            (MODEL, "ok-name", 1, "triplet", "dark", "abc"),
            "The severity must be a whole number from 1 to 5, not 'abc'.",
        ),
    ],
)
def test_finetune_api_parameters(dashboard, args, sentence):
    _, _, client, home = dashboard
    with pytest.raises(Exception) as caught:
        client.predict(*args, api_name="/finetune")
    assert sentence in str(caught.value) and "went wrong on our side" not in str(caught.value)
    assert not (home / "models").exists() or not any((home / "models").iterdir())


@pytest.mark.parametrize(
    "body",
    [
        b'"dlib-resnet", "ok-name", NaN, "triplet", "none (clean faces only)", 3',
        b'"dlib-resnet", "ok-name", 3, "triplet", "dark", NaN',
    ],
)
def test_finetune_nan_over_plain_http(dashboard, body):
    _, url, _, _ = dashboard
    event, data = raw_call(url, "finetune", b'{"data": [' + body + b"]}")
    assert event == "error" and "must be a whole number" in data and "not nan" in data, data
