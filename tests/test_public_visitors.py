"""Public mode, as a visitor lives in it (#35, item 1): their gallery survives a reload of the page (the browser
keeps a key, never shared with another browser), the shared demo gallery is listed and named as such in
results, a shared person cannot be changed and says so, and a visitor's own "sheldon" is told apart from the
demo's."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_app import EXAMPLES, launch
from test_browser import browser, upload  # noqa: F401  (browser is a fixture)

from facedemo.errors import UnknownPersonError
from facedemo.services import DEMO, VISITOR_KEY, YOURS, Services, usecases


@pytest.fixture()
def public(settings, tmp_path):
    services = Services(replace(settings, gallery_dir=tmp_path / "gallery", public=True))
    services.owned().enroll("Grace Hopper", [EXAMPLES / "hopper.jpg"])  # the demo gallery everyone shares
    return services


def test_a_browser_keeps_its_gallery_across_reloads_and_no_other_browser_sees_it(public):
    key = public.visitors.adopt("page-1", None)  # a browser without a key is given one
    assert VISITOR_KEY.match(key)
    usecases.enroll(public.request("page-1"), "Eileen Collins", [EXAMPLES / "astronaut.jpg"])
    public.visitors.leave("page-1")  # the page reloads: its session hash changes, the browser's key does not
    assert public.visitors.adopt("page-2", key) == key
    assert [p.name for p in public.gallery("page-2").people()] == ["Eileen Collins"]
    # Another browser (no key, or one it made up) has a gallery of its own.
    assert public.visitors.adopt("page-3", None) != key
    assert public.gallery("page-3").people() == []
    assert public.visitors.adopt("page-4", "not a key") != "not a key"
    assert public.gallery("page-4").people() == []
    # Asked to, the visitor's people go at once; the browser's next page finds an empty gallery.
    public.visitors.forget("page-2")
    public.visitors.adopt("page-5", key)
    assert public.gallery("page-5").people() == []
    assert [p.name for p in public.shared().people()] == ["Grace Hopper"]


def test_a_shared_person_is_the_demo_gallerys_and_says_so(public):
    public.visitors.adopt("page", None)
    for change in (
        lambda: usecases.mine(public.request("page"), "Grace Hopper").delete("Grace Hopper"),
        lambda: usecases.mine(public.request("page"), "Grace Hopper").rename("Grace Hopper", "Somebody"),
    ):
        with pytest.raises(UnknownPersonError, match="belongs to the demo gallery"):
            change()
    with pytest.raises(UnknownPersonError, match="Nobody called 'Nobody'"):
        usecases.mine(public.request("page"), "Nobody")
    assert [p.name for p in public.shared().people()] == ["Grace Hopper"]


def test_results_say_which_gallery_a_name_comes_from(public):
    public.visitors.adopt("page", None)
    own = usecases.enroll(public.request("page"), "Eileen Collins", [EXAMPLES / "astronaut.jpg"])
    assert not any("demo gallery has" in n for n in own.notes)
    _, result = usecases.identify(public.request("page"), EXAMPLES / "astronaut.jpg")
    assert [(f.name, f.gallery) for f in result.faces] == [("Eileen Collins", YOURS)]
    _, result = usecases.identify(public.request("page"), EXAMPLES / "hopper.jpg")
    assert [(f.name, f.gallery) for f in result.faces] == [("Grace Hopper", DEMO)]
    assert result.faces[0].who == "Grace Hopper (demo gallery)"
    assert result.to_json()["faces"][0]["gallery"] == DEMO

    # The visitor's own Grace Hopper: told at enrollment, and both are candidates, each with its gallery.
    twin = usecases.enroll(public.request("page"), "Grace Hopper", [EXAMPLES / "hopper.jpg"])
    assert any("The demo gallery has a **Grace Hopper** too" in n for n in twin.notes)
    _, result = usecases.identify(public.request("page"), EXAMPLES / "hopper.jpg")
    face = result.faces[0]
    assert face.name == "Grace Hopper" and face.gallery in (YOURS, DEMO)
    assert {(c.name, c.gallery) for c in face.candidates} >= {("Grace Hopper", YOURS), ("Grace Hopper", DEMO)}


@pytest.mark.browser
def test_a_reload_keeps_the_visitors_people_in_a_real_browser(browser, settings, tmp_path):  # noqa: F811
    """Two browsers (Playwright contexts) on a public demo: the first enrolls, reloads and still sees their
    person; the second does not; both see the demo gallery's people, and deleting one says whose it is."""
    demo, services, url = launch(settings, tmp_path / "gallery", public=True)
    services.owned().enroll("Grace Hopper", [EXAMPLES / "hopper.jpg"])
    contexts = [
        browser.new_context(viewport={"width": 1280, "height": 1200}),
        browser.new_context(viewport={"width": 400, "height": 1000}),
    ]
    try:
        first = contexts[0].new_page()
        first.goto(url, wait_until="domcontentloaded")
        first.get_by_role("tab", name="Gallery").click(timeout=60_000)
        assert "a reload keeps them" in first.locator("#public-note").inner_text()
        first.locator("#shared-tiles").get_by_text("Grace Hopper (1)").wait_for(timeout=30_000)
        first.get_by_label("Name").first.fill("Eileen Collins")
        upload(first, "enroll-photos", EXAMPLES / "astronaut.jpg")
        first.wait_for_timeout(1000)
        first.get_by_role("button", name="Enroll", exact=True).click()
        first.locator("#people-tiles").get_by_text("Eileen Collins (1)").wait_for(timeout=120_000)

        first.reload(wait_until="domcontentloaded")
        first.get_by_role("tab", name="Gallery").click(timeout=60_000)
        first.locator("#people-tiles").get_by_text("Eileen Collins (1)").wait_for(timeout=30_000)

        # The demo gallery's person cannot be deleted, and the page says why.
        first.locator("#person-pick input").fill("Grace Hopper")
        first.locator("#person-pick input").press("Enter")
        first.locator("#delete-person").click()
        first.get_by_text("belongs to the demo gallery").first.wait_for(timeout=30_000)

        second = contexts[1].new_page()
        second.goto(url, wait_until="domcontentloaded")
        second.get_by_role("tab", name="Gallery").click(timeout=60_000)
        second.locator("#shared-tiles").get_by_text("Grace Hopper (1)").wait_for(timeout=30_000)
        second.get_by_text("Nobody in your private gallery yet").wait_for(timeout=30_000)
        assert "Eileen Collins" not in second.locator("#people-tiles").inner_text()
        # What public mode adds (the demo gallery's tiles, the forget button, the Explorer's gallery
        # choice) is as accessible as the rest, on a phone's width.
        axe = pytest.importorskip("test_browser_a11y")
        assert axe.violations(second) == []
        second.get_by_role("tab", name="Explorer").click()
        second.get_by_text("The demo gallery", exact=True).wait_for(timeout=30_000)
        assert axe.violations(second) == []

        # "Delete everything of mine" asks, then deletes; the reloaded page finds nothing.
        first.locator("#forget-me").click()
        first.get_by_role("button", name="Delete all my people and models for good?").click()
        first.get_by_text("Deleted everything you enrolled").wait_for(timeout=30_000)
        first.reload(wait_until="domcontentloaded")
        first.get_by_role("tab", name="Gallery").click(timeout=60_000)
        first.get_by_text("Nobody in your private gallery yet").wait_for(timeout=30_000)
    finally:
        for context in contexts:
            context.close()
        demo.close()


def test_the_explorer_maps_the_demo_gallery_when_the_visitor_asks(settings, tmp_path):
    """A visitor with people of their own can still explore the shared demo gallery (it used to be ignored
    once they enrolled anyone)."""
    from gradio_client import Client, handle_file

    demo, services, url = launch(settings, tmp_path / "gallery", public=True)
    services.owned().enroll("Grace Hopper", [EXAMPLES / "hopper.jpg"])
    services.owned().enroll("Eileen Collins", [EXAMPLES / "astronaut.jpg", EXAMPLES / "astronaut_2.jpg"])
    try:
        client = Client(url, verbose=False)
        client.predict(
            "Visitor", [handle_file(str(EXAMPLES / "hopper.jpg"))], True, "ask", api_name="/enroll"
        )  # the demo gallery names it Grace Hopper: enrolled anyway
        note, *_, summary = client.predict(["dlib-resnet"], "pca", "demo", api_name="/explore")
        assert note.startswith("The shared demo gallery (2 people)")
        assert summary["dlib-resnet"]["faces"] == 3, summary
        note, *_, summary = client.predict(["dlib-resnet"], "pca", "yours", api_name="/explore")
        assert "shared demo gallery" not in note and summary["dlib-resnet"]["faces"] == 1, summary
        # Enrolling a face from Identify under a name the demo gallery holds says so there too.
        note = client.predict(
            handle_file(str(EXAMPLES / "astronaut.jpg")),
            0,
            "Eileen Collins",
            "dlib-resnet",
            True,
            api_name="/enroll_face",
        )
        assert "Enrolled face 1 as **Eileen Collins**" in note and "demo gallery has a **Eileen Collins** too" in note
    finally:
        demo.close()
