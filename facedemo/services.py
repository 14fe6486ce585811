"""What the dashboard (and anything else long-running) needs, built once at start-up: the pipeline,
the gallery store, and the public-demo rule that every visitor gets a private gallery.

No gradio here: the UI calls these functions and only renders what they return.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from . import params
from .errors import DataUnavailableError, GalleryError, ModelUnavailableError, UnknownPersonError
from .evaluation import read_pairs
from .evaluation.disagreement import DEFAULT_HARDEST, Disagreements, compare_pairs
from .evaluation.embed import chosen_models, uncached
from .evaluation.robustness import DEFAULT_PAIRS as ROBUSTNESS_PAIRS
from .evaluation.robustness import RobustnessResult, cached_robustness
from .files import purge_scratch, purge_stale_scratch, scratch_owners
from .gallery import ChromaStore, Gallery, GalleryView, IdentifyResult, open_store
from .gallery.album import Album, cluster_album
from .gallery.archive import photo_count
from .gallery.cluster import DEFAULT_CLUSTER_METHOD
from .gallery.identify import (
    IdentifyComparison,
    compare_models,
    identify_faces,
    load_faces,
)
from .gallery.store import release_memory
from .models.thresholds import OPEN_SET, open_set_record
from .pipeline import Explanation, Pipeline
from .rules import DEFAULT_METHOD, methods
from .settings import SHARED_LFW, Settings
from .training import Augment, FinetuneResult, finetune_gallery
from .vision.images import ImageInput, frames_note

log = logging.getLogger("facedemo.services")
VISITOR = re.compile(r"^v[0-9a-f]{24}$")  # the namespace of a public-mode visitor (see Services.namespace)
# The key a browser keeps for its visitor (``Services.adopt``): 128 random bits, in hex.
VISITOR_KEY = re.compile(r"^[0-9a-f]{32}$")
YOURS, DEMO = "your gallery", "demo gallery"  # where a name comes from, in public mode (results say it)
# Public mode sweeps idle visitors at least this often: their data goes within this long after their time to
# live (docs/PRIVACY.md promises a minute); a sweep that finds nobody to expire lists two folders.
SWEEP_S = 30.0
# CPU seconds to detect and embed one LFW photo with one model on this project's 2 cores: the first
# `/disagreements` on LFW's 1,000 test pairs took 105-133 CPU s for two models (#33).
LFW_CPU_S_PER_PHOTO = 0.035


@dataclass(frozen=True)
class FinetuneAnswer:
    """A fine-tune as the dashboard reports it: the result, and sentences on what a bound left out."""

    result: FinetuneResult
    notes: tuple[str, ...] = ()


def on_gpu(fn):
    """On a Hugging Face ZeroGPU Space, run ``fn`` with a GPU attached (the ``spaces`` package's
    decorator); everywhere else, ``fn`` itself."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(fn)


class Services:
    """The one front door: the dashboard and the CLI both build one from a ``Settings`` and reach the core
    through it (the pipeline, the gallery store, public mode's private galleries).

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
        self._seen: dict[str, float] = {}  # visitor namespace -> monotonic time of their last request
        self._pages: dict[str, str] = {}  # an open page's session hash -> its browser's visitor namespace
        self._sweeper: threading.Thread | None = None
        self._stop = threading.Event()
        self._on_forget: list = []  # callbacks(namespace) for what other layers keep of a visitor (the UI's caches)
        self._flights: dict[tuple, threading.Lock] = {}  # one lock per piece of shared work (single flight)
        self._answers: dict[tuple, object] = {}  # what that work gave, kept for the next asker
        self.lfw_root = (
            SHARED_LFW  # where LFW's photos and View 1 files are looked for (the Fine-tune tab's test pairs)
        )
        purge_stale_scratch()  # what a process that died (kill -9, a crash) was unpacking or drawing

    @property
    def public(self) -> bool:
        return self.settings.public

    @property
    def store(self) -> ChromaStore:
        with self._lock:
            if self._store is None:
                s = self.settings
                self._store = open_store(s.gallery_dir, s.chroma_host, s.chroma_port)
            return self._store

    # -- galleries ----------------------------------------------------------------------------------
    @staticmethod
    def namespace(session: str) -> str:
        return "v" + hashlib.sha256(session.encode()).hexdigest()[:24]

    def visitor_home(self, namespace: str) -> Path:
        """A public-mode visitor's own folder under FACEDEMO_HOME: the models they fine-tune."""
        return Path(self.settings.home) / "visitors" / namespace

    def adopt(self, session: str | None, key: str | None) -> str:
        """Public mode: the page ``session`` opened in a browser that keeps ``key`` (a ``BrowserState``) works in
        that browser's gallery, so a reload finds the visitor's people. A browser without a valid key gets a new
        one (128 random bits, never derived from anything a client sends), which the page keeps; returns it.
        A client that invents a key gets a gallery of its own: nobody else holds that key."""
        if not self.public or not session:
            return key or ""
        if not (isinstance(key, str) and VISITOR_KEY.match(key)):
            key = secrets.token_hex(16)
        namespace = "v" + hashlib.sha256(f"browser:{key}".encode()).hexdigest()[:24]
        with self._lock:
            self._pages[session] = namespace
            self._seen[namespace] = time.monotonic()
        return key

    def leave(self, session: str | None) -> None:
        """A page closed (or reloaded): its browser's gallery stays for the visitor's time to live."""
        with self._lock:
            self._pages.pop(session or "", None)

    def _namespace(self, session: str) -> str:
        with self._lock:
            return self._pages.get(session) or self.namespace(session)

    def _visitor(self, session: str | None) -> str:
        if not session:
            raise GalleryError(
                "This public demo keeps a private gallery per browser session, and none was found; reload the page."
            )
        namespace = self._namespace(session)
        with self._lock:
            self._seen[namespace] = time.monotonic()
        return namespace

    def pipeline_for(self, session: str | None) -> Pipeline:
        """The pipeline a request works with: in public mode, one that also sees (and saves) the visitor's
        own fine-tuned models, and nobody else's; else the one pipeline."""
        if not self.public:
            return self.pipeline
        return self.pipeline.with_models_home(self.visitor_home(self._visitor(session)))

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
        namespace = self._visitor(session)
        gallery = Gallery.open(
            self.pipeline.with_models_home(self.visitor_home(namespace)), self.store.with_namespace(namespace)
        )
        gallery.label = YOURS
        return gallery

    def ready(self, galleries, models, progress=None) -> list[str]:
        """Fill in each model of ``models`` for each writable gallery that lacks faces of it (a model that
        came after the faces were enrolled), once per process: the first use of a new model embeds the stored
        face regions, with a progress bar. Returns notes for the user (faces that could not be filled in)."""
        notes = []
        for gallery in galleries:
            if not gallery.writable:
                continue
            for name in models:
                key = ("complete", gallery.store.namespace, name)
                if gallery.store.state.get(key):
                    continue
                if gallery.missing(name):
                    try:
                        done = gallery.backfill(name, progress)
                    except ModelUnavailableError:
                        continue
                    if done.note():
                        notes.append(done.note())
                gallery.store.state[key] = True
        return notes

    def available_models(self, session: str | None = None) -> list[str]:
        return [s.name for s in self.pipeline_for(session).models() if s.available]

    def on_forget(self, callback) -> None:
        """Call ``callback(namespace)`` whenever a visitor's data is deleted (goodbye or expiry), so that
        what a higher layer keeps of them in memory (the Explorer's cache) goes too."""
        self._on_forget.append(callback)

    def _forgotten(self, namespace: str) -> None:
        self.pipeline.unload(self.visitor_home(namespace))
        shutil.rmtree(self.visitor_home(namespace), ignore_errors=True)
        purge_scratch(namespace)  # their albums' crops, unpacked zips, fine-tune caches
        for callback in self._on_forget:
            callback(namespace)

    def forget(self, session: str | None) -> None:
        """A public-mode visitor asked to be forgotten now: their faces (embeddings and thumbnails alike) and
        their models are deleted (a page that closes keeps them for their time to live: ``leave``)."""
        if self.public and session:
            namespace = self._namespace(session)
            self.store.with_namespace(namespace).drop()
            self._forgotten(namespace)
            with self._lock:
                self._seen.pop(namespace, None)
            release_memory()

    def visitors(self) -> int:
        """How many visitors this process is keeping track of (their last request's time)."""
        with self._lock:
            return len(self._seen)

    def _visitor_homes(self) -> set[str]:
        folder = Path(self.settings.home) / "visitors"
        return {p.name for p in folder.iterdir() if VISITOR.match(p.name)} if folder.is_dir() else set()

    # -- public mode: every visitor's data expires, goodbye or not ---------------------------------
    def expire(self, max_age_s: float | None = None) -> list[str]:
        """Delete every visitor namespace idle for longer than ``max_age_s`` (default: the configured
        ``visitor_ttl_s``), and every one this process has never served: those were left by a previous
        run (a restart, a crash), and their session hashes must not bring them back. Returns them."""
        if not self.public:
            return []
        age = self.settings.visitor_ttl_s if max_age_s is None else max_age_s
        now = time.monotonic()
        store = self.store
        with store.lock:  # no write lands in a namespace while it is judged and dropped
            stored = set(store.namespaces())
            with self._lock:
                known = {ns for ns in stored if VISITOR.match(ns)} | self._visitor_homes()
                # The scratch root is shared by every process and every Services of this user: only the scratch of
                # a visitor this one served is judged here (a dead process's goes at start-up, by its pid), or a
                # sweep could empty another's unpacked zip under its import.
                known |= {ns for ns in scratch_owners() if ns in self._seen}
                stale = sorted(ns for ns in known if ns not in self._seen or now - self._seen[ns] > age)
                for ns in stale:
                    self._seen.pop(ns, None)
                # Visitors who stored nothing leave only their last request's time: it goes with the same clock,
                # so the table does not grow with every visitor who ever came.
                for ns in [ns for ns, seen in self._seen.items() if now - seen > age]:
                    self._seen.pop(ns, None)
            shared = False  # whether a namespace was in the shared client (an older version's), to compact
            for ns in stale:
                if ns in stored:
                    shared |= store.with_namespace(ns).drop(compact=False)
                self._forgotten(ns)
            if shared:
                store.compact()
        if stale:
            release_memory()
        return stale

    def start_expiry(self, every_s: float | None = None) -> threading.Thread | None:
        """Public mode: purge what earlier runs left at once, then sweep idle visitors every ``every_s``
        seconds (default: a quarter of the time to live, at most ``SWEEP_S``) in a daemon thread."""
        if not self.public or self._sweeper is not None:
            return self._sweeper
        interval = every_s or min(self.settings.visitor_ttl_s / 4, SWEEP_S)

        def once() -> None:
            try:
                gone = self.expire()
                if gone:
                    log.info("expired %d visitor gallery(ies)", len(gone))
            except GalleryError as exc:  # the next sweep retries; a person reads the log, not a page
                log.warning("visitor expiry failed: %s", exc)

        # What an earlier run left is purged before this one serves anybody: a request from an old session
        # that arrived first would otherwise mark that session as seen and keep its faces.
        once()

        def sweep():
            while not self._stop.wait(interval):
                once()

        self._sweeper = threading.Thread(target=sweep, name="facedemo-visitor-expiry", daemon=True)
        self._sweeper.start()
        return self._sweeper

    def stop_expiry(self) -> None:
        self._stop.set()

    # -- identification across the visitor's gallery and (read-only) the shared one ----------------
    def identify(
        self,
        image: ImageInput,
        session: str | None,
        model: str | None = None,
        top_k: int = 3,
        method: str | None = None,
        progress=None,
    ) -> tuple[Image.Image, IdentifyResult]:
        top_k = params.top_k(top_k)  # refused before any model runs
        pipeline = self.pipeline_for(session)
        spec = pipeline.spec(model)
        picture, faces = load_faces(pipeline, image)
        searched = self.searched(session)
        self.ready(searched, [spec.name], progress)
        result = identify_faces(pipeline, searched, picture, faces, spec, top_k, method or DEFAULT_METHOD)
        note = frames_note(picture, "The photo")
        return picture, replace(result, notes=(note,)) if note else result

    def compare_identify(
        self, image: ImageInput, session: str | None, top_k: int = 3, method: str | None = None, progress=None
    ) -> IdentifyComparison:
        """The same photo identified by every model with people enrolled in what this visitor searches."""
        searched = self.searched(session)
        self.ready(searched, self.available_models(session), progress)
        return compare_models(self.pipeline_for(session), searched, image, top_k, method or DEFAULT_METHOD)

    def enroll(self, session: str | None, name: str, images, **answers):
        """Enroll into the visitor's gallery (``Gallery.enroll``), asking first about a face that anything their
        Identify searches (the shared gallery too, in public mode) names as someone else. ``answers``:
        face_index, labels, confirm, odd_photos."""
        searched = self.searched(session)
        result = searched[0].enroll(name, images, searched=searched, **answers)
        if self.public and result.person in self.shared_names():
            result.notes.append(
                f"The demo gallery has a **{result.person}** too: Identify says which gallery each name comes from "
                f'("{result.person} ({YOURS})" is the one you enrolled).'
            )
        return result

    def shared_names(self) -> set[str]:
        """Public mode: the names of the shared demo gallery's people (every visitor sees them, nobody changes them)."""
        return {p.name for p in self.shared().store.persons()} if self.public else set()

    def mine(self, session: str | None, name: str) -> Gallery:
        """The visitor's gallery, once ``name`` is a person of it they may change; a name of the shared demo
        gallery is said to be the demo's (it used to answer "Nobody called 'sheldon' is in the gallery." while
        Identify named sheldon)."""
        gallery = self.gallery(session)
        try:
            gallery.person(name)
        except UnknownPersonError:
            if name in self.shared_names():
                raise UnknownPersonError(
                    f"'{name}' belongs to the demo gallery, which every visitor shares: you can use it but not "
                    "change it. You can rename, delete or edit only the people you enrolled."
                ) from None
            raise
        return gallery

    def searched(self, session: str | None) -> list[GalleryView]:
        """The galleries an identification searches: the visitor's own and, in public mode, the shared one
        (read-only) after it."""
        return [self.gallery(session)] + ([self.shared()] if self.public else [])

    def photos_allowed(self, sources) -> None:
        """In public mode, refuse a request of more photos than one request may embed (``params.public_photos``);
        a zip counts its photos."""
        if self.public:
            paths = [Path(sources)] if isinstance(sources, (str, Path)) else [Path(s) for s in sources]
            params.public_photos(sum(photo_count(p) if p.suffix.lower() == ".zip" else 1 for p in paths))

    # -- an unlabelled album grouped into people ----------------------------------------------------
    def album(
        self, sources, session: str | None, model: str | None = None, method: str | None = None, progress=None
    ) -> Album:
        """Every face of the photos grouped into people, with thumbnails for the page; faces matching
        someone in the visitor's gallery (and, in public mode, the shared one) are labelled."""
        self.photos_allowed(sources)
        pipeline = self.pipeline_for(session)
        searched = self.searched(session)
        self.ready(searched, [pipeline.spec(model).name])
        return cluster_album(
            pipeline,
            sources,
            model,
            method or DEFAULT_CLUSTER_METHOD,
            galleries=searched,
            thumbnails=True,
            progress=progress,
        )

    def open_set_curves(self, model: str, size: int) -> tuple[list[dict], str]:
        """The DET curves measured on LFW for one gallery size (``bench identify --open-set``), and where they come from."""
        record = open_set_record(self.pipeline.spec(model), self.settings.home)
        sizes = sorted(int(n) for n in (record or {}).get("curves", {}))
        if not sizes:
            raise DataUnavailableError(
                f"No open-set curves were measured for {model} yet: they come from a run on LFW "
                '(docs/GALLERY.md, "Open-set identification").'
            )
        chosen = min(sizes, key=lambda n: abs(n - size))
        curves = [c for c in record["curves"][str(chosen)] if c["label"] in methods()]  # what Identify offers
        mated, strangers = curves[0]["mated"], curves[0]["nonmated"]
        whose = "shipped with facedemo" if Path(record["file"]) == OPEN_SET else "this machine's own calibration"
        note = (
            f"Measured on LFW with {chosen:,} people enrolled: {mated} searches of them and {strangers} of "
            f"strangers ({whose}, {record.get('date', 'undated')})."
        )
        return curves, note

    def open_set_comparison(self, size: int, models=None) -> tuple[list[dict], str]:
        """Every model's DET curves at one gallery size, for one figure (each curve with its ``model``):
        ``models``, else every available model with open-set curves; the others are named in the note."""
        wanted = [self.pipeline.spec(m).name for m in models or []] or [
            s.name for s in self.pipeline.models() if s.available
        ]
        curves, notes, missing = [], [], []
        for name in dict.fromkeys(wanted):
            try:
                found, note = self.open_set_curves(name, size)
            except DataUnavailableError:
                missing.append(name)
                continue
            curves += [{**c, "model": name} for c in found]
            notes.append(f"**{name}**: {note[0].lower()}{note[1:]}")
        if not curves:
            raise DataUnavailableError(
                f"No open-set curves were measured for {', '.join(wanted)} yet: they come from a run on LFW "
                '(docs/GALLERY.md, "Open-set identification").'
            )
        if missing:
            notes.append(f"Not measured yet (no curves to draw): {', '.join(missing)}.")
        return curves, "  \n".join(notes)

    # -- why the models decide as they do (#23) --------------------------------------------------------
    def explain(
        self, a: ImageInput, b: ImageInput, session: str | None, models=None, grid: int | None = None
    ) -> Explanation:
        """Where each model this visitor can use looks on a pair (``Pipeline.explain``); draw it with
        ``explorer.figures.occlusion_figure``."""
        return self.pipeline_for(session).explain(a, b, models, grid)

    def gallery_disagreements(self, session: str | None, models=None, hardest: int = DEFAULT_HARDEST) -> Disagreements:
        """The visitor's own gallery's pairs judged by every model it holds (``explorer.hard_pairs``); the
        models that arrived after an enrollment are filled in first."""
        from .explorer.hard_pairs import gallery_disagreements  # here: the explorer brings plotly with it

        gallery = self.gallery(session)
        self.ready([gallery], list(models) if models else self.available_models(session))
        return gallery_disagreements(gallery, models, hardest)

    def scoreboard(self, session: str | None, models=None, method: str | None = None, progress=None):
        """Every model scored on this visitor's own gallery (``explorer.scoreboard``; in public mode theirs
        only, never the shared one): the models that arrived after an enrollment are filled in first."""
        from .explorer.scoreboard import scoreboard  # here: the explorer brings plotly with it

        gallery = self.gallery(session)
        self.ready([gallery], list(models) if models else self.available_models(session), progress)
        return scoreboard(gallery, models, method or DEFAULT_METHOD, progress)

    def finetune(
        self, session: str | None, base, name: str, epochs: int, loss: str = "triplet", augment=None, progress=None
    ) -> FinetuneAnswer:
        """The dashboard's fine-tune (``training.finetune_gallery``) of the visitor's gallery, compared with its
        base on LFW's test pairs where they are here. In public mode it is bounded like every request
        (``params.MAX_REQUEST_CPU_S``): a condition's degraded faces are refused above half of it, with their
        cost; LFW is used only once its embeddings are kept (never for a condition: its degraded pairs are not
        kept); training stops once the rest of the bound is spent, keeping its best epoch so far."""
        gallery = self.gallery(session)
        general, notes, budget = self.lfw_test_pairs(), [], None
        if self.public:
            model = gallery.model_name(base)
            budget = params.MAX_REQUEST_CPU_S
            if augment:
                condition = Augment.parse(augment)
                # each training severity for three quarters of the faces, the held-out slice for the rest
                copies = len(condition.variants())
                budget -= params.condition_cost(gallery.store.count(model), copies, condition.condition)
            if general is not None:
                photos = [p for pair in read_pairs(*general) for p in (pair.a, pair.b)]
                todo = len(set(photos)) if augment else uncached(gallery.pipeline, photos, model)
                if todo:
                    general = None
                    notes.append(
                        f"LFW's test pairs were left out: through {model}{' degraded' if augment else ''} they are "
                        f"{todo:,} photo embeddings, about {todo * LFW_CPU_S_PER_PHOTO:.0f} s of CPU, more than one "
                        "request may take here; it is compared with its base on the held-out people only."
                    )
        result = finetune_gallery(
            gallery,
            base,
            name,
            epochs,
            loss=loss,
            augment=augment,
            progress=progress,
            general=general,
            cpu_budget_s=budget,
        )
        if result.stopped_by_budget():
            notes.append(
                f"Training stopped after {result.epochs_run} of {epochs} epochs: one request may take "
                f"{params.MAX_REQUEST_CPU_S:.0f} s of CPU here. The best epoch so far is kept."
            )
        return FinetuneAnswer(result, tuple(notes))

    def lfw_test_pairs(self) -> tuple[Path, Path] | None:
        """LFW View 1's test pairs and their photo folder (``lfw_root``, an attribute a test may point
        elsewhere), or None where they are not on this machine (a Space)."""
        path = Path(self.lfw_root) / ROBUSTNESS_PAIRS
        return (path, Path(self.lfw_root)) if path.is_file() else None

    @staticmethod
    def has_lfw(root: Path = SHARED_LFW, pairs_file: str = ROBUSTNESS_PAIRS) -> bool:
        """Whether LFW's pairs file is on this machine: what ``lfw_disagreements`` needs (a Space has none)."""
        return (Path(root) / pairs_file).is_file()

    def lfw_cost(self, root: Path = SHARED_LFW, pairs_file: str = ROBUSTNESS_PAIRS) -> tuple[int, float]:
        """What ``lfw_disagreements`` would compute before answering: photos to embed (summed over the models)
        and the CPU seconds that takes here; (0, 0.0) once every model's embeddings are cached."""
        path = Path(root) / pairs_file
        if not path.is_file():
            return 0, 0.0
        photos = [p for pair in read_pairs(path, root) for p in (pair.a, pair.b)]
        todo = sum(uncached(self.pipeline, photos, name) for name in chosen_models(self.pipeline)[0])
        return todo, todo * LFW_CPU_S_PER_PHOTO

    def lfw_disagreements(
        self,
        root: Path = SHARED_LFW,
        pairs_file: str = ROBUSTNESS_PAIRS,
        hardest: int = DEFAULT_HARDEST,
        progress_for=None,
    ) -> Disagreements:
        """Every available model on LFW View 1's test pairs (unseen by the calibration), through the
        evaluation cache: minutes on a CPU the first time, then a second or so. ``progress_for(label)``: a
        progress callback per model (the dashboard's bar through those minutes).

        The work is done once for everyone: two visitors asking at once wait for one computation (a lock per
        question), and the answer is kept for the next. In public mode a first computation that would cost more
        than ``params.MAX_REQUEST_CPU_S`` is refused with its cost: the operator fills the cache once."""
        path = Path(root) / pairs_file
        if not path.is_file():
            raise DataUnavailableError(f"LFW's {pairs_file} is not on this machine (looked in {root}).")
        key = ("lfw", str(path), int(hardest), tuple(chosen_models(self.pipeline)[0]))
        with self._lock:
            flight = self._flights.setdefault(key, threading.Lock())
        with flight:
            if key in self._answers:
                return self._answers[key]
            if self.public:
                photos, seconds = self.lfw_cost(root, pairs_file)
                if seconds > params.MAX_REQUEST_CPU_S:
                    raise DataUnavailableError(
                        f"LFW's pairs are not embedded on this server yet: {photos:,} photo embeddings, about "
                        f"{seconds:.0f} s of CPU, more than one request may take here ({params.MAX_REQUEST_CPU_S:.0f} s). "
                        "Judge your own gallery's pairs instead."
                    )
            pairs = read_pairs(path, root)
            result = compare_pairs(self.pipeline, pairs, hardest=hardest, source=pairs_file, progress_for=progress_for)
            self._answers[key] = result
            return result

    def robustness(self, root: Path = SHARED_LFW) -> RobustnessResult:
        """The robustness figures `eval robustness` saved for LFW View 1's test pairs, for every model that has
        them (nothing is computed here: a full run takes tens of minutes per model on a CPU)."""
        path = Path(root) / ROBUSTNESS_PAIRS
        pairs = read_pairs(path, root) if path.is_file() else None  # None: the shipped figures (no LFW here)
        result = cached_robustness(self.pipeline, pairs, pairs_file=ROBUSTNESS_PAIRS)
        if not result.models:
            raise DataUnavailableError(
                "No model here has robustness figures yet: they are measured on LFW, a few minutes per condition "
                "on a CPU (`eval robustness`, docs/EVALUATION.md)."
            )
        return result
