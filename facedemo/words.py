"""Counting things in a sentence a person reads: "1 face", "2 faces", "1 person", "3 people"."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun``, plural unless the count is one (``plural``: an irregular plural)."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def faces_of_people(faces: int, people: int) -> str:
    """ "3 faces of 1 person": how the maps, the histograms and the scoreboard say what they show."""
    return f"{counted(faces, 'face')} of {counted(people, 'person', 'people')}"


def duration(seconds: float) -> str:
    """A time to live as a person says it: "1 hour", "90 minutes", "45 seconds", "2 days"."""
    seconds = int(round(seconds))
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            return counted(seconds // size, unit)
    if seconds >= 120:
        return counted(round(seconds / 60), "minute")
    return counted(seconds, "second")
