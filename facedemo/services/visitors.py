"""Public mode's visitors: which browser gallery a page works in, when each visitor was last seen, and the
deletion of what they stored (when they ask, after their time to live, or left by an earlier run).

No gradio here: the façade (``services.Services``) builds one ``Visitors`` and the UI calls it.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import GalleryError
from ..files import purge_scratch, scratch_owners
from ..gallery import ChromaStore
from ..gallery.store import release_memory
from ..pipeline import Pipeline
from ..settings import Settings

log = logging.getLogger("facedemo.services")
VISITOR = re.compile(r"^v[0-9a-f]{24}$")  # the namespace of a public-mode visitor (see Visitors.namespace)
# The key a browser keeps for its visitor (``Visitors.adopt``): 128 random bits, in hex.
VISITOR_KEY = re.compile(r"^[0-9a-f]{32}$")
# Public mode sweeps idle visitors at least this often: their data goes within this long after their time to
# live (docs/PRIVACY.md promises a minute); a sweep that finds nobody to expire lists two folders.
SWEEP_S = 30.0


class Visitors:
    """Every public-mode visitor this process serves.

    Args:
        settings: the time to live and FACEDEMO_HOME (the visitors' fine-tuned models live under it).
        pipeline: the pipeline whose per-visitor models are unloaded with their visitor.
        store: opens the gallery store (the façade opens it on first use).
    """

    def __init__(self, settings: Settings, pipeline: Pipeline, store: Callable[[], ChromaStore]):
        self.settings = settings
        self.pipeline = pipeline
        self._open_store = store
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}  # visitor namespace -> monotonic time of their last request
        self._pages: dict[str, str] = {}  # an open page's session hash -> its browser's visitor namespace
        self._sweeper: threading.Thread | None = None
        self._stop = threading.Event()
        self._on_forget: list = []  # callbacks(namespace) for what other layers keep of a visitor (the UI's caches)

    @property
    def public(self) -> bool:
        return self.settings.public

    @staticmethod
    def namespace(session: str) -> str:
        """The namespace of a client without a page (gradio_client, plain HTTP): derived from its session."""
        return "v" + hashlib.sha256(session.encode()).hexdigest()[:24]

    def home(self, namespace: str) -> Path:
        """A public-mode visitor's own folder under FACEDEMO_HOME: the models they fine-tune."""
        return Path(self.settings.home) / "visitors" / namespace

    def adopt(self, session: str | None, key: str | None) -> str:
        """Public mode: the page ``session`` opened in a browser that keeps ``key`` (a ``BrowserState``) works in
        that browser's gallery, so a reload finds the visitor's people. A browser without a valid key gets a new
        one (128 random bits, never derived from anything a client sends), which the page keeps; returns it.
        A client that invents a key gets a gallery of its own: nobody else holds that key."""
        if not self.public or not session:
            return key or ""
        if not (isinstance(key, str) and VISITOR_KEY.match(key)):
            key = secrets.token_hex(16)
        namespace = "v" + hashlib.sha256(f"browser:{key}".encode()).hexdigest()[:24]
        with self._lock:
            self._pages[session] = namespace
            self._seen[namespace] = time.monotonic()
        return key

    def leave(self, session: str | None) -> None:
        """A page closed (or reloaded): its browser's gallery stays for the visitor's time to live."""
        with self._lock:
            self._pages.pop(session or "", None)

    def namespace_of(self, session: str) -> str:
        """The namespace a session works in: its page's browser gallery, else its own."""
        with self._lock:
            return self._pages.get(session) or self.namespace(session)

    def touch(self, session: str | None) -> str:
        """The namespace of the visitor behind ``session``, marked as seen now (their time to live restarts)."""
        if not session:
            raise GalleryError(
                "This public demo keeps a private gallery per browser session, and none was found; reload the page."
            )
        namespace = self.namespace_of(session)
        with self._lock:
            self._seen[namespace] = time.monotonic()
        return namespace

    def count(self) -> int:
        """How many visitors this process is keeping track of (their last request's time)."""
        with self._lock:
            return len(self._seen)

    def on_forget(self, callback) -> None:
        """Call ``callback(namespace)`` whenever a visitor's data is deleted (goodbye or expiry), so that
        what a higher layer keeps of them in memory (the Explorer's cache) goes too."""
        self._on_forget.append(callback)

    def _forgotten(self, namespace: str) -> None:
        self.pipeline.unload(self.home(namespace))
        shutil.rmtree(self.home(namespace), ignore_errors=True)
        purge_scratch(namespace)  # their albums' crops, unpacked zips, fine-tune caches
        for callback in self._on_forget:
            callback(namespace)

    def forget(self, session: str | None) -> None:
        """A public-mode visitor asked to be forgotten now: their faces (embeddings and thumbnails alike) and
        their models are deleted (a page that closes keeps them for their time to live: ``leave``)."""
        if self.public and session:
            namespace = self.namespace_of(session)
            self._open_store().with_namespace(namespace).drop()
            self._forgotten(namespace)
            with self._lock:
                self._seen.pop(namespace, None)
            release_memory()

    def _homes(self) -> set[str]:
        folder = Path(self.settings.home) / "visitors"
        return {p.name for p in folder.iterdir() if VISITOR.match(p.name)} if folder.is_dir() else set()

    def _stale(self, stored: set[str], age: float) -> list[str]:
        """The namespaces to delete now, and the clock of those that stored nothing trimmed (under the lock)."""
        now = time.monotonic()
        known = {ns for ns in stored if VISITOR.match(ns)} | self._homes()
        # The scratch root is shared by every process and every Services of this user: only the scratch of
        # a visitor this one served is judged here (a dead process's goes at start-up, by its pid), or a
        # sweep could empty another's unpacked zip under its import.
        known |= {ns for ns in scratch_owners() if ns in self._seen}
        stale = sorted(ns for ns in known if ns not in self._seen or now - self._seen[ns] > age)
        for ns in stale:
            self._seen.pop(ns, None)
        # Visitors who stored nothing leave only their last request's time: it goes with the same clock,
        # so the table does not grow with every visitor who ever came.
        for ns in [ns for ns, seen in self._seen.items() if now - seen > age]:
            self._seen.pop(ns, None)
        return stale

    def expire(self, max_age_s: float | None = None) -> list[str]:
        """Delete every visitor namespace idle for longer than ``max_age_s`` (default: the configured
        ``visitor_ttl_s``), and every one this process has never served: those were left by a previous
        run (a restart, a crash), and their session hashes must not bring them back. Returns them."""
        if not self.public:
            return []
        age = self.settings.visitor_ttl_s if max_age_s is None else max_age_s
        store = self._open_store()
        with store.lock:  # no write lands in a namespace while it is judged and dropped
            stored = set(store.namespaces())
            with self._lock:
                stale = self._stale(stored, age)
            shared = False  # whether a namespace was in the shared client (an older version's), to compact
            for ns in stale:
                if ns in stored:
                    shared |= store.with_namespace(ns).drop(compact=False)
                self._forgotten(ns)
            if shared:
                store.compact()
        if stale:
            release_memory()
        return stale

    def start_expiry(self, every_s: float | None = None) -> threading.Thread | None:
        """Public mode: purge what earlier runs left at once, then sweep idle visitors every ``every_s``
        seconds (default: a quarter of the time to live, at most ``SWEEP_S``) in a daemon thread."""
        if not self.public or self._sweeper is not None:
            return self._sweeper
        interval = every_s or min(self.settings.visitor_ttl_s / 4, SWEEP_S)

        def once() -> None:
            try:
                gone = self.expire()
                if gone:
                    log.info("expired %d visitor gallery(ies)", len(gone))
            except GalleryError as exc:  # the next sweep retries; a person reads the log, not a page
                log.warning("visitor expiry failed: %s", exc)

        # What an earlier run left is purged before this one serves anybody: a request from an old session
        # that arrived first would otherwise mark that session as seen and keep its faces.
        once()

        stop = self._stop = threading.Event()  # a stopped sweeper's event stays set: a new one gets its own

        def sweep():
            while not stop.wait(interval):
                once()

        self._sweeper = threading.Thread(target=sweep, name="facedemo-visitor-expiry", daemon=True)
        self._sweeper.start()
        return self._sweeper

    def stop_expiry(self) -> None:
        """Stop the sweeper; ``start_expiry`` may start a new one (a test's shorter period)."""
        self._stop.set()
        self._sweeper = None
