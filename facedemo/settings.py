"""All tunable settings in one place, read once from the environment and passed around.

Nothing here loads a model or opens a client: objects are built from a ``Settings`` at start-up.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import tomllib

from . import params
from .errors import InvalidParameterError

REPO_ROOT = Path(__file__).resolve().parent.parent
# The photos a checkout of this project finds beside it (../shared/faces): LFW and the smaller sets that
# the tests, evaluations and benchmarks read. Never part of the project itself.
SHARED_FACES = REPO_ROOT.parent / "shared" / "faces"
SHARED_LFW = SHARED_FACES / "lfw"
DLIB_ENGINES = ("torch", "dlib")
CPU_ENGINES = ("onnx", "torch")
# The face detectors a user can choose (vision/detectors.py), the default first.
DETECTORS = ("mtcnn", "dlib-hog", "dlib-cnn")


def _env_number(name: str, default: float, low: float, high: float, integer: bool = False, low_open: bool = False):
    """A numeric variable within its range, or a sentence naming the variable, its value and the range
    (``params.number``); unset or blank: ``default``."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return params.number(value, name, low, high, integer=integer, low_open=low_open)


def _env_float(name: str, default: float, low: float, high: float, low_open: bool = False) -> float:
    return _env_number(name, default, low, high, low_open=low_open)


def _env_int(name: str, default: int, low: int, high: int) -> int:
    return _env_number(name, default, low, high, integer=True)


def _env_switch(name: str) -> bool | None:
    """An on/off variable: None when unset or blank (each model's own default), else True or False."""
    value = (os.environ.get(name) or "").strip().lower()
    if not value:
        return None
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise InvalidParameterError(f"{name} must be on or off (1/0, true/false, yes/no), not '{os.environ[name]}'.")


def _env_list(name: str) -> tuple[str, ...] | None:
    """A comma-separated list; None when unset or blank."""
    items = tuple(part.strip() for part in (os.environ.get(name) or "").split(",") if part.strip())
    return items or None


def _env_set(name: str) -> bool:
    return bool((os.environ.get(name) or "").strip())


def _env_choice(name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (case-insensitive); unset or blank: the first."""
    value = (os.environ.get(name) or "").strip().lower()
    if not value:
        return choices[0]
    if value not in choices:
        raise InvalidParameterError(f"{name} must be {' or '.join(choices)}, not '{os.environ[name]}'.")
    return value


def _env_models() -> tuple[Path | None, tuple[dict, ...]]:
    """FACEDEMO_MODELS: a TOML file of ``[[model]]`` tables declaring ONNX face models (docs/MODELS.md),
    read once here; each table is checked by ``models.declared``, where a wrong one makes that model
    unavailable with a sentence. A file that cannot be read as such tables is a sentence here."""
    value = (os.environ.get("FACEDEMO_MODELS") or "").strip()
    if not value:
        return None, ()
    path = Path(value).expanduser()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidParameterError(f"FACEDEMO_MODELS names {path}, which does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidParameterError(f"FACEDEMO_MODELS names {path}, which cannot be read ({exc}).") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidParameterError(f"FACEDEMO_MODELS: {path} is not valid TOML ({exc}).") from None
    tables = data.get("model", [])
    unknown = sorted(set(data) - {"model"})
    if unknown or not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise InvalidParameterError(
            f"FACEDEMO_MODELS: {path} should hold only [[model]] tables"
            + (f", not {', '.join(unknown)}." if unknown else ".")
        )
    return path, tuple(tables)


# A model's weights file named by a setting: FACEDEMO_<NAME>_WEIGHTS, the model's name in capitals with "_" for
# "-" (FACEDEMO_FACENET_CASIA_WEBFACE_WEIGHTS for facenet-casia-webface).
WEIGHTS_SETTING = re.compile(r"FACEDEMO_([A-Z0-9_]+)_WEIGHTS")


def weights_setting(model: str) -> str:
    """The environment variable that names ``model``'s weights file."""
    return f"FACEDEMO_{model.upper().replace('-', '_')}_WEIGHTS"


def on_spaces() -> bool:
    """Running as a Hugging Face Space (the platform sets SPACE_ID)."""
    return bool(os.environ.get("SPACE_ID"))


def _public() -> bool:
    """FACEDEMO_PUBLIC when set, else on exactly when running as a Space."""
    switch = _env_switch("FACEDEMO_PUBLIC")
    return on_spaces() if switch is None else switch


def default_home() -> Path:
    """Where facedemo keeps its own files (fine-tuned models, caches, calibrated thresholds)."""
    return Path(os.environ.get("FACEDEMO_HOME") or Path.home() / ".facedemo").expanduser()


def default_gallery_dir() -> Path:
    """The Chroma gallery folder: ``FACEDEMO_GALLERY``, else ``gallery/`` in the checkout."""
    return Path(os.environ.get("FACEDEMO_GALLERY") or REPO_ROOT / "gallery").expanduser()


def torch_home() -> Path:
    """facenet-pytorch's weight cache root, resolved the way facenet-pytorch resolves it."""
    return Path(
        os.environ.get("TORCH_HOME") or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "torch"
    ).expanduser()


@dataclass(frozen=True)
class Settings:
    # Device: "auto" picks CUDA when present, else CPU; "cpu" or "cuda[:N]" force one.
    device: str = "auto"
    # CPU threads for torch; 0 means "all cores" (torch's own default is sometimes far off in containers).
    cpu_threads: int = 0
    # Detection: faces smaller than this many pixels (box side) or below this MTCNN score are ignored.
    min_face_size: int = 20
    min_face_score: float = 0.90
    # ... and faces smaller than this share of the photo's shorter side are not what a user asks about:
    # the detector works on the photo shrunk so that such a face is min_face_size pixels, so a group photo
    # costs what its faces need, not what its pixels are (0 = always the full resolution, up to max_side).
    # Photos whose shorter side is at most min_face_size / fraction (500 px at 0.04: LFW, most cast photos)
    # are never shrunk. Why 0.04 and not more: docs/BENCHMARKS.md, "Detection that scales with the photo".
    min_face_fraction: float = 0.04
    # Which detector finds the faces: one of DETECTORS (vision/detectors.py; compared in docs/BENCHMARKS.md,
    # "Face detectors"). FACEDEMO_DETECTOR overrides.
    detector: str = "mtcnn"
    # A black border of this share of the photo's width and height on each side before detection (0 = none):
    # faces cut by the photo's edge are then found whole, for about twice the detection time (docs/BENCHMARKS.md,
    # "Face detectors"). FACEDEMO_EDGE_BORDER overrides.
    edge_border: float = 0.0
    # Decoding: images above this many pixels are refused (decompression bombs); larger-than-needed
    # images are downscaled to max_side before detection, and boxes are mapped back.
    max_pixels: int = 64_000_000
    max_side: int = 1600
    # Alignment: "similarity" (5-point), "crop" (facenet-pytorch's margin crop) or "native" (each model's
    # own) for every model; None: each model's own default (ModelSpec.alignment, chosen from LFW figures).
    alignment: str | None = None
    # Test-time flip: embed each aligned face and its mirror image and keep their re-normalised mean.
    # None: each model's own default (ModelSpec.flip, chosen from LFW figures); True/False: for every model.
    flip: bool | None = None
    # Models: the default (None = the first available in models.registry.DEFAULT_ORDER, most accurate first),
    # explicit weight files, and the download bound for facenet weights.
    model: str | None = None
    facenet_weights: dict[str, str] = field(default_factory=dict)
    download_timeout_s: float = 20.0
    home: Path = field(default_factory=default_home)
    # ONNX face models a user declares (FACEDEMO_MODELS, docs/MODELS.md): the file and its [[model]] tables.
    models_file: Path | None = None
    declared_models: tuple[dict, ...] = ()
    # Faces per embedder call; None follows the device (32 on CPU, 256 on CUDA). FACEDEMO_BATCH_SIZE overrides.
    batch_size: int | None = None
    # Processes that run dlib's descriptor (it cannot batch, holds the GIL and uses one core): None or 1 = in
    # this process; N > 1 = N forked worker processes (1.9x faster on 2 cores, docs/BENCHMARKS.md). Off by
    # default: a forked worker inherits every file the process had open at that moment (a listening socket, a
    # pipe to a child process whose end it then never closes: a test's browser driver hung on it), so it is
    # for batch jobs (`import`, `eval`, `bench`) run with FACEDEMO_DLIB_WORKERS=N, not for the dashboard.
    dlib_workers: int | None = None
    # Which engine runs dlib-resnet: "torch" (the default: dlib's network converted to a torch module, batched,
    # on the pipeline's device, models/dlib_torch.py) or "dlib" (dlib's own compute_face_descriptor, the
    # reference, one core; what dlib_workers spreads over processes). torch falls back to dlib by itself
    # when the conversion fails, and says why in the model's status note. FACEDEMO_DLIB_ENGINE overrides.
    dlib_engine: str = "torch"
    # Which engine runs the torch networks (InceptionResnetV1, dlib's converted ResNet) on the CPU: "onnx" (each
    # exported once to ONNX, checked against torch and run by ONNX Runtime: 1.5x the faces per second for
    # InceptionResnetV1 and 1.2x for dlib's network on 2 cores, steady with 1-4 requests at once,
    # docs/BENCHMARKS.md) or "torch". None: onnx where onnxruntime is installed, else torch. CUDA and training always use torch; a
    # failed export or check falls back to torch by itself and says why in the model's status note.
    # FACEDEMO_CPU_ENGINE overrides.
    cpu_engine: str | None = None
    # Identification (1:N): the share of strangers allowed to get a name (FPIR); the threshold follows the
    # number of people enrolled to keep it there (models/thresholds.py: open_set_threshold).
    target_fpir: float = 0.01
    # Photos of strangers (LFW-style folders: the single-photo people are used) for the classifier
    # method's "none of them" class; None: ../shared/faces/lfw where it exists.
    strangers: Path | None = None
    # The gallery: its folder (an embedded Chroma), or a Chroma server; the models every enrolled face is
    # embedded with (None: every available built-in model, plus any model the gallery already holds).
    gallery_dir: Path = field(default_factory=default_gallery_dir)
    chroma_host: str | None = None
    chroma_port: int | None = None
    gallery_models: tuple[str, ...] | None = None
    # Public demo mode: each visitor gets a private gallery; the shared one is read-only. A visitor's data
    # is deleted after ``visitor_ttl_s`` without a request from them, goodbye or not.
    public: bool = False
    visitor_ttl_s: float = 3600.0
    # The dashboard: requests of one event that run at once (gradio's default_concurrency_limit; chosen with
    # `bench load` on 2 cores, docs/BENCHMARKS.md: more only queues CPU work), and the address it listens on.
    concurrency: int = 2
    server_name: str = "127.0.0.1"

    def embed_batch_size(self, cuda: bool) -> int:
        """Faces per embedder call on this device: the setting, else 256 on CUDA and 32 on CPU."""
        return max(1, self.batch_size or (256 if cuda else 32))

    def dlib_processes(self) -> int:
        """Processes for dlib's descriptor: the setting, else 1 (in this process; see ``dlib_workers``)."""
        return max(1, self.dlib_workers or 1)

    def dlib_engine_name(self) -> str:
        """``dlib_engine`` checked: "torch" or "dlib", else a sentence naming the setting."""
        engine = (self.dlib_engine or "torch").strip().lower()
        if engine not in DLIB_ENGINES:
            raise InvalidParameterError(f"FACEDEMO_DLIB_ENGINE must be torch or dlib, not '{self.dlib_engine}'.")
        return engine

    def cpu_engine_name(self) -> str:
        """``cpu_engine`` checked: "onnx" or "torch"; unset: onnx where onnxruntime is installed, else torch."""
        if self.cpu_engine is None:
            return "onnx" if importlib.util.find_spec("onnxruntime") is not None else "torch"
        engine = self.cpu_engine.strip().lower()
        if engine not in CPU_ENGINES:
            raise InvalidParameterError(f"FACEDEMO_CPU_ENGINE must be onnx or torch, not '{self.cpu_engine}'.")
        return engine

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        weights = {
            match[1].lower().replace("_", "-"): value
            for var, value in os.environ.items()
            if value and (match := WEIGHTS_SETTING.fullmatch(var))
        }
        models_file, declared_models = _env_models()
        base = cls(
            device=os.environ.get("FACEDEMO_DEVICE", "auto"),
            cpu_threads=_env_int("FACEDEMO_CPU_THREADS", 0, 0, 1024),
            min_face_size=_env_int("FACEDEMO_MIN_FACE_SIZE", 20, 1, 10_000),
            min_face_score=_env_float("FACEDEMO_MIN_FACE_SCORE", 0.90, 0.0, 1.0),
            min_face_fraction=_env_float("FACEDEMO_MIN_FACE_FRACTION", 0.04, 0.0, 1.0),
            detector=_env_choice("FACEDEMO_DETECTOR", DETECTORS),
            edge_border=_env_float("FACEDEMO_EDGE_BORDER", 0.0, 0.0, 1.0),
            max_pixels=_env_int("FACEDEMO_MAX_PIXELS", 64_000_000, 1, 1_000_000_000),
            alignment=os.environ.get("FACEDEMO_ALIGNMENT") or None,
            flip=_env_switch("FACEDEMO_FLIP"),
            model=os.environ.get("FACEDEMO_MODEL") or None,
            facenet_weights=weights,
            download_timeout_s=_env_float("FACEDEMO_DOWNLOAD_TIMEOUT", 20.0, 0.0, 3600.0, low_open=True),
            home=default_home(),
            models_file=models_file,
            declared_models=declared_models,
            batch_size=_env_int("FACEDEMO_BATCH_SIZE", 0, 0, 65_536) or None,
            dlib_workers=_env_int("FACEDEMO_DLIB_WORKERS", 0, 0, 256) or None,
            dlib_engine=_env_choice("FACEDEMO_DLIB_ENGINE", DLIB_ENGINES),
            cpu_engine=_env_choice("FACEDEMO_CPU_ENGINE", CPU_ENGINES) if _env_set("FACEDEMO_CPU_ENGINE") else None,
            # an FPIR of 1 (every stranger named) has no threshold: the open-set rule needs a share below 1
            target_fpir=_env_float("FACEDEMO_TARGET_FPIR", 0.01, 0.0, 0.5, low_open=True),
            strangers=Path(os.environ["FACEDEMO_STRANGERS"]).expanduser()
            if os.environ.get("FACEDEMO_STRANGERS")
            else None,
            gallery_dir=default_gallery_dir(),
            chroma_host=os.environ.get("CHROMA_HOST") or None,
            chroma_port=_env_int("CHROMA_PORT", 0, 0, 65_535) or None,
            gallery_models=_env_list("FACEDEMO_GALLERY_MODELS"),
            public=_public(),
            visitor_ttl_s=_env_float("FACEDEMO_VISITOR_TTL", 3600.0, 1.0, 7 * 86400.0),
            concurrency=_env_int("FACEDEMO_CONCURRENCY", 2, 1, 64),
            server_name=os.environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if on_spaces() else "127.0.0.1"),
        )
        overrides = {k: v for k, v in overrides.items() if v is not None}
        return replace(base, **overrides)
