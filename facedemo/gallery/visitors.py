"""Public-mode visitors' galleries, each in its own embedded Chroma: a pool of their clients, and freed
memory handed back to the operating system when one is dropped."""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections import OrderedDict
from pathlib import Path

from .chroma import make_client
from .layout import NAMESPACE

VISITORS = "visitors"  # <gallery>/visitors/<namespace>/: each namespace's own embedded Chroma


OPEN_VISITORS = 8  # visitors' Chroma clients kept open at once (each holds ~23 files, ~7 threads and ~17 MB)


class VisitorClients:
    """One embedded Chroma per namespace (a public-mode visitor), in ``<root>/<namespace>/``, opened on first
    use and closed and deleted with the namespace.

    Chroma 1.5 keeps the vector index of every collection it has opened, deleted ones included, in a cache
    of its client (a fifth of the open-file limit: 4,000 indexes), so visitors' collections in the shared
    client cost memory that never came back (docs/BENCHMARKS.md, "Visitors: memory per public-mode visitor"). Closing a visitor's own client
    releases all of it, and deleting its folder is erasure.

    An open client also holds open files, threads and memory of its own, so at most ``capacity`` are open at once: the
    least recently used one that no call is using is closed when another opens (its data stays in its folder)
    and opened again, in ~15 ms, by that visitor's next call. What the store holds is a ``_Client`` per
    namespace that outlives those reopenings, and its collections are ``_Collection``s that find theirs again
    by name: each call on them runs with the namespace's client pinned open.
    """

    def __init__(self, root: Path, capacity: int = OPEN_VISITORS):
        self.root = Path(root)
        self.capacity = max(1, int(capacity))
        self._handles: dict[str, _Client] = {}  # every namespace in use this run: what stores hold
        self._open: OrderedDict[str, object] = OrderedDict()  # namespace -> open Chroma client, least recent first
        self._collections: dict[str, dict[str, object]] = {}  # namespace -> its open client's collections by name
        self._busy: dict[str, int] = {}  # calls running on the namespace's client
        self._lock = threading.Lock()

    def folder(self, namespace: str) -> Path:
        return self.root / namespace

    def client(self, namespace: str):
        with self._lock:
            if namespace not in self._handles:
                self._handles[namespace] = _Client(self, namespace)
            return self._handles[namespace]

    def opened_client(self, namespace: str):
        """The namespace's client if it is in use already, else None (``ChromaStore.client`` opens it)."""
        with self._lock:
            return self._handles.get(namespace)

    def open_count(self) -> int:
        """How many Chroma clients are open now (at most ``capacity`` while no more are in use at once)."""
        with self._lock:
            return len(self._open)

    def run(self, namespace: str, call):
        """``call(client)`` with the namespace's Chroma client open and pinned (not closed while
        it runs); the least recently used idle clients beyond ``capacity`` are closed."""
        doomed = []
        with self._lock:
            client = self._open.get(namespace)
            if client is None:
                client = make_client(self.folder(namespace))
                self._open[namespace] = client
                self._collections[namespace] = {}
            self._open.move_to_end(namespace)
            self._busy[namespace] = self._busy.get(namespace, 0) + 1
            doomed = self._evict()
        _close_all(doomed)
        try:
            return call(client)
        finally:
            with self._lock:
                self._busy[namespace] -= 1
                if not self._busy[namespace]:
                    del self._busy[namespace]
                doomed = self._evict()
            _close_all(doomed)

    def _evict(self) -> list:
        """Under the lock: take the least recently used idle clients beyond the capacity out of the pool."""
        doomed = []
        for namespace in list(self._open):
            if len(self._open) <= self.capacity:
                break
            if not self._busy.get(namespace):
                doomed.append(self._open.pop(namespace))
                self._collections.pop(namespace, None)
        return doomed

    def keep(self, namespace: str, collection) -> None:
        """Called with the namespace's client pinned: remember one of its collections while it stays open."""
        self._collections[namespace][collection.name] = collection

    def collection(self, namespace: str, client, name: str):
        """Called with the namespace's client pinned: its collection ``name`` (Chroma's NotFoundError if none)."""
        kept = self._collections[namespace]
        if name not in kept:
            kept[name] = client.get_collection(name, embedding_function=None)
        return kept[name]

    def renamed(self, namespace: str, name: str) -> None:
        """A collection was renamed or deleted: its object is not ``name``'s any more."""
        self._collections.get(namespace, {}).pop(name, None)

    def close_idle(self) -> int:
        """Close every open client no call is using (the data stays in the folders); returns how many."""
        with self._lock:
            idle = [ns for ns in self._open if not self._busy.get(ns)]
            doomed = [self._open.pop(ns) for ns in idle]
            for ns in idle:
                self._collections.pop(ns, None)
        _close_all(doomed)
        return len(doomed)

    def close(self, namespace: str) -> None:
        """Close the namespace's client (its memory goes back) and delete its folder (its data goes)."""
        with self._lock:
            client = self._open.pop(namespace, None)
            self._handles.pop(namespace, None)
            self._collections.pop(namespace, None)
        _close_all([client] if client is not None else [])
        shutil.rmtree(self.folder(namespace), ignore_errors=True)

    def stored(self) -> set[str]:
        """The namespaces with a folder here (from this run or an earlier one)."""
        if not self.root.is_dir():
            return set()
        return {p.name for p in self.root.iterdir() if p.is_dir() and NAMESPACE.match(p.name)}


def _close_all(clients) -> None:
    for client in clients:
        with contextlib.suppress(Exception):  # a client already broken is dropped all the same
            client.close()


class _Client:
    """A visitor's Chroma client as the store sees it: the calls ``ChromaStore`` makes, each run on the
    namespace's real client, opened again if the pool closed it since."""

    def __init__(self, pool: VisitorClients, namespace: str):
        self._pool, self._namespace = pool, namespace

    def _run(self, call):
        return self._pool.run(self._namespace, call)

    def get_or_create_collection(self, name: str, **options):
        self._run(lambda c: self._pool.keep(self._namespace, c.get_or_create_collection(name, **options)))
        return _Collection(self._pool, self._namespace, name)

    def get_collection(self, name: str, **options):
        self._run(lambda c: self._pool.keep(self._namespace, c.get_collection(name, **options)))
        return _Collection(self._pool, self._namespace, name)

    def list_collections(self):
        return self._run(lambda c: c.list_collections())

    def delete_collection(self, name: str) -> None:
        self._run(lambda c: c.delete_collection(name))
        self._pool.renamed(self._namespace, name)


class _Collection:
    """A collection of a visitor's Chroma, found again by name in the client open at each call (the pool
    keeps the real collection objects only while their client is open: a closed one's go with it)."""

    def __init__(self, pool: VisitorClients, namespace: str, name: str):
        self._pool, self._namespace, self.name = pool, namespace, name

    def _call(self, use):
        return self._pool.run(self._namespace, lambda c: use(self._pool.collection(self._namespace, c, self.name)))

    @property
    def metadata(self):
        return self._call(lambda col: col.metadata)

    def modify(self, **changes) -> None:
        self._call(lambda col: col.modify(**changes))
        if "name" in changes:
            self._pool.renamed(self._namespace, self.name)
            self.name = changes["name"]

    def __getattr__(self, method: str):  # get, upsert, update, delete, count, query
        if method.startswith("_"):
            raise AttributeError(method)

        def call(*args, **kwargs):
            return self._call(lambda col: getattr(col, method)(*args, **kwargs))

        return call


def release_memory() -> None:
    """Hand freed heap back to the operating system (glibc keeps it for reuse otherwise): after a public
    visitor's gallery is dropped, the process's resident memory goes down instead of staying at its peak."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows): nothing to trim
        pass
