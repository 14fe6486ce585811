"""Labelled pairs: LFW's ``pairs.txt`` files (View 1 and View 2) or any CSV ``a,b,same``, with their folds."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FaceDemoError


class PairsFileError(FaceDemoError):
    """A pairs file that cannot be read or names photos that do not exist."""


@dataclass(frozen=True)
class Pair:
    a: Path
    b: Path
    same: bool
    fold: int  # 0-based


# -- reading pairs -----------------------------------------------------------------------------
# LFW's pairs files as a person names them (the page shows no file name; the CLI's own CSV keeps its name).
PAIRS_NAMES = {
    "pairsDevTest.txt": "LFW View 1 test pairs",
    "pairsDevTrain.txt": "LFW View 1 training pairs",
    "pairs.txt": "LFW View 2 pairs",
    "gallery": "the gallery's own pairs",
}


def describe_pairs(source: str | Path | None) -> str:
    """What a set of pairs is, in words: LFW's files by what they are, any other file by its name."""
    name = Path(str(source or "")).name
    return PAIRS_NAMES.get(name, name or "LFW")


def lfw_image(root: Path, name: str, number: str, where: str) -> Path:
    try:
        index = int(number)
    except ValueError:
        raise PairsFileError(f"{where}: '{number}' should be an image number.") from None
    return Path(root) / name / f"{name}_{index:04d}.jpg"


def read_lfw_pairs(path: Path, root: Path, folds: int | None = None) -> list[Pair]:
    """LFW's pairs format: View 2's ``pairs.txt`` starts with ``folds pairs_per_class`` (10 300); View 1's
    ``pairsDevTrain.txt``/``pairsDevTest.txt`` with one number (one fold). Each fold lists its same-person
    lines ``name n1 n2``, then its different-person lines ``name1 n1 name2 n2``. ``folds`` keeps the
    first N folds only."""
    path = Path(path)
    lines = _read_lines(path)
    header = lines[0].split()
    try:
        counts = [int(v) for v in header]
    except ValueError:
        counts = []
    if len(counts) not in (1, 2) or min(counts) < 1:
        raise PairsFileError(
            f"The first line of {path.name} should be 'folds pairs-per-class' (View 2, e.g. '10 300') or "
            f"'pairs-per-class' (View 1), not '{lines[0].strip()}'."
        )
    n_folds, per_class = (1, counts[0]) if len(counts) == 1 else counts
    body = [line for line in lines[1:] if line.strip()]
    if len(body) != n_folds * 2 * per_class:
        raise PairsFileError(
            f"{path.name} promises {n_folds} fold(s) of {per_class} same-person and {per_class} "
            f"different-person pairs ({n_folds * 2 * per_class} lines) but holds {len(body)} pair lines."
        )
    if folds is not None:
        if not 1 <= folds <= n_folds:
            raise PairsFileError(
                f"{path.name} has {n_folds} fold(s); --folds must be between 1 and {n_folds}, not {folds}."
            )
        body = body[: folds * 2 * per_class]
    pairs = []
    for number, line in enumerate(body, start=2):
        fields = line.split()
        where = f"Line {number} of {path.name}"
        if len(fields) == 3:
            name, i, j = fields
            pair = Pair(lfw_image(root, name, i, where), lfw_image(root, name, j, where), True, 0)
        elif len(fields) == 4:
            n1, i, n2, j = fields
            pair = Pair(lfw_image(root, n1, i, where), lfw_image(root, n2, j, where), False, 0)
        else:
            raise PairsFileError(f"{where} should be 'name n1 n2' or 'name1 n1 name2 n2', not '{line.strip()}'.")
        pairs.append(Pair(pair.a, pair.b, pair.same, (number - 2) // (2 * per_class)))
    return pairs


TRUE = {"1", "true", "yes"}
FALSE = {"0", "false", "no"}


def read_csv_pairs(path: Path, root: Path, max_folds: int = 10) -> list[Pair]:
    """A CSV with a header row holding ``a,b,same`` (and optionally ``fold``); ``a`` and ``b`` are image paths
    relative to ``root``; ``same`` is 1/0, true/false or yes/no. Without a ``fold`` column the pairs are split
    into up to ``max_folds`` stratified folds (scikit-learn's StratifiedKFold, in file order)."""
    path = Path(path)
    reader = csv.DictReader(_read_lines(path))
    try:
        return _csv_pairs(path, reader, root, max_folds)
    except csv.Error as exc:  # a cell over csv's field limit (128 KiB), a NUL byte, a quote left open...
        raise PairsFileError(f"{path.name} cannot be read as CSV after line {reader.line_num} ({exc}).") from None


def _csv_pairs(path: Path, reader: csv.DictReader, root: Path, max_folds: int) -> list[Pair]:
    columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
    if not {"a", "b", "same"} <= set(columns):
        found = ", ".join(c for c in columns if c) or "nothing"
        raise PairsFileError(f"{path.name} needs a header row with the columns a, b, same (found: {found}).")
    pairs, has_fold = [], "fold" in columns
    for number, row in enumerate(reader, start=2):
        a = (row.get(columns["a"]) or "").strip()
        b = (row.get(columns["b"]) or "").strip()
        flag = (row.get(columns["same"]) or "").strip().lower()
        if not a and not b and not flag:
            continue  # a blank line
        if not a or not b:
            raise PairsFileError(f"Row {number} of {path.name} needs two image paths in columns a and b.")
        if flag not in TRUE | FALSE:
            raise PairsFileError(
                f"Row {number} of {path.name}: 'same' must be 1/0, true/false or yes/no, not '{flag}'."
            )
        fold = 0
        if has_fold:
            try:
                fold = int((row.get(columns["fold"]) or "").strip())
            except ValueError:
                raise PairsFileError(f"Row {number} of {path.name}: 'fold' must be a whole number.") from None
        pairs.append(Pair(Path(root) / a, Path(root) / b, flag in TRUE, fold))
    if not pairs:
        raise PairsFileError(f"{path.name} has a header but no pairs.")
    return pairs if has_fold else _stratified_folds(pairs, max_folds)


def _stratified_folds(pairs: list[Pair], max_folds: int) -> list[Pair]:
    from sklearn.model_selection import StratifiedKFold

    labels = np.array([p.same for p in pairs])
    k = min(max_folds, int(labels.sum()), int((~labels).sum()))
    if k < 2:
        return pairs
    fold_of = np.zeros(len(pairs), dtype=int)
    for fold, (_, test) in enumerate(StratifiedKFold(n_splits=k).split(np.zeros(len(pairs)), labels)):
        fold_of[test] = fold
    return [Pair(p.a, p.b, p.same, int(f)) for p, f in zip(pairs, fold_of)]


def read_pairs(path: Path, root: Path, folds: int | None = None) -> list[Pair]:
    """A ``.csv`` file is read as ``a,b,same``; anything else as LFW's pairs format."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        if folds is not None:
            raise PairsFileError("--folds applies to LFW pairs files, not to a CSV (add a 'fold' column instead).")
        return read_csv_pairs(path, root)
    return read_lfw_pairs(path, root, folds)


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise PairsFileError(f"The pairs file {path} does not exist.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PairsFileError(f"The pairs file {path} cannot be read as text ({exc.__class__.__name__}).") from None
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise PairsFileError(f"The pairs file {path} is empty.")
    return lines
