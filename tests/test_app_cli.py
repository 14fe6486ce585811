"""Two processes on one gallery: the dashboard keeps serving while the CLI deletes and renames in its folder.

A delete or rename rebuilds the gallery's collections, and each rebuilt copy has a new Chroma id; the
dashboard's open handles then point at collections that no longer exist. The store looks such a collection
up by name again and retries once, so every endpoint goes on working, and no message ever shows an id.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from test_app import launch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "facedemo" / "ui" / "examples"
CHROMA_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def photo(name: str):
    return handle_file(str(EXAMPLES / name))


def cli(settings, gallery: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "FACEDEMO_HOME": str(settings.home),
        "FACEDEMO_DEVICE": "cpu",
        "FACEDEMO_MODEL": "dlib-resnet",
        "FACEDEMO_GALLERY_MODELS": "dlib-resnet",
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "facedemo", *args, "--gallery", str(gallery)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def names(client: Client) -> list[str]:
    *_, people = client.predict(api_name="/people")
    return sorted(p["name"] for p in people)


def identified(client: Client) -> list[str | None]:
    *_, note, result = client.predict(photo("group.jpg"), api_name="/identify")
    assert not CHROMA_ID.search(note + str(result))
    return [f["name"] for f in result["faces"]]


def test_the_dashboard_keeps_serving_while_the_cli_deletes_and_renames(settings, tmp_path):
    gallery = tmp_path / "gallery"
    demo, services, url = launch(replace(settings, gallery_models=("dlib-resnet",)), gallery)
    try:
        client = Client(url, verbose=False)
        client.predict("Eileen Collins", [photo("astronaut.jpg")], api_name="/enroll")
        client.predict("Grace Hopper", [photo("hopper.jpg")], api_name="/enroll")
        assert names(client) == ["Eileen Collins", "Grace Hopper"]
        assert identified(client) == ["Eileen Collins", "Grace Hopper"]  # every collection is open in the app

        deleted = cli(settings, gallery, "people", "delete", "Grace Hopper")
        assert deleted.returncode == 0, deleted.stderr
        assert names(client) == ["Eileen Collins"]
        assert identified(client) == ["Eileen Collins", None]

        renamed = cli(settings, gallery, "people", "rename", "Eileen Collins", "Eileen Marie Collins")
        assert renamed.returncode == 0, renamed.stderr
        assert names(client) == ["Eileen Marie Collins"]
        assert identified(client) == ["Eileen Marie Collins", None]

        note, enrolled = client.predict("Grace Hopper", [photo("hopper.jpg")], api_name="/enroll")
        assert enrolled["person"] == "Grace Hopper" and not CHROMA_ID.search(note)
        assert identified(client) == ["Eileen Marie Collins", "Grace Hopper"]
        message, _ = client.predict("Grace Hopper", True, api_name="/delete")
        assert "Deleted **Grace Hopper**" in message
        assert names(client) == ["Eileen Marie Collins"]

        # and the CLI sees what the dashboard did
        listed = cli(settings, gallery, "people", "--json")
        assert listed.returncode == 0, listed.stderr
        assert "Eileen Marie Collins" in listed.stdout and "Grace Hopper" not in listed.stdout
    finally:
        demo.close()
