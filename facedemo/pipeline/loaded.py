"""What a ``Pipeline`` holds: the models it sees (built-in and fine-tuned, with their status), the ones it has
loaded (the device, the face detector, each embedder and native aligner, made once behind one lock and
shared by every request and every visitor's view), and what each model is calibrated with.

Every getter here reads local facts only; the names that load or fetch say so (``embedder`` builds the
model on first use, ``fetch_weights_id`` may download its weights).
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from ..device import DeviceInfo, resolve_device
from ..errors import InvalidParameterError, ModelUnavailableError
from ..models import distributions
from ..models.base import Aligner, Embedder, ModelSpec, ModelStatus
from ..models.registry import (
    DEFAULT_ORDER,
    base_models,
    build_embedder,
    get_spec,
    list_models,
    native_aligner,
    uncalibrated,
    user_models,
    weights_fingerprint,
)
from ..models.thresholds import threshold_for
from ..settings import Settings
from ..vision.align import ALIGNMENTS
from ..vision.detect import Detector
from ..vision.detectors import DETECTORS, DetectorRun, DlibDetector, build_detector, check_detector, timed_detect

log = logging.getLogger(__name__)

ModelRef = str | ModelSpec | None  # a model's name, its spec, or None for the default model


class LoadedModels:
    """The models a pipeline sees and the ones it has loaded, each made once and shared (``Pipeline`` adds
    the stages that run them).

    Args:
        settings: every tunable (device, detector limits, alignment, model, weights); default ``Settings.from_env()``.
    """

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        # Where fine-tuned models are saved, and read besides those of settings.home: settings.home itself,
        # or a public-mode visitor's own folder (see ``with_models_home``).
        self.models_home = Path(self.settings.home)
        if self.settings.alignment is not None and self.settings.alignment not in ALIGNMENTS:
            raise InvalidParameterError(
                f"Unknown alignment '{self.settings.alignment}': use one of {', '.join(ALIGNMENTS)}."
            )
        self._lock = threading.RLock()
        self._device: DeviceInfo | None = None
        self._detectors: dict[str, Detector | DlibDetector] = {}
        self._embedders: dict[str, Embedder] = {}
        self._aligners: dict[str, Aligner] = {}  # each model's "native" alignment

    def with_models_home(self, home: str | Path) -> Self:
        """This pipeline (the same device, detector and loaded models) seeing, besides the fine-tuned models
        of ``settings.home``, those saved under ``home``, where it also saves new ones: a public-mode
        visitor's models stay in that visitor's folder and are listed for nobody else."""
        _ = (self.device, self.detector)  # made once here, so that every view shares them
        view = copy.copy(self)  # the lock and the dicts of loaded models are shared, not copied
        view.models_home = Path(home)
        return view

    def loaded(self) -> list[tuple[str, Path | None]]:
        """The models loaded so far, as (name, folder): folder is None for a built-in model."""
        with self._lock:
            return list(self._embedders)

    def readiness(self) -> dict[str, bool]:
        """What is loaded already, asked without loading anything: the face detector, then each available
        built-in model (fine-tuned ones load in a moment on their base)."""
        with self._lock:
            names = {name for name, folder in self._embedders if folder is None}
            parts = {"face detector": self.settings.detector in self._detectors}
        base = base_models(self.settings)
        for status in list_models(self.settings):
            if status.available and status.name in base:
                parts[status.name] = status.name in names
        return parts

    def unload(self, home: str | Path) -> None:
        """Forget every loaded fine-tuned model saved under ``home`` (a departed visitor's): the weights
        they trained on their faces do not outlive them in memory either."""
        root = Path(home).resolve()
        with self._lock:
            for key in [k for k in self._embedders if k[1] is not None and Path(k[1]).resolve().is_relative_to(root)]:
                del self._embedders[key]

    def user_models(self) -> dict[str, ModelSpec]:
        """The models this pipeline sees besides the built-in ones: those declared in FACEDEMO_MODELS and the
        fine-tuned ones (see ``with_models_home``)."""
        declared = {k: v for k, v in base_models(self.settings).items() if v.declared is not None}
        return {**declared, **user_models(self.settings.home, self.models_home)}

    # -- building blocks, each made once -------------------------------------------------------
    @property
    def device(self) -> DeviceInfo:
        with self._lock:
            if self._device is None:
                self._device = resolve_device(self.settings.device, self.settings.cpu_threads)
            return self._device

    @property
    def photo_chunk(self) -> int:
        """How many photos an import or an album detects and embeds at once: batches pay on a GPU; on a CPU
        a batch of 4 keeps the progress bar moving a few photos at a time (not 16), for a little speed
        (docs/BENCHMARKS.md, "a batch is now 4 photos")."""
        return 16 if self.device.is_cuda else 4

    @property
    def detector(self) -> Detector | DlibDetector:
        """The settings' face detector (``FACEDEMO_DETECTOR``), built on first use."""
        return self.detector_named(self.settings.detector)

    def detector_named(self, name: str | None) -> Detector | DlibDetector:
        """The face detector ``name`` (None: the settings' one), built on first use; an unknown name is a sentence."""
        key = check_detector(name or self.settings.detector)
        with self._lock:
            if key not in self._detectors:
                self._detectors[key] = build_detector(key, self.device.device, self.settings)
                note = getattr(self._detectors[key], "engine_note", None)
                if note:  # it still works, on torch: said once, where an operator looks
                    log.warning(note)
            return self._detectors[key]

    def compare_detectors(self, image, names=None) -> list[DetectorRun]:
        """Every detector (or those named) on one photo: its faces and milliseconds, each built before its
        clock starts; one that cannot be built here says why instead."""
        runs = []
        for name in [check_detector(n) for n in names] if names else list(DETECTORS):
            try:
                detector = self.detector_named(name)
            except ModelUnavailableError as exc:
                runs.append(DetectorRun(name, (), 0.0, str(exc)))
                continue
            runs.append(timed_detect(name, detector, image))
        return runs

    def spec(self, model: ModelRef = None) -> ModelSpec:
        """The spec of a model name (fine-tuned models included), or of the default model."""
        if isinstance(model, ModelSpec):
            return model
        return get_spec(model or self.default_model(), self.user_models())

    def embedder(self, spec: ModelRef = None) -> Embedder:
        """The loaded model, built on first use; a fine-tuned adapter shares its loaded base model."""
        spec = self.spec(spec)
        key = (spec.name, spec.folder)  # two visitors' models may share a name, never a folder
        with self._lock:
            if key not in self._embedders:
                base = self.embedder(get_spec(spec.base)) if spec.stacks_on_base else None  # a built-in model
                self._embedders[key] = build_embedder(spec, self.settings, self.device, base)
            return self._embedders[key]

    def models_to_run(self, models: Sequence[str] | None = None) -> tuple[list[ModelSpec], dict[str, str]]:
        """The models a comparison runs (those named, else every model), and the reason for each that is
        unavailable here; a model that fails only when it loads is the caller's to add."""
        statuses = {s.name: s for s in self.models()}
        extra = self.user_models()  # read once for every name, not once per name
        specs, unavailable = [], {}
        for name in list(models) if models else list(statuses):
            spec = name if isinstance(name, ModelSpec) else get_spec(name, extra)
            status = statuses.get(spec.name)
            if status is not None and not status.available:
                unavailable[spec.name] = status.reason or "unavailable"
            else:
                specs.append(spec)
        return specs, unavailable

    def models(self) -> list[ModelStatus]:
        return list_models(self.settings, self.models_home)

    def default_model(self) -> str:
        """The configured model, else the first available in ``DEFAULT_ORDER`` (the most accurate on
        LFW first), else the first available model (a fine-tuned one)."""
        if self.settings.model:
            return self.settings.model
        statuses = {s.name: s for s in self.models()}
        for name in DEFAULT_ORDER:
            if statuses.get(name) and statuses[name].available:
                return name
        for status in statuses.values():
            if status.available:
                return status.name
        reasons = "; ".join(f"{s.name}: {s.reason}" for s in statuses.values())
        raise ModelUnavailableError(f"No face model is available. {reasons}")

    def threshold(self, model: ModelRef = None, task: str = "verify") -> float:
        """The threshold in force for a model: ``verify`` (1:1) or the stricter ``identify`` (1:N)."""
        return threshold_for(self.spec(model), self.settings.home, task)

    def calibration_note(self, model: ModelRef = None) -> str | None:
        """For a model with no calibration of its own (a declared ONNX model), which threshold it uses and
        how to measure one, in words; None for a calibrated model. Reads the thresholds files."""
        return uncalibrated(self.spec(model), self.settings)

    def read_distributions(self, model: ModelRef = None) -> dict | None:
        """The model's same/different distance histograms on LFW (the user's calibration, else the shipped
        one; None for a model never calibrated): what its common score is read from. Reads a file."""
        return distributions.load(self.spec(model).name, self.settings.home)

    def alignment(self, spec: ModelRef = None) -> str:
        """The alignment in force for a model: the setting when one is given, else the model's own."""
        return self.settings.alignment or self.spec(spec).alignment

    def flip(self, spec: ModelRef = None) -> bool:
        """Whether a model's embeddings average each face with its mirror image: the setting when one is
        given, else the model's own default."""
        return self.settings.flip if self.settings.flip is not None else self.spec(spec).flip

    def fetch_weights_id(self, spec: ModelRef = None) -> str:
        """A key for the exact weights a model uses (caches of embeddings are keyed on it), after fetching
        the weights where they are not on this machine yet (a download, for facenet-vggface2), or the
        reason they cannot be. ``registry.weights_fingerprint`` asks without fetching."""
        spec = self.spec(spec)
        key = weights_fingerprint(spec, self.settings)
        if key is None:
            self.embedder(spec)  # fetches the weights, or raises with the reason
            key = weights_fingerprint(spec, self.settings)
        return key or "weights-unknown"

    def native_aligner(self, spec: ModelSpec) -> Aligner:
        """A model's ``native`` alignment, built once (dlib's loads its shape predictor)."""
        with self._lock:
            if spec.name not in self._aligners:
                self._aligners[spec.name] = native_aligner(spec, self.settings)
            return self._aligners[spec.name]
