"""``bench pipeline``: the naive facenet-pytorch loop against this pipeline, on the same images.

Naive (facenet-pytorch's README way): ``mtcnn(img)`` then ``resnet(crop.unsqueeze(0))``, one image at a
time, one face per image. This pipeline: MTCNN on batches of equal-sized images, every face aligned,
the embedder on batches of faces. Both use the same device and weights.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import DataUnavailableError, FaceDemoError
from ..pipeline import Pipeline
from ..settings import SHARED_FACES, SHARED_LFW, Settings
from ..vision.images import list_images


def bench_images(folder: str | None, limit: int) -> list[Path]:
    root = Path(folder) if folder else SHARED_LFW
    if not root.is_dir():
        raise DataUnavailableError(f"No image folder at {root}: pass --images DIR.")
    paths = list_images(root)
    if not paths:
        raise DataUnavailableError(f"{root} holds no images.")
    step = max(1, len(paths) // limit)  # spread over many identities, deterministically
    return paths[::step][:limit]


def random_facenet_weights(folder: Path) -> Path:
    import torch
    from facenet_pytorch import InceptionResnetV1

    path = folder / "random-inception-resnet-v1.pt"
    torch.manual_seed(0)
    torch.save(InceptionResnetV1(pretrained=None).state_dict(), path)
    return path


def _dlib_reference(embedder):
    """dlib's own engine for the model ``embedder`` runs (itself when it already is that engine)."""
    from ..models.dlib_resnet import DlibEmbedder

    return embedder if isinstance(embedder, DlibEmbedder) else DlibEmbedder(embedder.spec)


def _engine(embedder) -> str:
    from ..models.dlib_resnet import DlibEmbedder

    if isinstance(embedder, DlibEmbedder):
        return "dlib's compute_face_descriptor"
    return "ONNX Runtime" if getattr(embedder, "engine", "torch") == "onnx" else "torch"


def _naive_loop(paths: list[Path], model: str, embedder, naive, dev) -> tuple[int, float]:
    """facenet-pytorch's README loop over ``paths``: one margin crop per image, embedded unbatched by
    ``embedder``'s torch network (facenet) or by ``naive`` (dlib). The faces embedded and the seconds."""
    import torch
    from facenet_pytorch import MTCNN
    from PIL import Image

    mtcnn = MTCNN(image_size=embedder.spec.input_size, margin=embedder.spec.crop_margin, device=dev.device)
    naive_faces = 0
    start = time.perf_counter()
    for path in paths:
        img = Image.open(path).convert("RGB")
        crop = mtcnn(img)
        if crop is None:
            continue
        if model.startswith("facenet"):
            with torch.no_grad():
                embedder.module(crop.unsqueeze(0).to(dev.device, dtype=torch.float16 if dev.fp16 else torch.float32))
        else:
            face = ((crop.permute(1, 2, 0).numpy() * 128 + 127.5).clip(0, 255)).astype("uint8")
            naive.embed([Image.fromarray(face)])
        naive_faces += 1
    return naive_faces, time.perf_counter() - start


def bench_pipeline(images: str | None, limit: int, model: str, device: str | None) -> dict:
    paths = bench_images(images, limit)
    settings = Settings.from_env(device=device)
    weights_note = "real weights"
    with tempfile.TemporaryDirectory() as tmp:
        if model.startswith("facenet"):
            probe = Pipeline(settings)
            if not probe.models()[[s.name for s in probe.models()].index(model)].available:
                settings = Settings.from_env(
                    device=device, facenet_weights={model: str(random_facenet_weights(Path(tmp)))}
                )
                weights_note = (
                    "random weights (the real ones are not on this machine; timings do not depend on weight values)"
                )
        pipeline = Pipeline(settings)
        embedder = pipeline.embedder(model)  # load before timing, as both sides do
        dev = pipeline.device

        # Naive: facenet-pytorch's README loop. For dlib the "resnet" call is one unbatched descriptor by
        # dlib's own compute_face_descriptor (how dlib is used, and this loop's engine before the torch port),
        # whichever engine the pipeline runs.
        naive = _dlib_reference(embedder) if model.startswith("dlib") else embedder
        # facenet's naive loop calls the torch network itself, whichever engine the pipeline runs
        naive_engine = _engine(naive) if model.startswith("dlib") else "torch"
        naive_faces, naive_s = _naive_loop(paths, model, embedder, naive, dev)

        start = time.perf_counter()
        results = pipeline.analyze_many([str(p) for p in paths], model)
        ours_s = time.perf_counter() - start
        ours_faces = sum(len(r.faces) for r in results)

    naive_fps, ours_fps = naive_faces / naive_s, ours_faces / ours_s
    report = {
        "model": model,
        "weights": weights_note,
        "device": dev.description,
        "images": len(paths),
        "naive": {
            "engine": naive_engine,
            "faces": naive_faces,
            "seconds": round(naive_s, 2),
            "faces_per_s": round(naive_fps, 2),
            "images_per_s": round(len(paths) / naive_s, 2),
        },
        "pipeline": {
            "engine": _engine(embedder),
            "faces": ours_faces,
            "seconds": round(ours_s, 2),
            "faces_per_s": round(ours_fps, 2),
            "images_per_s": round(len(paths) / ours_s, 2),
        },
        "speedup_images_per_s": round((len(paths) / ours_s) / (len(paths) / naive_s), 2),
    }
    report["text"] = (
        f"{len(paths)} images, model {model} ({weights_note}), device {dev.description}\n"
        f"  naive facenet-pytorch loop : {naive_faces} faces in {naive_s:.1f} s = {naive_fps:.1f} faces/s, {len(paths) / naive_s:.1f} images/s (one face per image, margin crop; {naive_engine})\n"
        f"  facedemo pipeline          : {ours_faces} faces in {ours_s:.1f} s = {ours_fps:.1f} faces/s, {len(paths) / ours_s:.1f} images/s (every face, aligned, batched; {_engine(embedder)})\n"
        f"  ratio (images/s)           : {report['speedup_images_per_s']}x"
    )
    return report


# -- the stage profile: where a photo's time goes, before and after, in one run ---------------------------

STAGES = ("decode", "detect", "align", "embed", "store")


@dataclass(frozen=True)
class PhotoProfile:
    """One photo through the pipeline: the median seconds of each stage over the repeats, and of
    ``Pipeline.analyze`` end to end (decode + detect + align + embed, as the Identify tab runs them)."""

    photo: str
    megapixels: float
    faces: int
    working: tuple[int, int]  # the size the detector ran at
    stages: dict[str, float]
    analyze: float

    def to_json(self) -> dict:
        return {
            "photo": self.photo,
            "megapixels": round(self.megapixels, 2),
            "faces": self.faces,
            "working": list(self.working),
            "stages": {k: round(v, 4) for k, v in self.stages.items()},
            "analyze": round(self.analyze, 4),
        }


@dataclass(frozen=True)
class ImportProfile:
    """Bulk import of LFW-size photos: ``Gallery.import_folder`` end to end (the ``import`` command, into
    an in-memory Chroma), and the same photos stage by stage, in chunks of 16 as import takes them."""

    images: int
    faces: int
    seconds: float
    stages: dict[str, float]  # total seconds per stage over all the photos

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict:
        return {
            "images": self.images,
            "faces": self.faces,
            "seconds": round(self.seconds, 3),
            "images_per_s": round(self.images_per_s, 2),
            "stages": {k: round(v, 3) for k, v in self.stages.items()},
        }


@dataclass(frozen=True)
class ConfigProfile:
    name: str  # "before" (the full-resolution pyramid, dlib's own engine in this process) or "after" (the settings in force)
    min_face_fraction: float
    dlib_workers: int
    engine: str  # what ran the model: "torch" or dlib's own engine
    photos: list[PhotoProfile]
    bulk: ImportProfile | None

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "min_face_fraction": self.min_face_fraction,
            "dlib_workers": self.dlib_workers,
            "engine": self.engine,
            "photos": [p.to_json() for p in self.photos],
            "import": self.bulk.to_json() if self.bulk else None,
        }


@dataclass(frozen=True)
class StageProfile:
    model: str
    device: str
    repeats: int
    load: tuple[float, float, float]  # the machine's load average when the run ended (1, 5, 15 min)
    configs: list[ConfigProfile]

    def to_json(self) -> dict:
        report = {
            "model": self.model,
            "device": self.device,
            "repeats": self.repeats,
            "load_average": [round(v, 2) for v in self.load],
            "configs": [c.to_json() for c in self.configs],
        }
        if len(self.configs) == 2:
            report["speedup"] = self.speedups()
        return report

    def speedups(self) -> dict:
        """before / after, per photo (``analyze``) and for the import rate."""
        before, after = self.configs
        ratios = {b.photo: round(b.analyze / a.analyze, 2) for b, a in zip(before.photos, after.photos) if a.analyze}
        if before.bulk and after.bulk and before.bulk.images_per_s:
            ratios["import"] = round(after.bulk.images_per_s / before.bulk.images_per_s, 2)
        return ratios

    def text(self) -> str:
        head = (
            "photo".ljust(22)
            + "MP".rjust(5)
            + "faces".rjust(6)
            + "  working "
            + "".join(s.rjust(8) for s in STAGES)
            + "  analyze"
        )
        lines = [
            f"stage profile: model {self.model}, device {self.device}, median of {self.repeats}, milliseconds; "
            f"load average {self.load[0]:.2f} {self.load[1]:.2f} {self.load[2]:.2f}"
        ]
        for config in self.configs:
            lines += [
                "",
                f"{config.name}: min_face_fraction {config.min_face_fraction:g}, dlib workers {config.dlib_workers}, engine {config.engine}",
                head,
            ]
            for p in config.photos:
                lines.append(
                    p.photo[:21].ljust(22)
                    + f"{p.megapixels:5.2f}{p.faces:6d}  "
                    + f"{p.working[0]}x{p.working[1]}".ljust(8)
                    + "".join(f"{p.stages[s] * 1000:8.0f}" for s in STAGES)
                    + f"{p.analyze * 1000:9.0f}"
                )
            if config.bulk:
                b = config.bulk
                lines.append(
                    f"import {b.images} photos ({b.faces} faces): {b.seconds:.2f} s = {b.images_per_s:.2f} images/s; stages (s): "
                    + ", ".join(f"{s} {b.stages[s]:.2f}" for s in STAGES)
                )
        if len(self.configs) == 2:
            lines += ["", "speed-up, before / after: " + ", ".join(f"{k} {v}x" for k, v in self.speedups().items())]
        return "\n".join(lines)


def group_photos(folder: str | None) -> list[Path]:
    root = Path(folder) if folder else SHARED_FACES / "bbt_faceapi" / "_group_photos"
    if not root.is_dir():
        raise DataUnavailableError(f"No folder of group photos at {root}: pass --groups DIR.")
    return list_images(root)


def profile_stages(
    settings: Settings, model: str, photos: Sequence[Path], bulk: Sequence[Path], repeats: int = 3, compare: bool = True
) -> StageProfile:
    """The stage profile of ``photos`` (one at a time, as Identify runs) and of importing ``bulk``, with the
    settings given ("after") and, with ``compare``, first with the full-resolution pyramid and dlib's own
    engine in this process ("before"), in the same process on the same photos."""
    import os

    configs = []
    if compare:
        configs.append(("before", replace(settings, min_face_fraction=0.0, dlib_workers=1, dlib_engine="dlib")))
    configs.append(("after", settings))
    done, device = [], ""
    for name, config in configs:
        pipeline = Pipeline(config)
        spec = pipeline.spec(model)
        embedder = pipeline.embedder(spec)
        device = pipeline.device.description
        rows = [_profile_photo(pipeline, spec, path, repeats, f"profile-{name}-{i}") for i, path in enumerate(photos)]
        imported = _profile_import(pipeline, spec, bulk, name) if bulk else None
        done.append(
            ConfigProfile(
                name, config.min_face_fraction, getattr(embedder, "workers", 1), _engine(embedder), rows, imported
            )
        )
        if hasattr(embedder, "close"):
            embedder.close()
    return StageProfile(pipeline.spec(model).name, device, repeats, os.getloadavg(), done)


def _timed(call):
    start = time.perf_counter()
    value = call()
    return time.perf_counter() - start, value


def _store_faces(store, spec, label: str, sha: str, faces, vectors) -> None:
    """The store stage of an enrollment: the person, the registry faces and one model's vectors."""
    from ..gallery.store import FaceRecord, ModelRecord, PersonRecord, face_id, record_id

    if not len(faces):
        return
    store.put_persons([PersonRecord("bench", "bench")])
    records = [FaceRecord(face_id(sha, f.box), "bench", label, sha, f.box) for f in faces]
    store.put_faces(records, [None] * len(records), [None] * len(records))
    store.put_vectors(
        spec.name,
        [ModelRecord(record_id(spec.name, sha, f.box), r.id, "bench") for f, r in zip(faces, records)],
        np.asarray(vectors),
    )


def _profile_photo(pipeline: Pipeline, spec, path: Path, repeats: int, namespace: str) -> PhotoProfile:
    from ..gallery.store import open_store

    store = open_store(ephemeral=True, namespace=namespace)
    pipeline.analyze(path, spec)  # warm: the first call of a model or a pool pays once
    times: dict[str, list[float]] = {s: [] for s in STAGES}
    analyze = []
    for rep in range(max(1, repeats)):
        t, image = _timed(lambda: pipeline.load(path))
        times["decode"].append(t)
        t, faces = _timed(lambda: pipeline.detect(image))
        times["detect"].append(t)
        t, crops = _timed(lambda: [pipeline.aligned(image, f, spec) for f in faces])
        times["align"].append(t)
        t, vectors = _timed(lambda: pipeline.embed_crops(spec, crops))
        times["embed"].append(t)
        t, _ = _timed(lambda: _store_faces(store, spec, path.name, f"{rep}-{path.name}", faces, vectors))
        times["store"].append(t)
        analyze.append(_timed(lambda: pipeline.analyze(path, spec))[0])
    store.drop(compact=False)
    working = pipeline.detector.working_image(image)[0].size
    return PhotoProfile(
        path.name,
        image.width * image.height / 1e6,
        len(faces),
        working,
        {s: float(np.median(v)) for s, v in times.items()},
        float(np.median(analyze)),
    )


def _profile_import(pipeline: Pipeline, spec, paths: Sequence[Path], name: str, chunk: int = 16) -> ImportProfile:
    from ..gallery.core import Gallery
    from ..gallery.store import open_store

    stages = dict.fromkeys(STAGES, 0.0)
    store = open_store(ephemeral=True, namespace=f"profile-{name}-stages")
    faces_found = 0
    for start in range(0, len(paths), chunk):
        part = paths[start : start + chunk]
        t, images = _timed(lambda: [pipeline.load(p) for p in part])
        stages["decode"] += t
        t, found = _timed(lambda: pipeline.detector.detect_many(images))
        stages["detect"] += t
        t, crops = _timed(lambda: [pipeline.aligned(im, f, spec) for im, faces in zip(images, found) for f in faces])
        stages["align"] += t
        t, vectors = _timed(lambda: pipeline.embed_crops(spec, crops))
        stages["embed"] += t
        flat = [f for faces in found for f in faces]
        t, _ = _timed(lambda: _store_faces(store, spec, "bulk", f"bulk-{start}", flat, vectors))
        stages["store"] += t
        faces_found += len(flat)
    store.drop(compact=False)
    with tempfile.TemporaryDirectory(prefix="facedemo-bench-import-") as tmp:
        for path in paths:  # a folder per person, as `import` wants it: links, not copies
            person = Path(tmp) / path.parent.name
            person.mkdir(exist_ok=True)
            (person / path.name).symlink_to(path.resolve())
        gallery = Gallery.open(pipeline, open_store(ephemeral=True, namespace=f"profile-{name}-import"))
        seconds, report = _timed(lambda: gallery.import_folder(tmp, spec.name))
        gallery.store.drop(compact=False)
    if report.added + report.duplicates + len(report.skipped) != len(paths):
        raise FaceDemoError(f"the import saw {report.total} of {len(paths)} photos.")
    return ImportProfile(len(paths), faces_found, seconds, stages)
