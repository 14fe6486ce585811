"""Public mode's memory per visitor: what a visitor stored is given back when they expire. Chroma 1.5 keeps
the vector index of every collection a client opened, deleted ones included, in a cache sized from the
open-file limit (4,000 indexes at 20,000): ~10 MB per visitor that never came back while visitors shared
the gallery's client (2.08x after 300). Each visitor now has their own embedded Chroma, closed and deleted
when they expire."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_memory_per_visitor_is_given_back_on_expiry(tmp_path):
    """Three waves of 30 public visitors, each storing 2 people x 3 faces, then expired: resident memory after
    the last wave within 10% of after the first (it was 1.5x), nothing left in the store, on disk or in the
    visitor table (``Services._seen`` kept 20,000 entries after ``expire()``)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "FACEDEMO_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "facedemo", "bench", "visitors", "--waves", "3", "--visitors", "30", "--json"]
        + ["--gallery", str(tmp_path / "gallery")],
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
    assert not any((tmp_path / "gallery" / "visitors").iterdir())  # each visitor's own Chroma folder is gone
    assert not any((tmp_path / "gallery" / "thumbs").glob("v*"))
    if waves[0]["resident_mb"] is None:
        pytest.skip("resident memory cannot be read on this system (/proc/self/status)")
    assert report["growth"] <= 1.10, f"resident memory grew {report['growth']:.2f}x over three waves of visitors"
