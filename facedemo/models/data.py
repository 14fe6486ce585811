"""Where each model's measured data lives: one place for every per-model file. Each kind ships with facedemo
in ``facedemo/data`` (measured on LFW by ``python -m facedemo calibrate --all --ship``), and a user's own
measurements go to the same name in ``$FACEDEMO_HOME``, which wins where both hold a model's record."""

from __future__ import annotations

from pathlib import Path

SHIPPED = Path(__file__).resolve().parent.parent / "data"
KINDS = {
    "thresholds": "thresholds.json",  # verification and 1:N thresholds, by model (models/thresholds.py)
    "distributions": "distributions.json",  # same- and different-person distance histograms (models/distributions.py)
    "openset": "openset.json",  # open-set impostor tails and DET curves (evaluation/openset.py)
    "strangers": "strangers",  # MODEL.npz: the classifier's "none of them" vectors (gallery/classifier.py)
    "robustness": "robustness",  # MODEL-DIGEST.json: figures under each degradation (evaluation/robustness.py)
}


def shipped(kind: str) -> Path:
    """The file (or folder) of ``kind`` that ships with facedemo."""
    return SHIPPED / KINDS[kind]


def mine(home: Path | str, kind: str) -> Path:
    """The user's own file (or folder) of ``kind`` under ``home``."""
    return Path(home) / KINDS[kind]


def places(home: Path | str | None, kind: str) -> tuple[Path, ...]:
    """Where a model's record of ``kind`` is looked for, in order: the user's own, then the shipped one."""
    return ((mine(home, kind),) if home else ()) + (shipped(kind),)
