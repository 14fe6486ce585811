"""The Explorer's "Where the models disagree", rendered: the note in words, the pairs as inline thumbnails
(never a file URL: a visitor's gallery thumbnails are theirs, and LFW's folder is not one gradio may serve),
and the JSON without any file path of this server."""

from __future__ import annotations

import html
from pathlib import Path

from ..explorer.figures import pair_caption
from .common import inline_tiles, page_json, shown_reason

DISAGREEMENT_SOURCES = {"gallery": "the gallery's own people", "lfw": "LFW View 1 test pairs"}
NO_LFW = (
    "LFW is not on this machine, so only the gallery's own people can be compared here "
    "(LFW View 1's test pairs are offered where the dataset is installed)."
)


def gallery_empty_state(people, public: bool) -> str | None:
    """A sentence saying what to enroll when the gallery has no pairs of both kinds to judge, else None."""
    whose = "your private gallery" if public else "the gallery"
    two = "Enroll at least two people, each with two photos or more, on the Gallery tab"
    if not people:
        return f"Nobody is enrolled in {whose} yet. {two}: every pair of their faces is then judged by every model."
    if len(people) == 1:
        return (
            f"Only **{html.escape(people[0].name)}** is enrolled in {whose}: enroll a second person (two photos or "
            "more) on the Gallery tab, so that there are pairs of different people to judge as well."
        )
    if all(p.images < 2 for p in people):
        return (
            f"Nobody in {whose} has two photos yet, so there are no pairs of the same person to judge: add a "
            "second photo of someone on the Gallery tab."
        )
    return None


def disagreement_note(result) -> str:
    """Each model's accuracy at its own threshold and its mistakes, and how often the models disagree, in words."""
    source = DISAGREEMENT_SOURCES["gallery" if result.source == "gallery" else "lfw"]
    same = sum(p.pair.same for p in result.judged)
    lines = [
        f"**{result.pairs}** pairs of {source}: {same} of the same person, {result.pairs - same} of different people."
    ]
    split = len(result.disagreements)
    for m in result.models:
        h = result.hardest[m]
        line = (
            f"- **{html.escape(m)}** is right on **{result.accuracy[m]:.1%}** of them at its threshold "
            f"{result.thresholds[m]:.3f}: {h.false_accept_count} pair(s) of different people taken for one person, "
            f"{h.false_reject_count} pair(s) of one person told apart"
        )
        lines.append(
            line + (f"; right on {result.right_on_disagreements(m)} of the {split} disagreements." if split else ".")
        )
    lines.append("")  # a paragraph of its own, not the last model's line continued
    if len(result.models) < 2:
        lines.append("Only one model holds these faces, so there is no other verdict to compare with.")
    elif split:
        lines.append(f"The models' verdicts differ on **{split}** pair(s), shown below (the most decided split first).")
    else:
        lines.append("The models agree on every pair.")
    if result.unavailable:
        lines += ["", "Not compared:"]
        lines += [f"- {html.escape(m)}: {html.escape(shown_reason(r))}" for m, r in result.unavailable.items()]
    return "\n".join(lines)


def pair_rows(title: str, pairs, models) -> str:
    """One row per pair: both faces inline (never a file URL), the label and every model's distance and verdict."""
    rows = []
    for number, p in enumerate(pairs, start=1):
        faces = [
            (image, f"{side}. {name.replace('_', ' ')}")
            for side, image, name in zip("AB", p.pair.images, p.pair.names)
            if image
        ]
        rows.append(
            "<div style='display:flex;align-items:center;gap:12px;margin-bottom:6px'>"
            # a fixed width holds the two faces side by side whatever grid inline_tiles lays out
            f"<div style='flex:0 0 240px'>{inline_tiles(faces, 'No picture.')}</div>"
            f"<div>{number}. {html.escape(pair_caption(p, models))}</div></div>"
        )
    return f"<h4>{html.escape(title)}</h4>" + "".join(rows) if rows else ""


def disagreement_tiles(result, hardest: int) -> str:
    parts = [pair_rows("Where the verdicts differ", result.disagreements[:hardest], result.models)]
    for m in result.models:
        h = result.hardest[m]
        parts.append(
            pair_rows(f"{m}: different people it took for one (closest first)", h.false_accepts, result.models)
        )
        parts.append(pair_rows(f"{m}: one person it told apart (farthest first)", h.false_rejects, result.models))
    return "".join(parts) or "<p>No model made a mistake on these pairs, and they all agree.</p>"


def disagreement_json(result) -> dict:
    """The result's JSON for the page: no file path of this server (a gallery's thumbnails, LFW's folder):
    LFW's photos are named as person/file, gallery faces by their ids."""
    record = result.to_json()

    def short(name: str) -> str:
        return name if result.source == "gallery" else f"{Path(name).parent.name}/{Path(name).name}"

    def pair(p: dict) -> dict:
        p = {k: v for k, v in p.items() if k != "images"}
        return {**p, "a": short(p["a"]), "b": short(p["b"])}

    record["source"] = Path(record["source"]).name  # a pairs file's name, not where it lies
    record["disagreements"] = [pair(p) for p in record["disagreements"]]
    for h in record["hardest"].values():
        h["false_accepts"] = [pair(p) for p in h["false_accepts"]]
        h["false_rejects"] = [pair(p) for p in h["false_rejects"]]
    return page_json(record)
