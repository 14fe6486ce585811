"""Where enrolled faces live: the store protocol the gallery uses and its Chroma implementation.

A person exists once, whatever the models: the ``persons`` collection holds each person's id and name,
and the ``registry`` collection each enrolled face (which photo, where in it, its five landmarks, and
where its stored face region is), independent of any model. Each model then has its own collection of
vectors (embedding sizes differ, and a ``where`` filter costs about 12x a plain query in Chroma 1.5) that
names faces and people by id only, and a small collection of one re-normalised mean vector per person
(with the person's name, so "nearest person" is one query that needs nothing else). Renaming a person
changes their ``persons`` row and their centroid rows, never a model's vectors.

Face-crop thumbnails and face regions (the face with a margin, enough to align and embed it again with
a model that comes later) are small JPEGs on disk beside the store. Chroma's cosine distance ``c`` and
the project's L2 distance between unit vectors ``d`` relate as ``d = sqrt(2c)``; everything leaving this
module is ``d``. ``embedding_function=None`` always: we hand Chroma our own vectors, and any other value
makes it fetch a text model. The two model-independent collections carry a one-number placeholder vector
(Chroma stores no record without one).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from ..errors import GalleryError, InvalidNameError
from ..files import alive
from ..rules import Candidate
from ..settings import default_gallery_dir
from ..vectors import centroid, cosine_to_l2, l2_normalise
from .classifier import Classifiers
from .names import has_surrogates
from .server import chroma_command

THUMB_SIZE = 112  # longest side, pixels
FACES, PEOPLE, PERSONS, REGISTRY = "faces", "people", "persons", "registry"
SCHEMA = 2  # 1: a person was a name inside each model's collection; 2: persons and a face registry
_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_PLACEHOLDER = [1.0]  # the vector of a persons or registry row
_BATCH = 1000


@dataclass(frozen=True)
class PersonRecord:
    id: str
    name: str
    created_at: str = ""


@dataclass(frozen=True)
class Region:
    """Where a stored face region sits in its photo: region pixel = (photo pixel - origin) * scale."""

    x0: float
    y0: float
    scale: float

    def to_region(self, x: float, y: float) -> tuple[float, float]:
        return (x - self.x0) * self.scale, (y - self.y0) * self.scale


@dataclass(frozen=True)
class FaceRecord:
    """One enrolled face, for every model: whose, from which photo (its name and the sha256 of its bytes),
    where in it (box and landmarks in the photo's pixels), and where its stored region is (None: enrolled
    before regions were kept, so a later model cannot embed it without the photo)."""

    id: str
    person_id: str
    image: str
    image_sha: str
    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...] | None = None
    region: Region | None = None
    enrolled_at: str = ""  # ISO 8601, UTC

    def metadata(self) -> dict:
        x1, y1, x2, y2 = self.box
        meta = {
            "person_id": self.person_id,
            "image": self.image,
            "image_sha": self.image_sha,
            "enrolled_at": self.enrolled_at,
            "x1": x1,
            "y1": y1,
            "x2": x2,
            "y2": y2,
        }
        if self.landmarks:
            meta.update({f"l{i}": float(v) for i, v in enumerate(c for point in self.landmarks for c in point)})
        if self.region is not None:
            meta.update({"rx": self.region.x0, "ry": self.region.y0, "rs": self.region.scale})
        return meta

    @classmethod
    def from_metadata(cls, id: str, meta: dict) -> FaceRecord:
        box = tuple(float(meta.get(k, 0.0)) for k in ("x1", "y1", "x2", "y2"))
        landmarks = None
        if all(f"l{i}" in meta for i in range(10)):
            flat = [float(meta[f"l{i}"]) for i in range(10)]
            landmarks = tuple((flat[i], flat[i + 1]) for i in range(0, 10, 2))
        region = (
            Region(float(meta["rx"]), float(meta["ry"]), float(meta["rs"]))
            if all(k in meta for k in ("rx", "ry", "rs"))
            else None
        )
        return cls(
            id,
            str(meta.get("person_id", "")),
            str(meta.get("image", "")),
            str(meta.get("image_sha", "")),
            box,
            landmarks,
            region,
            str(meta.get("enrolled_at", "")),
        )


@dataclass(frozen=True)
class ModelRecord:
    """One face's vector in one model's collection: its own id, the face's and the person's."""

    id: str
    face_id: str
    person_id: str

    def metadata(self, model: str) -> dict:
        return {"face_id": self.face_id, "person_id": self.person_id, "model": model}


@dataclass(frozen=True)
class Hit:
    record: ModelRecord
    distance: float


def face_id(image_sha: str, box: Sequence[float]) -> str:
    """The same face of the same photo always gets the same id, whatever the model, so re-imports upsert."""
    key = f"{image_sha}|" + ",".join(f"{v:.0f}" for v in box)
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def record_id(model: str, image_sha: str, box: Sequence[float]) -> str:
    """A face's id in one model's collection (the ids galleries of schema 1 used, so they migrate in place)."""
    key = f"{model}|{image_sha}|" + ",".join(f"{v:.0f}" for v in box)
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class FaceStore(Protocol):
    """Everything the gallery asks of a store. ``lock`` serialises writers that share the store."""

    lock: threading.RLock
    namespace: str | None
    classifiers: Classifiers
    state: dict

    def with_namespace(self, namespace: str | None) -> FaceStore: ...
    # people and faces, for every model
    def persons(self, ids: Sequence[str] = ()) -> list[PersonRecord]: ...
    def put_persons(self, persons: Sequence[PersonRecord]) -> None: ...
    def delete_persons(self, ids: Sequence[str]) -> None: ...
    def faces(
        self, person_id: str | None = None, image_shas: Sequence[str] = (), ids: Sequence[str] = ()
    ) -> list[FaceRecord]: ...
    def face_count(self) -> int: ...
    def put_faces(
        self, faces: Sequence[FaceRecord], thumbs: Sequence[Image.Image | None], regions: Sequence[Image.Image | None]
    ) -> None: ...
    def delete_faces(self, ids: Sequence[str]) -> None: ...
    def region(self, face_id: str) -> Image.Image | None: ...
    def thumb_path(self, face_id: str) -> Path | None: ...
    def face_files(self, face_id: str) -> list[Path]: ...
    # one model's vectors
    def models(self) -> list[str]: ...
    def count(self, model: str) -> int: ...
    def flip(self, model: str) -> bool | None: ...
    def put_vectors(
        self, model: str, records: Sequence[ModelRecord], vectors: np.ndarray, flip: bool = False
    ) -> None: ...
    def vectors(
        self, model: str, person_id: str | None = None, face_ids: Sequence[str] = (), embeddings: bool = False
    ) -> tuple[list[ModelRecord], np.ndarray | None]: ...
    def query(self, model: str, vectors: np.ndarray, k: int) -> list[list[Hit]]: ...
    def delete_vectors(self, model: str, ids: Sequence[str]) -> None: ...
    # one mean vector per person
    def set_centroids(self, model: str, centroids: dict[str, tuple[str, np.ndarray] | None]) -> None: ...
    def rename_centroids(self, model: str, person_id: str, name: str) -> None: ...
    def centroid_count(self, model: str) -> int: ...
    def centroid_people(self, model: str) -> dict[str, str]: ...
    def query_centroids(
        self, model: str, vectors: np.ndarray, k: int, people: int | None = None
    ) -> list[list[Candidate]]: ...
    # the schema, migration, erasure
    def schema(self) -> int: ...
    def set_schema(self, schema: int) -> None: ...
    def begin_migration(self) -> None: ...
    def legacy_rows(self, model: str) -> tuple[list[str], list[dict], np.ndarray]: ...
    def strip_legacy(self, model: str, ids: Sequence[str]) -> None: ...
    def replace_centroids(self, model: str) -> None: ...
    def move_thumb(self, old_id: str, new_id: str) -> None: ...
    def namespaces(self) -> set[str]: ...
    def drop_model(self, model: str) -> None: ...
    def drop(self, compact: bool = True) -> bool: ...
    def erase(self, models: Sequence[str], people: bool = True) -> None: ...
    def compact(self) -> None: ...
    # crash safety
    def writing(self, what: str, erase: bool = False) -> contextlib.AbstractContextManager: ...
    def check(self) -> Repair | None: ...
    def repair(self, erase: bool = False) -> Repair: ...


def collection_name(namespace: str | None, model: str | None, kind: str) -> str:
    """The Chroma collection of one kind (``faces``, ``people``, ...) for a model, or a model-independent one."""
    prefix = f"{namespace}.fd." if namespace else "fd."
    if model is None:
        return f"{prefix}{kind}"
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", model)
    return f"{prefix}{kind}.{safe}"


# Chroma 1.5's rules for a collection name (its error comes only when the collection is first made).
_CHROMA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
_IPV4 = re.compile(r"^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")


def chroma_accepts(name: str) -> bool:
    return bool(_CHROMA_NAME.match(name)) and ".." not in name and not _IPV4.match(name)


def check_model_name(model: str) -> str:
    """A new model's name, refused unless every collection a gallery makes for it (in any namespace, and
    while one is rebuilt) is a name Chroma accepts: checked before a fine-tune trains or saves anything,
    since Chroma would refuse only when the model's first vectors are stored."""
    model = model.strip() if isinstance(model, str) else ""
    longest = "n" * 63  # a namespace is at most 63 characters (_NAMESPACE)
    if not _MODEL_NAME.match(model) or not all(
        chroma_accepts(prefix + collection_name(namespace, model, kind))
        for prefix in ("", REBUILD)
        for namespace in (None, longest)
        for kind in (FACES, PEOPLE)
    ):
        shown = model if len(model) <= 70 else model[:70] + "…"
        raise InvalidNameError(
            f"'{shown}' cannot be a model name: use 1-63 letters, digits, '.', '_' or '-', starting and ending with "
            "a letter or digit and with no '..'."
        )
    return model


def make_client(
    path: str | Path | None = None, host: str | None = None, port: int | None = None, ephemeral: bool = False
):
    """A Chroma client: a server when ``host`` is given, in memory when ``ephemeral``, else on disk at ``path``.

    Note that every ``EphemeralClient`` in a process shares one database (Chroma's design); give each
    store its own ``namespace`` where that matters."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False)
    try:
        if host:
            return chromadb.HttpClient(host=host, port=int(port or 8000), settings=settings)
        if ephemeral:
            return chromadb.EphemeralClient(settings=settings)
        folder = Path(path) if path else default_gallery_dir()
        folder.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(folder), settings=settings)
    except Exception as exc:  # chromadb raises plain ValueError/ConnectionError/RuntimeError here
        where = (
            f"the Chroma server at {host}:{port or 8000}"
            if host
            else ("an in-memory Chroma" if ephemeral else f"the gallery at {path or default_gallery_dir()}")
        )
        raise GalleryError(f"Cannot open {where}: {_reason(exc)}") from exc


def release_memory() -> None:
    """Hand freed heap back to the operating system (glibc keeps it for reuse otherwise): after a public
    visitor's gallery is dropped, the process's resident memory goes down instead of staying at its peak."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows): nothing to trim
        pass


def open_store(
    gallery: str | Path | None = None,
    host: str | None = None,
    port: int | None = None,
    ephemeral: bool = False,
    namespace: str | None = None,
) -> ChromaStore:
    """The usual way in: a client from the arguments, thumbnails and face regions under ``<gallery>/thumbs``."""
    folder = Path(gallery) if gallery else (None if ephemeral else default_gallery_dir())
    client = make_client(folder, host, port, ephemeral)
    thumbs = folder / "thumbs" if folder else Path(tempfile.mkdtemp(prefix="facedemo-thumbs-"))
    embedded = folder is not None and not host and not ephemeral
    return ChromaStore(
        client,
        thumbs,
        namespace,
        persist_dir=folder if embedded else None,
        visitors=VisitorClients(folder / VISITORS) if embedded else None,
    )


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
        return {p.name for p in self.root.iterdir() if p.is_dir() and _NAMESPACE.match(p.name)}


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


_CHROMA_ID = re.compile(r"\[?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\]? ?")
CHANGED_ELSEWHERE = (
    "another program changed the gallery at that moment (a delete or rename from the command line); try again."
)


def _gone(exc: Exception) -> bool:
    """Chroma's answer for a collection handle whose collection another process dropped or replaced (a
    delete's rebuild gives the collection a new id): "Collection [<id>] does not exist"."""
    from chromadb.errors import NotFoundError

    text = str(exc)
    return isinstance(exc, NotFoundError) or ("does not exist" in text and "ollection" in text)


def _reason(exc: Exception) -> str:
    """Chroma's message as one sentence, without its internal ids (a collection's uuid means nothing to anyone)."""
    if _gone(exc):
        return CHANGED_ELSEWHERE
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = _CHROMA_ID.sub("", text).strip() or type(exc).__name__
    return text[:300].rstrip(".") + "."


class _Handle:
    """A Chroma collection, looked up by its name again when another process replaced it.

    The dashboard keeps its collections open; a delete or rename from the command line rebuilds them, and
    the rebuilt copy has a new id, so every later call on the old handle fails with "Collection [<id>] does
    not exist". A call that fails that way drops the handle, finds the collection by name and runs once more.
    """

    _CALLS = frozenset({"add", "upsert", "update", "delete", "get", "query", "count", "peek", "modify"})

    def __init__(self, name: str, collection, find):
        self._name, self._col, self._find = name, collection, find  # find(name): the collection now

    def __getattr__(self, attr: str):
        value = getattr(self._col, attr)
        if attr not in self._CALLS:
            return value

        def call(*args, **kwargs):
            try:
                return getattr(self._col, attr)(*args, **kwargs)
            except Exception as exc:
                if not _gone(exc):
                    raise
                self._col = self._find(self._name)
                return getattr(self._col, attr)(*args, **kwargs)

        return call


@dataclass(frozen=True)
class Repair:
    """What opening a gallery found out of step with its people and faces, and put right."""

    rebuilds: int = 0  # collections whose rebuild a killed process left half-way, finished
    faces: int = 0  # registry faces of a person no longer there (a delete cut short), removed
    persons: int = 0  # people with no face (an enrollment cut short before its faces were recorded), removed
    vectors: int = 0  # model vectors of no recorded face, removed
    centroids: int = 0  # people-index rows rewritten or removed to match the vectors
    files: int = 0  # thumbnails, regions and half-written files with no record, deleted
    erased: bool = False  # the collections rebuilt and the file vacuumed (a delete or rename cut short)

    @property
    def changed(self) -> bool:
        return bool(self.rebuilds or self.faces or self.persons or self.vectors or self.centroids or self.files)


class ChromaStore:
    def __init__(
        self,
        client,
        thumbs_dir: str | Path | None = None,
        namespace: str | None = None,
        lock: threading.RLock | None = None,
        persist_dir: str | Path | None = None,
        classifiers: Classifiers | None = None,
        collections: dict | None = None,
        state: dict | None = None,
        visitors: VisitorClients | None = None,
        main: ChromaStore | None = None,
    ):
        if namespace is not None and not _NAMESPACE.match(namespace):
            raise GalleryError(f"'{namespace}' cannot be a gallery namespace: use 1-63 letters, digits, '-' or '_'.")
        self._client = client  # None: the namespace's own Chroma, opened when first needed (``client``)
        # an embedded Chroma's folder (erasure compacts it)
        self.persist_dir = Path(persist_dir) if persist_dir else None
        self.namespace = namespace
        self.thumbs_dir = Path(thumbs_dir) / (namespace or "default") if thumbs_dir else None
        self.lock = lock or threading.RLock()
        self.classifiers = classifiers or Classifiers()  # the classifier method's models, until the gallery changes
        # Open collections by Chroma name, shared by every namespace view of this client: a request's view
        # of a visitor's gallery does not open its collections again.
        self._collections: dict[str, object] = {} if collections is None else collections
        # What this process has learnt about the galleries of this client, shared by the namespace views:
        # ("schema", namespace) once checked, ("complete", namespace, model) once filled in.
        self.state: dict = {} if state is None else state
        # An embedded gallery keeps each namespace in its own Chroma (VisitorClients); ``main`` is the store
        # of the gallery's own client, which a namespace of an older version may still be in.
        self.visitors = visitors
        self.main = main

    @property
    def client(self):
        if self._client is None:
            self._client = self.visitors.client(self.namespace)
        return self._client

    def _unopened(self) -> bool:
        """A namespace with its own Chroma that holds nothing yet: reading it opens (and creates) nothing."""
        return self._client is None and not self.visitors.folder(self.namespace).is_dir()

    def with_namespace(self, namespace: str | None) -> ChromaStore:
        """The same thumbnail root and write lock, another private gallery (the dashboard's public mode): in
        an embedded gallery, in the namespace's own Chroma; on a server or in memory, in the same client."""
        root = self.thumbs_dir.parent if self.thumbs_dir else None
        main = self.main or self
        if namespace is None or main.visitors is None:
            client, persist = main.client, main.persist_dir
        else:
            client, persist = main.visitors.opened_client(namespace), main.visitors.folder(namespace)
        return ChromaStore(
            client,
            root,
            namespace,
            self.lock,
            persist,
            self.classifiers,
            self._collections,
            self.state,
            main.visitors,
            main if namespace is not None else None,
        )

    # -- collections ------------------------------------------------------------------------------
    def _prefix(self) -> str:
        return f"{self.namespace}.fd." if self.namespace else "fd."

    def _name(self, model: str | None, kind: str) -> str:
        return collection_name(self.namespace, model, kind)

    def _collection(self, model: str | None, kind: str = FACES, create: bool = True):
        name = self._name(model, kind)
        if name not in self._collections:
            if not create and self._unopened():
                return None
            with _chroma_errors("open the collection for " + (model or kind)):
                if not self._writer():
                    self._finish_rebuild(name)  # a rebuild cut short by a crash is completed before any use
                if create:
                    meta = {
                        "facedemo": kind,
                        **({"model": model} if model else {}),
                        **({"schema": SCHEMA} if kind == REGISTRY else {}),
                    }
                    space = "cosine" if model else "l2"
                    col = self.client.get_or_create_collection(
                        name, configuration={"hnsw": {"space": space}}, metadata=meta, embedding_function=None
                    )
                else:
                    from chromadb.errors import NotFoundError

                    try:
                        col = self.client.get_collection(name, embedding_function=None)
                    except NotFoundError:
                        return None
            self._collections[name] = _Handle(name, col, self._lookup)
        return self._collections[name]

    def _lookup(self, name: str):
        """The collection called ``name`` now (another process may have replaced it: a new id), or a sentence.
        A rebuild's swap leaves the name free for a moment, so a miss is tried once more."""
        from chromadb.errors import NotFoundError

        self._forget(name)
        for attempt in range(2):
            try:
                col = self.client.get_collection(name, embedding_function=None)
            except NotFoundError:
                if attempt == 0:
                    time.sleep(0.5)
                continue
            except Exception as exc:
                raise GalleryError(f"Could not read the gallery: {_reason(exc)}") from exc
            self._collections[name] = _Handle(name, col, self._lookup)
            return col
        raise GalleryError(f"Could not read the gallery: {CHANGED_ELSEWHERE}")

    def _forget(self, name: str) -> None:
        self._collections.pop(name, None)

    def _names(self) -> list[str]:
        return [] if self._unopened() else _collection_names(self.client)

    def models(self) -> list[str]:
        """The models with a face collection in this namespace (read from the collections' metadata)."""
        prefix = self._prefix() + FACES + "."
        models = []
        for name in self._names():
            if name.startswith(prefix):
                col = self._collections.get(name) or self._collection_by_name(name)
                models.append(str((col.metadata or {}).get("model") or name[len(prefix) :]))
        return sorted(models)

    def _collection_by_name(self, name: str):
        with _chroma_errors("open " + name):
            return self.client.get_collection(name, embedding_function=None)

    # -- people -----------------------------------------------------------------------------------
    def persons(self, ids: Sequence[str] = ()) -> list[PersonRecord]:
        col = self._collection(None, PERSONS, create=False)
        if col is None:
            return []
        with _chroma_errors("read the people"):
            got = col.get(ids=list(ids) or None, include=["metadatas"])
        return [
            PersonRecord(i, str(m.get("name", "")), str(m.get("created_at", "")))
            for i, m in zip(got["ids"], got["metadatas"])
        ]

    def put_persons(self, persons: Sequence[PersonRecord]) -> None:
        if not persons:
            return
        _check_text([{"name": p.name} for p in persons])
        col = self._collection(None, PERSONS)
        with _chroma_errors("store the people"):
            for start in range(0, len(persons), _BATCH):
                part = persons[start : start + _BATCH]
                col.upsert(
                    ids=[p.id for p in part],
                    embeddings=[_PLACEHOLDER] * len(part),
                    metadatas=[{"name": p.name, "created_at": p.created_at} for p in part],
                )

    def delete_persons(self, ids: Sequence[str]) -> None:
        col = self._collection(None, PERSONS, create=False)
        if col is not None and ids:
            with _chroma_errors("delete people"):
                for start in range(0, len(ids), _BATCH):
                    col.delete(ids=list(ids[start : start + _BATCH]))

    # -- faces, for every model -------------------------------------------------------------------
    def faces(
        self, person_id: str | None = None, image_shas: Sequence[str] = (), ids: Sequence[str] = ()
    ) -> list[FaceRecord]:
        col = self._collection(None, REGISTRY, create=False)
        if col is None:
            return []
        where = (
            {"person_id": person_id}
            if person_id is not None
            else ({"image_sha": {"$in": list(image_shas)}} if image_shas else None)
        )
        with _chroma_errors("read the gallery"):
            got = col.get(ids=list(ids) or None, where=where, include=["metadatas"])
        return [FaceRecord.from_metadata(i, m) for i, m in zip(got["ids"], got["metadatas"])]

    def face_count(self) -> int:
        col = self._collection(None, REGISTRY, create=False)
        with _chroma_errors("count the faces"):
            return col.count() if col is not None else 0

    def put_faces(self, faces, thumbs, regions) -> None:
        """Thumbnails and regions are written first, so a record never lacks its files."""
        if not faces:
            return
        metadatas = [f.metadata() for f in faces]
        _check_text(metadatas)  # before any file: a record Chroma refuses would leave files nothing deletes
        for face, thumb, region in zip(faces, thumbs, regions):
            if thumb is not None:
                self._write_image(self._thumb_file(face.id), thumb, THUMB_SIZE, 85)
            if region is not None:
                self._write_image(self._region_file(face.id), region, None, 95)
        col = self._collection(None, REGISTRY)
        with _chroma_errors("store the faces"):
            for start in range(0, len(faces), _BATCH):
                part = faces[start : start + _BATCH]
                col.upsert(
                    ids=[f.id for f in part],
                    embeddings=[_PLACEHOLDER] * len(part),
                    metadatas=metadatas[start : start + _BATCH],
                )

    def delete_faces(self, ids: Sequence[str]) -> None:
        """Thumbnails and regions go first: if the process dies half-way, the records are still there to delete again."""
        if not ids:
            return
        for fid in ids:
            for path in (self._thumb_file(fid), self._region_file(fid)):
                if path is not None:
                    path.unlink(missing_ok=True)
        col = self._collection(None, REGISTRY, create=False)
        if col is not None:
            with _chroma_errors("delete faces"):
                for start in range(0, len(ids), _BATCH):
                    col.delete(ids=list(ids[start : start + _BATCH]))

    # -- one model's vectors ----------------------------------------------------------------------
    def count(self, model: str) -> int:
        col = self._collection(model, create=False)
        with _chroma_errors("count the faces"):
            return col.count() if col is not None else 0

    def flip(self, model) -> bool | None:
        """Whether the vectors stored for ``model`` were made with test-time flip (face and mirror image
        averaged), as recorded with the first of them; None while the model has no collection. A
        collection written before the option existed holds unflipped vectors, so a missing record reads
        as False (migration writes it down)."""
        col = self._collection(model, create=False)
        if col is None:
            return None
        meta = col.metadata or {}
        if "flip" in meta:
            return bool(meta["flip"])
        with _chroma_errors("read the collection"):
            return False if col.count() else None

    def put_vectors(self, model, records, vectors, flip: bool = False) -> None:
        """Upsert one model's vectors. ``flip``: how they were made; the collection records it with its first
        vectors and refuses vectors made the other way (distances between the two kinds mean less)."""
        if not records:
            return
        recorded = self.flip(model)
        if recorded is not None and recorded != flip:
            raise GalleryError(
                f"The gallery's {model} faces were embedded {'with' if recorded else 'without'} test-time flip and these "
                f"{'with' if flip else 'without'} it; the two cannot be mixed in one collection."
            )
        col = self._collection(model)
        meta = col.metadata or {}
        if "flip" not in meta:
            with _chroma_errors("record how the faces were embedded"):
                col.modify(metadata={**meta, "flip": bool(flip)})
        vectors = l2_normalise(np.asarray(vectors, dtype=np.float32))
        with _chroma_errors("store the faces"):
            for start in range(0, len(records), _BATCH):
                part = records[start : start + _BATCH]
                col.upsert(
                    ids=[r.id for r in part],
                    embeddings=vectors[start : start + len(part)],
                    metadatas=[r.metadata(model) for r in part],
                )

    def vectors(self, model, person_id=None, face_ids=(), embeddings=False):
        col = self._collection(model, create=False)
        if col is None:
            return [], (np.zeros((0, 0), np.float32) if embeddings else None)
        where = (
            {"person_id": person_id}
            if person_id is not None
            else ({"face_id": {"$in": list(face_ids)}} if face_ids else None)
        )
        include = ["metadatas", "embeddings"] if embeddings else ["metadatas"]
        with _chroma_errors("read the gallery"):
            got = col.get(where=where, include=include)
        records = [
            ModelRecord(i, str(m.get("face_id", "")), str(m.get("person_id", "")))
            for i, m in zip(got["ids"], got["metadatas"])
        ]
        out = None
        if embeddings:
            raw = got.get("embeddings")
            out = np.asarray(raw, dtype=np.float32) if raw is not None and len(raw) else np.zeros((0, 0), np.float32)
        return records, out

    def query(self, model, vectors, k):
        col = self._collection(model, create=False)
        if col is None or k <= 0:
            return [[] for _ in range(len(vectors))]
        with _chroma_errors("search the gallery"):
            n = min(k, col.count())
            if n == 0:
                return [[] for _ in range(len(vectors))]
            got = col.query(query_embeddings=l2_normalise(vectors), n_results=n, include=["metadatas", "distances"])
        return [
            [
                Hit(ModelRecord(i, str(m.get("face_id", "")), str(m.get("person_id", ""))), float(d))
                for i, m, d in zip(ids, metas, cosine_to_l2(dists))
            ]
            for ids, metas, dists in zip(got["ids"], got["metadatas"], got["distances"])
        ]

    def delete_vectors(self, model, ids) -> None:
        col = self._collection(model, create=False)
        if col is not None and ids:
            with _chroma_errors("delete faces"):
                for start in range(0, len(ids), _BATCH):
                    col.delete(ids=list(ids[start : start + _BATCH]))

    # -- one mean vector per person -----------------------------------------------------------------
    def set_centroids(self, model, centroids) -> None:
        """``{person_id: (name, unit vector)}`` upserts; ``{person_id: None}`` removes that person's centroid."""
        col = self._collection(model, PEOPLE)
        gone = [p for p, v in centroids.items() if v is None]
        keep = [(p, v) for p, v in centroids.items() if v is not None]
        with _chroma_errors("update the people index"):  # in batches: Chroma refuses more than ~5,400 rows a call
            for start in range(0, len(gone), _BATCH):
                col.delete(ids=gone[start : start + _BATCH])
            for start in range(0, len(keep), _BATCH):
                part = keep[start : start + _BATCH]
                col.upsert(
                    ids=[p for p, _ in part],
                    embeddings=l2_normalise(np.stack([v for _, (_, v) in part])),
                    metadatas=[{"person_id": p, "person": name} for p, (name, _) in part],
                )

    def rename_centroids(self, model, person_id, name) -> None:
        col = self._collection(model, PEOPLE, create=False)
        if col is not None:
            with _chroma_errors("rename"):
                if col.get(ids=[person_id], include=[])["ids"]:
                    col.update(ids=[person_id], metadatas=[{"person_id": person_id, "person": name}])

    def centroid_count(self, model) -> int:
        col = self._collection(model, PEOPLE, create=False)
        with _chroma_errors("count the people"):
            return col.count() if col is not None else 0

    def centroid_people(self, model) -> dict[str, str]:
        col = self._collection(model, PEOPLE, create=False)
        if col is None:
            return {}
        with _chroma_errors("read the people index"):
            got = col.get(include=["metadatas"])
        return {i: str(m.get("person", "")) for i, m in zip(got["ids"], got["metadatas"])}

    def query_centroids(self, model, vectors, k, people: int | None = None):
        """The ``k`` nearest people of each vector. ``people``: the centroid count when the caller has it
        already (one Chroma call fewer)."""
        col = self._collection(model, PEOPLE, create=False)
        if col is None or k <= 0:
            return [[] for _ in range(len(vectors))]
        with _chroma_errors("search the people index"):
            n = min(k, col.count() if people is None else people)
            if n == 0:
                return [[] for _ in range(len(vectors))]
            got = col.query(query_embeddings=l2_normalise(vectors), n_results=n, include=["metadatas", "distances"])
        return [
            [Candidate(str(m.get("person", "")), float(d), i) for i, m, d in zip(ids, metas, cosine_to_l2(dists))]
            for ids, metas, dists in zip(got["ids"], got["metadatas"], got["distances"])
        ]

    # -- files beside the store -----------------------------------------------------------------------
    def _thumb_file(self, fid: str) -> Path | None:
        if self.thumbs_dir is None or not re.fullmatch(r"[0-9a-f]{8,64}", fid):
            return None
        return self.thumbs_dir / f"{fid}.jpg"

    def _region_file(self, fid: str) -> Path | None:
        path = self._thumb_file(fid)
        return None if path is None else path.parent / "regions" / path.name

    def _write_image(self, path: Path | None, image: Image.Image, size: int | None, quality: int) -> None:
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        picture = image.convert("RGB")
        if size:
            picture.thumbnail((size, size))
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".part", delete=False) as tmp:
            picture.save(tmp, format="JPEG", quality=quality)
        os.replace(tmp.name, path)

    def thumb_path(self, face_id: str, must_exist: bool = True) -> Path | None:
        path = self._thumb_file(face_id)
        return path if path is not None and (path.exists() or not must_exist) else None

    def face_files(self, face_id: str) -> list[Path]:
        """The files on disk that hold this face (its thumbnail and its region), those that exist."""
        return [p for p in (self._thumb_file(face_id), self._region_file(face_id)) if p is not None and p.is_file()]

    def region(self, face_id: str) -> Image.Image | None:
        """A face's stored region (the face with a margin), or None where none was kept."""
        path = self._region_file(face_id)
        if path is None or not path.is_file():
            return None
        with Image.open(path, formats=["JPEG"]) as image:
            return image.convert("RGB")

    def move_thumb(self, old_id: str, new_id: str) -> None:
        """Schema 1 named thumbnails after a model's record; schema 2 after the face (one for every model)."""
        old, new = self._thumb_file(old_id), self._thumb_file(new_id)
        if old is None or new is None or not old.exists():
            return
        if new.exists():
            old.unlink(missing_ok=True)
        else:
            os.replace(old, new)

    def namespaces(self) -> set[str]:
        """Every namespace with something stored: collections in Chroma or a thumbnail folder on disk."""
        found = {
            name.split(".fd.", 1)[0]
            for name in self._names()
            if ".fd." in name and not name.startswith(("fd.", REBUILD))
        }
        root = self.thumbs_dir.parent if self.thumbs_dir else None
        if root is not None and root.is_dir():
            found |= {p.name for p in root.iterdir() if p.is_dir() and p.name != "default" and _NAMESPACE.match(p.name)}
        if self.visitors is not None:
            found |= self.visitors.stored()
        return found

    # -- schema and migration --------------------------------------------------------------------------
    def schema(self) -> int:
        """2 once the registry exists (it is made at schema 2), 1 for a gallery with model collections only,
        2 for an empty one."""
        registry = self._collection(None, REGISTRY, create=False)
        if registry is not None:
            return int((registry.metadata or {}).get("schema", SCHEMA))
        return 1 if self.models() else SCHEMA

    def set_schema(self, schema: int) -> None:
        col = self._collection(None, REGISTRY)
        with _chroma_errors("record the gallery's layout"):
            col.modify(metadata={**(col.metadata or {}), "schema": int(schema)})

    def begin_migration(self) -> None:
        """Record schema 1 in the registry before any row of a schema-1 gallery moves, so that a migration
        cut short is seen as unfinished when the gallery is opened again."""
        self.set_schema(1)

    def legacy_rows(self, model):
        """A model collection's rows still in schema 1's shape (the person's name in each row):
        (ids, metadatas, vectors)."""
        col = self._collection(model, create=False)
        if col is None:
            return [], [], np.zeros((0, 0), np.float32)
        with _chroma_errors("read the gallery"):
            got = col.get(include=["metadatas", "embeddings"])
        rows = [(i, m, v) for i, m, v in zip(got["ids"], got["metadatas"], got["embeddings"]) if "person" in (m or {})]
        if not rows:
            return [], [], np.zeros((0, 0), np.float32)
        return [r[0] for r in rows], [r[1] for r in rows], np.asarray([r[2] for r in rows], dtype=np.float32)

    def strip_legacy(self, model, ids: Sequence[str]) -> None:
        """Remove schema 1's keys (the person's name among them) from a model's migrated rows: Chroma's
        upsert merges metadata, so rewriting a row leaves the old keys unless they are set to None."""
        col = self._collection(model, create=False)
        if col is None or not ids:
            return
        blank = {k: None for k in ("person", "image", "image_sha", "enrolled_at", "x1", "y1", "x2", "y2")}
        with _chroma_errors("migrate the gallery"):
            for start in range(0, len(ids), _BATCH):
                part = list(ids[start : start + _BATCH])
                col.update(ids=part, metadatas=[dict(blank) for _ in part])

    def replace_centroids(self, model) -> None:
        """Drop a model's people index (rebuilt from its vectors by the caller)."""
        name = self._name(model, PEOPLE)
        with _chroma_errors("rebuild the people index"):
            if name in self._names():
                self.client.delete_collection(name)
        self._forget(name)

    def drop_model(self, model: str) -> None:
        """Remove one model's vectors and people index from this namespace (a fine-tuned model deleted with
        the person it was trained on); ``compact`` makes it physical."""
        with _chroma_errors("remove a model's faces"):
            names = set(self._names())
            for kind in (FACES, PEOPLE):
                name = self._name(model, kind)
                for doomed in (name, REBUILD + name):
                    if doomed in names:
                        self.client.delete_collection(doomed)
                    self._forget(doomed)
        self.state.pop(("complete", self.namespace, model), None)
        self.classifiers.forget(self.namespace)

    def drop(self, compact: bool = True) -> bool:
        """Remove this namespace's collections, thumbnails and regions (a public-mode visitor's gallery
        expiring), and compact the folder so that no byte of them stays on disk (``compact=False``: the
        caller compacts once after dropping several, when this returns True). A namespace with its own
        Chroma (``VisitorClients``) has it closed and its folder deleted: nothing to compact."""
        prefix = self._prefix()
        own = self.namespace is not None and self.main is not None and self.visitors is not None
        holder = self.main if own else self  # where collections of this namespace may be in the shared client
        dropped = False
        with _chroma_errors("drop the gallery"):
            for name in _collection_names(holder.client):
                if name.startswith(prefix) or name.startswith(REBUILD + prefix):
                    holder.client.delete_collection(name)
                    dropped = True
        for name in [n for n in self._collections if n.startswith((prefix, REBUILD + prefix))]:
            self._forget(name)
        if own:
            self.visitors.close(self.namespace)
        for key in [k for k in self.state if len(k) > 1 and k[1] == self.namespace]:
            self.state.pop(key, None)
        self.classifiers.forget(self.namespace)
        if self.thumbs_dir is not None:
            shutil.rmtree(self.thumbs_dir, ignore_errors=True)
            self._marker().unlink(missing_ok=True)
        if compact and dropped:
            holder.compact()
        return dropped

    # -- erasure on disk ------------------------------------------------------------------------------
    # Chroma 1.5 deletes from its API view only: a deleted record stays in the collection's write-ahead log
    # (``embeddings_queue``) until the vector segment is flushed, in the HNSW files (marked deleted, data
    # kept), and in SQLite's free pages; ``delete_collection`` purges the collection's log but leaves its
    # HNSW folder behind (chroma-core/chroma#5259: the local server has no garbage collector). So erasure
    # is: rebuild the collections that held the person from what remains, remove the segment folders no
    # collection uses any more, and run Chroma's own ``chroma vacuum`` (which purges the log up to what the
    # segments hold and VACUUMs SQLite, rewriting the file without its free pages).
    def erase(self, models: Sequence[str], people: bool = True) -> None:
        """After a delete or a rename: make it physical for these models' collections (vectors and people
        index) and, with ``people``, for the persons and the face registry."""
        for model in models:
            for kind in (FACES, PEOPLE):
                self._rebuild(model, kind)
        if people:
            for kind in (PERSONS, REGISTRY):
                self._rebuild(None, kind)
        self.compact()

    def _rebuild(self, model: str | None, kind: str) -> None:
        """Copy what remains into a fresh collection, then swap it in. A crash in between leaves the copy
        under ``rebuild.<name>``, which the next open of the collection finishes (``_finish_rebuild``)."""
        old = self._collection(model, kind, create=False)
        if old is None:
            return
        name = self._name(model, kind)
        with _chroma_errors("rebuild the gallery after a deletion"):
            got = old.get(include=["metadatas", "embeddings"])
            space = "cosine" if model else "l2"
            spare = self.client.get_or_create_collection(
                REBUILD + name, configuration={"hnsw": {"space": space}}, metadata=old.metadata, embedding_function=None
            )
            ids, vectors, metas = got["ids"], got.get("embeddings"), got["metadatas"]
            if spare.count():  # a copy an earlier, killed rebuild left: it may hold rows deleted since
                self.client.delete_collection(REBUILD + name)
                spare = self.client.create_collection(
                    REBUILD + name,
                    configuration={"hnsw": {"space": space}},
                    metadata=old.metadata,
                    embedding_function=None,
                )
            for start in range(0, len(ids), _BATCH):
                spare.upsert(
                    ids=ids[start : start + _BATCH],
                    embeddings=vectors[start : start + _BATCH],
                    metadatas=metas[start : start + _BATCH],
                )
            self.client.delete_collection(name)
            self._forget(name)
            spare.modify(name=name)

    def _finish_rebuild(self, name: str) -> None:
        from chromadb.errors import NotFoundError

        try:
            spare = self.client.get_collection(REBUILD + name, embedding_function=None)
        except NotFoundError:
            return
        except Exception:  # a server that cannot answer: the caller's own request will say so
            return
        if name in self._names():
            self.client.delete_collection(REBUILD + name)  # the swap had not begun: the original is whole
        else:
            spare.modify(name=name)
        self._forget(name)

    def finish_rebuilds(self) -> int:
        """Finish every rebuild of this namespace that a killed process left (``rebuild.<name>``), for every
        collection of every model at once: a reader opening one model never sees another's half-swapped."""
        prefix = REBUILD + self._prefix()
        spares = [n[len(REBUILD) :] for n in self._names() if n.startswith(prefix)]
        with _chroma_errors("finish an interrupted rebuild"):
            for name in spares:
                self._finish_rebuild(name)
        return len(spares)

    # -- crash safety --------------------------------------------------------------------------------
    # Every multi-step write runs inside ``writing()``, which leaves a marker file beside the thumbnails
    # (``thumbs/<namespace>.pending.json``: which process, doing what) for as long as it runs. A process killed
    # in the middle leaves the marker behind, and the next open (``check``) sees it and puts the gallery right
    # (``repair``) before anyone reads it. Each write is ordered so that one Chroma call is its commit point
    # and whatever precedes it is swept by the repair (the gallery as before) and whatever follows is derived
    # from it (the gallery as after): an enrollment's registry rows, a delete's ``persons`` row, a rename's.
    def _marker(self) -> Path | None:
        if self.thumbs_dir is None:
            return None
        return self.thumbs_dir.with_name(self.thumbs_dir.name + ".pending.json")

    def _read_marker(self) -> dict | None:
        path = self._marker()
        if path is None or not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {"what": "unknown", "erase": True}  # a marker cut short: assume the worst
        return dict(data) if isinstance(data, dict) else {"what": "unknown", "erase": True}

    def _writer(self) -> bool:
        """Whether a write of this namespace is running now: in this process (another thread, while this one
        reads) or in another process that is still alive. Its half-done state is not to be repaired."""
        if self.state.get(("writing", self.namespace), 0):
            return True
        marker = self._read_marker()
        pid = marker.get("pid") if marker else None
        return isinstance(pid, int) and pid != os.getpid() and alive(pid)

    def _write_marker(self, data: dict) -> None:
        """Written in place, not atomically: a marker cut short still marks the gallery (as "erase", to be safe)."""
        path = self._marker()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))

    @contextlib.contextmanager
    def writing(self, what: str, erase: bool = False) -> Iterator[None]:
        """Hold the write lock and mark the gallery as being written for the length of the block (nested
        blocks share the outer one's marker). ``erase``: the write removes personal data, so a repair after a
        crash must also make the removal physical (``erase``). A block that fails is repaired at once; one
        that inherits the marker of a killed process repairs what that process left before it ends."""
        with self.lock:
            key = ("writing", self.namespace)
            depth = self.state.get(key, 0)
            path = self._marker()
            inherited = None
            if path is not None and depth == 0:
                inherited = self._read_marker()
                self._write_marker(
                    {
                        "pid": os.getpid(),
                        "what": what,
                        "erase": erase or bool(inherited and inherited.get("erase")),
                        "since": time.time(),
                    }
                )
            elif path is not None and erase:
                current = self._read_marker() or {"pid": os.getpid(), "what": what}
                if not current.get("erase"):
                    self._write_marker({**current, "erase": True})
            self.state[key] = depth + 1
            failed = True
            try:
                yield
                failed = False
            finally:
                self.state[key] = depth
                if path is not None and depth == 0:
                    marker = self._read_marker() or {}
                    try:
                        if failed or inherited:
                            self.repair(erase=bool(marker.get("erase")))
                    except Exception:
                        if not failed:
                            raise
                    else:
                        path.unlink(missing_ok=True)

    def check(self) -> Repair | None:
        """On opening the gallery: finish what a killed process left, so that every reader sees the gallery
        as it was before that process's command or as it would be after it, never in between. Cheap when
        nothing happened: one list of the collections, the marker file, a few counts and one directory
        listing; a full ``repair`` only when a marker was left or the counts disagree. Once per process and
        namespace; skipped while a live process is writing the gallery (its work is not half-done, only
        unfinished)."""
        key = ("checked", self.namespace)
        if self.state.get(key) or self._writer():
            return None
        with self.lock:
            if self._writer():
                return None
            rebuilds = self.finish_rebuilds()
            marker = self._read_marker()
            if self.schema() != SCHEMA:  # a gallery of the old layout is migrated first, then checked
                return None
            repaired = None
            if marker is not None or not self._agrees():
                repaired = self.repair(erase=bool(marker and marker.get("erase")))
                if marker is not None:
                    self._marker().unlink(missing_ok=True)
            self.state[key] = True
        if repaired is None:
            return Repair(rebuilds=rebuilds) if rebuilds else None
        return replace(repaired, rebuilds=rebuilds)

    def _agrees(self) -> bool:
        """Whether the counts say that the derived data and the files match the faces: no model holds more
        vectors than there are faces; a model holding every face has a centroid for every person; no more
        thumbnails or regions than faces, and no half-written file."""
        faces = self.face_count()
        col = self._collection(None, PERSONS, create=False)
        with _chroma_errors("count the people"):
            people = col.count() if col is not None else 0
        for model in self.models():
            held, centroids = self.count(model), self.centroid_count(model)
            if held > faces or centroids > people or (held == faces and centroids != people):
                return False
        files = self._files()
        return not files["part"] and len(files["thumbs"]) <= faces and len(files["regions"]) <= faces

    def _files(self) -> dict[str, list[Path]]:
        """The files beside the store: thumbnails, regions, and half-written ones (``*.part``, a marker's
        temporary copy) that a killed process left."""
        out: dict[str, list[Path]] = {"thumbs": [], "regions": [], "part": []}
        if self.thumbs_dir is None:
            return out
        for kind, folder in (("thumbs", self.thumbs_dir), ("regions", self.thumbs_dir / "regions")):
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(folder):
                    if not entry.is_file():
                        continue
                    if entry.name.endswith((".part", ".tmp")):
                        out["part"].append(Path(entry.path))
                    elif entry.name.endswith(".jpg"):
                        out[kind].append(Path(entry.path))
        marker = self._marker()
        with contextlib.suppress(FileNotFoundError):
            out["part"] += [p for p in marker.parent.glob(f".{marker.name}.*") if p.is_file()]
        return out

    def repair(self, erase: bool = False) -> Repair:
        """Make everything derived agree with the people and their faces again (the registry rows are the
        truth: a face is enrolled once its row is written, a person is deleted once their ``persons`` row is):
        registry faces of a person who is gone are removed with their files; a person with no face left (an
        enrollment killed before its faces were recorded) is removed; each model's vectors of no recorded
        face are removed, and its people index is rewritten where it differs from the mean of each person's
        vectors (names included); files with no record are deleted. With ``erase``, or when anything personal
        was removed, the collections are rebuilt and the folder vacuumed, as a delete does."""
        with self.lock:
            persons = {p.id: p for p in self.persons()}
            faces = self.faces()
            orphans = [f.id for f in faces if f.person_id not in persons]
            self.delete_faces(orphans)
            live = {f.id: f for f in faces if f.person_id in persons}
            holders = {f.person_id for f in live.values()}
            faceless = [pid for pid in persons if pid not in holders]
            self.delete_persons(faceless)
            for pid in faceless:
                persons.pop(pid)
            vectors = centroids = 0
            models = self.models()
            for model in models:
                records, embedded = self.vectors(model, embeddings=True)
                stray = [r.id for r in records if r.face_id not in live or live[r.face_id].person_id != r.person_id]
                self.delete_vectors(model, stray)
                vectors += len(stray)
                grouped: dict[str, list] = defaultdict(list)
                for r, v in zip(records, embedded):
                    if r.id not in stray:
                        grouped[r.person_id].append(v)
                want = {pid: (persons[pid].name, centroid(np.stack(vs))) for pid, vs in grouped.items()}
                have = self._centroid_rows(model)
                update: dict = {pid: None for pid in have if pid not in want}
                for pid, (name, vector) in want.items():
                    old = have.get(pid)
                    if old is None or old[0] != name or float(np.max(np.abs(old[1] - vector))) > 1e-4:
                        update[pid] = (name, vector)
                if update:
                    self.set_centroids(model, update)
                centroids += len(update)
            files = 0
            found = self._files()
            for path in found["part"] + [p for p in found["thumbs"] + found["regions"] if p.stem not in live]:
                path.unlink(missing_ok=True)
                files += 1
            if orphans or faceless or vectors or centroids or files:
                self.classifiers.forget(self.namespace)
            erase = erase or bool(orphans or faceless or vectors)  # their data is still in Chroma's files
            if erase:
                self.erase(models)
            return Repair(0, len(orphans), len(faceless), vectors, centroids, files, erase)

    def _centroid_rows(self, model: str) -> dict[str, tuple[str, np.ndarray]]:
        col = self._collection(model, PEOPLE, create=False)
        if col is None:
            return {}
        with _chroma_errors("read the people index"):
            got = col.get(include=["metadatas", "embeddings"])
        return {
            i: (str(m.get("person", "")), np.asarray(v, dtype=np.float32))
            for i, m, v in zip(got["ids"], got["metadatas"], got["embeddings"])
        }

    def compact(self) -> None:
        """Remove the HNSW folders of deleted collections and vacuum an embedded Chroma's folder.
        A Chroma server keeps its own files; an in-memory one has none."""
        if self.persist_dir is None:
            return
        database = self.persist_dir / "chroma.sqlite3"
        try:
            with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
                live = {row[0] for row in db.execute("SELECT id FROM segments")}
        except sqlite3.Error as exc:
            raise GalleryError(f"Could not read the gallery's segment list to erase deleted faces: {exc}.") from exc
        for folder in self.persist_dir.iterdir():
            if folder.is_dir() and _UUID.match(folder.name) and folder.name not in live:
                shutil.rmtree(folder, ignore_errors=True)
        command = chroma_command()
        if command is None:
            raise GalleryError(
                "The `chroma` command is missing, so deleted faces cannot be erased from the gallery file; reinstall chromadb."
            )
        done = subprocess.run(
            [command, "vacuum", "--path", str(self.persist_dir), "--force", "--timeout", str(VACUUM_TIMEOUT_S)],
            capture_output=True,
            text=True,
            timeout=VACUUM_TIMEOUT_S + 30,
        )
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise GalleryError(
                f"The faces were deleted, but the gallery file could not be compacted yet ({detail[0]}); deleting again retries."
            )
        for folder in self.persist_dir.iterdir():
            if folder.is_dir() and _UUID.match(folder.name):
                scrub_hnsw(folder)


def scrub_hnsw(folder: Path) -> int:
    """Zero the unused slots of a persisted HNSW index; returns the bytes zeroed.

    hnswlib allocates its element buffer with ``malloc`` and saves all of it, so the slots past its element
    count hold whatever the writing process's heap held: ``chroma vacuum`` reads the write-ahead log, deleted
    people's records included, before it saves the indexes, and a kill-point test found a deleted person's
    name in an empty index's ``data_level0.bin``. The header (Chroma's hnswlib, version 1: a 4-byte version,
    then offsetLevel0, max_elements, cur_element_count, size_data_per_element as 8-byte integers) says where
    the used slots end; a file of any other shape is left alone."""
    try:
        header = (folder / "header.bin").read_bytes()
        data, lengths = folder / "data_level0.bin", folder / "length.bin"
        if len(header) < 36 or int.from_bytes(header[:4], "little") != 1 or not data.is_file():
            return 0
        _, max_elements, count, size = (int.from_bytes(header[4 + 8 * i : 12 + 8 * i], "little") for i in range(4))
        zeroed = 0
        for path, slot in ((data, size), (lengths, 4)):
            if not path.is_file() or path.stat().st_size != max_elements * slot or count > max_elements:
                continue
            with open(path, "r+b") as out:
                out.seek(count * slot)
                out.write(bytes((max_elements - count) * slot))
            zeroed += (max_elements - count) * slot
        return zeroed
    except OSError:
        return 0


REBUILD = "rebuild."  # prefix of a collection being rebuilt after a deletion
VACUUM_TIMEOUT_S = 60
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _collection_names(client) -> list[str]:
    with _chroma_errors("list the collections"):
        return [c if isinstance(c, str) else c.name for c in client.list_collections()]


def _check_text(metadatas: Sequence[dict]) -> None:
    """Refuse text Chroma cannot store (a lone surrogate: bytes that were not UTF-8) with a sentence; its own
    error is a TypeError from its bindings, raised after the caller may have written files."""
    if any(isinstance(v, str) and has_surrogates(v) for meta in metadatas for v in meta.values()):
        raise GalleryError(
            "A name or photo label is not valid text (it holds bytes that are not UTF-8); nothing was stored."
        )


@contextlib.contextmanager
def _chroma_errors(doing: str) -> Iterator[None]:
    """Chroma and its HTTP client raise many kinds of errors; the user gets one sentence."""
    try:
        yield
    except GalleryError:
        raise
    except Exception as exc:
        if type(exc).__module__.split(".")[0] not in ("chromadb", "httpx", "httpcore") and not isinstance(
            exc, (OSError, ConnectionError, ValueError)
        ):
            raise
        raise GalleryError(f"Could not {doing}: {_reason(exc)}") from exc
