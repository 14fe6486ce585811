"""The bad-input corpus through the real dashboard's HTTP API (gradio_client): every refusal is the
core's sentence, never the catch-all "Something went wrong on our side"."""

from __future__ import annotations

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
