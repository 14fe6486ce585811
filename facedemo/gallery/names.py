"""People's names: the one place a name is checked before it is stored."""

from __future__ import annotations

import unicodedata

from ..errors import InvalidNameError

MAX_NAME = 100


def validate_name(name: str) -> str:
    """Stripped, 1-100 characters, Unicode welcome, nothing that could act as a path or hide in a terminal."""
    if not isinstance(name, str):
        raise InvalidNameError("A person's name must be text.")
    name = unicodedata.normalize("NFC", name.strip())
    if not name:
        raise InvalidNameError("A person's name cannot be empty.")
    if len(name) > MAX_NAME:
        raise InvalidNameError(f"A person's name can have at most {MAX_NAME} characters; this one has {len(name)}.")
    if "/" in name or "\\" in name or ".." in name or name.startswith("."):
        raise InvalidNameError(f"'{name}' cannot be a name: it must not contain '/', '\\' or '..', nor start with '.'.")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise InvalidNameError("A person's name cannot contain control or invisible formatting characters.")
    return name


def box_json(box) -> list[float]:
    """A face box as the JSON of every result shows it."""
    return [round(float(v), 1) for v in box]
