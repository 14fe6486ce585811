"""The tabs' handlers called as plain functions, without a browser or a server: the real Services, real photos,
real MTCNN and Chroma. What the page shows is what these return; test_app*.py and test_browser*.py drive the
same functions through gradio."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import gradio as gr
import pytest
from gradio import helpers

from facedemo.errors import InvalidParameterError
from facedemo.services import Services
from facedemo.ui import build_app, gallery_tab, identify_tab, verify_tab
from facedemo.ui.common import bound

EXAMPLES = Path(__file__).resolve().parent.parent / "facedemo" / "ui" / "examples"
ASTRONAUT, ASTRONAUT_2, HOPPER = (str(EXAMPLES / n) for n in ("astronaut.jpg", "astronaut_2.jpg", "hopper.jpg"))


@pytest.fixture(scope="module")
def services(settings, tmp_path_factory) -> Services:
    return Services(replace(settings, gallery_dir=tmp_path_factory.mktemp("gallery")))


def listed_names(services: Services) -> list[str]:
    tiles, picker, table, people = gallery_tab.list_people(services)
    assert picker["choices"] == [p["name"] for p in people] and [row[0] for row in table["data"]] == picker["choices"]
    return picker["choices"]


def test_verify_says_same_person_and_different_people(services):
    verdict, crops, figure, result = verify_tab.verify(services, ASTRONAUT, ASTRONAUT_2)
    assert result["same_person"] is True and "Same person" in verdict and f"model {result['model']}" in verdict
    assert crops.size == (2 * 224 + 12, 224) and figure is not None
    verdict, _, _, result = verify_tab.verify(services, ASTRONAUT, HOPPER, result["model"], 0)  # 0: calibrated
    assert result["same_person"] is False and "Different people" in verdict
    with pytest.raises(InvalidParameterError, match="Please add photo A first"):
        verify_tab.verify(services, None, HOPPER)


def test_verify_on_lfw(services, shared_faces):
    lfw = shared_faces / "lfw"
    a, b = lfw / "George_W_Bush" / "George_W_Bush_0001.jpg", lfw / "Serena_Williams" / "Serena_Williams_0001.jpg"
    verdict, _, _, result = verify_tab.verify(services, str(a), str(b))
    assert result["same_person"] is False and "Different people" in verdict


def test_gallery_enroll_list_ask_and_delete(services):
    assert listed_names(services) == []
    tiles, *_ = gallery_tab.list_people(services)
    assert "Nobody enrolled yet" in tiles
    note, record = gallery_tab.enroll(services, "Eileen Collins", [ASTRONAUT])
    assert (
        note.startswith("Enrolled **1** photo(s) of **Eileen Collins** with ") and record["person"] == "Eileen Collins"
    )
    gallery_tab.enroll(services, "Grace Hopper", [HOPPER])
    assert set(listed_names(services)) == {"Eileen Collins", "Grace Hopper"}

    # The page's enroll asks before naming the astronaut's other photo as someone else, with its answer button.
    note, record, keep, drop, anyway, odd, photos = gallery_tab.ask_or_enroll(services, "Sally Ride", [ASTRONAUT_2])
    assert "Eileen Collins" in note and record is None and anyway["visible"] is True
    assert "Sally Ride" not in listed_names(services)

    # Delete asks on the button first, then deletes on the second click.
    note, button, asked = gallery_tab.ask_or_delete(services, "Grace Hopper", None)
    assert "Delete Grace Hopper for good?" in note and button["value"] == "Delete Grace Hopper for good?"
    note, button, asked = gallery_tab.ask_or_delete(services, "Grace Hopper", asked)
    assert note.startswith("Deleted **Grace Hopper**: 1 face(s)") and asked is None
    assert listed_names(services) == ["Eileen Collins"]

    with pytest.raises(gr.Error, match="Confirm the delete"):
        gallery_tab.delete(services, "Eileen Collins", False)
    with pytest.raises(gr.Error, match="Pick the person to rename"):
        gallery_tab.rename(services, "", "Someone")


def test_identify_names_the_enrolled_face(services):
    gallery_tab.enroll(services, "Grace Hopper", [HOPPER])
    (picture, boxes), table, picker, names, note, result = identify_tab.identify(
        services, str(EXAMPLES / "group.jpg"), progress=lambda *a, **k: None
    )
    assert [f["name"] for f in result["faces"]] == ["Eileen Collins", "Grace Hopper"] and len(boxes) == 2
    assert set(names["choices"]) == {"Eileen Collins", "Grace Hopper"}


def test_bound_handlers_get_the_request(services):
    """gradio passes a ``gr.Request`` by the handler's type hints: ``bound`` keeps them (a ``functools.partial``
    hides them, and every visitor would have been nobody), on every event of the built app."""
    request = object()
    args, *_ = helpers.special_args(bound(gallery_tab.list_people, services), inputs=[], request=request)
    assert args == [request]
    demo = build_app(services)
    wanting = [b.fn for b in demo.fns.values() if b.fn is not None and "request" in _parameters(b.fn)]
    assert len(wanting) > 20
    for fn in wanting:
        args, *_ = helpers.special_args(fn, inputs=[None] * (len(_parameters(fn)) - 1), request=request)
        assert request in args, fn.__name__


def _parameters(fn) -> list[str]:
    import inspect

    return list(inspect.signature(fn).parameters)
