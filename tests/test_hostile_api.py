"""The bad-input corpus through the real dashboard's HTTP API (gradio_client): every refusal is the
core's sentence, never the catch-all "Something went wrong on our side"."""

from __future__ import annotations

import os
import tempfile

import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from test_app import EXAMPLES, launch  # noqa: E402
from test_hostile_inputs import hostile_zip  # noqa: E402


@pytest.fixture(scope="module")
def client(settings, tmp_path_factory):
    demo, services, url = launch(settings, tmp_path_factory.mktemp("gallery"))
    yield Client(url, verbose=False)
    demo.close()


def photo(name: str):
    return handle_file(str(EXAMPLES / name))


@pytest.mark.parametrize(
    "api, args, sentence",
    [
        (
            "/enroll_face",
            (photo("group.jpg"), "abc", "Ada"),
            "The face number must be a whole number from 0 to 10000, not 'abc'.",
        ),
        (
            "/enroll_face",
            (photo("group.jpg"), -2, "Ada"),
            "The face number must be a whole number from 0 to 10000, not -2.",
        ),
        (
            "/enroll_face",
            (photo("group.jpg"), 1.5, "Ada"),
            "The face number must be a whole number from 0 to 10000, not 1.5.",
        ),
        (
            "/verify",
            (photo("hopper.jpg"), photo("astronaut.jpg"), None, 1e9),
            "must be a number more than 0 and at most 2, not 1e+09.",
        ),
        (
            "/verify",
            (photo("hopper.jpg"), photo("astronaut.jpg"), None, -1),
            "must be a number more than 0 and at most 2, not -1.",
        ),
        ("/identify", (photo("hopper.jpg"), None, "abc"), "top-k) must be a whole number from 1 to 50, not 'abc'."),
        ("/identify", (photo("hopper.jpg"), None, 1_000_000), "top-k) must be a whole number from 1 to 50, not 1e+06."),
        ("/identify_compare", (photo("hopper.jpg"), "abc"), "top-k) must be a whole number from 1 to 50, not 'abc'."),
    ],
)
def test_parameters_out_of_range_are_sentences(client, api, args, sentence):
    with pytest.raises(Exception) as caught:
        client.predict(*args, api_name=api)
    assert sentence in str(caught.value) and "went wrong on our side" not in str(caught.value)


def test_a_hostile_zip_through_the_api(client, tmp_path):
    archive = hostile_zip(tmp_path / "upload.zip")
    summary = client.predict(handle_file(str(archive)), api_name="/import")
    assert "Imported **2** face(s) of **2** people" in summary
    for reason in (
        "Bad CRC-32",
        "encrypted",
        "deflate64",
        "like a zip bomb",
        "points outside",
        "same name as one of its folders",
    ):
        assert reason in summary
    assert "people/Secret/e.jpg" in summary and tempfile.gettempdir() + "/" not in summary
    assert "it stays with Grace only, not Hopper." in summary


def test_hostile_images_through_the_api_are_sentences_and_never_run_ghostscript(client, tmp_path, monkeypatch):
    """An EPS (with a fake `gs` first on PATH, which logs any call), a damaged TIFF and a scan bomb, uploaded
    to /identify and /verify: each gets the core's sentence, and Ghostscript is never started."""
    from PIL import EpsImagePlugin
    from test_hostile_images import bad_tiff, encoded, scan_bomb

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "gs.log"
    (bin_dir / "gs").write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexit 1\n')
    (bin_dir / "gs").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", None)
    files = {
        "portrait.eps": (encoded("EPS"), "is a PostScript/EPS file; facedemo reads photos in"),
        "scan.tif": (bad_tiff(), "could not be decoded"),
        "bomb.jpg": (scan_bomb(3000), "scans (a photo has about 10)"),
    }
    for name, (data, sentence) in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        for api, args in (
            ("/identify", (handle_file(str(path)),)),
            ("/verify", (handle_file(str(path)), photo("hopper.jpg"))),
        ):
            with pytest.raises(Exception) as caught:
                client.predict(*args, api_name=api)
            assert sentence in str(caught.value) and "went wrong on our side" not in str(caught.value), (name, api)
    assert not log.exists(), log.read_text()
