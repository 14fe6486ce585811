"""Erasure on disk: a delete made physical.

Chroma 1.5 deletes from its API view only: a deleted record stays in the collection's write-ahead log
(``embeddings_queue``) until the vector segment is flushed, in the HNSW files (marked deleted, data kept),
and in SQLite's free pages; ``delete_collection`` purges the collection's log but leaves its HNSW folder
behind (chroma-core/chroma#5259: the local server has no garbage collector). So erasure is: rebuild the
collections that held the person from what remains, remove the segment folders no collection uses any
more, and run Chroma's own ``chroma vacuum`` (which purges the log up to what the segments hold and
VACUUMs SQLite, rewriting the file without its free pages).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ..errors import GalleryError
from .chroma import chroma_errors
from .layout import BATCH, FACES, PEOPLE, PERSONS, REBUILD, REGISTRY, Collections
from .server import chroma_command

VACUUM_TIMEOUT_S = 60
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class Erasure:
    """One namespace's collections rebuilt and its client's folder compacted (``persist_dir``: an
    embedded Chroma's folder; None for a server, which keeps its own files, or an in-memory one)."""

    def __init__(self, collections: Collections, persist_dir: Path | None):
        self.collections, self.persist_dir = collections, persist_dir

    def erase(self, models: Sequence[str], people: bool = True) -> None:
        """After a delete or a rename: make it physical for these models' collections (vectors and people
        index) and, with ``people``, for the persons and the face registry."""
        for model in models:
            for kind in (FACES, PEOPLE):
                self.rebuild(model, kind)
        if people:
            for kind in (PERSONS, REGISTRY):
                self.rebuild(None, kind)
        self.compact()

    def rebuild(self, model: str | None, kind: str) -> None:
        """Copy what remains into a fresh collection, then swap it in. A crash in between leaves the copy
        under ``rebuild.<name>``, which the next open of the collection finishes (``Collections.finish_rebuild``)."""
        collections = self.collections
        old = collections.get(model, kind, create=False)
        if old is None:
            return
        name = collections.name(model, kind)
        client = collections.client
        with chroma_errors("rebuild the gallery after a deletion"):
            got = old.get(include=["metadatas", "embeddings"])
            space = "cosine" if model else "l2"
            spare = client.get_or_create_collection(
                REBUILD + name, configuration={"hnsw": {"space": space}}, metadata=old.metadata, embedding_function=None
            )
            ids, vectors, metas = got["ids"], got.get("embeddings"), got["metadatas"]
            if spare.count():  # a copy an earlier, killed rebuild left: it may hold rows deleted since
                client.delete_collection(REBUILD + name)
                spare = client.create_collection(
                    REBUILD + name,
                    configuration={"hnsw": {"space": space}},
                    metadata=old.metadata,
                    embedding_function=None,
                )
            for start in range(0, len(ids), BATCH):
                spare.upsert(
                    ids=ids[start : start + BATCH],
                    embeddings=vectors[start : start + BATCH],
                    metadatas=metas[start : start + BATCH],
                )
            client.delete_collection(name)
            collections.forget(name)
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
