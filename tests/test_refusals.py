"""Every refusal is a sentence, those gradio makes before facedemo's handler runs included: a file parameter
given a URL, /etc/passwd, file://, a path outside gradio's upload folder or another visitor's thumbnail is
refused (nothing read, nothing fetched), and the API's ``error`` field, which the page's toast shows, says
why, naming the input and nothing of the server. The real app in public mode, gradio_client and raw HTTP."""

from __future__ import annotations

import json
import shutil
import urllib.request

import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from test_app import EXAMPLES, launch  # noqa: E402

from facedemo.services import Visitors  # noqa: E402

URL = "a web address cannot be used here"
PATH = "only a file uploaded to this page can be used, not a path on the server"
SHAPE = "what was sent is not an uploaded file"


@pytest.fixture(scope="module")
def app(settings, tmp_path_factory):
    demo, services, url = launch(settings, tmp_path_factory.mktemp("gallery"), public=True)
    yield services, url
    demo.close()


def file_data(path: str) -> dict:
    return {"path": path, "url": None, "meta": {"_type": "gradio.FileData"}}


def call(url: str, api: str, data: list, session: str = "an-attacker") -> dict:
    """gradio's plain HTTP API; returns the last event's name and data."""
    body = json.dumps({"data": data, "session_hash": session}).encode()
    request = urllib.request.Request(f"{url}gradio_api/call/{api}", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as reply:
        event_id = json.loads(reply.read())["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/{api}/{event_id}", timeout=120) as stream:
        lines = stream.read().decode().splitlines()
    events = [line[7:] for line in lines if line.startswith("event: ")]
    payloads = [json.loads(line[5:]) for line in lines if line.startswith("data:")]
    return {"event": events[-1], "data": payloads[-1]}


def refused(answer: dict, label: str, words: str) -> str:
    assert answer["event"] == "error", answer
    message = (answer["data"] or {}).get("error")
    assert message and message.startswith(label + ":") and words in message, answer
    assert "/" not in message.split(":", 1)[1], message  # no path, URL or folder of the server
    return message


@pytest.mark.parametrize(
    "value, words",
    [
        (file_data("/etc/passwd"), PATH),
        (file_data("../../../../etc/passwd"), PATH),
        (file_data("file:///etc/passwd"), URL),
        (file_data("http://127.0.0.1:9/face.jpg"), URL),
        (file_data("https://example.com/face.jpg"), URL),
        ({"path": "data:image/png;base64,iVBORw0KGgo=", "meta": {"_type": "gradio.FileData"}}, URL),
        ("/etc/passwd", SHAPE),
    ],
)
def test_each_kind_of_path_is_refused_in_words(app, value, words):
    _, url = app
    refused(call(url, "identify", [value, None, 3, None]), "Photo (one face or a group)", words)


@pytest.mark.parametrize(
    "api, data, label",
    [
        ("verify", lambda bad: [bad, bad, None, 0.5], "Photo A"),
        ("compare", lambda bad: [bad, bad], "Photo A"),
        ("explain", lambda bad: [bad, bad], "Photo A"),
        ("identify_compare", lambda bad: [bad, 3, None], "Photo (one face or a group)"),
        ("enroll_face", lambda bad: [bad, 0, "Ada", None, False], "Photo (one face or a group)"),
        ("enroll", lambda bad: ["Ada", [bad], False, "ask"], "Photos (one face each)"),
        ("import", lambda bad: [bad], "A zip with one folder per person"),
        ("cluster", lambda bad: [[bad], None, None], "Photos, or a zip of photos"),
    ],
)
def test_every_file_parameter_refuses_a_server_path_in_words(app, api, data, label):
    _, url = app
    refused(call(url, api, data(file_data("/etc/passwd"))), label, PATH)


def test_another_visitors_thumbnail_and_a_file_outside_the_cache_are_refused(app, tmp_path):
    services, url = app
    visitor = Client(url, verbose=False)
    visitor.predict("Grace", [handle_file(str(EXAMPLES / "hopper.jpg"))], api_name="/enroll")
    store = services.store.with_namespace(Visitors.namespace(visitor.session_hash))
    thumb = store.thumb_path(store.faces()[0].id)
    assert thumb is not None and thumb.is_file()
    refused(call(url, "identify", [file_data(str(thumb)), None, 3, None]), "Photo (one face or a group)", PATH)
    outside = tmp_path / "face.jpg"  # a real photo, in the system's temp folder but not uploaded
    shutil.copy(EXAMPLES / "hopper.jpg", outside)
    refused(call(url, "verify", [file_data(str(outside))] * 2 + [None, 0.5]), "Photo A", PATH)


@pytest.mark.parametrize(
    "api, data, sentence",
    [
        ("verify", [], "/verify takes 4 value(s), in this order: Photo A, Photo B, "),
        ("identify", [None], "/identify takes 4 value(s), in this order: Photo (one face or a group), "),
        ("enroll", ["Ada"], "/enroll takes 4 value(s), in this order: Name, Photos (one face each), "),
    ],
)
def test_a_request_short_of_values_is_told_what_the_action_takes(app, api, data, sentence):
    _, url = app
    answer = call(url, api, data)
    assert answer["event"] == "error", answer
    message = answer["data"]["error"]
    sent = f"this request sent {len(data)} value" + ("" if len(data) == 1 else "s")
    assert message.startswith(sentence) and message.endswith(sent + "."), message


def test_gradio_client_gets_the_sentence_for_a_url(app):
    """gradio_client hands a URL to the server as it is (it uploads only local files): its error is ours."""
    _, url = app
    with pytest.raises(Exception) as caught:
        Client(url, verbose=False).predict(
            handle_file("http://127.0.0.1:9/a.jpg"), handle_file("https://example.com/b.jpg"), api_name="/compare"
        )
    assert f"Photo A: {URL}" in str(caught.value)


def test_an_upload_as_a_browser_sends_it_is_accepted(app):
    """The page sends an uploaded file's cache path with the URL gradio serves it under: that is no web
    address to refuse (only ``path`` is read before the handler)."""
    import httpx

    _, url = app
    with open(EXAMPLES / "hopper.jpg", "rb") as fh:
        uploaded = httpx.post(f"{url}gradio_api/upload", files={"files": ("hopper.jpg", fh, "image/jpeg")}).json()[0]
    value = {
        "path": uploaded,
        "url": f"{url}gradio_api/file={uploaded}",
        "orig_name": "hopper.jpg",
        "mime_type": "image/jpeg",
        "meta": {"_type": "gradio.FileData"},
    }
    answer = call(url, "identify", [value, None, 3, None])
    assert answer["event"] == "complete" and answer["data"][-1]["faces"], answer
