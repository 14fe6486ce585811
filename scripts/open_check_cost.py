"""What the open-time check of a gallery costs (``ChromaStore.check``, docs/GALLERY.md "Nothing lost").

    python scripts/open_check_cost.py /tmp/g 2000 build    # N people x 2 faces, both offline models' sizes
    python scripts/open_check_cost.py /tmp/g 2000 check    # a fresh process: open, then the check
    python scripts/open_check_cost.py /tmp/g 2000 repair   # a full repair that finds nothing to put right

The vectors are random (no model runs); each face gets a thumbnail and a region file, as enrolled faces do.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facedemo.gallery import Gallery, open_store  # noqa: E402
from facedemo.gallery.enroll import store_embedded  # noqa: E402
from facedemo.pipeline import Pipeline  # noqa: E402
from facedemo.settings import Settings  # noqa: E402


def build(folder: Path, people: int) -> None:
    gallery = Gallery.open(Pipeline(Settings.from_env(device="cpu")), open_store(folder))
    rng = np.random.default_rng(0)
    rows = [
        (f"P{k}", f"{k}-{i}.jpg", f"{k * 10 + i:064x}", (0.0, 0.0, 10.0 + i, 10.0 + i))
        for k in range(people)
        for i in range(2)
    ]
    for model, dim in (("dlib-resnet", 128), ("facenet-casia-webface", 512)):
        records = store_embedded(gallery, model, [(*r, rng.normal(size=dim)) for r in rows])
    thumbs = gallery.store.thumbs_dir
    (thumbs / "regions").mkdir(parents=True, exist_ok=True)
    for record in records:
        (thumbs / f"{record.id}.jpg").write_bytes(b"x")
        (thumbs / "regions" / f"{record.id}.jpg").write_bytes(b"x")
    print(f"built {len(records)} faces of {people} people")


def main() -> None:
    folder, people, what = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    if what == "build":
        return build(folder, people)
    started = time.perf_counter()
    store = open_store(folder)
    opened = time.perf_counter()
    found = store.check() if what == "check" else store.repair()
    print(f"open {opened - started:.3f} s, {what} {time.perf_counter() - opened:.3f} s -> {found}")


if __name__ == "__main__":
    main()
