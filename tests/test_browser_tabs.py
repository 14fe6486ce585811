"""A newcomer's path through every tab in a real browser (Debian's chromium, driven by Playwright), on a
desktop (1400 px) and a phone (400 px): what a person sees, nothing stale, no trap, no "Error", no command
line or server path on the page."""

from __future__ import annotations

import re

import pytest
from test_app import EXAMPLES, launch
from test_browser import browser, upload, upload_many  # noqa: F401  (browser is a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.shared]

TABS = ["Verify", "Identify", "Gallery", "Album", "Explorer", "Fine-tune"]


@pytest.fixture(scope="module")
def cast_app(settings, shared_faces, tmp_path_factory):
    """The dashboard with eight people of the Big Bang Theory cast enrolled, three photos each."""
    demo, services, url = launch(settings, tmp_path_factory.mktemp("tabs-gallery"))
    cast = shared_faces / "bbt_faceapi"
    gallery = services.owned()
    for folder in sorted(p for p in cast.iterdir() if p.is_dir() and not p.name.startswith("_")):
        gallery.enroll(folder.name, sorted(folder.glob("*.png"))[:3])
    yield services, url, cast
    demo.close()


def open_tab(page, name: str) -> None:
    tab = page.get_by_role("tab", name=name)
    assert tab.is_visible(), f"the {name} tab is hidden (behind a menu?)"
    tab.click()


def wait_for_preview(page, elem_id: str) -> None:
    """An upload is the component's value once its preview shows; a click before that runs without it (and the
    change that follows clears the result)."""
    page.locator(f"#{elem_id} img").first.wait_for(timeout=30_000)
    page.wait_for_timeout(500)


def page_text(page) -> str:
    return page.locator("body").inner_text()


def assert_clean(page, width: int) -> None:
    """No error badge, no command line, no server path, nothing wider than the window."""
    text = page_text(page)
    assert not page.get_by_text("Error", exact=True).filter(visible=True).count(), "an Error badge is showing"
    found = re.search(r".{0,120}(python -m|/tmp/|/work/|/root/|site-packages).{0,80}", text)
    assert found is None, f"a command line or a server path on the page: {found.group(0)!r}"
    overflow = page.evaluate("() => document.documentElement.scrollWidth")
    assert overflow <= width + 2, f"the page is {overflow} px wide in a {width} px window"


@pytest.mark.parametrize("width", [1400, 400])
def test_every_tab_in_a_real_browser(browser, cast_app, width, tmp_path):  # noqa: F811
    services, url, cast = cast_app
    page = browser.new_page(viewport={"width": width, "height": 1000})
    try:
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("tab", name="Verify").wait_for(timeout=60_000)
        assert page.locator("#readiness").inner_text().strip()  # the status line says what is loaded
        for name in TABS:  # every tab reachable at once, on a phone too
            assert page.get_by_role("tab", name=name).is_visible(), f"{name} is not visible at {width} px"

        # Verify: a verdict; a new photo B clears it (it was the old pair's).
        open_tab(page, "Verify")
        upload(page, "verify-a", EXAMPLES / "astronaut.jpg")
        upload(page, "verify-b", EXAMPLES / "astronaut_2.jpg")
        wait_for_preview(page, "verify-a")
        wait_for_preview(page, "verify-b")
        page.get_by_role("button", name="Verify", exact=True).click()
        verdict = page.locator("#verify-verdict")
        verdict.get_by_text("Same person").wait_for(timeout=120_000)
        upload(page, "verify-b", EXAMPLES / "hopper.jpg")
        page.wait_for_function(
            "() => !document.querySelector('#verify-verdict').innerText.includes('Same person')", timeout=15_000
        )

        # Identify: the cast's group photo, names in the table; another photo clears them.
        open_tab(page, "Identify")
        upload(page, "identify-image", cast / "_group_photos" / "bbt3.jpg")
        wait_for_preview(page, "identify-image")
        page.get_by_role("button", name="Identify", exact=True).click()
        table = page.locator("#identify-table")
        page.wait_for_function(
            "() => document.querySelector('#identify-table').innerText.includes('sheldon')", timeout=120_000
        )
        assert "penny" in table.inner_text()
        upload(page, "identify-image", EXAMPLES / "hopper.jpg")
        page.wait_for_function(
            "() => !document.querySelector('#identify-table').innerText.includes('sheldon')", timeout=15_000
        )

        # Gallery: every name under its face; Delete asks on the button, then deletes.
        open_tab(page, "Gallery")
        tiles = page.locator("#people-tiles")
        tiles.get_by_text("sheldon (3)").wait_for(timeout=60_000)
        assert tiles.locator("img").count() == len(services.store.persons())
        for caption in tiles.locator("figcaption").all():  # names written in full, inside the window
            box = caption.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width
        victim = "stuart" if width == 1400 else "bernadette"
        page.get_by_label("Person", exact=True).fill(victim)
        page.get_by_role("button", name="Delete", exact=True).click()
        ask = page.get_by_role("button", name=f"Delete {victim} for good?")
        ask.wait_for(timeout=30_000)
        assert victim in [p.name for p in services.store.persons()]  # asked, not deleted
        ask.click()
        page.locator("#manage-note").get_by_text(f"Deleted {victim}").wait_for(timeout=60_000)
        page.wait_for_function(
            f"() => !document.querySelector('#people-tiles').innerText.includes('{victim} (')", timeout=30_000
        )
        assert victim not in [p.name for p in services.store.persons()]

        # Album: four photos of two people make two groups; Amy's is labelled, as Identify names her.
        open_tab(page, "Album")
        upload_many(
            page,
            "album-files",
            [*sorted((cast / "amy").glob("*.png"))[3:5], *sorted((cast / "raj").glob("*.png"))[3:5]],
        )
        page.wait_for_timeout(1500)
        page.get_by_role("button", name="Group the faces").click()
        groups = page.locator("#album-groups")
        groups.get_by_text("Group 2 · 2 faces").wait_for(timeout=120_000)  # a person counts groups from 1
        assert "amy (enrolled)" in groups.inner_text()

        # Explorer: the map and the histogram drawn.
        open_tab(page, "Explorer")
        page.get_by_role("button", name="Explore", exact=True).click()
        page.locator("#explore-note").get_by_text("faces of").wait_for(timeout=120_000)
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 3", timeout=60_000)

        if width == 1400:  # Fine-tune once: a finished run's report (the phone's layout is the same components)
            open_tab(page, "Fine-tune")
            page.get_by_label("New model name").fill("cast-head")
            page.get_by_role("button", name="Fine-tune", exact=True).click()
            page.get_by_text("Saved cast-head").wait_for(timeout=300_000)
            assert "held out" in page_text(page)
        assert_clean(page, width)
    finally:
        page.screenshot(path=str(tmp_path / f"every-tab-{width}.png"), full_page=True)
        page.close()
