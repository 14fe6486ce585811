"""The Album tab of the real dashboard, through its HTTP API with gradio_client: upload photos, group
them, name a group (its faces are enrolled), take a face out, merge; each visitor has their own album."""

from __future__ import annotations

import random
import socket
from dataclasses import replace

import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.shared]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(settings, tmp_path_factory):
    from facedemo.services import Services
    from facedemo.ui import build_app

    services = Services(
        replace(replace(settings, model="dlib-resnet"), gallery_dir=tmp_path_factory.mktemp("gallery"), public=False)
    )
    demo = build_app(services)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield services, f"http://127.0.0.1:{port}/"
    demo.close()


def test_album_group_name_take_out_merge(app, shared_faces):
    services, url = app
    bbt = shared_faces / "bbt_faceapi"
    photos = [p for person in ("amy", "howard") for p in sorted((bbt / person).glob("*.png"))[:3]]
    random.Random(2).shuffle(photos)
    client = Client(url, verbose=False)
    assert {"/cluster", "/album_name", "/album_merge", "/album_take_out"} <= set(
        client.view_api(return_format="dict")["named_endpoints"]
    )

    with pytest.raises(Exception, match="Group an album first"):
        client.predict(0, 1, api_name="/album_merge")
    outputs = client.predict([handle_file(str(p)) for p in photos], "dlib-resnet", "average", api_name="/cluster")
    result, summary = outputs[1], outputs[-2]
    assert "**6** face(s) in **6** photo(s), grouped into **2** group(s)" in summary
    who = {p.name: p.parent.name for p in photos}
    groups = [{who[f["image"]] for f in c["faces"]} for c in result["clusters"]]
    assert sorted(groups, key=sorted) == [{"amy"}, {"howard"}]
    assert all(c["person"] is None for c in result["clusters"])

    # Name group 0: its three faces are enrolled under that name, and the group is labelled with it.
    first = result["clusters"][0]
    person = who[first["faces"][0]["image"]].title()
    outputs = client.predict(0, person, api_name="/album_name")
    assert f"Enrolled **3** face(s) as **{person}**" in outputs[0]
    assert outputs[1]["clusters"][0]["person"] == person
    *_, people = client.predict(api_name="/people")
    assert [(p["name"], p["images"], p["faces"]["dlib-resnet"]) for p in people] == [(person, 3, 3)]

    # Take a face out of group 1, then merge it back.
    face = result["clusters"][1]["faces"][0]["face"]
    message, after = client.predict(face, api_name="/album_take_out")[:2]
    assert f"Face #{face + 1} is now a group of its own" in message
    assert [c["size"] for c in after["clusters"]] == [3, 2, 1]
    message, merged = client.predict(1, 2, api_name="/album_merge")[:2]
    assert [c["size"] for c in merged["clusters"]] == [3, 3]

    # Another visitor has no album: the first one's is not theirs to see or change.
    with pytest.raises(Exception, match="Group an album first"):
        Client(url, verbose=False).predict(0, "Someone", api_name="/album_name")
