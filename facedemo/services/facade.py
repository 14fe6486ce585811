"""The façade: what the dashboard and the CLI need, built once at start-up (the settings, the pipeline, the
gallery store, the visitors of public mode), and the galleries and pipeline one request works with.

It only builds. What a request does (identify, enroll, group an album, score the models, ...) are functions
in ``services.usecases`` and ``services.lfw`` that take what the façade built.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from .. import params
from ..errors import FaceDemoError, ModelUnavailableError
from ..files import purge_stale_scratch
from ..gallery import ChromaStore, Gallery, GalleryView, open_store
from ..models import ModelStatus
from ..models.registry import DEFAULT_ORDER, prepare
from ..pipeline import Pipeline
from ..settings import SHARED_LFW, Settings
from .visitors import Visitors

log = logging.getLogger("facedemo.services")
YOURS, DEMO = "your gallery", "demo gallery"  # where a name comes from, in public mode (results say it)


def on_gpu(fn):
    """On a Hugging Face ZeroGPU Space, run ``fn`` with a GPU attached (the ``spaces`` package's
    decorator); everywhere else, ``fn`` itself."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(fn)


@dataclass(frozen=True)
class Request:
    """What one request works with, as the façade chose it for its session.

    Attributes:
        pipeline: the pipeline (in public mode, one that also sees the visitor's own fine-tuned models).
        gallery: the gallery the request writes to and manages (the visitor's own, in public mode).
        searched: what an identification searches: ``gallery`` and, in public mode, the demo gallery after it.
        settings: every setting.
    """

    pipeline: Pipeline
    gallery: Gallery
    searched: tuple[GalleryView, ...]
    settings: Settings

    @property
    def public(self) -> bool:
        return self.settings.public

    @property
    def shared(self) -> GalleryView | None:
        """Public mode: the demo gallery every visitor reads; else None."""
        return self.searched[1] if len(self.searched) > 1 else None


class Flights:
    """One computation per question for everyone (single flight): two callers asking at once wait for one
    computation, and its answer is kept for the next."""

    def __init__(self):
        self._lock = threading.Lock()
        self._flights: dict[tuple, threading.Lock] = {}
        self._answers: dict[tuple, object] = {}

    def once(self, key: tuple, compute):
        with self._lock:
            flight = self._flights.setdefault(key, threading.Lock())
        with flight:
            if key not in self._answers:
                self._answers[key] = compute()
            return self._answers[key]


class Services:
    """The one front door: the dashboard and the CLI both build one from a ``Settings``.

    Args:
        settings: every setting, read from the environment in one place (``Settings.from_env``).
        store: a store to use instead of the one the settings describe (a test's wrapped client).
    """

    def __init__(self, settings: Settings | None = None, store: ChromaStore | None = None):
        self.settings = settings or Settings.from_env()
        params.number(self.settings.visitor_ttl_s, "FACEDEMO_VISITOR_TTL (seconds)", 1, 7 * 86400)
        self.pipeline = Pipeline(self.settings)
        self._store: ChromaStore | None = store  # None: opened on first use from the settings
        self._lock = threading.Lock()
        self.visitors = Visitors(self.settings, self.pipeline, lambda: self.store)
        self.flights = Flights()  # LFW's disagreements, computed once for every visitor
        self.lfw_root = SHARED_LFW  # where LFW's photos and View 1 files are looked for (a test may point elsewhere)
        purge_stale_scratch()  # what a process that died (kill -9, a crash) was unpacking or drawing

    @property
    def public(self) -> bool:
        return self.settings.public

    @property
    def store(self) -> ChromaStore:
        """The gallery store, opened on first use (a command that never touches the gallery never opens it)."""
        with self._lock:
            if self._store is None:
                s = self.settings
                self._store = open_store(s.gallery_dir, s.chroma_host, s.chroma_port)
            return self._store

    def pipeline_for(self, session: str | None) -> Pipeline:
        """The pipeline a request works with: in public mode, one that also sees (and saves) the visitor's
        own fine-tuned models, and nobody else's; else the one pipeline."""
        if not self.public:
            return self.pipeline
        return self.pipeline.with_models_home(self.visitors.home(self.visitors.touch(session)))

    def owned(self) -> Gallery:
        """The shared gallery, writable: the CLI's, the dashboard's outside public mode, and this process's own
        (it fills in new models at start-up, public mode included)."""
        return Gallery.open(self.pipeline, self.store)

    def shared(self) -> GalleryView:
        """The shared gallery as a request sees it: writable outside public mode, else a read-only view
        (``GalleryView`` has no write methods at all)."""
        if not self.public:
            return self.owned()
        view = self.owned().read_only()
        view.label = DEMO
        return view

    def gallery(self, session: str | None) -> Gallery:
        """The gallery a visitor writes to and manages: their own in public mode, else the shared one."""
        if not self.public:
            return self.owned()
        namespace = self.visitors.touch(session)
        gallery = Gallery.open(
            self.pipeline.with_models_home(self.visitors.home(namespace)), self.store.with_namespace(namespace)
        )
        gallery.label = YOURS
        return gallery

    def request(self, session: str | None) -> Request:
        """What a request from ``session`` works with (public mode: the visitor's own, and the demo gallery to read)."""
        gallery = self.gallery(session)
        searched = (gallery, self.shared()) if self.public else (gallery,)
        return Request(self.pipeline_for(session), gallery, searched, self.settings)

    def models(self, session: str | None = None) -> list[ModelStatus]:
        """Every model a page may offer, with why each unavailable one cannot run: in public mode with a session,
        the visitor's own fine-tuned models too, and nobody else's."""
        return (self.pipeline_for(session) if self.public and session else self.pipeline).models()

    def available_models(self, session: str | None = None) -> list[str]:
        return [s.name for s in self.models(session) if s.available]

    def default_model(self) -> str | None:
        """The model a page starts with; None where no model can run here (the page's list says why)."""
        try:
            return self.pipeline.default_model()
        except ModelUnavailableError:
            return None

    def readiness(self) -> dict[str, bool]:
        """What has loaded since start-up (``warm_up``): the face detector and each model an enrollment embeds with."""
        return self.pipeline.readiness()

    def device_description(self) -> str:
        """Where the models run, in words ("CPU (2 threads)", "CUDA: NVIDIA H100 ...")."""
        return self.pipeline.device.description

    def warm_up(self) -> None:
        """Start-up's work, for a background thread: fetch the weights of a model that only a download gives,
        where the network allows (facenet-vggface2 on a Space; offline it stays unavailable, with its reason),
        then load the default model, the face detector and every model an enrollment embeds with."""
        for status in self.pipeline.models():
            if not status.available and status.name in DEFAULT_ORDER:
                try:
                    prepare(self.pipeline.spec(status.name), self.settings)
                except FaceDemoError as exc:  # the page's model list says why it cannot run
                    log.info("%s stays unavailable: %s", status.name, exc)
        self.pipeline.embedder()
        _ = self.pipeline.detector  # built now, not on the first request
        for name, done in self.pipeline.readiness().items():
            if not done and name != "face detector":
                self.pipeline.embedder(name)
