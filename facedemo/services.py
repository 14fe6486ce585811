"""What the dashboard (and anything else long-running) needs, built once at start-up: the pipeline,
the gallery store, and the public-demo rule that every visitor gets a private gallery.

No gradio here: the UI calls these functions and only renders what they return.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from .errors import FaceDemoError, GalleryError, NoFaceError
from .gallery import Candidate, ChromaStore, FaceMatch, Gallery, IdentifyResult, open_store
from .models.thresholds import open_set_record
from .pipeline import Pipeline
from .settings import Settings, default_gallery_dir
from .vision.images import ImageInput


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

    @classmethod
    def from_env(cls, **overrides) -> "AppConfig":
        public_env = os.environ.get("FACEDEMO_PUBLIC")
        public = on_spaces() if public_env in (None, "") else public_env.strip().lower() in ("1", "true", "yes", "on")
        port = os.environ.get("CHROMA_PORT")
        config = cls(
            gallery_dir=default_gallery_dir(),
            public=public,
            chroma_host=os.environ.get("CHROMA_HOST") or None,
            chroma_port=int(port) if port else None,
        )
        return replace(config, **{k: v for k, v in overrides.items() if v is not None})


class Services:
    def __init__(self, settings: Settings | None = None, config: AppConfig | None = None):
        self.settings = settings or Settings.from_env()
        self.config = config or AppConfig.from_env()
        self.pipeline = Pipeline(self.settings)
        self._store: ChromaStore | None = None
        self._lock = threading.Lock()

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

    def shared(self) -> Gallery:
        return Gallery(self.pipeline, self.store)

    def gallery(self, session: str | None) -> Gallery:
        """The gallery a visitor writes to and manages: their own in public mode, else the shared one."""
        if not self.config.public:
            return self.shared()
        if not session:
            raise GalleryError("This public demo keeps a private gallery per browser session, and none was found; reload the page.")
        return Gallery(self.pipeline, self.store.with_namespace(self.namespace(session)))

    def forget(self, session: str | None) -> None:
        """A public-mode visitor left: their faces are deleted, embeddings and thumbnails alike."""
        if self.config.public and session:
            self.gallery(session).clear()

    # -- identification across the visitor's gallery and (read-only) the shared one ----------------
    def identify(self, image: ImageInput, session: str | None, model: str | None = None, top_k: int = 3,
                 method: str | None = None) -> tuple[Image.Image, IdentifyResult]:
        model = self.pipeline.spec(model).name
        galleries = [self.gallery(session)]
        if self.config.public:
            galleries.append(self.shared())
        # An empty gallery still answers: every face unknown, with a note, so the faces can be named from the result.
        galleries = [g for g in galleries if g.store.count(model) > 0] or galleries[:1]
        picture, faces = self.pipeline.analyze(image, model)
        if not faces:
            raise NoFaceError("The image has no face that could be detected; try a clearer, front-facing photo.")
        kwargs = {"method": method} if method else {}
        # Strangers are compared with everyone searched, so the threshold follows the people of every gallery.
        people = sum(g.people_count(model) for g in galleries)
        results = [g.match(faces, model, top_k, people=people, **kwargs) for g in galleries]
        return picture, results[0] if len(results) == 1 else _merge(results, top_k)

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


def _merge(results: list[IdentifyResult], top_k: int) -> IdentifyResult:
    first = results[0]
    faces = []
    for matches in zip(*(r.faces for r in results)):
        best: dict[str, float] = {}
        for match in matches:
            for c in match.candidates:
                best[c.name] = min(best.get(c.name, c.distance), c.distance)
        ranked = [Candidate(n, d) for n, d in sorted(best.items(), key=lambda kv: kv[1])][:top_k]
        known = [m for m in matches if m.name is not None]
        winner = min(known, key=lambda m: m.distance) if known else None
        faces.append(FaceMatch(matches[0].face, winner.name if winner else None, winner.distance if winner else None, ranked))
    return IdentifyResult(first.model, first.method, first.threshold, faces, sum(r.people for r in results), first.note, first.expected_fpir)
