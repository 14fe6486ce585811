"""Where enrolled faces live: a small store interface and its Chroma implementation.

One collection per model (embedding sizes differ, and a ``where`` filter costs about 12x a plain query
in Chroma 1.5), cosine space, and ``embedding_function=None`` always: we hand Chroma our own vectors,
and any other value makes it fetch a text model. A second, small collection per model holds one
re-normalised mean embedding per person, so "nearest person" is one vector query however large the
gallery grows. Face-crop thumbnails are small JPEGs on disk beside the store.

Chroma's cosine distance ``c`` and the project's L2 distance between unit vectors ``d`` relate as
``d = sqrt(2c)``; everything leaving this module is ``d``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol, Sequence

import numpy as np
from PIL import Image

from ..errors import GalleryError
from ..settings import default_gallery_dir
from ..vectors import cosine_to_l2, l2_normalise
from .classifier import Classifiers
from .server import chroma_command

THUMB_SIZE = 112  # longest side, pixels
FACES, PEOPLE = "faces", "people"
_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class FaceRecord:
    """One enrolled face: who, from which photo (name and sha256 of its bytes), where, with which model."""

    id: str
    person: str
    image: str
    image_sha: str
    box: tuple[float, float, float, float]
    model: str
    enrolled_at: str  # ISO 8601, UTC

    def metadata(self) -> dict:
        x1, y1, x2, y2 = self.box
        return {
            "person": self.person, "image": self.image, "image_sha": self.image_sha, "model": self.model,
            "enrolled_at": self.enrolled_at, "x1": x1, "y1": y1, "x2": x2, "y2": y2,
        }

    @classmethod
    def from_metadata(cls, id: str, meta: dict) -> "FaceRecord":
        box = tuple(float(meta.get(k, 0.0)) for k in ("x1", "y1", "x2", "y2"))
        return cls(id, str(meta["person"]), str(meta.get("image", "")), str(meta.get("image_sha", "")), box,
                   str(meta.get("model", "")), str(meta.get("enrolled_at", "")))


@dataclass(frozen=True)
class Hit:
    record: FaceRecord
    distance: float


@dataclass(frozen=True)
class Candidate:
    """A person and their distance to a face (a centroid hit, or a person's nearest face)."""

    name: str
    distance: float


def record_id(model: str, image_sha: str, box: Sequence[float]) -> str:
    """The same face of the same photo for the same model always gets the same id, so re-imports upsert."""
    key = f"{model}|{image_sha}|" + ",".join(f"{v:.0f}" for v in box)
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class FaceStore(Protocol):
    """What the gallery needs from a store. ``lock`` serialises writers that share the store."""

    lock: threading.RLock

    def models(self) -> list[str]: ...
    def count(self, model: str) -> int: ...
    def add(self, model: str, records: Sequence[FaceRecord], embeddings: np.ndarray, thumbs: Sequence[Image.Image | None], flip: bool = False) -> None: ...
    def flip(self, model: str) -> bool | None: ...
    def get(self, model: str, ids: Sequence[str] = (), person: str | None = None, image_shas: Sequence[str] = (), embeddings: bool = False) -> tuple[list[FaceRecord], np.ndarray | None]: ...
    def query(self, model: str, embeddings: np.ndarray, k: int) -> list[list[Hit]]: ...
    def delete(self, model: str, ids: Sequence[str]) -> None: ...
    def rename(self, model: str, records: Sequence[FaceRecord], person: str) -> None: ...
    def set_centroids(self, model: str, centroids: dict[str, np.ndarray | None]) -> None: ...
    def query_centroids(self, model: str, embeddings: np.ndarray, k: int) -> list[list[Candidate]]: ...
    def thumb_path(self, record_id: str) -> Path | None: ...
    def drop(self, compact: bool = True) -> None: ...
    def erase(self, models: Sequence[str]) -> None: ...


def make_client(path: str | Path | None = None, host: str | None = None, port: int | None = None, ephemeral: bool = False):
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
        where = f"the Chroma server at {host}:{port or 8000}" if host else ("an in-memory Chroma" if ephemeral else f"the gallery at {path or default_gallery_dir()}")
        raise GalleryError(f"Cannot open {where}: {_reason(exc)}") from exc


def open_store(gallery: str | Path | None = None, host: str | None = None, port: int | None = None,
               ephemeral: bool = False, namespace: str | None = None) -> "ChromaStore":
    """The usual way in: a client from the arguments, thumbnails under ``<gallery>/thumbs``."""
    folder = Path(gallery) if gallery else (None if ephemeral else default_gallery_dir())
    client = make_client(folder, host, port, ephemeral)
    thumbs = folder / "thumbs" if folder else Path(tempfile.mkdtemp(prefix="facedemo-thumbs-"))
    return ChromaStore(client, thumbs, namespace, persist_dir=folder if folder and not host and not ephemeral else None)


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300].rstrip(".") + "."


class ChromaStore:
    def __init__(self, client, thumbs_dir: str | Path | None = None, namespace: str | None = None, lock: threading.RLock | None = None,
                 persist_dir: str | Path | None = None, classifiers: Classifiers | None = None):
        if namespace is not None and not _NAMESPACE.match(namespace):
            raise GalleryError(f"'{namespace}' cannot be a gallery namespace: use 1-63 letters, digits, '-' or '_'.")
        self.client = client
        self.persist_dir = Path(persist_dir) if persist_dir else None  # an embedded Chroma's folder (erasure compacts it)
        self.namespace = namespace
        self.thumbs_dir = Path(thumbs_dir) / (namespace or "default") if thumbs_dir else None
        self.lock = lock or threading.RLock()
        self.classifiers = classifiers or Classifiers()  # the classifier method's models, until the gallery changes
        self._collections: dict[tuple[str, str], object] = {}

    def with_namespace(self, namespace: str | None) -> "ChromaStore":
        """The same client, thumbnail root and write lock, another private gallery (the dashboard's public mode)."""
        root = self.thumbs_dir.parent if self.thumbs_dir else None
        return ChromaStore(self.client, root, namespace, self.lock, self.persist_dir, self.classifiers)

    # -- collections ------------------------------------------------------------------------------
    def _prefix(self) -> str:
        return f"{self.namespace}.fd." if self.namespace else "fd."

    def _name(self, model: str, kind: str) -> str:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", model)
        return f"{self._prefix()}{kind}.{safe}"

    def _collection(self, model: str, kind: str = FACES, create: bool = True):
        key = (model, kind)
        if key not in self._collections:
            with _chroma_errors("open the collection for " + model):
                name = self._name(model, kind)
                self._finish_rebuild(name)  # a rebuild cut short by a crash is completed before any use
                if create:
                    col = self.client.get_or_create_collection(
                        name, configuration={"hnsw": {"space": "cosine"}},
                        metadata={"facedemo": kind, "model": model}, embedding_function=None,
                    )
                else:
                    from chromadb.errors import NotFoundError

                    try:
                        col = self.client.get_collection(name, embedding_function=None)
                    except NotFoundError:
                        return None
            self._collections[key] = col
        return self._collections[key]

    def _names(self) -> list[str]:
        with _chroma_errors("list the collections"):
            return [c if isinstance(c, str) else c.name for c in self.client.list_collections()]

    def models(self) -> list[str]:
        """The models with a face collection in this namespace (read from the collections' metadata)."""
        prefix = self._prefix() + FACES + "."
        models = []
        for name in self._names():
            if name.startswith(prefix):
                col = self._collection_by_name(name)
                models.append(str((col.metadata or {}).get("model") or name[len(prefix):]))
        return sorted(models)

    def _collection_by_name(self, name: str):
        with _chroma_errors("open " + name):
            return self.client.get_collection(name, embedding_function=None)

    # -- faces ------------------------------------------------------------------------------------
    def count(self, model: str) -> int:
        col = self._collection(model, create=False)
        with _chroma_errors("count the faces"):
            return col.count() if col is not None else 0

    def flip(self, model) -> bool | None:
        """Whether the faces stored for ``model`` were embedded with test-time flip (face and mirror image
        averaged); None while none are stored. A collection written before the option existed holds
        unflipped vectors, so a missing record reads as False."""
        col = self._collection(model, create=False)
        with _chroma_errors("read the collection"):
            if col is None or col.count() == 0:
                return None
            return bool((col.metadata or {}).get("flip", False))

    def add(self, model, records, embeddings, thumbs, flip: bool = False) -> None:
        """Upsert records with their embeddings; thumbnails are written first so a record never lacks one.
        ``flip``: how the embeddings were made; the collection records it with its first faces and refuses
        vectors made the other way (distances between the two kinds mean less than either's)."""
        if not records:
            return
        recorded = self.flip(model)
        if recorded is not None and recorded != flip:
            raise GalleryError(f"The gallery's {model} faces were embedded {'with' if recorded else 'without'} test-time flip and these "
                               f"{'with' if flip else 'without'} it; the two cannot be mixed in one collection.")
        for record, thumb in zip(records, thumbs):
            if thumb is not None:
                self._write_thumb(record.id, thumb)
        col = self._collection(model)
        if recorded is None and bool((col.metadata or {}).get("flip", False)) != flip:
            with _chroma_errors("record how the faces were embedded"):
                col.modify(metadata={**(col.metadata or {}), "flip": flip})
        vectors = l2_normalise(embeddings)
        with _chroma_errors("store the faces"):
            for start in range(0, len(records), 1000):
                part = records[start : start + 1000]
                col.upsert(ids=[r.id for r in part], embeddings=vectors[start : start + len(part)],
                           metadatas=[r.metadata() for r in part])

    def get(self, model, ids=(), person=None, image_shas=(), embeddings=False):
        col = self._collection(model, create=False)
        if col is None:
            return [], (np.zeros((0, 0), np.float32) if embeddings else None)
        where = None
        if person is not None:
            where = {"person": person}
        elif image_shas:
            where = {"image_sha": {"$in": list(image_shas)}}
        include = ["metadatas", "embeddings"] if embeddings else ["metadatas"]
        with _chroma_errors("read the gallery"):
            got = col.get(ids=list(ids) or None, where=where, include=include)
        records = [FaceRecord.from_metadata(i, m) for i, m in zip(got["ids"], got["metadatas"])]
        vectors = None
        if embeddings:
            raw = got.get("embeddings")
            vectors = np.asarray(raw, dtype=np.float32) if raw is not None and len(raw) else np.zeros((0, 0), np.float32)
        return records, vectors

    def query(self, model, embeddings, k):
        col = self._collection(model, create=False)
        if col is None or k <= 0:
            return [[] for _ in range(len(embeddings))]
        with _chroma_errors("search the gallery"):
            n = min(k, col.count())
            if n == 0:
                return [[] for _ in range(len(embeddings))]
            got = col.query(query_embeddings=l2_normalise(embeddings), n_results=n, include=["metadatas", "distances"])
        return [
            [Hit(FaceRecord.from_metadata(i, m), float(d)) for i, m, d in zip(ids, metas, cosine_to_l2(dists))]
            for ids, metas, dists in zip(got["ids"], got["metadatas"], got["distances"])
        ]

    def delete(self, model, ids) -> None:
        """Thumbnails go first: if the process dies half-way, the records are still there to delete again."""
        if not ids:
            return
        for record_id in ids:
            path = self.thumb_path(record_id, must_exist=False)
            if path is not None:
                path.unlink(missing_ok=True)
        col = self._collection(model, create=False)
        if col is not None:
            with _chroma_errors("delete faces"):
                col.delete(ids=list(ids))

    def rename(self, model, records, person) -> None:
        col = self._collection(model, create=False)
        if col is None or not records:
            return
        metas = [FaceRecord(r.id, person, r.image, r.image_sha, r.box, r.model, r.enrolled_at).metadata() for r in records]
        with _chroma_errors("rename"):
            col.update(ids=[r.id for r in records], metadatas=metas)

    # -- one mean vector per person -----------------------------------------------------------------
    def set_centroids(self, model, centroids) -> None:
        """``{person: unit vector}`` upserts; ``{person: None}`` removes that person's centroid."""
        col = self._collection(model, PEOPLE)
        gone = [_person_id(p) for p, v in centroids.items() if v is None]
        keep = [(p, v) for p, v in centroids.items() if v is not None]
        with _chroma_errors("update the people index"):
            if gone:
                col.delete(ids=gone)
            if keep:
                col.upsert(ids=[_person_id(p) for p, _ in keep], embeddings=l2_normalise(np.stack([v for _, v in keep])),
                           metadatas=[{"person": p} for p, _ in keep])

    def query_centroids(self, model, embeddings, k):
        col = self._collection(model, PEOPLE, create=False)
        if col is None or k <= 0:
            return [[] for _ in range(len(embeddings))]
        with _chroma_errors("search the people index"):
            n = min(k, col.count())
            if n == 0:
                return [[] for _ in range(len(embeddings))]
            got = col.query(query_embeddings=l2_normalise(embeddings), n_results=n, include=["metadatas", "distances"])
        return [
            [Candidate(str(m["person"]), float(d)) for m, d in zip(metas, cosine_to_l2(dists))]
            for metas, dists in zip(got["metadatas"], got["distances"])
        ]

    def centroid_people(self, model) -> list[str]:
        col = self._collection(model, PEOPLE, create=False)
        if col is None:
            return []
        with _chroma_errors("read the people index"):
            return [str(m["person"]) for m in col.get(include=["metadatas"])["metadatas"]]

    # -- thumbnails -------------------------------------------------------------------------------
    def _write_thumb(self, record_id: str, image: Image.Image) -> None:
        if self.thumbs_dir is None:
            return
        self.thumbs_dir.mkdir(parents=True, exist_ok=True)
        thumb = image.convert("RGB")
        thumb.thumbnail((THUMB_SIZE, THUMB_SIZE))
        with tempfile.NamedTemporaryFile(dir=self.thumbs_dir, suffix=".part", delete=False) as tmp:
            thumb.save(tmp, format="JPEG", quality=85)
        os.replace(tmp.name, self.thumbs_dir / f"{record_id}.jpg")

    def thumb_path(self, record_id: str, must_exist: bool = True) -> Path | None:
        if self.thumbs_dir is None or not re.fullmatch(r"[0-9a-f]{8,64}", record_id):
            return None
        path = self.thumbs_dir / f"{record_id}.jpg"
        return path if (path.exists() or not must_exist) else None

    def namespaces(self) -> set[str]:
        """Every namespace with something stored: collections in Chroma or a thumbnail folder on disk."""
        found = {name.split(".fd.", 1)[0] for name in self._names() if ".fd." in name and not name.startswith(("fd.", REBUILD))}
        root = self.thumbs_dir.parent if self.thumbs_dir else None
        if root is not None and root.is_dir():
            found |= {p.name for p in root.iterdir() if p.is_dir() and p.name != "default" and _NAMESPACE.match(p.name)}
        return found

    def drop(self, compact: bool = True) -> None:
        """Remove this namespace's collections and thumbnails (a public-mode visitor's gallery expiring),
        and compact the folder so that no byte of them stays on disk (``compact=False``: the caller
        compacts once after dropping several)."""
        prefix = self._prefix()
        with _chroma_errors("drop the gallery"):
            for name in self._names():
                if name.startswith(prefix) or name.startswith(REBUILD + prefix):
                    self.client.delete_collection(name)
        self._collections.clear()
        if self.thumbs_dir is not None:
            shutil.rmtree(self.thumbs_dir, ignore_errors=True)
        if compact:
            self.compact()

    # -- erasure on disk ------------------------------------------------------------------------------
    # Chroma 1.5 deletes from its API view only: a deleted record stays in the collection's write-ahead log
    # (``embeddings_queue``) until the vector segment is flushed, in the HNSW files (marked deleted, data
    # kept), and in SQLite's free pages; ``delete_collection`` purges the collection's log but leaves its
    # HNSW folder behind (chroma-core/chroma#5259: the local server has no garbage collector). So erasure
    # is: rebuild the collections that held the person from what remains, remove the segment folders no
    # collection uses any more, and run Chroma's own ``chroma vacuum`` (which purges the log up to what the
    # segments hold and VACUUMs SQLite, rewriting the file without its free pages).
    def erase(self, models: Sequence[str]) -> None:
        """After ``delete``: make the deletion physical for these models' collections (faces and people)."""
        for model in models:
            for kind in (FACES, PEOPLE):
                self._rebuild(model, kind)
        self.compact()

    def _rebuild(self, model: str, kind: str) -> None:
        """Copy what remains into a fresh collection, then swap it in. A crash in between leaves the copy
        under ``rebuild.<name>``, which the next open of the collection finishes (``_finish_rebuild``)."""
        old = self._collection(model, kind, create=False)
        if old is None:
            return
        name = self._name(model, kind)
        with _chroma_errors("rebuild the gallery after a deletion"):
            got = old.get(include=["metadatas", "embeddings"])
            spare = self.client.get_or_create_collection(REBUILD + name, configuration={"hnsw": {"space": "cosine"}},
                                                         metadata=old.metadata, embedding_function=None)
            ids, vectors, metas = got["ids"], got.get("embeddings"), got["metadatas"]
            for start in range(0, len(ids), 1000):
                spare.upsert(ids=ids[start : start + 1000], embeddings=vectors[start : start + 1000], metadatas=metas[start : start + 1000])
            self.client.delete_collection(name)
            self._collections.pop((model, kind), None)
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
            raise GalleryError("The `chroma` command is missing, so deleted faces cannot be erased from the gallery file; reinstall chromadb.")
        done = subprocess.run([command, "vacuum", "--path", str(self.persist_dir), "--force", "--timeout", str(VACUUM_TIMEOUT_S)],
                              capture_output=True, text=True, timeout=VACUUM_TIMEOUT_S + 30)
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise GalleryError(f"The faces were deleted, but the gallery file could not be compacted yet ({detail[0]}); deleting again retries.")


REBUILD = "rebuild."  # prefix of a collection being rebuilt after a deletion
VACUUM_TIMEOUT_S = 60
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _person_id(person: str) -> str:
    return hashlib.sha256(person.encode()).hexdigest()[:32]


@contextlib.contextmanager
def _chroma_errors(doing: str) -> Iterator[None]:
    """Chroma and its HTTP client raise many kinds of errors; the user gets one sentence."""
    try:
        yield
    except GalleryError:
        raise
    except Exception as exc:
        if type(exc).__module__.split(".")[0] not in ("chromadb", "httpx", "httpcore") and not isinstance(exc, (OSError, ConnectionError, ValueError)):
            raise
        raise GalleryError(f"Could not {doing}: {_reason(exc)}") from exc
