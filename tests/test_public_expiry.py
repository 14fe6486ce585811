"""Public demo mode: a visitor's data goes however they leave. A plain HTTP client never says goodbye,
a killed server never hears it; both are covered by the purge at start-up and by expiry after a time
without requests. Run against the real app (gradio_client, raw HTTP) and a real server process."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from test_app import EXAMPLES, free_port  # noqa: E402

from facedemo.gallery import open_store  # noqa: E402
from facedemo.services import Services, Visitors  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def photo(name: str):
    return handle_file(str(EXAMPLES / name))


def launch_public(settings, gallery: Path, ttl_s: float = 3600.0, explorer=None):
    from facedemo.ui import build_app

    services = Services(replace(settings, gallery_dir=gallery, public=True, visitor_ttl_s=ttl_s))
    demo = build_app(services, explorer)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return demo, services, f"http://127.0.0.1:{port}/"


def visitor_namespaces(services: Services) -> set[str]:
    return {ns for ns in services.store.namespaces() if ns.startswith("v")}


def call(url: str, api: str, data: list, session: str | None = None) -> list:
    """gradio's plain HTTP API (POST /gradio_api/call/<api>, then read the event stream): no heartbeat."""
    body = {"data": data, **({"session_hash": session} if session else {})}
    request = urllib.request.Request(
        f"{url}gradio_api/call/{api}", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as reply:
        event_id = json.loads(reply.read())["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/{api}/{event_id}", timeout=120) as stream:
        text = stream.read().decode()
    lines = [l for l in text.splitlines() if l.startswith("data:")]
    return json.loads(lines[-1][5:])


@pytest.mark.slow
def test_http_only_visitors_expire_by_age_without_a_goodbye(settings, tmp_path):
    demo, services, url = launch_public(settings, tmp_path / "gallery", ttl_s=3)
    try:
        services.visitors.stop_expiry()  # this test drives the clock itself; the sweeper is tested below
        client = Client(url, verbose=False)  # a gradio_client session: never opens the heartbeat stream
        client.predict("Visitor One", [photo("hopper.jpg")], api_name="/enroll")
        assert len(visitor_namespaces(services)) == 1
        # The same visitor's data answers them through raw HTTP with their session hash ...
        people = call(url, "people", [], session=client.session_hash)
        assert [p["name"] for p in people[-1]] == ["Visitor One"]
        # ... and nobody else's request, with or without a session hash, sees it.
        assert call(url, "people", [])[-1] == [] and call(url, "people", [], session="someone-else")[-1] == []
        thumbs = services.store.thumbs_dir.parent
        assert any(p.name.startswith("v") for p in thumbs.iterdir())

        assert services.visitors.expire() == []  # young enough: kept
        time.sleep(3.5)
        gone = services.visitors.expire()
        assert gone == [Visitors.namespace(client.session_hash)]  # listing opened nothing for the others
        assert visitor_namespaces(services) == set() and not any(p.name.startswith("v") for p in thumbs.iterdir())
        assert call(url, "people", [], session=client.session_hash)[-1] == []
    finally:
        demo.close()


def test_the_sweeper_expires_idle_visitors_on_its_own(settings, tmp_path):
    demo, services, url = launch_public(settings, tmp_path / "gallery", ttl_s=2)
    try:
        services.visitors.stop_expiry()
        Client(url, verbose=False).predict("Visitor Two", [photo("astronaut.jpg")], api_name="/enroll")
        assert len(visitor_namespaces(services)) == 1
        services.visitors.start_expiry(every_s=0.5)  # a fresh sweeper on a short period (the default is ttl/4)
        deadline = time.monotonic() + 30
        while visitor_namespaces(services) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert visitor_namespaces(services) == set()
    finally:
        services.visitors.stop_expiry()
        demo.close()


@pytest.mark.slow
def test_a_visitors_finetuned_model_is_theirs_alone_and_goes_with_them(settings, tmp_path, shared_faces):
    """Public mode: a visitor fine-tunes on their own gallery; the model is saved in their folder, they can
    identify with it, nobody else sees or can use it, and it is deleted with the rest of their data."""
    from dataclasses import replace

    home = tmp_path / "home"
    demo, services, url = launch_public(replace(settings, home=home), tmp_path / "gallery")
    try:
        services.visitors.stop_expiry()
        archive = tmp_path / "cast.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            for person in ("amy", "howard", "leonard", "penny", "raj", "sheldon"):
                for path in sorted((shared_faces / "bbt_faceapi" / person).glob("*.png"))[:5]:
                    zf.write(path, f"cast/{person}/{path.name}")
        alice, bob = Client(url, verbose=False), Client(url, verbose=False)
        assert "of **6** people" in alice.predict(handle_file(str(archive)), api_name="/import")
        note, _, *_figures, report = alice.predict("dlib-resnet", "alice-tuned", 3, api_name="/finetune")
        assert report["name"] == "alice-tuned" and "nobody else's" in note
        mine = services.visitors.home(Visitors.namespace(alice.session_hash)) / "models" / "alice-tuned"
        assert (mine / "model.json").is_file() and not (home / "models").exists()
        # Alice identifies with it; it is in her model list and in nobody else's.
        *_, result = alice.predict(
            handle_file(str(shared_faces / "bbt_faceapi" / "penny" / "penny1.png")), "alice-tuned", api_name="/identify"
        )
        assert result["model"] == "alice-tuned" and result["faces"][0]["name"] == "penny"
        assert "alice-tuned" in {s.name for s in services.pipeline_for(alice.session_hash).models()}
        assert "alice-tuned" not in {s.name for s in services.pipeline_for(bob.session_hash).models()}
        assert "alice-tuned" not in {s.name for s in services.pipeline.models()}
        with pytest.raises(Exception, match="Unknown model 'alice-tuned'"):
            bob.predict(
                handle_file(str(shared_faces / "bbt_faceapi" / "penny" / "penny1.png")),
                "alice-tuned",
                api_name="/identify",
            )
        # Bob may use the same name for his own model: names are per visitor.
        assert services.pipeline_for(bob.session_hash).user_models() == {}
        # Her model goes with her gallery, by expiry as by goodbye.
        assert services.visitors.expire(max_age_s=3600) == []
        assert ("alice-tuned", mine) in services.pipeline.loaded()  # identify loaded it
        assert services.visitors.expire(max_age_s=0) == [Visitors.namespace(alice.session_hash)]  # Bob stored nothing
        assert all(name != "alice-tuned" for name, _ in services.pipeline.loaded())  # nor does it stay in memory
        assert not mine.exists() and not (home / "visitors" / Visitors.namespace(alice.session_hash)).exists()
    finally:
        demo.close()


def test_a_visitor_folder_left_by_an_earlier_run_is_purged(settings, tmp_path):
    """A model folder of a visitor whom this process never served (a crash, a restart) is deleted at once."""
    from dataclasses import replace

    home = tmp_path / "home"
    left = home / "visitors" / ("v" + "ab" * 12) / "models" / "old"
    left.mkdir(parents=True)
    (left / "model.json").write_text("{}")
    demo, services, url = launch_public(replace(settings, home=home), tmp_path / "gallery")
    try:
        deadline = time.monotonic() + 10
        while left.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not left.exists() and not left.parent.parent.exists()
    finally:
        services.visitors.stop_expiry()
        demo.close()


@pytest.mark.slow
def test_a_killed_server_leaves_nothing_for_the_old_session_hash(tmp_path):
    """SIGKILL the real app while a visitor has faces in it; the next start purges them, and their old
    session hash finds an empty gallery."""
    gallery, home = tmp_path / "gallery", tmp_path / "home"

    def start(port: int) -> subprocess.Popen:
        env = {
            **os.environ,
            "FACEDEMO_PUBLIC": "1",
            "FACEDEMO_GALLERY": str(gallery),
            "FACEDEMO_HOME": str(home),
            "FACEDEMO_MODEL": "dlib-resnet",
            "GRADIO_SERVER_PORT": str(port),
            "PYTHONPATH": str(REPO),
        }
        process = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/gradio_api/info", timeout=2)
                return process
            except OSError:
                time.sleep(1)
        process.kill()
        pytest.fail("the app did not start within 120 s")

    port = free_port()
    first = start(port)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        client.predict("Visitor Three", [photo("hopper.jpg")], api_name="/enroll")
        session = client.session_hash
        assert len([ns for ns in open_store(gallery).namespaces() if ns.startswith("v")]) == 1
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    assert any(ns.startswith("v") for ns in open_store(gallery).namespaces())  # the crash left it behind

    port = free_port()
    second = start(port)
    try:
        url = f"http://127.0.0.1:{port}/"
        assert call(url, "people", [], session=session)[-1] == []
        assert not any(
            ns.startswith("v") for ns in open_store(gallery).namespaces() if ns != Visitors.namespace(session)
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)


def test_visitor_thumbnails_travel_inline_only_to_their_visitor(settings, tmp_path):
    """A thumbnail served by file URL would answer any client holding the URL; in public mode the listing
    carries each thumbnail inline, so there is no URL to hold, and no copy lands in gradio's cache."""
    demo, services, url = launch_public(settings, tmp_path / "gallery")
    try:
        services.visitors.stop_expiry()
        cache = Path(demo.GRADIO_CACHE)
        before = {p for p in cache.rglob("*") if p.is_file()}  # the cache is shared with earlier apps of this run
        alice, bob = Client(url, verbose=False), Client(url, verbose=False)
        alice.predict("Grace Hopper", [photo("hopper.jpg")], api_name="/enroll")
        tiles, _, _, people = alice.predict(api_name="/people")
        assert [p["name"] for p in people] == ["Grace Hopper"]
        (thumb,) = (services.store.thumbs_dir.parent / Visitors.namespace(alice.session_hash)).glob("*.jpg")
        data = base64.b64encode(thumb.read_bytes()).decode()
        assert f"data:image/jpeg;base64,{data}" in tiles and "Grace Hopper (1)" in tiles
        assert "gradio_api" not in tiles and "file=" not in tiles
        # Nothing of the thumbnail was copied where gradio serves files from.
        cached = [p for p in cache.rglob("*") if p.is_file() and p not in before]
        assert cached and all(p.read_bytes() != thumb.read_bytes() for p in cached)  # the upload is there, no thumbnail
        # Another visitor's listing holds none of it.
        other, _, _, nobody = bob.predict(api_name="/people")
        assert nobody == [] and data not in other and "Nobody in your private gallery yet." in other
        # With people in the shared gallery the empty state says that Identify searches them too (it said
        # "Nobody enrolled yet" while Identify said "With 9 people enrolled").
        services.owned().enroll("Eileen Collins", [EXAMPLES / "astronaut.jpg"])
        other, _, _, nobody = bob.predict(api_name="/people")
        assert nobody == [] and "Identify also searches the demo gallery listed below (1 person)" in other
    finally:
        demo.close()


def test_inline_tiles_escape_captions(hopper_path):
    from facedemo.ui.common import inline_tiles

    html = inline_tiles([(hopper_path, '<img src=x onerror="alert(1)">')])
    assert "<img src=x" not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert html.count("data:image/jpeg;base64,") == 1
    assert inline_tiles([(Path("/nonexistent.jpg"), "gone")], "Nobody yet.") == "<p>Nobody yet.</p>"


def test_a_visitors_explorations_leave_memory_with_them(settings, tmp_path):
    """The Explorer caches maps of a gallery (names, embeddings); a visitor's go when their data does."""
    from facedemo.ui.explore_tab import ExplorerState

    explorer = ExplorerState()
    demo, services, url = launch_public(settings, tmp_path / "gallery", explorer=explorer)
    try:
        services.visitors.stop_expiry()
        client = Client(url, verbose=False)
        client.predict("Eileen Collins", [photo("astronaut.jpg"), photo("astronaut_2.jpg")], api_name="/enroll")
        *_, summary = client.predict(["dlib-resnet"], "pca", api_name="/explore")
        assert summary["dlib-resnet"]["faces"] == 2
        namespace = Visitors.namespace(client.session_hash)
        assert namespace in explorer.namespaces()
        assert services.visitors.expire(max_age_s=0) == [namespace]
        assert namespace not in explorer.namespaces()
    finally:
        demo.close()


def test_visitors_who_stored_nothing_are_forgotten_on_the_same_clock(settings, tmp_path):
    """Every request remembers its visitor's last time; a visitor who never enrolled anything has no gallery to
    drop, and still leaves the table when their time is up (it used to keep every visitor ever seen)."""
    services = Services(replace(settings, gallery_dir=tmp_path / "gallery", public=True, visitor_ttl_s=60))
    for i in range(500):
        services.pipeline_for(f"session-{i}")  # what each request does first
    assert services.visitors.count() == 500
    assert services.visitors.expire() == [] and services.visitors.count() == 500  # within their time: kept
    assert services.visitors.expire(max_age_s=0) == [] and services.visitors.count() == 0
