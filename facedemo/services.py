"""What the dashboard (and anything else long-running) needs, built once at start-up: the pipeline,
the gallery store, and the public-demo rule that every visitor gets a private gallery.

No gradio here: the UI calls these functions and only renders what they return.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from . import params
from .errors import FaceDemoError, GalleryError, NoFaceError
from .gallery import ChromaStore, Gallery, IdentifyResult, open_store
from .gallery.album import Album, cluster_album
from .gallery.identify import DEFAULT_METHOD, IdentifyComparison, compare_models, identify_faces
from .gallery.cluster import DEFAULT_CLUSTER_METHOD
from .evaluation import read_pairs
from .evaluation.robustness import DEFAULT_PAIRS as ROBUSTNESS_PAIRS, RobustnessResult, cached_robustness
from .models.thresholds import open_set_record
from .pipeline import Pipeline
from .settings import SHARED_LFW, Settings, default_gallery_dir
from .vision.images import ImageInput, frames_note


log = logging.getLogger("facedemo.services")
VISITOR = re.compile(r"^v[0-9a-f]{24}$")  # the namespace of a public-mode visitor (see Services.namespace)
DEFAULT_VISITOR_TTL_S = 3600.0


def on_spaces() -> bool:
    return bool(os.environ.get("SPACE_ID"))


def on_gpu(fn):
    """On a Hugging Face ZeroGPU Space, run ``fn`` with a GPU attached (the ``spaces`` package's
    decorator); everywhere else, ``fn`` itself."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(fn)


@dataclass(frozen=True)
class AppConfig:
    gallery_dir: Path
    public: bool  # each visitor gets a private gallery; the shared gallery is read-only
    chroma_host: str | None = None
    chroma_port: int | None = None
    # Public mode: a visitor's data is deleted after this long without a request from them, whether or not
    # their browser ever said goodbye (plain HTTP clients never do; a crashed server never hears it).
    visitor_ttl_s: float = DEFAULT_VISITOR_TTL_S

    @classmethod
    def from_env(cls, **overrides) -> "AppConfig":
        public_env = os.environ.get("FACEDEMO_PUBLIC")
        public = on_spaces() if public_env in (None, "") else public_env.strip().lower() in ("1", "true", "yes", "on")
        port = os.environ.get("CHROMA_PORT")
        ttl = os.environ.get("FACEDEMO_VISITOR_TTL")
        config = cls(
            gallery_dir=default_gallery_dir(),
            public=public,
            chroma_host=os.environ.get("CHROMA_HOST") or None,
            chroma_port=int(port) if port else None,
            visitor_ttl_s=params.number(ttl, "FACEDEMO_VISITOR_TTL (seconds)", 1, 7 * 86400) if ttl else DEFAULT_VISITOR_TTL_S,
        )
        return replace(config, **{k: v for k, v in overrides.items() if v is not None})


class Services:
    def __init__(self, settings: Settings | None = None, config: AppConfig | None = None):
        self.settings = settings or Settings.from_env()
        self.config = config or AppConfig.from_env()
        self.pipeline = Pipeline(self.settings)
        self._store: ChromaStore | None = None
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}  # visitor namespace -> monotonic time of their last request
        self._sweeper: threading.Thread | None = None
        self._stop = threading.Event()
        self._on_forget: list = []  # callbacks(namespace) for what other layers keep of a visitor (the UI's caches)

    @property
    def store(self) -> ChromaStore:
        with self._lock:
            if self._store is None:
                c = self.config
                self._store = open_store(c.gallery_dir, c.chroma_host, c.chroma_port)
            return self._store

    # -- galleries ----------------------------------------------------------------------------------
    @staticmethod
    def namespace(session: str) -> str:
        return "v" + hashlib.sha256(session.encode()).hexdigest()[:24]

    def visitor_home(self, namespace: str) -> Path:
        """A public-mode visitor's own folder under FACEDEMO_HOME: the models they fine-tune."""
        return Path(self.settings.home) / "visitors" / namespace

    def _visitor(self, session: str | None) -> str:
        if not session:
            raise GalleryError("This public demo keeps a private gallery per browser session, and none was found; reload the page.")
        namespace = self.namespace(session)
        with self._lock:
            self._seen[namespace] = time.monotonic()
        return namespace

    def pipeline_for(self, session: str | None) -> Pipeline:
        """The pipeline a request works with: in public mode, one that also sees (and saves) the visitor's
        own fine-tuned models, and nobody else's; else the one pipeline."""
        if not self.config.public:
            return self.pipeline
        return self.pipeline.with_models_home(self.visitor_home(self._visitor(session)))

    def shared(self) -> Gallery:
        return Gallery(self.pipeline, self.store)

    def gallery(self, session: str | None) -> Gallery:
        """The gallery a visitor writes to and manages: their own in public mode, else the shared one."""
        if not self.config.public:
            return self.shared()
        namespace = self._visitor(session)
        return Gallery(self.pipeline.with_models_home(self.visitor_home(namespace)), self.store.with_namespace(namespace))

    def on_forget(self, callback) -> None:
        """Call ``callback(namespace)`` whenever a visitor's data is deleted (goodbye or expiry), so that
        what a higher layer keeps of them in memory (the Explorer's cache) goes too."""
        self._on_forget.append(callback)

    def _forgotten(self, namespace: str) -> None:
        self.pipeline.unload(self.visitor_home(namespace))
        shutil.rmtree(self.visitor_home(namespace), ignore_errors=True)
        for callback in self._on_forget:
            callback(namespace)

    def forget(self, session: str | None) -> None:
        """A public-mode visitor left: their faces (embeddings and thumbnails alike) and their models are deleted."""
        if self.config.public and session:
            namespace = self.namespace(session)
            self.store.with_namespace(namespace).drop()
            self._forgotten(namespace)
            with self._lock:
                self._seen.pop(namespace, None)

    def _visitor_homes(self) -> set[str]:
        folder = Path(self.settings.home) / "visitors"
        return {p.name for p in folder.iterdir() if VISITOR.match(p.name)} if folder.is_dir() else set()

    # -- public mode: every visitor's data expires, goodbye or not ---------------------------------
    def expire(self, max_age_s: float | None = None) -> list[str]:
        """Delete every visitor namespace idle for longer than ``max_age_s`` (default: the configured
        ``visitor_ttl_s``), and every one this process has never served: those were left by a previous
        run (a restart, a crash), and their session hashes must not bring them back. Returns them."""
        if not self.config.public:
            return []
        age = self.config.visitor_ttl_s if max_age_s is None else max_age_s
        now = time.monotonic()
        store = self.store
        with store.lock:  # no write lands in a namespace while it is judged and dropped
            stored = set(store.namespaces())
            with self._lock:
                known = {ns for ns in stored if VISITOR.match(ns)} | self._visitor_homes()
                stale = sorted(ns for ns in known if ns not in self._seen or now - self._seen[ns] > age)
                for ns in stale:
                    self._seen.pop(ns, None)
            for ns in stale:
                if ns in stored:
                    store.with_namespace(ns).drop(compact=False)
                self._forgotten(ns)
            if stored & set(stale):
                store.compact()
        return stale

    def start_expiry(self, every_s: float | None = None) -> threading.Thread | None:
        """Public mode: purge what earlier runs left at once, then sweep idle visitors every ``every_s``
        seconds (default: a quarter of the time to live, at most five minutes) in a daemon thread."""
        if not self.config.public or self._sweeper is not None:
            return self._sweeper
        interval = every_s or min(self.config.visitor_ttl_s / 4, 300.0)

        def sweep():
            while True:
                try:
                    gone = self.expire()
                    if gone:
                        log.info("expired %d visitor gallery(ies)", len(gone))
                except FaceDemoError as exc:  # the next sweep retries; a person reads the log, not a page
                    log.warning("visitor expiry failed: %s", exc)
                if self._stop.wait(interval):
                    return

        self._sweeper = threading.Thread(target=sweep, name="facedemo-visitor-expiry", daemon=True)
        self._sweeper.start()
        return self._sweeper

    def stop_expiry(self) -> None:
        self._stop.set()

    # -- identification across the visitor's gallery and (read-only) the shared one ----------------
    def identify(self, image: ImageInput, session: str | None, model: str | None = None, top_k: int = 3,
                 method: str | None = None) -> tuple[Image.Image, IdentifyResult]:
        top_k = params.top_k(top_k)  # refused before any model runs
        pipeline = self.pipeline_for(session)
        model = pipeline.spec(model).name
        picture = pipeline.load(image)
        faces = pipeline.detect(picture)
        if not faces:
            raise NoFaceError("The image has no face that could be detected; try a clearer, front-facing photo.")
        result = identify_faces(pipeline, self.searched(session), picture, faces, model, top_k, method or DEFAULT_METHOD)
        note = frames_note(picture, "The photo")
        return picture, replace(result, notes=(note,)) if note else result

    def compare_identify(self, image: ImageInput, session: str | None, top_k: int = 3, method: str | None = None) -> IdentifyComparison:
        """The same photo identified by every model with people enrolled in what this visitor searches."""
        return compare_models(self.pipeline_for(session), self.searched(session), image, top_k, method or DEFAULT_METHOD)

    def searched(self, session: str | None) -> list[Gallery]:
        """The galleries an identification searches: the visitor's own and, in public mode, the shared one
        (read-only) after it."""
        return [self.gallery(session)] + ([self.shared()] if self.config.public else [])

    # -- an unlabelled album grouped into people ----------------------------------------------------
    def album(self, sources, session: str | None, model: str | None = None, method: str | None = None, progress=None) -> Album:
        """Every face of the photos grouped into people, with thumbnails for the page; faces matching
        someone in the visitor's gallery (and, in public mode, the shared one) are labelled."""
        return cluster_album(self.pipeline_for(session), sources, model, method or DEFAULT_CLUSTER_METHOD, galleries=self.searched(session),
                             thumbnails=True, progress=progress)


    def open_set_curves(self, model: str, size: int) -> tuple[list[dict], str]:
        """The DET curves measured on LFW for one gallery size (``bench identify --open-set``), and where they come from."""
        record = open_set_record(self.pipeline.spec(model), self.settings.home)
        sizes = sorted(int(n) for n in (record or {}).get("curves", {}))
        if not sizes:
            raise FaceDemoError(f"No open-set curves were measured for '{model}'; run "
                                f"`python -m facedemo bench identify --open-set --model {model} --save-calibration`.")
        chosen = min(sizes, key=lambda n: abs(n - size))
        curves = record["curves"][str(chosen)]
        mated, strangers = curves[0]["mated"], curves[0]["nonmated"]
        note = (f"{chosen:,} LFW people enrolled, {mated} searches of them and {strangers} of strangers "
                f"(`{record.get('command', 'bench identify --open-set')}`, {record['file']}).")
        return curves, note

    def robustness(self, root: Path = SHARED_LFW) -> RobustnessResult:
        """The robustness figures `eval robustness` saved for LFW View 1's test pairs, for every model that has
        them (nothing is computed here: a full run takes tens of minutes per model on a CPU)."""
        path = Path(root) / ROBUSTNESS_PAIRS
        if not path.is_file():
            raise FaceDemoError(f"The robustness figures are measured on LFW's {ROBUSTNESS_PAIRS}, which is not at {path}.")
        result = cached_robustness(self.pipeline, read_pairs(path, root), pairs_file=ROBUSTNESS_PAIRS)
        if not result.models:
            raise FaceDemoError("No robustness figures are saved yet; measure them with "
                                "`python -m facedemo eval robustness --model MODEL` (a few minutes per condition on a CPU).")
        return result

