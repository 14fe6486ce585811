"""A real browser: Debian's chromium, driven by Playwright, uploads two photos on the Verify tab."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_app import EXAMPLES, launch

pytestmark = pytest.mark.browser


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("chromium is not installed (apt-get install chromium); scripts/setup.sh --dev installs it as root")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    path = chromium_path()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=path,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page_url(settings, tmp_path_factory):
    demo, services, url = launch(settings, tmp_path_factory.mktemp("browser-gallery"))
    yield url
    demo.close()


def upload(page, elem_id: str, path: Path) -> None:
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))


def test_verify_in_a_real_browser(browser, page_url, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(page_url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Verify").wait_for(timeout=60_000)
    page.get_by_role("tab", name="Verify").click()
    upload(page, "verify-a", EXAMPLES / "astronaut.jpg")
    upload(page, "verify-b", EXAMPLES / "astronaut_2.jpg")
    # wait until both previews are shown, then ask: a photo's change event clears the results and cancels a run
    # computing for the old photos, so a click before B's upload has landed is undone by it (seen under load)
    for side in ("verify-a", "verify-b"):
        page.locator(f"#{side} img[src*='astronaut']").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)  # and the change events they fired have been answered
    page.get_by_role("button", name="Verify", exact=True).click()
    verdict = page.locator("#verify-verdict")
    verdict.get_by_text("Same person").wait_for(timeout=120_000)
    assert "distance" in verdict.inner_text()
    page.screenshot(path=str(tmp_path / "verify.png"), full_page=True)

    upload(page, "verify-b", EXAMPLES / "hopper.jpg")
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="Verify", exact=True).click()
    page.wait_for_function(
        "() => !document.querySelector('#verify-verdict').innerText.includes('Same person')", timeout=120_000
    )
    text = verdict.inner_text()
    assert "Different people" in text or "Same person" not in text
    page.close()


def test_identify_on_an_empty_gallery_in_a_real_browser(browser, settings, tmp_path):
    """A fresh dashboard, the Identify tab, the group photo: both faces boxed and unknown with a note that
    nobody is enrolled; one is enrolled from the result and named on the next Identify."""
    demo, services, url = launch(settings, tmp_path / "fresh-gallery")
    page = browser.new_page(viewport={"width": 1280, "height": 1200})
    try:
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("tab", name="Identify").wait_for(timeout=60_000)
        page.get_by_role("tab", name="Identify").click()
        upload(page, "identify-image", EXAMPLES / "group.jpg")
        # The photo in the upload itself (the Examples below show group.jpg from the start), and a moment for
        # its change event: a click between the two was cancelled by the change, as a new photo cancels a run.
        page.locator("#identify-image img[src*='group']").first.wait_for(timeout=30_000)
        page.wait_for_timeout(1000)
        page.get_by_role("button", name="Identify", exact=True).click()
        note = page.locator("#identify-note")
        note.get_by_text("Nobody is enrolled").wait_for(timeout=120_000)
        assert "every face found is unknown" in note.inner_text()
        assert services.pipeline.spec(None).name in note.inner_text()
        page.get_by_text("Enroll a face from this result").click()
        page.get_by_label("Name (new, or pick an existing person)").fill("Eileen Collins")
        page.get_by_role("button", name="Enroll this face").click()
        page.get_by_text("Enrolled face 1 as").wait_for(timeout=120_000)
        assert [p.name for p in services.shared().people()] == ["Eileen Collins"]
        page.get_by_role("button", name="Identify", exact=True).click()
        page.wait_for_function(
            "() => !document.querySelector('#identify-note').innerText.includes('Nobody is enrolled')", timeout=120_000
        )
    finally:
        page.close()
        demo.close()


def test_public_gallery_shows_inline_thumbnails_in_a_real_browser(browser, settings, tmp_path):
    """Public mode: a visitor enrolls a face on the Gallery tab and sees its thumbnail, drawn from an inline
    image (no file URL exists for it), and the browser decodes it; their album's faces are inline too."""
    demo, services, url = launch(settings, tmp_path / "public-gallery", public=True)
    page = browser.new_page(viewport={"width": 1280, "height": 1200})
    try:
        services.visitors.stop_expiry()
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("tab", name="Gallery").wait_for(timeout=60_000)
        page.get_by_role("tab", name="Gallery").click()
        page.get_by_label("Name").first.fill("Grace Hopper")
        upload(page, "enroll-photos", EXAMPLES / "hopper.jpg")
        page.wait_for_timeout(1000)
        page.get_by_role("button", name="Enroll", exact=True).click()
        tile = page.locator("#people-tiles img[src^='data:image/jpeg;base64,']").first
        tile.wait_for(timeout=120_000)
        assert page.evaluate("() => document.querySelector('#people-tiles img').naturalWidth") > 0
        assert "Grace Hopper (1)" in page.locator("#people-tiles").inner_text()
        assert page.locator("#people-tiles img[src*='gradio_api']").count() == 0

        # The Album tab shows the visitor's grouped faces the same way.
        page.get_by_role("tab", name="Album").click()
        page.locator("#album-files input[type=file]").set_input_files(
            [str(EXAMPLES / n) for n in ("astronaut.jpg", "astronaut_2.jpg", "hopper.jpg")]
        )
        page.wait_for_timeout(1500)
        page.get_by_role("button", name="Group the faces").click()
        page.locator("#album-groups img[src^='data:image/jpeg;base64,']").nth(2).wait_for(timeout=120_000)
        assert page.locator("#album-groups img[src*='gradio_api']").count() == 0
        assert "Grace Hopper" in page.locator("#album-groups").inner_text()  # enrolled: labelled
    finally:
        page.close()
        demo.close()


def test_one_enrollment_reaches_every_model_in_a_real_browser(browser, casia_settings, tmp_path):
    """The path a newcomer takes to compare models, with no command line: enroll one person from three photos
    on the Gallery tab; Identify's "Compare every model" names them with both offline models; the Explorer
    draws both models side by side; rename and delete act on every model at once."""
    from PIL import Image, ImageOps

    mirrored = tmp_path / "astronaut-mirrored.jpg"
    ImageOps.mirror(Image.open(EXAMPLES / "astronaut.jpg").convert("RGB")).save(mirrored)
    demo, services, url = launch(casia_settings, tmp_path / "one-gallery")
    models = ["dlib-resnet", "facenet-casia-webface"]
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    try:
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("tab", name="Gallery").wait_for(timeout=60_000)
        page.get_by_role("tab", name="Gallery").click()
        page.get_by_label("Name").first.fill("Eileen Collins")
        upload_many(page, "enroll-photos", [EXAMPLES / "astronaut.jpg", EXAMPLES / "astronaut_2.jpg", mirrored])
        page.wait_for_timeout(1500)
        page.get_by_role("button", name="Enroll", exact=True).click()
        page.get_by_text("Enrolled 3 photo(s) of Eileen Collins").wait_for(timeout=180_000)
        table = page.locator("#people-table")
        table.get_by_text("facenet-casia-webface").wait_for(timeout=60_000)
        assert "dlib-resnet" in table.inner_text() and "Eileen Collins" in table.inner_text()

        page.get_by_role("tab", name="Identify").click()
        upload(page, "identify-image", EXAMPLES / "group.jpg")
        # The photo in the upload itself (the Examples below show group.jpg from the start), and a moment for
        # its change event: a click between the two was cancelled by the change, as a new photo cancels a run.
        page.locator("#identify-image img[src*='group']").first.wait_for(timeout=30_000)
        page.wait_for_timeout(1000)
        page.get_by_role("button", name="Compare every model").click()
        # The face is boxed once with every model's answer, and the table has a row per model naming her.
        page.get_by_text("1. facenet-casia-webface: Eileen Collins / dlib-resnet: Eileen Collins").wait_for(
            timeout=180_000
        )
        page.wait_for_function(
            "() => (document.querySelector('#identify-table').innerText.match(/Eileen Collins/g) || []).length >= 2",
            timeout=60_000,
        )
        assert "facenet-casia-webface" in page.locator("#identify-table").inner_text()

        explore_beside(page, "facenet-casia-webface", models)
        assert page.locator(".js-plotly-plot").count() >= 4  # two maps and two histograms at least

        page.get_by_role("tab", name="Gallery").click()
        person = page.get_by_label("Person", exact=True)
        person.fill("Eileen Collins")
        # Opening the tab again lists the people again; it used to empty the box the user had filled (under
        # load that listing arrived after the user typed, and Rename got no name).
        page.get_by_role("tab", name="Identify").click()
        page.get_by_role("tab", name="Gallery").click()
        page.wait_for_timeout(3000)
        assert person.input_value() == "Eileen Collins"
        page.get_by_label("New name").fill("Eileen Marie Collins")
        page.get_by_role("button", name="Rename").click()
        page.get_by_text("Renamed").wait_for(timeout=120_000)
        for model in models:
            assert services.owned().identify(EXAMPLES / "astronaut.jpg", model).faces[0].name == "Eileen Marie Collins"

        page.get_by_label("Person", exact=True).fill("Eileen Marie Collins")
        page.get_by_role("button", name="Delete", exact=True).click()
        # The first click only asks, on the button itself; nothing is deleted yet.
        ask = page.get_by_role("button", name="Delete Eileen Marie Collins for good?")
        ask.wait_for(timeout=60_000)
        assert [p.name for p in services.store.persons()] == ["Eileen Marie Collins"]
        ask.click()
        page.get_by_text("Deleted").first.wait_for(timeout=120_000)
        page.get_by_role("button", name="Delete", exact=True).wait_for(timeout=30_000)  # asks again next time
        assert services.store.persons() == [] and services.store.face_count() == 0
        assert all(services.store.count(m) == 0 and services.store.centroid_count(m) == 0 for m in models)
    finally:
        page.screenshot(
            path=str(tmp_path / "last.png"), full_page=True
        )  # what the page showed at the end, for a failure
        page.close()
        demo.close()


def explore_beside(page, model: str, shown) -> None:
    """On the Explorer, add ``model`` to the picked models, explore, and wait for each of ``shown``'s maps."""
    page.get_by_role("tab", name="Explorer").click()
    page.get_by_label("Models (pick two to compare)").click()
    page.get_by_role("option", name=model).click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Explore", exact=True).click()
    for each in shown:
        page.get_by_text(f"{each}: embeddings").first.wait_for(timeout=180_000)


def upload_many(page, elem_id: str, paths) -> None:
    page.locator(f"#{elem_id} input[type=file]").set_input_files([str(p) for p in paths])
