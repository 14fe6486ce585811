"""``bench detectors``: every face detector's cost and yield. Milliseconds per photo at about 0.3, 1 and 4
megapixels (one real photo resized), faces found on the group photos and on LFW photos (one face each), and
whether a black border (a quarter of the photo's size on each side) lets a detector find faces cut by the edge."""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image

from ..errors import DataUnavailableError
from ..pipeline import Pipeline
from ..settings import DETECTORS, SHARED_FACES, SHARED_LFW
from ..vision.detect import Face
from ..vision.detectors import detect_bordered

GROUP_FOLDERS = (
    SHARED_FACES / "bbt_faceapi" / "_group_photos",
    Path(__file__).resolve().parents[1] / "ui" / "examples",
)
MEGAPIXELS = (0.3, 1.0, 4.0)


@dataclass(frozen=True)
class DetectorBench:
    detector: str
    ms_by_megapixels: dict[str, float]  # median ms per photo, by the photo's megapixels
    group_faces: dict[str, int]  # faces found on each group photo
    group_ms: float  # ms for all the group photos
    bordered_faces: dict[str, int] = field(default_factory=dict)  # the same, the photo padded with a border
    bordered_ms: float | None = None
    lfw_found: int = 0  # LFW photos where at least one face was found
    lfw_photos: int = 0
    lfw_ms: float = 0.0  # median ms per LFW photo
    cut: tuple[int, int, float] = (0, 0, 0.0)  # faces cut by the edge found, of how many, ms (edge_cuts)
    cut_bordered: tuple[int, int, float] | None = None  # the same with a border


def resized(image: Image.Image, megapixels: float) -> Image.Image:
    factor = (megapixels * 1e6 / (image.width * image.height)) ** 0.5
    return image.resize((round(image.width * factor), round(image.height * factor)), Image.Resampling.BICUBIC)


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def edge_cuts(reference: dict[str, list[Face]], images: dict[str, Image.Image], keep: float = 0.6) -> list[tuple]:
    """Each group photo cropped so that its leftmost and rightmost faces (as MTCNN finds them on the whole
    photo) are cut by the edge, ``keep`` of their width left in: (photo, the cropped image, the cut faces'
    boxes in it, clipped). Photos with under three faces are skipped (nothing would stay whole)."""
    cuts = []
    for name, faces in reference.items():
        if len(faces) < 3:
            continue
        left, right = faces[0].box, max(faces, key=lambda f: f.box[2]).box
        x0 = round(left[2] - keep * (left[2] - left[0]))
        x1 = round(right[0] + keep * (right[2] - right[0]))
        crop = images[name].crop((x0, 0, x1, images[name].height))
        boxes = [(0.0, left[1], left[2] - x0, left[3]), (right[0] - x0, right[1], float(x1 - x0), right[3])]
        cuts.append((name, crop, boxes))
    return cuts


def cut_faces_found(detect, cuts: list[tuple]) -> tuple[int, int, float]:
    """How many of the cut faces ``detect`` finds (a box at IoU >= 0.3), of how many, and the ms it took."""
    found, total, start = 0, 0, time.perf_counter()
    for _, crop, boxes in cuts:
        faces = detect(crop)
        total += len(boxes)
        found += sum(any(iou(box, f.box) >= 0.3 for f in faces) for box in boxes)
    return found, total, 1000 * (time.perf_counter() - start)


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def group_photos(folder: str | None = None) -> list[Path]:
    folders = [Path(folder)] if folder else list(GROUP_FOLDERS)
    photos = [p for f in folders if f.is_dir() for p in sorted(f.iterdir()) if "group" in p.name or "bbt" in p.name]
    if not photos:
        raise DataUnavailableError(f"No group photos in {', '.join(map(str, folders))}: pass --groups DIR.")
    return photos


def bench_detectors(
    pipeline: Pipeline, names=None, lfw: int = 50, repeats: int = 3, groups: str | None = None, border: bool = True
) -> list[DetectorBench]:
    photos = group_photos(groups)
    images = {p.name: pipeline.load(p) for p in photos}
    sizes = {f"{mp:g}": resized(images[photos[0].name], mp) for mp in MEGAPIXELS}
    lfw_photos = random.Random(0).sample(sorted(SHARED_LFW.glob("*/*.jpg")), lfw) if SHARED_LFW.is_dir() else []
    lfw_images = [pipeline.load(p) for p in lfw_photos]
    reference = {n: pipeline.detector_named("mtcnn").detect(i) for n, i in images.items()}
    cuts = edge_cuts(reference, images)
    out = []
    for name in names or DETECTORS:
        detector = pipeline.detector_named(name)
        detector.detect(images[photos[0].name])  # warm up: the first call builds what it needs
        by_mp = {mp: _median_ms(lambda i=image: detector.detect(i), repeats) for mp, image in sizes.items()}
        start = time.perf_counter()
        faces = {n: len(detector.detect(i)) for n, i in images.items()}
        group_ms = 1000 * (time.perf_counter() - start)
        extra = {}
        if border and name != "dlib-cnn":  # the CNN on a photo 2.25x the size: minutes on a CPU
            start = time.perf_counter()
            extra["bordered_faces"] = {n: len(detect_bordered(detector, i, 0.25)) for n, i in images.items()}
            extra["bordered_ms"] = 1000 * (time.perf_counter() - start)
            extra["cut_bordered"] = cut_faces_found(lambda i: detect_bordered(detector, i, 0.25), cuts)
        extra["cut"] = cut_faces_found(detector.detect, cuts)
        lfw_times, found = [], 0
        for image in lfw_images:
            start = time.perf_counter()
            found += bool(detector.detect(image))
            lfw_times.append(1000 * (time.perf_counter() - start))
        out.append(
            DetectorBench(
                name,
                by_mp,
                faces,
                group_ms,
                **extra,
                lfw_found=found,
                lfw_photos=len(lfw_images),
                lfw_ms=statistics.median(lfw_times) if lfw_times else 0.0,
            )
        )
    return out


def text(results: list[DetectorBench]) -> str:
    sizes = list(results[0].ms_by_megapixels)
    lines = [
        f"{'detector':<9}" + "".join(f"{mp + ' MP':>10}" for mp in sizes) + f"{'LFW found':>14}{'LFW ms':>8}",
    ]
    for r in results:
        lines.append(
            f"{r.detector:<9}"
            + "".join(f"{r.ms_by_megapixels[mp]:>10.0f}" for mp in sizes)
            + f"{f'{r.lfw_found}/{r.lfw_photos}':>14}{r.lfw_ms:>8.0f}"
        )
    lines.append("faces on each group photo (ms for all; with a border of a quarter on each side):")
    for r in results:
        line = f"{r.detector:<9} " + ", ".join(f"{n} {c}" for n, c in r.group_faces.items()) + f" ({r.group_ms:.0f} ms)"
        if r.bordered_ms is not None:
            line += "; bordered: " + ", ".join(f"{n} {c}" for n, c in r.bordered_faces.items())
            line += f" ({r.bordered_ms:.0f} ms)"
        lines.append(line)
    lines.append("faces cut by the edge (the outer faces of the group photos with 3+ faces, 60% of each left in):")
    for r in results:
        line = f"{r.detector:<9} {r.cut[0]}/{r.cut[1]} found ({r.cut[2]:.0f} ms)"
        if r.cut_bordered is not None:
            line += f"; bordered: {r.cut_bordered[0]}/{r.cut_bordered[1]} ({r.cut_bordered[2]:.0f} ms)"
        lines.append(line)
    return "\n".join(lines)


def to_json(results: list[DetectorBench]) -> list[dict]:
    return [asdict(r) for r in results]


@dataclass(frozen=True)
class EngineBench:
    """MTCNN on torch and on ONNX Runtime (``vision/mtcnn_onnx.py``), on the same photos in one run."""

    ms_by_megapixels: dict[str, dict[str, float]]  # engine -> size -> median ms per photo
    group_ms: dict[str, float]  # engine -> ms for all the group photos
    lfw_ms: dict[str, float]  # engine -> median ms per LFW photo
    photos: int  # group and LFW photos compared
    same_counts: bool  # every photo has as many faces on both engines
    worst_box_px: float  # the largest difference of a box coordinate, in the photo's pixels
    onnx_note: str | None  # why ONNX Runtime did not run, if it did not

    def ratio(self) -> float:
        return self.group_ms["torch"] / self.group_ms["onnx"]

    def text(self) -> str:
        sizes = list(self.ms_by_megapixels["torch"])
        lines = [f"{'engine':<7}" + "".join(f"{mp + ' MP':>10}" for mp in sizes) + f"{'groups ms':>11}{'LFW ms':>8}"]
        for engine in ("torch", "onnx"):
            lines.append(
                f"{engine:<7}"
                + "".join(f"{self.ms_by_megapixels[engine][mp]:>10.0f}" for mp in sizes)
                + f"{self.group_ms[engine]:>11.0f}{self.lfw_ms[engine]:>8.1f}"
            )
        lines.append(
            f"torch / onnx on the group photos: {self.ratio():.2f}x; {self.photos} photos, "
            f"{'the same faces on each' if self.same_counts else 'NOT the same faces on each'}, "
            f"boxes within {self.worst_box_px:.1e} px"
        )
        return "\n".join(lines + ([self.onnx_note] if self.onnx_note else []))


def bench_mtcnn_engines(pipeline: Pipeline, lfw: int = 50, repeats: int = 3, groups: str | None = None) -> EngineBench:
    """MTCNN's networks on torch and on ONNX Runtime, timed alternately on the same photos (the ratio of one
    run holds where the milliseconds move with the machine's load), and their faces compared."""
    from ..runtime import cpu_threads
    from ..vision.detect import Detector

    s = pipeline.settings
    detectors = {
        engine: Detector(
            "cpu", s.min_face_size, s.min_face_score, s.max_side, s.min_face_fraction, engine, cpu_threads(s)
        )
        for engine in ("torch", "onnx")
    }
    photos = group_photos(groups)
    images = [pipeline.load(p) for p in photos]
    sizes = {f"{mp:g}": resized(images[0], mp) for mp in MEGAPIXELS}
    lfw_photos = random.Random(0).sample(sorted(SHARED_LFW.glob("*/*.jpg")), lfw) if SHARED_LFW.is_dir() else []
    lfw_images = [pipeline.load(p) for p in lfw_photos]
    by_mp = {engine: {} for engine in detectors}
    for detector in detectors.values():
        detector.detect(images[0])  # warm up
    for mp, image in sizes.items():
        for engine, detector in detectors.items():
            by_mp[engine][mp] = _median_ms(lambda d=detector, i=image: d.detect(i), repeats)
    found = {engine: [] for engine in detectors}  # faces of every photo, groups then LFW
    times = {engine: [] for engine in detectors}  # ms of every photo, alternating engines photo by photo
    for image in images + lfw_images:
        for engine, detector in detectors.items():
            start = time.perf_counter()
            found[engine].append(detector.detect(image))
            times[engine].append(1000 * (time.perf_counter() - start))
    same = all(len(a) == len(b) for a, b in zip(found["torch"], found["onnx"]))
    worst = max(
        (
            abs(x - y)
            for a, b in zip(found["torch"], found["onnx"])
            if len(a) == len(b)
            for fa, fb in zip(a, b)
            for x, y in zip(fa.box, fb.box)
        ),
        default=0.0,
    )
    groups = len(images)
    return EngineBench(
        by_mp,
        {e: sum(t[:groups]) for e, t in times.items()},
        {e: statistics.median(t[groups:]) if t[groups:] else 0.0 for e, t in times.items()},
        len(images) + len(lfw_images),
        same,
        float(worst),
        detectors["onnx"].engine_note,
    )
