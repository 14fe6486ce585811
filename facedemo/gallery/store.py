"""Where enrolled faces live: the store protocol the gallery uses and its Chroma implementation.

``ChromaStore`` is one namespace's gallery, made of parts with one concern each (every one of them in its
own module of this package):

- ``layout.Collections``: which collections there are and opening them (``chroma.py``: Chroma's client,
  errors and name rules);
- ``registry.Registry``: people and their faces, for every model, and the layout's version;
- ``embeddings.Embeddings`` and ``embeddings.Centroids``: each model's vectors and its people index;
- ``facefiles.FaceFiles``: each face's thumbnail and stored region, JPEGs beside the store;
- ``erasure.Erasure``: a delete made physical on disk (rebuilt collections, a vacuumed folder);
- ``recovery.Recovery``: writes marked while they run, and what a killed one left put right;
- ``legacy.Legacy``: what only the migration from schema 1 asks;
- ``visitors.VisitorClients``: public-mode visitors' own embedded Chromas.

The records it holds are in ``records.py``; this module names them again, as the gallery's callers know
them from here.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from ..errors import GalleryError
from ..rules import Candidate
from ..settings import default_gallery_dir
from .chroma import chroma_errors, collection_names, make_client
from .classifier import Classifiers
from .embeddings import Centroids, Embeddings
from .erasure import Erasure
from .facefiles import FaceFiles
from .layout import FACES, NAMESPACE, PEOPLE, REBUILD, SCHEMA, Collections, check_model_name
from .legacy import Legacy
from .records import FaceRecord, Hit, ModelRecord, PersonRecord, Region, face_id, record_id
from .recovery import Recovery, Repair, WriteMarker
from .registry import Registry
from .visitors import VISITORS, VisitorClients, release_memory

# What the gallery's callers import from here, wherever it lives now.
__all__ = [
    "FACES",
    "PEOPLE",
    "REBUILD",
    "SCHEMA",
    "ChromaStore",
    "FaceRecord",
    "FaceStore",
    "Hit",
    "ModelRecord",
    "PersonRecord",
    "Region",
    "Repair",
    "VisitorClients",
    "check_model_name",
    "face_id",
    "make_client",
    "open_store",
    "record_id",
    "release_memory",
]


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


class ChromaStore:
    """The ``FaceStore`` on Chroma, for one namespace; its methods hand each call to the part that owns it."""

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
        if namespace is not None and not NAMESPACE.match(namespace):
            raise GalleryError(f"'{namespace}' cannot be a gallery namespace: use 1-63 letters, digits, '-' or '_'.")
        # an embedded Chroma's folder (erasure compacts it)
        self.persist_dir = Path(persist_dir) if persist_dir else None
        self.namespace = namespace
        self.thumbs_dir = Path(thumbs_dir) / (namespace or "default") if thumbs_dir else None
        self.lock = lock or threading.RLock()
        self.classifiers = classifiers or Classifiers()  # the classifier method's models, until the gallery changes
        # What this process has learnt about the galleries of this client, shared by the namespace views:
        # ("schema", namespace) once checked, ("complete", namespace, model) once filled in.
        self.state: dict = {} if state is None else state
        # An embedded gallery keeps each namespace in its own Chroma (VisitorClients); ``main`` is the store
        # of the gallery's own client, which a namespace of an older version may still be in.
        self.visitors = visitors
        self.main = main
        self.files = FaceFiles(self.thumbs_dir)
        marker = WriteMarker(self.files.marker, namespace, self.state)
        # ``client`` None: the namespace's own Chroma, opened when first needed. Open collections are shared
        # by every namespace view of this client (``collections``).
        self.collections = Collections(client, namespace, collections, visitors, busy=marker.writer)
        self.registry = Registry(self.collections, self.files)
        self.embeddings = Embeddings(self.collections)
        self.centroids = Centroids(self.collections)
        self.legacy = Legacy(self.collections, self.registry, self.files)
        self.erasure = Erasure(self.collections, self.persist_dir)
        self.recovery = Recovery(self, marker)

    @property
    def client(self):
        return self.collections.client

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
            self.collections.handles,
            self.state,
            main.visitors,
            main if namespace is not None else None,
        )

    def models(self) -> list[str]:
        return self.collections.models()

    def namespaces(self) -> set[str]:
        """Every namespace with something stored: collections in Chroma or a thumbnail folder on disk."""
        found = {
            name.split(".fd.", 1)[0]
            for name in self.collections.names()
            if ".fd." in name and not name.startswith(("fd.", REBUILD))
        }
        root = self.thumbs_dir.parent if self.thumbs_dir else None
        if root is not None and root.is_dir():
            found |= {p.name for p in root.iterdir() if p.is_dir() and p.name != "default" and NAMESPACE.match(p.name)}
        if self.visitors is not None:
            found |= self.visitors.stored()
        return found

    # -- people and faces, for every model (registry.py, facefiles.py) -----------------------------------
    def persons(self, ids: Sequence[str] = ()) -> list[PersonRecord]:
        return self.registry.persons(ids)

    def put_persons(self, persons: Sequence[PersonRecord]) -> None:
        self.registry.put_persons(persons)

    def delete_persons(self, ids: Sequence[str]) -> None:
        self.registry.delete_persons(ids)

    def faces(
        self, person_id: str | None = None, image_shas: Sequence[str] = (), ids: Sequence[str] = ()
    ) -> list[FaceRecord]:
        return self.registry.faces(person_id, image_shas, ids)

    def face_count(self) -> int:
        return self.registry.face_count()

    def put_faces(self, faces, thumbs, regions) -> None:
        self.registry.put_faces(faces, thumbs, regions)

    def delete_faces(self, ids: Sequence[str]) -> None:
        self.registry.delete_faces(ids)

    def region(self, face_id: str) -> Image.Image | None:
        return self.files.region(face_id)

    def thumb_path(self, face_id: str, must_exist: bool = True) -> Path | None:
        return self.files.thumb_path(face_id, must_exist)

    def face_files(self, face_id: str) -> list[Path]:
        return self.files.face_files(face_id)

    # -- one model's vectors, and its people index (embeddings.py) ---------------------------------------
    def count(self, model: str) -> int:
        return self.embeddings.count(model)

    def flip(self, model: str) -> bool | None:
        return self.embeddings.flip(model)

    def put_vectors(self, model: str, records: Sequence[ModelRecord], vectors: np.ndarray, flip: bool = False) -> None:
        self.embeddings.put_vectors(model, records, vectors, flip)

    def vectors(self, model, person_id=None, face_ids=(), embeddings=False):
        return self.embeddings.vectors(model, person_id, face_ids, embeddings)

    def query(self, model: str, vectors: np.ndarray, k: int) -> list[list[Hit]]:
        return self.embeddings.query(model, vectors, k)

    def delete_vectors(self, model: str, ids: Sequence[str]) -> None:
        self.embeddings.delete_vectors(model, ids)

    def set_centroids(self, model: str, centroids: dict) -> None:
        self.centroids.set_centroids(model, centroids)

    def rename_centroids(self, model: str, person_id: str, name: str) -> None:
        self.centroids.rename_centroids(model, person_id, name)

    def centroid_count(self, model: str) -> int:
        return self.centroids.centroid_count(model)

    def centroid_people(self, model: str) -> dict[str, str]:
        return self.centroids.centroid_people(model)

    def query_centroids(self, model, vectors, k, people: int | None = None) -> list[list[Candidate]]:
        return self.centroids.query_centroids(model, vectors, k, people)

    # -- the schema and migration (registry.py, legacy.py) -----------------------------------------------
    def schema(self) -> int:
        return self.registry.schema()

    def set_schema(self, schema: int) -> None:
        self.registry.set_schema(schema)

    def begin_migration(self) -> None:
        self.legacy.begin_migration()

    def legacy_rows(self, model: str) -> tuple[list[str], list[dict], np.ndarray]:
        return self.legacy.legacy_rows(model)

    def strip_legacy(self, model: str, ids: Sequence[str]) -> None:
        self.legacy.strip_legacy(model, ids)

    def replace_centroids(self, model: str) -> None:
        self.legacy.replace_centroids(model)

    def move_thumb(self, old_id: str, new_id: str) -> None:
        self.legacy.move_thumb(old_id, new_id)

    # -- erasure (erasure.py) --------------------------------------------------------------------------
    def erase(self, models: Sequence[str], people: bool = True) -> None:
        self.erasure.erase(models, people)

    def compact(self) -> None:
        self.erasure.compact()

    def finish_rebuilds(self) -> int:
        return self.collections.finish_rebuilds()

    def drop_model(self, model: str) -> None:
        """Remove one model's vectors and people index from this namespace (a fine-tuned model deleted with
        the person it was trained on); ``compact`` makes it physical."""
        with chroma_errors("remove a model's faces"):
            names = set(self.collections.names())
            for kind in (FACES, PEOPLE):
                name = self.collections.name(model, kind)
                for doomed in (name, REBUILD + name):
                    if doomed in names:
                        self.client.delete_collection(doomed)
                    self.collections.forget(doomed)
        self.state.pop(("complete", self.namespace, model), None)
        self.classifiers.forget(self.namespace)

    def drop(self, compact: bool = True) -> bool:
        """Remove this namespace's collections, thumbnails and regions (a public-mode visitor's gallery
        expiring), and compact the folder so that no byte of them stays on disk (``compact=False``: the
        caller compacts once after dropping several, when this returns True). A namespace with its own
        Chroma (``VisitorClients``) has it closed and its folder deleted: nothing to compact."""
        prefix = self.collections.prefix()
        own = self.namespace is not None and self.main is not None and self.visitors is not None
        holder = self.main if own else self  # where collections of this namespace may be in the shared client
        dropped = False
        with chroma_errors("drop the gallery"):
            for name in collection_names(holder.client):
                if name.startswith(prefix) or name.startswith(REBUILD + prefix):
                    holder.client.delete_collection(name)
                    dropped = True
        self.collections.forget_namespace()
        if own:
            self.visitors.close(self.namespace)
        for key in [k for k in self.state if len(k) > 1 and k[1] == self.namespace]:
            self.state.pop(key, None)
        self.classifiers.forget(self.namespace)
        if self.thumbs_dir is not None:
            shutil.rmtree(self.thumbs_dir, ignore_errors=True)
            self.recovery.marker.remove()
        if compact and dropped:
            holder.compact()
        return dropped

    # -- crash safety (recovery.py) ----------------------------------------------------------------------
    def writing(self, what: str, erase: bool = False) -> contextlib.AbstractContextManager:
        return self.recovery.writing(what, erase)

    def check(self) -> Repair | None:
        return self.recovery.check()

    def repair(self, erase: bool = False) -> Repair:
        return self.recovery.repair(erase)
