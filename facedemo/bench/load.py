"""``bench load``: many clients at once against a running dashboard, through its HTTP API (gradio_client),
as visitors would call it: a mix of verify, identify on a group photo and people. Prints errors, p50/p95
per endpoint and requests per second. Bounded by clients, requests per client and seconds, and refused
for anything but a loopback address: this is for measuring your own server, never someone else's."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from .. import params
from ..errors import GalleryError, InvalidParameterError

EXAMPLES = Path(__file__).resolve().parent.parent / "ui" / "examples"
ENDPOINTS = ("verify", "identify", "people")
Log = Callable[[str], None]


@dataclass
class EndpointFigures:
    calls: int = 0
    errors: int = 0
    seconds: list[float] = field(default_factory=list)
    first_error: str | None = None

    def to_json(self) -> dict:
        times = np.asarray(self.seconds) if self.seconds else np.zeros(1)
        return {
            "calls": self.calls,
            "errors": self.errors,
            "p50_s": round(float(np.percentile(times, 50)), 3),
            "p95_s": round(float(np.percentile(times, 95)), 3),
            "first_error": self.first_error,
        }


@dataclass
class LoadReport:
    url: str
    clients: int
    requests: int
    wall_s: float
    endpoints: dict[str, EndpointFigures]

    @property
    def total(self) -> int:
        return sum(e.calls for e in self.endpoints.values())

    @property
    def errors(self) -> int:
        return sum(e.errors for e in self.endpoints.values())

    def to_json(self) -> dict:
        return {
            "url": self.url,
            "clients": self.clients,
            "requests_per_client": self.requests,
            "wall_s": round(self.wall_s, 1),
            "requests": self.total,
            "errors": self.errors,
            "requests_per_s": round(self.total / max(self.wall_s, 1e-9), 3),
            "endpoints": {name: e.to_json() for name, e in self.endpoints.items()},
        }

    def text(self) -> str:
        data = self.to_json()
        lines = [
            f"{data['requests']} requests from {self.clients} clients in {data['wall_s']} s: {data['requests_per_s']} requests/s, {data['errors']} errors"
        ]
        for name, e in data["endpoints"].items():
            lines.append(
                f"  {name:<9} {e['calls']:>4} calls  {e['errors']:>3} errors  p50 {e['p50_s']:>7.2f} s  p95 {e['p95_s']:>7.2f} s"
                + (f"  first error: {e['first_error']}" if e["first_error"] else "")
            )
        return "\n".join(lines)


def loopback_only(url: str) -> str:
    host = urlparse(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise InvalidParameterError(
            f"bench load only talks to this machine (127.0.0.1, ::1 or localhost), not '{host or url}'."
        )
    return url if url.endswith("/") else url + "/"


def bench_load(
    url: str, clients: int = 20, requests: int = 10, seconds: float = 300.0, log: Log | None = None
) -> LoadReport:
    """``clients`` threads, each with its own gradio_client session, each sending up to ``requests``
    requests (verify, identify, people in turn, starting at a different one per client) until
    ``seconds`` have passed. Enrolls two people first (untimed) so identify has someone to find."""
    from gradio_client import Client, handle_file

    url = loopback_only(url)
    clients = params.number(clients, "The number of clients", 1, 200, integer=True)
    requests = params.number(requests, "The number of requests per client", 1, 1000, integer=True)
    seconds = params.number(seconds, "The time limit (seconds)", 1, 3600)
    photo = {name: str(EXAMPLES / name) for name in ("astronaut.jpg", "astronaut_2.jpg", "hopper.jpg", "group.jpg")}
    try:
        setup = Client(url, verbose=False)
        setup.predict("Grace Hopper", [handle_file(photo["hopper.jpg"])], api_name="/enroll")
        setup.predict("Eileen Collins", [handle_file(photo["astronaut.jpg"])], api_name="/enroll")
    except Exception as exc:
        raise GalleryError(
            f"Could not reach the dashboard at {url} to set up the benchmark ({type(exc).__name__}: {exc})."
        ) from None
    calls = {
        "verify": lambda c: c.predict(
            handle_file(photo["astronaut.jpg"]), handle_file(photo["astronaut_2.jpg"]), api_name="/verify"
        ),
        "identify": lambda c: c.predict(handle_file(photo["group.jpg"]), api_name="/identify"),
        "people": lambda c: c.predict(api_name="/people"),
    }
    figures: dict[str, EndpointFigures] = defaultdict(EndpointFigures)
    lock = threading.Lock()
    started = time.monotonic()
    deadline = started + seconds

    def visitor(index: int) -> None:
        try:
            client = Client(url, verbose=False)
        except Exception as exc:
            with lock:
                figures["connect"].calls += 1
                figures["connect"].errors += 1
                figures["connect"].first_error = figures["connect"].first_error or f"{type(exc).__name__}: {exc}"[:200]
            return
        for i in range(requests):
            if time.monotonic() >= deadline:
                return
            name = ENDPOINTS[(index + i) % len(ENDPOINTS)]
            t0 = time.monotonic()
            error = None
            try:
                calls[name](client)
            except Exception as exc:  # counted and reported: the point is to see them
                error = f"{type(exc).__name__}: {exc}"[:200]
            with lock:
                entry = figures[name]
                entry.calls += 1
                entry.seconds.append(time.monotonic() - t0)
                if error:
                    entry.errors += 1
                    entry.first_error = entry.first_error or error

    threads = [threading.Thread(target=visitor, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 120)  # a request under way may finish past the deadline
    wall = time.monotonic() - started
    if log:
        log(f"bench load: {clients} clients x {requests} requests against {url} took {wall:.1f} s")
    return LoadReport(url, clients, requests, wall, {name: figures[name] for name in sorted(figures)})
