"""Chroma as the gallery uses it: a client from the arguments, Chroma's errors as one sentence, its name
rules, and a collection handle that finds its collection again when another process replaced it.

``embedding_function=None`` always: we hand Chroma our own vectors, and any other value makes it fetch a
text model.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import GalleryError
from ..settings import default_gallery_dir
from .names import has_surrogates

# Chroma 1.5's rules for a collection name (its error comes only when the collection is first made).
_CHROMA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
_IPV4 = re.compile(r"^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$")


def chroma_accepts(name: str) -> bool:
    return bool(_CHROMA_NAME.match(name)) and ".." not in name and not _IPV4.match(name)


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
        raise GalleryError(f"Cannot open {where}: {chroma_reason(exc)}") from exc


_CHROMA_ID = re.compile(r"\[?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\]? ?")
CHANGED_ELSEWHERE = (
    "another program changed the gallery at that moment (a delete or rename from the command line); try again."
)


def collection_gone(exc: Exception) -> bool:
    """Chroma's answer for a collection handle whose collection another process dropped or replaced (a
    delete's rebuild gives the collection a new id): "Collection [<id>] does not exist"."""
    from chromadb.errors import NotFoundError

    text = str(exc)
    return isinstance(exc, NotFoundError) or ("does not exist" in text and "ollection" in text)


def chroma_reason(exc: Exception) -> str:
    """Chroma's message as one sentence, without its internal ids (a collection's uuid means nothing to anyone)."""
    if collection_gone(exc):
        return CHANGED_ELSEWHERE
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = _CHROMA_ID.sub("", text).strip() or type(exc).__name__
    return text[:300].rstrip(".") + "."


class CollectionHandle:
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
                if not collection_gone(exc):
                    raise
                self._col = self._find(self._name)
                return getattr(self._col, attr)(*args, **kwargs)

        return call


def collection_names(client) -> list[str]:
    with chroma_errors("list the collections"):
        return [c if isinstance(c, str) else c.name for c in client.list_collections()]


def check_text(metadatas: Sequence[dict]) -> None:
    """Refuse text Chroma cannot store (a lone surrogate: bytes that were not UTF-8) with a sentence; its own
    error is a TypeError from its bindings, raised after the caller may have written files."""
    if any(isinstance(v, str) and has_surrogates(v) for meta in metadatas for v in meta.values()):
        raise GalleryError(
            "A name or photo label is not valid text (it holds bytes that are not UTF-8); nothing was stored."
        )


@contextlib.contextmanager
def chroma_errors(doing: str) -> Iterator[None]:
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
        raise GalleryError(f"Could not {doing}: {chroma_reason(exc)}") from exc
