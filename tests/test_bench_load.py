"""`bench load` against the real app: it counts every request, reports errors, and refuses any host but
this machine's."""

from __future__ import annotations

import pytest
from test_app import launch

from facedemo.bench.load import bench_load, loopback_only
from facedemo.cli import main
from facedemo.errors import FaceDemoError


@pytest.mark.parametrize(
    "url", ["http://example.com/", "http://10.0.0.1:7860/", "http://127.0.0.1.example.com/", "file:///etc/passwd"]
)
def test_only_loopback(url):
    with pytest.raises(FaceDemoError, match="only talks to this machine"):
        loopback_only(url)
    assert loopback_only("http://127.0.0.1:7860") == "http://127.0.0.1:7860/" and loopback_only("http://[::1]:80/")


def test_bounds_are_sentences(capsys):
    assert main(["bench", "load", "--clients", "0"]) == 2
    assert "The number of clients must be a whole number from 1 to 200, not 0." in capsys.readouterr().err
    assert main(["bench", "load", "--url", "http://localhost:9/", "--seconds", "1"]) == 2  # nothing listens on port 9
    assert "Could not reach the dashboard" in capsys.readouterr().err


@pytest.mark.slow
def test_a_small_load_run_counts_every_request(settings, tmp_path):
    demo, _, url = launch(settings, tmp_path / "gallery")
    try:
        report = bench_load(url, clients=3, requests=3, seconds=120)
    finally:
        demo.close()
    data = report.to_json()
    assert data["requests"] == 9 and data["errors"] == 0, data
    assert {name: e["calls"] for name, e in data["endpoints"].items()} == {"identify": 3, "people": 3, "verify": 3}
    assert all(0 < e["p50_s"] <= e["p95_s"] for e in data["endpoints"].values())
