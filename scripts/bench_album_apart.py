"""BCubed F of the album on LFW "two-person photos" (two LFW photos of different people side by side), with and
without keeping the faces of one photo apart (#35; docs/EVALUATION.md, "Two faces of one photo").

    .venv/bin/python scripts/bench_album_apart.py dlib-resnet 150 [LFW_FOLDER]

Only photos where MTCNN found exactly two faces are scored (an LFW photo may hold a background face); each
face's person is the photo whose half it is in. Needs LFW (../shared/faces/lfw by default)."""

import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facedemo.evaluation.clustering import clustering_scores
from facedemo.gallery.album import cluster_album
from facedemo.gallery.cluster import CLUSTER_METHODS, cluster_vectors
from facedemo.pipeline import Pipeline
from facedemo.settings import Settings


def two_person_photos(lfw: Path, people: int, folder: Path, seed: int = 0) -> dict[str, tuple[str, str]]:
    """Up to 4 photos of each of ``people`` random LFW people with 4 or more, paired with another person's
    photo side by side (250 px each); returns photo name -> (left person, right person)."""
    rng = random.Random(seed)
    chosen = rng.sample(sorted(d for d in lfw.iterdir() if d.is_dir() and len(list(d.glob("*.jpg"))) >= 4), people)
    photos = [(d.name, p) for d in chosen for p in sorted(d.glob("*.jpg"))[:4]]
    rng.shuffle(photos)
    truth = {}
    while len(photos) >= 2:
        a = photos.pop()
        j = next((k for k in range(len(photos) - 1, -1, -1) if photos[k][0] != a[0]), None)
        if j is None:
            break
        b = photos.pop(j)
        image = Image.new("RGB", (520, 270), "white")
        image.paste(Image.open(a[1]).convert("RGB"), (5, 10))
        image.paste(Image.open(b[1]).convert("RGB"), (265, 10))
        name = f"p{len(truth):03d}.jpg"
        image.save(folder / name, quality=95)
        truth[name] = (a[0], b[0])
    return truth


def shared_groups(labels: np.ndarray, pairs: list[tuple[int, int]]) -> int:
    return sum(labels[i] == labels[j] for i, j in pairs)


def main(model: str, people: int, lfw: Path) -> None:
    folder = Path(tempfile.mkdtemp()) / "album"
    folder.mkdir()
    truth = two_person_photos(lfw, people, folder)
    pipeline = Pipeline(Settings.from_env(device="cpu", home=Path(tempfile.mkdtemp())))
    started = time.perf_counter()
    with cluster_album(pipeline, folder, model) as album:
        rows: dict[str, list[int]] = {}
        for i, face in enumerate(album.faces):
            rows.setdefault(face.path.name, []).append(i)
        kept = [i for found in rows.values() if len(found) == 2 for i in found]
        names = []
        for i in kept:
            face = album.faces[i]
            left = (face.face.box[0] + face.face.box[2]) / 2 < 260
            names.append(truth[face.path.name][0 if left else 1])
        vectors = np.stack([album.faces[i].embedding for i in kept])
        keys = [album.faces[i].path.name for i in kept]
        pairs = [(k, k + 1) for k in range(0, len(kept), 2)]
        print(
            f"{model}: {len(truth)} two-person photos, {len(pairs)} with exactly two faces found, {len(set(names))} "
            f"people, threshold {album.threshold:.3f} ({time.perf_counter() - started:.0f} s)"
        )
        for method in CLUSTER_METHODS:
            before = cluster_vectors(vectors, album.threshold, method)
            after = cluster_vectors(vectors, album.threshold, method, apart=keys)
            f_before, f_after = (clustering_scores(names, labels).bcubed_f for labels in (before, after))
            print(
                f"  {method:17s} BCubed F {f_before:.3f} -> {f_after:.3f}; photos whose two faces share a group: "
                f"{shared_groups(before, pairs)} -> {shared_groups(after, pairs)}"
            )


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[2] / "shared" / "faces" / "lfw"
    main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3 else default)
