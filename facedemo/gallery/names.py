"""People's names: the one place a name is checked before it is stored."""

from __future__ import annotations

import unicodedata

from ..errors import InvalidNameError

MAX_NAME = 100
# Letters that draw nothing (Hangul fillers, the blank Braille pattern, the Mongolian vowel separator): a
# name made of them looks empty in every list, so it could not be told apart or picked to be deleted.
BLANK_LOOKING = frozenset("\u3164\u115f\u1160\uffa0\u2800\u180e")
# Categories that draw nothing on their own: combining marks, format characters, spaces.
_UNSEEN = frozenset(("Mn", "Me", "Cf", "Zs", "Zl", "Zp", "Cc"))


def has_surrogates(text: str) -> bool:
    """Whether ``text`` holds a lone UTF-16 surrogate: how bytes that are not UTF-8 arrive from argv and
    ``os.listdir`` (Python's surrogateescape), or what a JSON client sends as ``"\\ud800"``. Such text
    cannot be stored (Chroma refuses it), printed to a UTF-8 terminal, nor sent back as JSON."""
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def shown_text(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD: a photo or folder name that is not valid UTF-8,
    as the user can be shown it and a record can keep it (it labels a photo; it is never a key)."""
    return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text) if has_surrogates(text) else text


def visible(ch: str) -> bool:
    return not ch.isspace() and ch not in BLANK_LOOKING and unicodedata.category(ch) not in _UNSEEN


def validate_name(name: str) -> str:
    """Stripped, 1-100 characters, Unicode welcome, nothing that could act as a path or hide in a terminal,
    and at least one character that can be seen."""
    if not isinstance(name, str):
        raise InvalidNameError("A person's name must be text.")
    if has_surrogates(name):  # checked first: no sentence below may quote such a name
        raise InvalidNameError(
            "This name is not valid text: it holds bytes that are not UTF-8 (a folder or argument in another "
            "encoding?) or half of a UTF-16 pair; type the name again, or rename the folder."
        )
    name = unicodedata.normalize("NFC", name.strip())
    if not name:
        raise InvalidNameError("A person's name cannot be empty.")
    if len(name) > MAX_NAME:
        raise InvalidNameError(f"A person's name can have at most {MAX_NAME} characters; this one has {len(name)}.")
    if "/" in name or "\\" in name or ".." in name or name.startswith("."):
        raise InvalidNameError(f"'{name}' cannot be a name: it must not contain '/', '\\' or '..', nor start with '.'.")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise InvalidNameError("A person's name cannot contain control or invisible formatting characters.")
    if not any(visible(ch) for ch in name):
        raise InvalidNameError(
            "A person's name needs at least one visible character; this one has only spaces, combining marks or "
            "letters that draw nothing (such as U+3164 HANGUL FILLER or U+2800 BRAILLE PATTERN BLANK)."
        )
    return name


def box_json(box) -> list[float]:
    """A face box as the JSON of every result shows it."""
    return [round(float(v), 1) for v in box]


def name_key(name: str) -> str:
    """Two names that differ only in case (or in Unicode compatibility forms) are the same person's."""
    return unicodedata.normalize("NFKC", name).casefold()
