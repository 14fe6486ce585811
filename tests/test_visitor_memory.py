"""Public mode's memory per visitor: what a visitor stored is given back when they expire. Chroma 1.5 kept
the vector index of every deleted collection in a cache sized from the open-file limit (4,000 indexes at
20,000), ~10 MB per visitor that never came back (1.64x after 120 visitors); the store now bounds it."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from facedemo.gallery.store import make_client

REPO = Path(__file__).resolve().parent.parent


def test_the_index_cache_is_bounded_and_the_file_limit_put_back(tmp_path):
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    client = make_client(tmp_path / "g", cache=16)
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == before
    size = client._server.hnsw_cache_size  # what Chroma was built with (its own default: soft limit // 5)
    assert size < before[0] // 5 or before[0] < 2000
    assert size >= 16
    col = client.get_or_create_collection("fd.faces.x", embedding_function=None)
    col.add(ids=["a"], embeddings=[[1.0, 0.0]])
    assert col.count() == 1  # the database still opens files with the limit put back


@pytest.mark.slow
def test_memory_per_visitor_is_given_back_on_expiry(tmp_path):
    """Three waves of 30 public visitors, each storing 2 people x 3 faces, then expired: resident memory after
    the last wave within 10% of after the first (it was 1.5x), nothing left in the store or the visitor table."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "FACEDEMO_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "facedemo", "bench", "visitors", "--waves", "3", "--visitors", "30", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    waves = report["waves"]
    print([w["resident_mb"] for w in waves])
    assert len(waves) == 3
    assert all(w["stored_namespaces"] == 0 and w["tracked"] == 0 for w in waves)
    if waves[0]["resident_mb"] is None:
        pytest.skip("resident memory cannot be read on this system (/proc/self/status)")
    assert report["growth"] <= 1.10, f"resident memory grew {report['growth']:.2f}x over three waves of visitors"
