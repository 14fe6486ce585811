"""The comparison tables as a person reads them: one row per model (or face), each a wrapping line of
labelled cells, so that at 400 px a row stacks into two or three lines instead of a table wider than the
window; the verdict and the common score come first in every row. Plain functions of the core's results
(no gradio), so tests can read what the page shows."""

from __future__ import annotations

import html

SAME, DIFFERENT, GREY = "#2e7d32", "#c62828", "#888"

SCORE_SENTENCE = (
    "<b>Score</b>: how many of LFW's different-person pairs the model itself put at least this close (about "
    "1,100 pairs of strangers, measured once per model), so it means the same for every model whatever its "
    "distances: <i>1 in 1,000</i> is rarer, and so more surely the same person, than <i>1 in 20</i>."
)
IDENTIFY_SCORE_NOTE = (
    " Here the distance is to a person's mean face (or closest photo), which comes closer than one photo to "
    "another, so read it as an upper bound on how rare the match is."
)


def score_text(score) -> str:
    """A common score as the page shows it; a model without LFW distributions says so."""
    if score is None:
        return "<span style='opacity:.7'>not calibrated on LFW</span>"
    return f"{html.escape(score.text)}"


def margin_text(margin: float | None, sides: tuple[str, str] = ("same-person side", "different-people side")) -> str:
    """Distance minus threshold, signed, with the side it puts the face on in words (``sides``: the words for
    at-or-under and over; Identify's are "named" and "unknown")."""
    if margin is None:
        return "<span style='opacity:.7'>no distance threshold</span>"
    side = sides[0] if margin <= 0 else sides[1]
    return f"{margin:+.3f} ({'under' if margin <= 0 else 'over'} the threshold: {side})"


IDENTIFY_SIDES = ("named side", "unknown side")


def ms_text(ms: float | None) -> str:
    return "–" if ms is None else f"{ms:.0f} ms"


def cell(label: str, value: str, basis: str = "9em", cls: str = "") -> str:
    """One labelled value of a row; rows wrap between cells, never inside the window's width."""
    return (
        f"<div class='cmp-cell {cls}' style='flex:1 1 {basis};min-width:0;overflow-wrap:anywhere'>"
        f"<div style='font-size:.75em;opacity:.65'>{html.escape(label)}</div><div>{value}</div></div>"
    )


def row(cells: list[str], cls: str = "cmp-row", style: str = "") -> str:
    return (
        f"<div class='{cls}' style='display:flex;flex-wrap:wrap;gap:4px 16px;padding:6px 0;"
        f"border-bottom:1px solid rgba(128,128,128,.3);{style}'>{''.join(cells)}</div>"
    )


def box(body: str, cls: str = "cmp-table") -> str:
    return f"<div class='{cls}' style='padding:8px 14px;max-width:100%;overflow-wrap:anywhere'>{body}</div>"


def verdict_word(same: bool) -> str:
    color, word = (SAME, "same person") if same else (DIFFERENT, "different people")
    return f"<span style='color:{color};font-weight:700'>{word}</span>"


def score_sentence(identify: bool = False) -> str:
    return f"<div class='cmp-explain' style='opacity:.8;margin-top:6px'>{SCORE_SENTENCE}{IDENTIFY_SCORE_NOTE if identify else ''}</div>"


def split_line(text: str | None) -> str:
    if not text:
        return ""
    return (
        f"<div class='cmp-split' style='border-left:6px solid #ef6c00;padding:4px 10px;margin-bottom:6px;"
        f"font-weight:700'>{html.escape(text)}</div>"
    )


# -- Verify: Compare every model -----------------------------------------------------------------------
def verify_rows(comparison) -> str:
    """A row per model: verdict, common score, distance against threshold, time per face; the split line
    first when the verdicts differ."""
    rows = [
        row(
            [
                cell("model", f"<b>{html.escape(r.model)}</b>", "8em"),
                cell("verdict", verdict_word(r.same_person), "7em", "cmp-verdict"),
                cell("score: stranger pairs this close", score_text(r.score), "8em", "cmp-score"),
                cell(
                    f"distance {r.distance:.3f} − threshold {r.threshold:.3f}",
                    margin_text(r.margin),
                    "12em",
                    "cmp-margin",
                ),
                cell("time per face", ms_text(r.ms_per_face), "5em", "cmp-ms"),
            ]
        )
        for r in comparison.results
    ]
    return split_line(comparison.split) + "".join(rows)


# -- Identify: one model's table, and every model's ---------------------------------------------------
def name_text(match) -> str:
    """The name, or "unknown" with the nearest person and distance greyed: how close "unknown" was."""
    if match.name is not None:
        return f"<b>{html.escape(match.who)}</b> <span style='opacity:.8'>{match.distance:.3f}</span>"
    nearest = match.nearest
    if nearest is None:
        return "unknown"
    return (
        f"unknown <span class='cmp-nearest' style='color:{GREY}'>(nearest: {html.escape(nearest.who)} "
        f"{nearest.distance:.3f})</span>"
    )


def face_cells(match) -> list[str]:
    measured = match.name is not None or match.nearest is not None  # else nobody to be near: nothing to score
    return [
        cell("name", name_text(match), "9em", "cmp-name"),
        cell("score: stranger pairs this close", score_text(match.score) if measured else "–", "8em", "cmp-score"),
        cell(
            "distance − threshold", margin_text(match.margin, IDENTIFY_SIDES) if measured else "–", "12em", "cmp-margin"
        ),
    ]


def identify_table(result) -> str:
    """One model's answer, a row per face: name (an unknown face's nearest person greyed), score, margin,
    the top candidates; the model's time per face above it."""
    head = f"<div style='opacity:.8'>{html.escape(result.model)} · threshold {result.threshold:.3f}"
    head += f" · {ms_text(result.ms_per_face)} per face</div>" if result.ms_per_face is not None else "</div>"
    rows = [
        row(
            [
                cell("#", str(i), "2em"),
                *face_cells(m),
                cell(
                    "top candidates", html.escape(", ".join(f"{c.who} {c.distance:.2f}" for c in m.candidates)), "12em"
                ),
            ]
        )
        for i, m in enumerate(result.faces, 1)
    ]
    return box(head + "".join(rows) + score_sentence(identify=True), "cmp-table identify-rows")


def identify_comparison(comparison) -> str:
    """Every model's answer, a block per face, the faces the models name differently first and marked."""
    split = set(comparison.disagreements)
    if split:
        faces = ", ".join(str(i) for i in sorted(split))
        summary = split_line(f"The models disagree on face{'s' if len(split) > 1 else ''} {faces}.")
    else:
        summary = "<div style='margin-bottom:6px'>The models agree on every face.</div>"
    per_model = "".join(
        f"<div style='opacity:.8'>{html.escape(r.model)}: {sum(f.name is not None for f in r.faces)} of "
        f"{len(r.faces)} faces named · {ms_text(r.ms_per_face)} per face · threshold {r.threshold:.3f}</div>"
        for r in comparison.results
    )
    count = len(comparison.results[0].faces)
    blocks = []
    for i in sorted(range(1, count + 1), key=lambda i: (i not in split, i)):
        mark = " <span class='cmp-disagree' style='color:#ef6c00'>≠ the models disagree</span>" if i in split else ""
        rows = [
            row([cell("model", f"<b>{html.escape(r.model)}</b>", "8em"), *face_cells(r.faces[i - 1])])
            for r in comparison.results
        ]
        style = "border-left:4px solid #ef6c00;padding-left:8px;" if i in split else "padding-left:12px;"
        blocks.append(
            f"<div class='cmp-face' data-face='{i}' style='margin-top:8px;{style}'>"
            f"<div style='font-weight:700'>Face {i}{mark}</div>{''.join(rows)}</div>"
        )
    return box(summary + per_model + "".join(blocks) + score_sentence(identify=True), "cmp-table identify-compare")
