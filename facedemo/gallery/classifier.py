"""The classifier identification method: a logistic regression over the gallery's embeddings (one class
per person) with an explicit "none of them" class trained on faces of strangers, as the write-ups that
put an SVM or softmax on top of FaceNet embeddings do. Retrained on demand, cached until the gallery
changes (its records' ids and names are the cache key).

Strangers come from ``Settings.strangers`` (LFW-style folders: one photo of each person who has a single
photo), embedded once through the evaluation cache in ``$FACEDEMO_HOME``. Without that setting, the
built-in models use the strangers' vectors shipped in ``facedemo/data/strangers/<model>.npz`` (the first
300 single-photo LFW people, embedded by ``save_strangers``; vectors only, no photos), so the method works
on a machine without LFW and its first use takes seconds; a model with none falls back to
../shared/faces/lfw.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..errors import DataUnavailableError, GalleryError
from ..evaluation.embed import embed_images, portable_key
from ..models import data
from ..settings import SHARED_LFW
from ..vectors import l2_normalise
from ..vision.images import identity_folders, list_images

NONE = ""  # the "none of them" class (a person's name is never empty)
STRANGERS = 300  # stranger photos in the "none of them" class
C = 10.0  # inverse regularisation: the embeddings are already good features, so fit them closely


@dataclass(frozen=True)
class GalleryClassifier:
    people: tuple[str, ...]
    model: object  # a fitted scikit-learn pipeline

    def probabilities(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(per-person probabilities, shape (faces, people) in ``people`` order; the "none of them" probability)."""
        proba = self.model.predict_proba(l2_normalise(vectors))
        classes = list(self.model.classes_)
        none = proba[:, classes.index(NONE)]
        order = [classes.index(p) for p in self.people]
        return proba[:, order], none


def train(vectors: np.ndarray, people: Sequence[str], strangers: np.ndarray, c: float = C) -> GalleryClassifier:
    """Fit the classifier: every enrolled face under its person's name, every stranger as "none of them"."""
    if len(strangers) == 0:
        raise DataUnavailableError(
            "The classifier method needs faces of strangers for its 'none of them' class, and none were given."
        )
    x = l2_normalise(np.concatenate([vectors, strangers]))
    y = np.array(list(people) + [NONE] * len(strangers), dtype=object)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, class_weight="balanced"))
    model.fit(x, y)
    return GalleryClassifier(tuple(sorted(set(people))), model)


def fingerprint(ids: Sequence[str], names: Sequence[str]) -> str:
    """What the classifier was trained on: every face's id and person."""
    digest = hashlib.sha256()
    for i, name in sorted(zip(ids, names)):
        digest.update(f"{i}\t{name}\n".encode())
    return digest.hexdigest()


def stranger_photos(folder: Path, count: int = STRANGERS) -> list[Path]:
    """One photo each of the people in ``folder`` who have exactly one (LFW-style), else its photos."""
    folders = identity_folders(folder)
    photos = [files[0] for _, files in folders if len(files) == 1] if folders else list_images(folder)
    return photos[:count]


class Classifiers:
    """Trained classifiers, per gallery namespace and model, kept until the gallery changes. One per
    store (``ChromaStore.classifiers``), shared by its namespaces; never a module-level global."""

    def __init__(self):
        self._lock = threading.Lock()
        self._trained: dict[tuple[str | None, str], tuple[str, GalleryClassifier]] = {}
        self._strangers: dict[tuple[str, bool], np.ndarray] = {}  # (model, flip) -> the strangers' vectors

    def forget(self, namespace: str | None) -> None:
        """Drop the classifiers trained on one gallery (its people changed, or it is gone)."""
        with self._lock:
            for key in [k for k in self._trained if k[0] == namespace]:
                del self._trained[key]

    def get(self, gallery, model: str, strangers: np.ndarray | None = None) -> GalleryClassifier:
        vectors, names, ids, _ = gallery.embeddings(model)
        if not ids:
            raise GalleryError(f"Nobody is enrolled for model '{model}', so there is nothing to classify against.")
        key = (gallery.store.namespace, model)
        stamp = fingerprint(ids, names) + (
            "" if strangers is None else hashlib.sha256(np.ascontiguousarray(strangers).tobytes()).hexdigest()
        )
        with self._lock:
            cached = self._trained.get(key)
            if cached and cached[0] == stamp:
                return cached[1]
            if strangers is None:  # embedded the way the gallery's faces were
                strangers = self.strangers(gallery.pipeline, model, gallery.flip(model))
            trained = train(vectors, names, strangers)
            self._trained[key] = (stamp, trained)
            return trained

    def strangers(self, pipeline, model: str, flip: bool | None = None) -> np.ndarray:
        flip = pipeline.flip(model) if flip is None else flip
        if (model, flip) not in self._strangers and pipeline.settings.strangers is None:
            shipped = shipped_strangers(pipeline, model, flip)
            if shipped is not None:
                self._strangers[(model, flip)] = shipped
        if (model, flip) not in self._strangers:
            folder = pipeline.settings.strangers or SHARED_LFW
            photos = stranger_photos(folder) if Path(folder).is_dir() else []
            if not photos:
                raise DataUnavailableError(
                    f"The classifier method needs photos of strangers for its 'none of them' class, and '{folder}' has none: "
                    "set FACEDEMO_STRANGERS to a folder of face photos of people who are not in the gallery (e.g. LFW)."
                )
            embedded = embed_images(pipeline, photos, model, flip=flip)
            self._strangers[(model, flip)] = np.stack(
                [embedded.vectors[p] for p in photos if p not in embedded.failures]
            )
        return self._strangers[(model, flip)]


SHIPPED_STRANGERS = data.shipped("strangers")


def strangers_key(pipeline, model: str, flip: bool) -> str:
    spec = pipeline.spec(model)
    return portable_key(pipeline, spec, pipeline.alignment(spec), flip)


def shipped_strangers(pipeline, model: str, flip: bool) -> np.ndarray | None:
    """The strangers' vectors of a model saved by ``save_strangers`` (``$FACEDEMO_HOME/strangers/``, else the
    shipped ones), when they were embedded exactly as this pipeline embeds (same weights' content, alignment,
    detector and flip: ``portable_key``), else None."""
    key = strangers_key(pipeline, model, flip)
    for folder in data.places(pipeline.settings.home, "strangers"):  # your own run wins
        path = folder / f"{model}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as saved:
                if str(saved["key"]) == key:
                    return saved["vectors"].astype(np.float32)
    return None


def save_strangers(pipeline, model: str, folder: str | Path = SHARED_LFW, into: str | Path = SHIPPED_STRANGERS) -> Path:
    """Embed the strangers of ``folder`` (see ``stranger_photos``) with ``model`` as the classifier would,
    and write their vectors (float16, with the embedding key they are valid for) to ``<into>/<model>.npz``."""
    from ..files import atomic_path

    flip = pipeline.flip(model)
    photos = stranger_photos(folder) if Path(folder).is_dir() else []
    if not photos:
        raise DataUnavailableError(f"'{folder}' has no single-photo people to use as strangers.")
    embedded = embed_images(pipeline, photos, model, flip=flip)
    vectors = np.stack([embedded.vectors[p] for p in photos if p not in embedded.failures]).astype(np.float16)
    target = Path(into) / f"{model}.npz"
    with atomic_path(target, suffix=".npz") as tmp:
        np.savez_compressed(tmp, vectors=vectors, key=np.array(strangers_key(pipeline, model, flip)))
    return target
