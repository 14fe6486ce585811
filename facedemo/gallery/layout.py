"""The gallery's collections in Chroma: their kinds and names, the layout's version, and ``Collections``,
which opens one namespace's collections (once each, shared by every view of the same client).

A person exists once, whatever the models: the ``persons`` collection holds each person's id and name,
and the ``registry`` collection each enrolled face, independent of any model. Each model then has its own
collection of vectors (``faces``: embedding sizes differ, and a ``where`` filter costs far more than a plain
query in Chroma 1.5) and a small collection of one mean vector per person (``people``).
The two model-independent collections carry a one-number placeholder vector (Chroma stores no record
without one).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from ..errors import GalleryError, InvalidNameError
from .chroma import (
    CHANGED_ELSEWHERE,
    CollectionHandle,
    chroma_accepts,
    chroma_errors,
    chroma_reason,
    collection_names,
)

FACES, PEOPLE, PERSONS, REGISTRY = "faces", "people", "persons", "registry"
SCHEMA = 2  # 1: a person was a name inside each model's collection; 2: persons and a face registry
REBUILD = "rebuild."  # prefix of a collection being rebuilt after a deletion
NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
PLACEHOLDER = [1.0]  # the vector of a persons or registry row
BATCH = 1000
_MODEL_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")


def collection_name(namespace: str | None, model: str | None, kind: str) -> str:
    """The Chroma collection of one kind (``faces``, ``people``, ...) for a model, or a model-independent one."""
    prefix = f"{namespace}.fd." if namespace else "fd."
    if model is None:
        return f"{prefix}{kind}"
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", model)
    return f"{prefix}{kind}.{safe}"


def check_model_name(model: str) -> str:
    """A new model's name, refused unless every collection a gallery makes for it (in any namespace, and
    while one is rebuilt) is a name Chroma accepts: checked before a fine-tune trains or saves anything,
    since Chroma would refuse only when the model's first vectors are stored."""
    model = model.strip() if isinstance(model, str) else ""
    longest = "n" * 63  # a namespace is at most 63 characters (NAMESPACE)
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


class Collections:
    """One namespace's collections in one Chroma client, opened once each and kept in ``handles``, which
    every namespace view of the client shares: a request's view of a visitor's gallery does not open its
    collections again.

    ``client`` None: the namespace's own Chroma (``VisitorClients``), opened when first needed. ``busy()``
    says whether a write of this namespace is running now; while none is, opening a collection first
    finishes a rebuild of it that a killed process left half-way."""

    def __init__(
        self,
        client,
        namespace: str | None,
        handles: dict | None = None,
        visitors=None,
        busy: Callable[[], bool] = lambda: False,
    ):
        self._client = client
        self.namespace = namespace
        self.handles: dict[str, object] = {} if handles is None else handles
        self.visitors = visitors
        self.busy = busy

    @property
    def client(self):
        if self._client is None:
            self._client = self.visitors.client(self.namespace)
        return self._client

    def unopened(self) -> bool:
        """A namespace with its own Chroma that holds nothing yet: reading it opens (and creates) nothing."""
        return self._client is None and not self.visitors.folder(self.namespace).is_dir()

    def prefix(self) -> str:
        return f"{self.namespace}.fd." if self.namespace else "fd."

    def name(self, model: str | None, kind: str) -> str:
        return collection_name(self.namespace, model, kind)

    def get(self, model: str | None, kind: str = FACES, create: bool = True):
        """The collection of ``kind`` for ``model`` (None: a model-independent one); with ``create`` False,
        None where it does not exist."""
        name = self.name(model, kind)
        if name not in self.handles:
            if not create and self.unopened():
                return None
            with chroma_errors("open the collection for " + (model or kind)):
                if not self.busy():
                    self.finish_rebuild(name)  # a rebuild cut short by a crash is completed before any use
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
            self.handles[name] = CollectionHandle(name, col, self.lookup)
        return self.handles[name]

    def lookup(self, name: str):
        """The collection called ``name`` now (another process may have replaced it: a new id), or a sentence.
        A rebuild's swap leaves the name free for a moment, so a miss is tried once more."""
        from chromadb.errors import NotFoundError

        self.forget(name)
        for attempt in range(2):
            try:
                col = self.client.get_collection(name, embedding_function=None)
            except NotFoundError:
                if attempt == 0:
                    time.sleep(0.5)
                continue
            except Exception as exc:
                raise GalleryError(f"Could not read the gallery: {chroma_reason(exc)}") from exc
            self.handles[name] = CollectionHandle(name, col, self.lookup)
            return col
        raise GalleryError(f"Could not read the gallery: {CHANGED_ELSEWHERE}")

    def forget(self, name: str) -> None:
        self.handles.pop(name, None)

    def forget_namespace(self) -> None:
        """Drop the handles of every collection of this namespace (it was dropped)."""
        prefix = self.prefix()
        for name in [n for n in self.handles if n.startswith((prefix, REBUILD + prefix))]:
            self.forget(name)

    def names(self) -> list[str]:
        return [] if self.unopened() else collection_names(self.client)

    def models(self) -> list[str]:
        """The models with a face collection in this namespace (read from the collections' metadata)."""
        prefix = self.prefix() + FACES + "."
        models = []
        for name in self.names():
            if name.startswith(prefix):
                col = self.handles.get(name) or self._by_name(name)
                models.append(str((col.metadata or {}).get("model") or name[len(prefix) :]))
        return sorted(models)

    def _by_name(self, name: str):
        with chroma_errors("open " + name):
            return self.client.get_collection(name, embedding_function=None)

    def finish_rebuild(self, name: str) -> None:
        """Finish a rebuild of ``name`` that a killed process left (``Erasure.rebuild``): its copy is swapped
        in, or dropped where the original is still whole."""
        from chromadb.errors import NotFoundError

        try:
            spare = self.client.get_collection(REBUILD + name, embedding_function=None)
        except NotFoundError:
            return
        except Exception:  # a server that cannot answer: the caller's own request will say so
            return
        if name in self.names():
            self.client.delete_collection(REBUILD + name)  # the swap had not begun: the original is whole
        else:
            spare.modify(name=name)
        self.forget(name)

    def finish_rebuilds(self) -> int:
        """Finish every rebuild of this namespace that a killed process left (``rebuild.<name>``), for every
        collection of every model at once: a reader opening one model never sees another's half-swapped."""
        prefix = REBUILD + self.prefix()
        spares = [n[len(REBUILD) :] for n in self.names() if n.startswith(prefix)]
        with chroma_errors("finish an interrupted rebuild"):
            for name in spares:
                self.finish_rebuild(name)
        return len(spares)
