"""``bench gpu``: the GPU path measured end to end, in one command.

What it prints (text and ``--json``, same fields):

* raw InceptionResnetV1 faces/s in fp32, fp16 and bf16 at each batch size (random pixels: speed only);
* the pipeline's own embed faces/s (``Pipeline.embed_crops`` on real aligned crops, its own batch size);
* MTCNN images/s by chunk size (``Detector.detect_many`` on LFW photos);
* end-to-end images/s on LFW photos (``Pipeline.analyze_many``: decode, detect, align, embed);
* group-photo latency (``Pipeline.analyze`` on each cast photo, median of ``repeats``);
* facenet-pytorch's naive README loop on the same device;
* fp16-vs-fp32 (and bf16-vs-fp32) embedding agreement on real crops, and device-vs-CPU detection
  agreement (face counts, box IoU);
* dlib-resnet's torch engine (``models/dlib_torch.py``, fp32 as the pipeline runs it): raw faces/s at
  each batch size, the pipeline's embed faces/s on real chips, and its descriptors against dlib's own
  ``compute_face_descriptor`` (CPU) on the same chips, plus its fp16 agreement (not used by the pipeline).

The model is facenet-casia-webface with its real weights when they are on this machine, else an
InceptionResnetV1 with random weights (timings do not depend on weight values; agreement figures then
say little, and the report says so). A precision torch cannot run on the device is reported as
unsupported, not skipped silently.
"""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InvalidParameterError, NoFaceError
from ..pipeline import Pipeline
from ..settings import SHARED_FACES, Settings
from ..vision.detect import Detector
from ..vision.images import list_images
from .pipeline import bench_images, random_facenet_weights

MODEL = "facenet-casia-webface"
GROUP_PHOTOS = SHARED_FACES / "bbt_faceapi" / "_group_photos"
PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass
class GpuReport:
    device: str
    model: str
    weights: str
    images: int
    batch_size: int  # the pipeline's embedder batch on this device
    raw: dict  # precision -> {batch: faces/s | "unsupported: ..." | "out of memory"}
    pipeline_embed: dict  # faces, seconds, faces_per_s
    mtcnn: dict  # chunk -> images/s
    end_to_end: dict  # images, faces, seconds, images_per_s, chunk
    group_photos: list  # [{photo, megapixels, faces, seconds}]
    naive: dict  # images, faces, seconds, images_per_s
    agreement: dict  # embedding: {fp16: {min, mean}|str, bf16: ...}; detection: {...}
    # dlib-resnet's torch engine: engine, raw {batch: faces/s}, pipeline_embed, agreement {dlib, fp16}; or
    # {"unavailable": reason}
    dlib: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        def rate(v) -> str:
            return f"{v:,.1f}" if isinstance(v, (int, float)) else str(v)

        lines = [f"bench gpu: device {self.device}, model {self.model} ({self.weights}), {self.images} LFW images"]
        lines.append("  raw InceptionResnetV1 faces/s (random pixels):")
        for precision, row in self.raw.items():
            lines.append(f"    {precision:5s} " + "  ".join(f"batch {b}: {rate(v)}" for b, v in row.items()))
        e = self.pipeline_embed
        lines.append(
            f"  pipeline embed_crops (batch {self.batch_size}): {e['faces']} real crops, {rate(e['faces_per_s'])} faces/s"
        )
        lines.append("  MTCNN images/s by chunk: " + "  ".join(f"{c}: {rate(v)}" for c, v in self.mtcnn.items()))
        t = self.end_to_end
        lines.append(
            f"  end to end (analyze_many, chunk {t['chunk']}): {t['images']} images, {t['faces']} faces, {rate(t['images_per_s'])} images/s"
        )
        n = self.naive
        lines.append(f"  naive facenet-pytorch loop: {n['faces']} faces, {rate(n['images_per_s'])} images/s")
        for g in self.group_photos:
            lines.append(
                f"  group photo {g['photo']} ({g['megapixels']} MP): {g['faces']} faces in {g['seconds']:.3f} s (median)"
            )
        for precision, value in self.agreement["embedding"].items():
            text = f"cosine min {value['min']:.5f}, mean {value['mean']:.5f}" if isinstance(value, dict) else value
            lines.append(f"  {precision} vs fp32 embeddings: {text}")
        d = self.agreement["detection"]
        lines.append(
            f"  detection {d['against']}: counts equal on {d['counts_equal']}/{d['images']} images, "
            f"box IoU min {d['iou_min']}, mean {d['iou_mean']}"
        )
        if "unavailable" in self.dlib:
            lines.append(f"  dlib-resnet: unavailable ({self.dlib['unavailable']})")
        elif self.dlib:
            g = self.dlib
            lines.append(
                f"  dlib-resnet ({g['engine']}) raw faces/s, fp32: "
                + "  ".join(f"batch {b}: {rate(v)}" for b, v in g["raw"].items())
            )
            e = g["pipeline_embed"]
            lines.append(
                f"  dlib-resnet pipeline embed_crops: {e['faces']} real chips, {rate(e['faces_per_s'])} faces/s"
            )
            for against, value in g["agreement"].items():
                text = f"cosine min {value['min']:.6f}, mean {value['mean']:.6f}" if isinstance(value, dict) else value
                lines.append(f"  dlib-resnet vs {against}: {text}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, device: str, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs, after one warm-up run."""
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _dtype(precision: str):
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def _network(state: dict, device: str, precision: str):
    from facenet_pytorch import InceptionResnetV1

    model = InceptionResnetV1(pretrained=None, classify=False)
    model.load_state_dict(state)
    return model.eval().to(device, dtype=_dtype(precision))


def _raw(state: dict, device: str, batches: list[int], repeats: int) -> dict:
    import torch

    out: dict = {}
    for precision in PRECISIONS:
        row: dict = {}
        model = _network(state, device, precision)
        for batch in batches:
            x = torch.randn(batch, 3, 160, 160, device=device, dtype=_dtype(precision))
            try:
                with torch.inference_mode():
                    seconds = _timed(lambda model=model, x=x: model(x), device, repeats)
                row[str(batch)] = round(batch / seconds, 1)
            except (torch.OutOfMemoryError, MemoryError):
                row[str(batch)] = "out of memory"
                torch.cuda.empty_cache()
            except (RuntimeError, NotImplementedError) as exc:  # e.g. a half kernel missing on this device
                row[str(batch)] = f"unsupported: {str(exc).splitlines()[0][:80]}"
                break
            finally:
                del x
        out[precision] = row
        del model
    return out


def _agreement(state: dict, device: str, pixels: np.ndarray) -> dict:
    import torch

    from ..models.facenet import standardise

    def embed(precision: str) -> np.ndarray:
        model = _network(state, device, precision)
        with torch.inference_mode():
            x = standardise(pixels, device).to(_dtype(precision))
            return torch.nn.functional.normalize(model(x).float(), dim=1).cpu().numpy()

    reference = embed("fp32")
    out: dict = {}
    for precision in ("fp16", "bf16"):
        try:
            cos = np.sum(reference * embed(precision), axis=1)
            out[precision] = {"min": round(float(cos.min()), 6), "mean": round(float(cos.mean()), 6)}
        except (RuntimeError, NotImplementedError) as exc:
            out[precision] = f"unsupported: {str(exc).splitlines()[0][:80]}"
    return out


def _iou(a, b) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _detection_agreement(ours: list, cpu: list, against: str) -> dict:
    """Face counts and box IoU of one device's detections against the CPU's, faces paired by the
    assignment that maximises total IoU (scipy's Hungarian solver)."""
    from scipy.optimize import linear_sum_assignment

    ious, equal = [], 0
    for a, b in zip(ours, cpu):
        equal += len(a) == len(b)
        if a and b:
            matrix = np.array([[_iou(f.box, g.box) for g in b] for f in a])
            rows, cols = linear_sum_assignment(-matrix)
            ious += [float(matrix[r, c]) for r, c in zip(rows, cols)]
    return {
        "against": against,
        "images": len(ours),
        "counts_equal": equal,
        "faces": sum(len(a) for a in ours),
        "cpu_faces": sum(len(b) for b in cpu),
        "iou_min": round(min(ious), 4) if ious else None,
        "iou_mean": round(float(np.mean(ious)), 4) if ious else None,
    }


def _naive(paths: list[Path], module, device: str, spec) -> dict:
    """facenet-pytorch's README loop: ``mtcnn(img)`` then ``resnet(crop.unsqueeze(0))``, one image at a time."""
    import torch
    from facenet_pytorch import MTCNN
    from PIL import Image

    mtcnn = MTCNN(image_size=spec.input_size, margin=spec.crop_margin, device=device)
    faces = 0
    dtype = next(module.parameters()).dtype
    start = time.perf_counter()
    for path in paths:
        crop = mtcnn(Image.open(path).convert("RGB"))
        if crop is None:
            continue
        with torch.inference_mode():
            module(crop.unsqueeze(0).to(device, dtype=dtype))
        faces += 1
    _sync(device)
    seconds = time.perf_counter() - start
    return {
        "images": len(paths),
        "faces": faces,
        "seconds": round(seconds, 3),
        "images_per_s": round(len(paths) / seconds, 2),
    }


def _cosines(a: np.ndarray, b: np.ndarray) -> dict:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    cos = np.sum(a * b, axis=1)
    return {"min": round(float(cos.min()), 6), "mean": round(float(cos.mean()), 6)}


def _dlib(pipeline: Pipeline, images: list, batches: list[int], repeats: int) -> dict:
    """dlib-resnet's torch engine on the pipeline's device: raw fp32 faces/s by batch, the pipeline's embed
    on real chips, and agreement with dlib's own descriptor (the reference, on the CPU) and with fp16."""
    import torch

    from ..models.dlib_resnet import DlibEmbedder, DlibTorchEmbedder

    name = "dlib-resnet"
    status = {s.name: s for s in pipeline.models()}.get(name)
    if status is None or not status.available:
        return {"unavailable": status.reason if status else "not a model here"}
    dev = pipeline.device.device
    runs = pipeline.embedder(name)
    embedder = getattr(runs, "torch", runs)  # the torch engine behind ONNX Runtime on the CPU: what is measured raw
    chips = [pipeline.aligned(image, face, name) for image in images for face in pipeline.detect(image)]
    if not chips:
        return {"unavailable": "no face in the benchmark images"}
    many = (chips * (max(batches) // len(chips) + 1))[: max(max(batches), len(chips))]
    embed_s = _timed(lambda: pipeline.embed_crops(name, many), dev, repeats)
    report = {
        "engine": "torch" if isinstance(embedder, DlibTorchEmbedder) else f"dlib's own ({status.note})",
        "raw": {},
        "pipeline_embed": {
            "engine": getattr(runs, "engine", "dlib"),
            "faces": len(many),
            "seconds": round(embed_s, 3),
            "faces_per_s": round(len(many) / embed_s, 1),
        },
        "agreement": {},
    }
    if not isinstance(embedder, DlibTorchEmbedder):
        return report
    module = embedder.module
    for batch in batches:
        x = torch.rand(batch, 3, 150, 150, device=dev) * 255
        try:
            with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
                seconds = _timed(lambda x=x: module(x), dev, repeats)
            report["raw"][str(batch)] = round(batch / seconds, 1)
        except (torch.OutOfMemoryError, MemoryError):
            report["raw"][str(batch)] = "out of memory"
            if dev.startswith("cuda"):
                torch.cuda.empty_cache()
        finally:
            del x
    ours = embedder.embed(chips).astype(np.float64)
    reference = DlibEmbedder(embedder.spec).embed(chips).astype(np.float64)
    report["agreement"]["dlib's compute_face_descriptor (CPU)"] = _cosines(ours, reference)
    pixels = torch.from_numpy(np.stack([np.asarray(c.convert("RGB")) for c in chips])).permute(0, 3, 1, 2)
    try:
        half = copy.deepcopy(module).half()
        with torch.inference_mode():
            fp16 = half(pixels.to(dev, dtype=torch.float16)).float().cpu().numpy()
        report["agreement"]["its own fp32, in fp16"] = _cosines(ours, fp16.astype(np.float64))
    except (RuntimeError, NotImplementedError) as exc:
        report["agreement"]["its own fp32, in fp16"] = f"unsupported: {str(exc).splitlines()[0][:80]}"
    return report


def _pipeline_with_weights(device: str, tmp: Path, notes: list[str]) -> tuple[Settings, Pipeline, str]:
    """The pipeline for MODEL with its real weights, else with random ones written to ``tmp`` (noted)."""
    settings = Settings.from_env(device=device, model=MODEL)
    pipeline = Pipeline(settings)
    status = {s.name: s for s in pipeline.models()}[MODEL]
    if status.available:
        return settings, pipeline, "real weights"
    path = random_facenet_weights(tmp)
    settings = Settings.from_env(device=device, model=MODEL, facenet_weights={MODEL: str(path)})
    notes.append(
        f"{MODEL} weights are not on this machine ({status.reason}); random weights: timings hold, agreement figures say little"
    )
    return settings, Pipeline(settings), "random weights"


def _mtcnn_by_chunk(detector: Detector, decoded: list, chunks: list[int], dev: str) -> dict:
    """MTCNN images/s by chunk, on the decoded LFW photos."""
    mtcnn: dict = {}
    for chunk in chunks:

        def detect_all(chunk=chunk):
            for i in range(0, len(decoded), chunk):
                detector.detect_many(decoded[i : i + chunk])

        mtcnn[str(chunk)] = round(len(decoded) / _timed(detect_all, dev, 1), 2)
    return mtcnn


def _end_to_end(pipeline: Pipeline, paths: list[Path], chunk: int, dev: str) -> tuple[dict, list]:
    """Decode, detect, align and embed every photo at ``chunk``: the figures and the results."""
    start = time.perf_counter()
    results = pipeline.analyze_many([str(p) for p in paths], MODEL, chunk=chunk)
    _sync(dev)
    seconds = time.perf_counter() - start
    faces = sum(len(r.faces) for r in results)
    figures = {
        "images": len(paths),
        "faces": faces,
        "seconds": round(seconds, 3),
        "images_per_s": round(len(paths) / seconds, 2),
        "chunk": chunk,
    }
    return figures, results


def _pipeline_embed(pipeline: Pipeline, crops: list, batches: list[int], dev: str, repeats: int) -> dict:
    """The pipeline's own embedder on real crops, repeated up to the largest batch."""
    many = (crops * (max(batches) // len(crops) + 1))[: max(max(batches), len(crops))]
    embed_s = _timed(lambda: pipeline.embed_crops(MODEL, many), dev, repeats)
    return {
        "faces": len(many),
        "seconds": round(embed_s, 3),
        "faces_per_s": round(len(many) / embed_s, 1),
    }


def _group_latency(pipeline: Pipeline, group_paths: list[Path], dev: str, repeats: int) -> list:
    """``Pipeline.analyze`` on each group photo: its size, faces found and median seconds."""
    from PIL import Image

    group_photos = []
    for path in group_paths:
        with Image.open(path) as im:
            megapixels = round(im.width * im.height / 1e6, 2)
        found: list = []
        latency = _timed(lambda: found.append(len(pipeline.analyze(str(path), MODEL)[1])), dev, repeats)
        group_photos.append(
            {"photo": path.name, "megapixels": megapixels, "faces": found[-1], "seconds": round(latency, 4)}
        )
    return group_photos


def _detection_vs_cpu(settings: Settings, detector: Detector, decoded: list, dev: str) -> dict:
    """The device's detections against a CPU detector's with the same settings (on a CPU, against itself)."""
    ours = detector.detect_many(decoded)
    if dev == "cpu":
        cpu = ours
    else:
        s = settings
        cpu = Detector("cpu", s.min_face_size, s.min_face_score, s.max_side, s.min_face_fraction).detect_many(decoded)
    return _detection_agreement(ours, cpu, "CPU vs itself" if dev == "cpu" else f"{dev} vs CPU")


def bench_gpu(
    device: str = "cuda",
    batches: list[int] | None = None,
    images: int = 256,
    chunks: list[int] | None = None,
    folder: str | None = None,
    groups: str | None = None,
    repeats: int = 3,
) -> GpuReport:
    """Measure every part of the GPU path on ``device`` (``cuda``, ``cuda:N`` or ``cpu``)."""
    import torch

    from ..models.facenet import load_state_dict

    batches = batches or [32, 256, 1024]
    chunks = chunks or [1, 16, 64]
    if min(batches) < 1 or min(chunks) < 1 or images < 1 or repeats < 1:
        raise InvalidParameterError("Batch sizes, chunk sizes, --images and --repeats must all be at least 1.")
    paths = bench_images(folder, images)
    group_root = Path(groups) if groups else GROUP_PHOTOS
    group_paths = list_images(group_root) if group_root.is_dir() else []
    notes: list[str] = []

    with tempfile.TemporaryDirectory() as tmp:
        settings, pipeline, weights = _pipeline_with_weights(device, Path(tmp), notes)
        dev = pipeline.device.device
        embedder = pipeline.embedder(MODEL)
        state = load_state_dict(embedder.weights_file)
        if dev == "cpu":
            notes.append(
                "on CPU fp16 and bf16 run through torch's CPU kernels (slow or missing); the detection agreement is CPU against itself"
            )

        raw = _raw(state, dev, batches, repeats)
        decoded = [pipeline.load(str(p)) for p in paths]
        mtcnn = _mtcnn_by_chunk(pipeline.detector, decoded, chunks, dev)
        end_to_end, results = _end_to_end(pipeline, paths, max(chunks), dev)
        crops = [f.crop for r in results for f in r.faces]
        if not crops:
            raise NoFaceError("No face was found in the benchmark images: pass --folder with face photos.")
        pipeline_embed = _pipeline_embed(pipeline, crops, batches, dev, repeats)
        pixels = np.stack([np.asarray(c.convert("RGB")) for c in crops])
        embedding_agreement = _agreement(state, dev, pixels)
        group_photos = _group_latency(pipeline, group_paths, dev, repeats)
        if not group_paths:
            notes.append(f"no group photos at {group_root}: group latency not measured")
        naive = _naive(paths, embedder.module, dev, embedder.spec)
        detection = _detection_vs_cpu(settings, pipeline.detector, decoded, dev)
        dlib = _dlib(pipeline, decoded[:64], batches, repeats)
        del state
        if dev.startswith("cuda"):
            torch.cuda.empty_cache()

    return GpuReport(
        device=pipeline.device.description,
        model=MODEL,
        weights=weights,
        images=len(paths),
        batch_size=settings.embed_batch_size(dev.startswith("cuda")),
        raw=raw,
        pipeline_embed=pipeline_embed,
        mtcnn=mtcnn,
        end_to_end=end_to_end,
        group_photos=group_photos,
        naive=naive,
        agreement={"embedding": embedding_agreement, "detection": detection},
        dlib=dlib,
        notes=notes,
    )
