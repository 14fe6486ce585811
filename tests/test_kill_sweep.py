"""Nothing lost: the CLI killed (SIGKILL) just before its Nth write to the gallery folder, for every N of a
delete, a rename, an enroll and an import (``tests/killpoints.py`` numbers the writes: Chroma calls that
change a collection, collections made or dropped, files written, renamed or unlinked, ``chroma vacuum``).

After each kill the gallery is opened again, as every reader opens it, and must be exactly as it was before
the command or as it is after an uninterrupted run: each person's face count per model; each person named
by identify with every decision method and both offline models; no face file without its record (and none
missing), no half-written file, no spare collection, no pending marker. Then the command is run again and
must finish: the gallery as after, and a deleted or old name in no byte of the folder.

A small real gallery (three 5celeb people, two photos each, dlib-resnet and facenet-casia-webface) is built
once with the CLI's import and copied per kill point. ``test_kill_sample`` (CI) kills each command at one
chosen write; ``test_kill_sweep`` (slow) at every one, and prints the writes it covered
when asked (``KILL_SWEEP=1``: every write; ``KILL_SWEEP_STRIDE=3``: every third; ``KILL_SWEEP_ENROLL=12,17``:
only those of enroll, and so on), since every write of all four is hours on 2 cores.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import killpoints
import pytest

from facedemo.gallery import Gallery, open_store
from facedemo.pipeline import Pipeline
from facedemo.rules import methods

MODELS = ("dlib-resnet", "facenet-casia-webface")
CELEB = "5celeb/train"
# (folder, photo) pairs with exactly one face each (checked with MTCNN when this test was written)
PHOTOS = {
    "Ben Affleck": [
        ("ben_afflek", "httpcsvkmeuaeccjpg.jpg"),
        (
            "ben_afflek",
            "httpimagesfandangocomrImageRendererredesignstaticimgnoxportraitjpgpcpcpcimagesmasterrepositoryperformerimagespjpg.jpg",
        ),
    ],
    "Elton John": [
        ("elton_john", "httpftqncomymusicLxZeltonjohnjpg.jpg"),
        ("elton_john", "httpiamediaimdbcomimagesMMVBMTAxNDUMzUwOTdeQTJeQWpwZBbWUMDUOTAyNTIVUXCRALjpg.jpg"),
    ],
    "Jerry Seinfeld": [
        ("jerry_seinfeld", "httpgraphicsnytimescomimagessectionmoviesfilmographyWireImagejpg.jpg"),
        ("jerry_seinfeld", "httpimagescontactmusiccomnewsimagesjerryseinfeldjpg.jpg"),
    ],
    "Madonna": [
        ("madonna", "httpiamediaimdbcomimagesMMVBMTANDQNTAxNDVeQTJeQWpwZBbWUMDIMjQOTYVUXCRALjpg.jpg"),
        ("madonna", "httpimagegaladevcmseamadonnaprivatdetektivsquaretopsquarejpgv.jpg"),
    ],
    "Mindy Kaling": [
        ("mindy_kaling", "httpgonetworthcomwpcontentuploadsthumbsjpg.jpg"),
        ("mindy_kaling", "httpimagesnymagcomimagesdailymindykalingxjpg.jpg"),
    ],
}
BASE = ("Ben Affleck", "Elton John", "Jerry Seinfeld")
NEW_NAME = "Reginald Dwight"  # Elton John renamed (shares no words with the old name, so bytes can be searched)


class Sweep:
    """The base gallery, the probes, and each command's expected 'after' and its writes."""

    def __init__(self, root: Path, pipeline: Pipeline, env: dict, shared: Path):
        self.root, self.pipeline, self.env = root, pipeline, env
        self.photos = {n: [shared / CELEB / d / f for d, f in ps] for n, ps in PHOTOS.items()}
        self.base = root / "base"
        tree = self.tree("base-photos", {n: self.photos[n] for n in BASE})
        done = killpoints.run(["import", tree, "--gallery", self.base], self.base, root / "base.log", None, env)
        assert done.returncode == 0, done.stderr
        self.before = self.snapshot(self.base)
        assert self.before == {n: {m: 2 for m in MODELS} for n in BASE}
        probes = {n: ps[0] for n, ps in self.photos.items()}  # an enrolled photo of each person
        self.probes = {m: {} for m in MODELS}
        for name, path in probes.items():
            for model in MODELS:
                _, found = pipeline.analyze(path, model, flip=pipeline.flip(model))
                (self.probes[model][name],) = found
        more = self.tree("import-photos", {"Mindy Kaling": self.photos["Mindy Kaling"]})
        (more / "Jerry Seinfeld").mkdir()
        shutil.copy(
            shared / CELEB / "jerry_seinfeld" / "httpimagesrottentomatoescomimagesspotlightsnewsjerryseinfeldjpg.jpg",
            more / "Jerry Seinfeld",
        )
        self.commands = {
            "delete": ["people", "delete", "Ben Affleck"],
            "rename": ["people", "rename", "Elton John", NEW_NAME],
            "enroll": ["enroll", "Madonna", *self.photos["Madonna"]],
            "import": ["import", more],
        }
        self._after: dict = {}
        self.residue: list[str] = []  # a deleted or old name in an HNSW file's unused slots (reported)

    def tree(self, name: str, people: dict) -> Path:
        folder = self.root / name
        for person, paths in people.items():
            (folder / person).mkdir(parents=True, exist_ok=True)
            for path in paths:
                shutil.copy(path, folder / person / path.name)
        return folder

    def copy(self, name: str) -> Path:
        target = self.root / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(self.base, target)
        return target

    def run(self, command: str, gallery: Path, kill_at: int | None):
        log = self.root / f"{gallery.name}.log"
        done = killpoints.run([*self.commands[command], "--gallery", gallery], gallery, log, kill_at, self.env)
        return done, killpoints.writes(log)

    def expected(self, command: str) -> dict:
        """What every reader must see after an uninterrupted run."""
        after = {n: dict(c) for n, c in self.before.items()}
        both = {m: 2 for m in MODELS}
        if command == "delete":
            del after["Ben Affleck"]
        elif command == "rename":
            after[NEW_NAME] = after.pop("Elton John")
        elif command == "enroll":
            after["Madonna"] = both
        else:
            after["Mindy Kaling"], after["Jerry Seinfeld"] = both, {m: 3 for m in MODELS}
        return after

    def after(self, command: str) -> tuple[dict, list[str]]:
        """The gallery after an uninterrupted run, and the writes that run made."""
        if command not in self._after:
            gallery = self.copy(f"after-{command}")
            done, writes = self.run(command, gallery, None)
            assert done.returncode == 0, done.stderr
            assert self.snapshot(gallery) == self.expected(command)
            self._after[command] = (self.expected(command), writes)
        return self._after[command]

    def snapshot(self, folder: Path) -> dict:
        store = open_store(folder)
        try:
            return {p.name: dict(p.faces) for p in Gallery.open(self.pipeline, store).people()}
        finally:
            store.client.close()

    def check(self, folder: Path, command: str) -> dict:
        """Open the gallery (the repair runs) and check it whole; returns what every reader sees."""
        store = open_store(folder)
        try:
            gallery = Gallery.open(self.pipeline, store)
            people = {p.name: dict(p.faces) for p in gallery.people()}
            after = self.expected(command)
            assert people in (self.before, after), f"neither before nor after: {people}"
            # every reader: each person named by identify, every model and every decision method
            shown = {name: (NEW_NAME if name == "Elton John" and NEW_NAME in people else name) for name in PHOTOS}
            enrolled = [n for n in PHOTOS if shown[n] in people]
            for model in MODELS:
                faces = [self.probes[model][n] for n in enrolled]
                for method in methods():
                    named = [f.name for f in gallery.match(faces, model, method=method).faces]
                    assert named == [shown[n] for n in enrolled], (model, method, named)
            # the Explorer's view: every vector has its person
            for model in MODELS:
                _, names, _, thumbs = gallery.embeddings(model)
                assert sorted(names) == sorted(n for n, c in people.items() for _ in range(c[model]))
                assert all(t is not None for t in thumbs)
            # files: exactly one thumbnail and one region per recorded face, nothing half-written
            faces = {f.id for f in store.faces()}
            thumbs = store.thumbs_dir
            assert {p.stem for p in thumbs.glob("*.jpg")} == faces
            assert {p.stem for p in (thumbs / "regions").glob("*.jpg")} == faces
            leftovers = [p for p in (folder / "thumbs").rglob("*") if p.is_file() and p.suffix != ".jpg"]
            assert leftovers == [], leftovers
            names = [c if isinstance(c, str) else c.name for c in store.client.list_collections()]
            assert not [n for n in names if n.startswith("rebuild.")], names
            return people
        finally:
            store.client.close()

    def kill_and_check(self, command: str, n: int | str) -> None:
        """Kill ``command`` before its write number ``n`` (or before its first write described as ``n``...)."""
        after = self.expected(command)
        gallery = self.copy(f"{command}-{n if isinstance(n, int) else 'at'}")
        done, reached = self.run(command, gallery, n)
        assert done.returncode == -9, f"write {n} of {command} was not reached: {done.stderr[-500:]}"
        assert len(reached) == n if isinstance(n, int) else reached[-1].split("\t", 1)[1].startswith(n)
        seen = gallery.with_name(gallery.name + "-seen")
        shutil.copytree(gallery, seen)  # one copy is read as it was left, the other is finished by the command
        state = self.check(seen, command)
        gone = {"delete": b"Ben Affleck", "rename": b"Elton John"}.get(command)
        if gone and state == after:
            assert not byte_hits(seen, gone), f"{command} killed at write {n}: the old name is still on disk"
        if gone:
            self.residue += [f"{command} {n}: {p.relative_to(self.root)}" for p in unused_slot_hits(seen, gone)]
        again, _ = self.run(command, gallery, None)
        finished = again.returncode == 0 or (state == after and "Nobody called" in again.stdout + again.stderr)
        assert finished, f"{command} after a kill at write {n}: {again.stdout[-300:]} {again.stderr[-300:]}"
        assert self.check(gallery, command) == after
        if gone:
            assert not byte_hits(gallery, gone)
            self.residue += [
                f"{command} {n} rerun: {p.relative_to(self.root)}" for p in unused_slot_hits(gallery, gone)
            ]
        shutil.rmtree(gallery, ignore_errors=True)
        shutil.rmtree(seen, ignore_errors=True)


def byte_hits(folder: Path, needle: bytes) -> list[Path]:
    """The files of the folder that hold ``needle``; in an HNSW index, only in its used slots (see
    ``unused_slot_hits``)."""
    return [p for p in folder.rglob("*") if p.is_file() and needle in used_bytes(p)]


def used_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    header = path.parent / "header.bin"
    if path.name in ("data_level0.bin", "length.bin") and header.is_file():
        raw = header.read_bytes()
        _, count, size = (int.from_bytes(raw[4 + 8 * i : 12 + 8 * i], "little") for i in (1, 2, 3))
        return data[: count * (size if path.name == "data_level0.bin" else 4)]
    return data


def unused_slot_hits(folder: Path, needle: bytes) -> list[Path]:
    """HNSW files whose unused slots (malloc'd, never initialised: whatever the saving process's heap held)
    hold ``needle``: zeroed after every vacuum (``store.scrub_hnsw``), but a process that saves an index
    later writes its own buffer again (docs/PRIVACY.md). Reported by the sweep, not failed on."""
    return [p for p in folder.rglob("*.bin") if needle in p.read_bytes() and needle not in used_bytes(p)]


@pytest.fixture(scope="module")
def sweep(casia_settings, shared_faces, tmp_path_factory):
    pipeline = Pipeline(replace(casia_settings, model="dlib-resnet", gallery_models=MODELS))
    env = {
        **os.environ,
        "FACEDEMO_HOME": str(casia_settings.home),
        "FACEDEMO_DEVICE": "cpu",
        "FACEDEMO_MODEL": "dlib-resnet",
        "FACEDEMO_GALLERY_MODELS": ",".join(MODELS),
        "FACEDEMO_FACENET_CASIA_WEBFACE_WEIGHTS": casia_settings.facenet_weights["facenet-casia-webface"],
        # the machine is shared: one thread per process
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    return Sweep(tmp_path_factory.mktemp("kill-sweep"), pipeline, env, shared_faces)


# The sample CI kills at: where the issue saw each command fail (#32), and the commit points.
SAMPLE = {
    "delete": "delete collection fd.faces.",  # a rebuild's original dropped, its copy not yet renamed
    "rename": "delete collection fd.people.",
    "enroll": "upsert fd.people.",  # the faces recorded, the people index not yet written
    "import": "upsert fd.registry",  # vectors, people and face files written, no record yet
}


@pytest.mark.parametrize("command", list(SAMPLE))
def test_kill_sample(sweep, command):
    sweep.kill_and_check(command, SAMPLE[command])


@pytest.mark.slow
@pytest.mark.parametrize("command", ["delete", "rename", "enroll", "import"])
def test_kill_sweep(sweep, command, capsys):
    if not any(os.environ.get(v) for v in ("KILL_SWEEP", "KILL_SWEEP_STRIDE", f"KILL_SWEEP_{command.upper()}")):
        # Every write of four commands is about three hours on 2 cores: more than CI's whole budget. CI runs
        # test_kill_sample; the sweep is asked for (KILL_SWEEP=1, or a stride or the writes of one command).
        pytest.skip("the exhaustive kill sweep runs when asked: KILL_SWEEP=1 (docs/GALLERY.md)")
    _, writes = sweep.after(command)
    started, failed = time.perf_counter(), []
    stride = int(os.environ.get("KILL_SWEEP_STRIDE", "1"))  # >1: every stride-th write, for a quicker pass
    points = os.environ.get(f"KILL_SWEEP_{command.upper()}")  # e.g. "17,20": only these writes
    chosen = [int(n) for n in points.split(",")] if points else range(1, len(writes) + 1, stride)
    for n in chosen:
        try:
            sweep.kill_and_check(command, n)
            verdict = "held"
        except AssertionError as exc:
            failed.append(f"write {n} ({writes[n - 1].split(chr(9), 1)[1]}): {str(exc)[:300]}")
            verdict = "FAILED " + str(exc)[:200]
        with capsys.disabled():
            print(f"{command} killed before write {n}/{len(writes)} ({writes[n - 1]}): {verdict}", flush=True)
    with capsys.disabled():
        covered = list(chosen)
        whole = covered == list(range(1, len(writes) + 1))
        which = "each" if whole else f"{len(covered)} ({', '.join(map(str, covered))})"
        print(f"\n{command}: killed at {which} of its {len(writes)} writes in {time.perf_counter() - started:.0f} s:")
        print("\n".join("  " + w for w in writes))
        print("\n".join(["  failed:", *failed]) if failed else "  every kill point held")
        print("\n".join(["  name left in unused HNSW slots:", *sweep.residue]) if sweep.residue else "")
    assert not failed, failed
