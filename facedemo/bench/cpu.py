"""``bench cpu``: torch against ONNX Runtime on the CPU, on the same real aligned faces, in one run. Per
model: ms per face embedding every face (the median of several runs, the engines in turn so that a change
in the machine's load falls on both), and 1, 2 and 4 callers embedding a batch each at the same moment
(what the dashboard does when two or four requests arrive together), with the ratios; and how far the two
engines' vectors are apart. Detection and alignment run once beforehand: the engines do not change them."""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, replace

import numpy as np

from ..errors import NoFaceError
from ..models.registry import MODELS
from ..pipeline import Pipeline
from ..settings import Settings
from ..vision.detect import central_face
from .pipeline import bench_images

ENGINES = ("torch", "onnx")


@dataclass(frozen=True)
class EngineFigures:
    engine: str  # what actually ran: "onnx", "torch", or a fall-back's own name
    ms_per_face: float  # embedding every face, one caller
    concurrent: dict[int, float]  # callers at once -> wall ms per face over all their batches


@dataclass(frozen=True)
class ModelFigures:
    model: str
    faces: int
    batch: int
    engines: dict[str, EngineFigures]
    min_cosine: float  # between the two engines' vectors of every face
    note: str | None  # the model's status note (the engine in force, or why ONNX Runtime is not)

    def ratio(self, callers: int | None = None) -> float:
        torch, onnx = self.engines["torch"], self.engines["onnx"]
        if callers is None:
            return torch.ms_per_face / onnx.ms_per_face
        return torch.concurrent[callers] / onnx.concurrent[callers]

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "faces": self.faces,
            "batch": self.batch,
            "min_cosine": round(self.min_cosine, 7),
            "note": self.note,
            **{
                name: {
                    "engine": e.engine,
                    "ms_per_face": round(e.ms_per_face, 2),
                    "concurrent_ms_per_face": {str(c): round(ms, 2) for c, ms in e.concurrent.items()},
                }
                for name, e in self.engines.items()
            },
            "ratio": round(self.ratio(), 2),
            "concurrent_ratio": {str(c): round(self.ratio(c), 2) for c in self.engines["torch"].concurrent},
        }


@dataclass(frozen=True)
class CpuBench:
    device: str
    repeats: int
    models: list[ModelFigures]
    unavailable: dict[str, str]

    def to_json(self) -> dict:
        return {
            "device": self.device,
            "repeats": self.repeats,
            "models": [m.to_json() for m in self.models],
            "unavailable": self.unavailable,
        }

    def text(self) -> str:
        lines = [f"torch vs ONNX Runtime, {self.device}, median of {self.repeats} runs"]
        for m in self.models:
            t, o = m.engines["torch"], m.engines["onnx"]
            lines.append(
                f"{m.model}: {m.faces} aligned LFW faces, min cosine between the engines {m.min_cosine:.7f}"
                + (f" ({m.note})" if m.note else "")
            )
            lines.append(
                f"  every face, one caller : torch {t.ms_per_face:.1f} ms/face, {o.engine} {o.ms_per_face:.1f} ms/face ({m.ratio():.2f}x)"
            )
            for callers in t.concurrent:
                lines.append(
                    f"  {callers} caller(s) x {m.batch} faces at once: torch {t.concurrent[callers]:.1f} ms/face, "
                    f"{o.engine} {o.concurrent[callers]:.1f} ms/face ({m.ratio(callers):.2f}x)"
                )
        lines += [f"{name}: unavailable ({why})" for name, why in self.unavailable.items()]
        return "\n".join(lines)


def at_once(embed, batch, callers: int) -> float:
    """Seconds from the moment ``callers`` threads are released together until the last has embedded
    ``batch``."""
    gate = threading.Barrier(callers + 1)
    errors: list[BaseException] = []

    def call():
        gate.wait()
        try:
            embed(batch)
        except BaseException as exc:  # a failure is reported, not a silently shorter time
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for t in threads:
        t.start()
    gate.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - start


def bench_cpu(
    settings: Settings | None = None,
    models: list[str] | None = None,
    images: str | None = None,
    limit: int = 64,
    repeats: int = 3,
    callers: tuple[int, ...] = (1, 2, 4),
    batch: int = 32,
) -> CpuBench:
    settings = replace(settings or Settings.from_env(), device="cpu")
    pipelines = {engine: Pipeline(replace(settings, cpu_engine=engine)) for engine in ENGINES}
    probe = pipelines["torch"]
    statuses = {s.name: s for s in pipelines["onnx"].models()}
    wanted = list(models) if models else [m for m in MODELS if m in statuses]  # the built-in ones: torch and ONNX
    unavailable = {m: statuses[m].reason for m in wanted if m in statuses and not statuses[m].available}
    unavailable.update({m: "not a model here" for m in wanted if m not in statuses})
    found = []
    for path in bench_images(images, limit):
        image = probe.load(path)
        faces = probe.detect(image)
        if faces:
            found.append((image, central_face(faces, image.size)))
    if not found:
        raise NoFaceError("No face was found in the benchmark photos.")
    figures = []
    for name in [m for m in wanted if m not in unavailable]:
        spec = probe.spec(name)
        crops = [probe.aligned(image, face, spec) for image, face in found]
        chunk = (crops * (batch // len(crops) + 1))[:batch]
        embedders = {engine: p.embedder(spec) for engine, p in pipelines.items()}  # loaded (and exported) first
        vectors = {engine: e.embed(crops) for engine, e in embedders.items()}  # and warm
        times: dict[str, list[float]] = {engine: [] for engine in ENGINES}
        together: dict[str, dict[int, list[float]]] = {engine: {c: [] for c in callers} for engine in ENGINES}
        for _ in range(max(1, repeats)):
            for engine, embedder in embedders.items():
                start = time.perf_counter()
                embedder.embed(crops)
                times[engine].append(time.perf_counter() - start)
            for c in callers:
                for engine, embedder in embedders.items():
                    together[engine][c].append(at_once(embedder.embed, chunk, c))
        note = {s.name: s for s in pipelines["onnx"].models()}[name].note
        figures.append(
            ModelFigures(
                name,
                len(crops),
                len(chunk),
                {
                    engine: EngineFigures(
                        getattr(embedders[engine], "engine", "dlib"),
                        1000 * statistics.median(times[engine]) / len(crops),
                        {c: 1000 * statistics.median(together[engine][c]) / (c * len(chunk)) for c in callers},
                    )
                    for engine in ENGINES
                },
                float(np.sum(vectors["torch"].astype(np.float64) * vectors["onnx"], axis=1).min()),
                note,
            )
        )
    return CpuBench(probe.device.description, max(1, repeats), figures, unavailable)
