"""Public mode at scale: a live visitor costs no open files or threads beyond a small pool of open Chroma
clients (each holds ~23 files and ~7 threads; 130 live visitors once held 3,887 files and 791 threads), a
visitor whose client was closed finds their gallery whole, and a visitor's files go within a minute after
their time to live, their uploads in gradio's cache included. Real Chroma, the real app."""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facedemo.bench.visitors import _visit, open_files, threads
from facedemo.files import scratch_root
from facedemo.services import Services, Visitors

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "facedemo" / "ui" / "examples"


@pytest.mark.slow
def test_visitors_clients_stay_in_their_pool_and_lose_nothing(settings, tmp_path):
    services = Services(replace(settings, public=True, gallery_dir=tmp_path / "gallery"))
    pool = services.store.visitors
    pool.capacity = 2  # small, so that four visitors are evicted and reopened
    rng, thumb = np.random.default_rng(0), Image.new("RGB", (112, 112), (128, 96, 80))
    _visit(services, "warm-up", 1, 1, rng, thumb)
    services.visitors.expire(0.0)
    files, running = open_files(), threads()
    sessions = [uuid.uuid4().hex for _ in range(4)]
    for session in sessions:
        _visit(services, session, 1, 2, rng, thumb)
        assert pool.open_count() <= 2
    if files is not None:  # ~23 files and ~7 threads per open client, not per visitor
        assert open_files() <= files + 2 * 40, (files, open_files())
        assert threads() <= running + 2 * 12, (running, threads())

    def check(session: str) -> None:  # every visitor's gallery is whole after their client was closed
        store = services.gallery(session).store
        people = store.persons()
        assert [p.name for p in people] == ["Visitor person 0"]
        assert len(store.faces()) == 2 and store.count("dlib-resnet") == 2
        vectors = store.vectors("dlib-resnet", embeddings=True)[1]
        assert store.query_centroids("dlib-resnet", vectors[:1], 1)[0][0].person_id == people[0].id

    pool.capacity = 1  # two threads at once on a pool of one: a client in use is never closed under a call
    errors = []

    def reader(mine: list[str]) -> None:
        try:
            for _ in range(3):
                for session in mine:
                    check(session)
        except Exception as exc:  # the assertion below shows it
            errors.append(exc)

    workers = [threading.Thread(target=reader, args=(sessions[i::2],)) for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    assert pool.open_count() <= 1
    assert sorted(services.visitors.expire(0.0)) == sorted(Visitors.namespace(s) for s in sessions)
    assert pool.open_count() == 0 and not any((tmp_path / "gallery" / "visitors").iterdir())


@pytest.mark.slow
def test_a_visitors_files_and_uploads_go_within_a_minute_of_their_ttl(settings, tmp_path):
    """One visitor enrolls a photo through the real app with a 3 s time to live and never says goodbye: their
    gallery, thumbnails, regions, scratch and the upload in gradio's cache are gone well inside TTL + 60 s
    (the sweeps run every quarter of the time to live, at most every 30 s)."""
    from gradio.utils import get_upload_folder
    from gradio_client import Client, handle_file
    from test_public_expiry import launch_public, visitor_namespaces

    from facedemo.vision.images import image_sha

    unique = tmp_path / "visitor.jpg"  # bytes nobody else uploads (an example's copy is kept by gradio)
    Image.open(EXAMPLES / "hopper.jpg").convert("RGB").rotate(2).save(unique, quality=90)
    demo, services, url = launch_public(settings, tmp_path / "gallery", ttl_s=3)
    try:
        client = Client(url, verbose=False)
        client.predict("Visitor Upload", [handle_file(str(unique))], api_name="/enroll")
        last_request = time.monotonic()
        namespace = Visitors.namespace(client.session_hash)
        thumbs = services.store.thumbs_dir.parent / namespace
        cache, sha = Path(get_upload_folder()), image_sha(unique)
        (scratch_root() / namespace).mkdir(parents=True, exist_ok=True)  # what an album or an import unpacks

        def left() -> list[str]:
            found = [str(p) for p in cache.rglob("*") if p.is_file() and image_sha_or_none(p) == sha]
            found += [namespace] if namespace in visitor_namespaces(services) else []
            found += [str(thumbs)] if thumbs.exists() else []
            return found + ([str(scratch_root() / namespace)] if (scratch_root() / namespace).exists() else [])

        def image_sha_or_none(path: Path) -> str | None:
            try:
                return image_sha(path)
            except Exception:
                return None

        assert len(left()) >= 3, left()  # the test can fail: the upload, the gallery and the thumbnails are there
        assert any((thumbs / "regions").iterdir())
        while left() and time.monotonic() - last_request < 3 + 60:
            time.sleep(0.5)
        assert left() == []
        took = time.monotonic() - last_request
        print(f"gone {took:.1f} s after the last request (time to live 3 s)")
        assert took < 3 + 60
    finally:
        services.visitors.stop_expiry()
        demo.close()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="open files are read from /proc")
def test_bench_live_reports_files_threads_and_memory(tmp_path):
    """``bench visitors --live``: the figures docs/BENCHMARKS.md records, on a few visitors."""
    import json
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(REPO), "FACEDEMO_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "facedemo", "bench", "visitors", "--live", "9", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["live"] == 9 and report["samples"][-1]["live"] == 9
    assert report["samples"][-1]["open_clients"] <= 8 and report["stored_namespaces"] == 0
    assert report["peak_open_files"] < 1000 and report["peak_threads"] < 200
    assert report["after"]["open_clients"] == 0
