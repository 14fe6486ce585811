"""The guards against enrolling the wrong person and the removal of one face, in a real browser (Debian's
chromium, driven by Playwright): Identify's enroll panel asks before naming a known face otherwise, and
forgets the name typed for the last photo; the Gallery tab lists a person's faces and removes one after a
second click (#33 item 1)."""

from __future__ import annotations

import pytest
from PIL import Image
from test_app import EXAMPLES, launch
from test_browser import browser, upload  # noqa: F401  (browser is a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_enroll_question_and_one_face_removed_in_a_real_browser(browser, settings, tmp_path):  # noqa: F811
    demo, services, url = launch(settings, tmp_path / "gallery")
    hopper = Image.open(EXAMPLES / "hopper.jpg").convert("RGB")
    mirrored, smaller = tmp_path / "hopper-mirrored.jpg", tmp_path / "hopper-smaller.jpg"
    hopper.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored)
    hopper.resize((hopper.width * 3 // 4, hopper.height * 3 // 4)).save(smaller)
    services.owned().enroll("Grace Hopper", [mirrored, smaller])
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    try:
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("tab", name="Identify").wait_for(timeout=60_000)
        page.get_by_role("tab", name="Identify").click()
        upload(page, "identify-image", EXAMPLES / "hopper.jpg")
        page.locator("#identify-image img").first.wait_for(timeout=30_000)
        page.wait_for_timeout(500)
        page.get_by_role("button", name="Identify", exact=True).click()
        page.wait_for_function(
            "() => document.querySelector('#identify-table').innerText.includes('Grace Hopper')", timeout=120_000
        )

        page.get_by_text("Enroll a face from this result").click()
        face = page.locator("#enroll-face-pick input")
        assert face.input_value() == ""  # no default: the only face is one the gallery names
        face.click()
        page.get_by_role("option", name="1. Grace Hopper").click()
        name = page.locator("#enroll-face-name input")
        name.fill("Test Stranger")
        page.get_by_role("button", name="Enroll this face").click()
        note = page.locator("#enroll-face-note")
        note.get_by_text("This face looks like Grace Hopper (").wait_for(timeout=120_000)
        assert "Enroll it as Test Stranger anyway?" in note.inner_text()
        assert [p.name for p in services.shared().people()] == ["Grace Hopper"]  # nothing stored yet
        page.locator("#enroll-face-anyway").click()
        note.get_by_text("Enrolled face 1 as Test Stranger").wait_for(timeout=120_000)
        assert {p.name for p in services.shared().people()} == {"Grace Hopper", "Test Stranger"}
        assert not page.locator("#enroll-face-anyway").is_visible()

        name.fill("Someone typed for this photo")
        name.press("Tab")  # the box keeps what was typed once the user moves on (as a click elsewhere does)
        page.wait_for_timeout(500)
        upload(page, "identify-image", EXAMPLES / "astronaut.jpg")  # another photo: the name goes
        page.wait_for_function("() => document.querySelector('#enroll-face-name input').value === ''", timeout=60_000)
        page.wait_for_timeout(1000)
        assert name.input_value() == ""

        page.get_by_role("tab", name="Gallery").click()
        person = page.locator("#person-pick input")
        person.click()
        page.get_by_role("option", name="Grace Hopper", exact=True).click()
        tiles = page.locator("#person-faces img[src^='data:image/jpeg;base64,']")
        tiles.nth(1).wait_for(timeout=60_000)
        assert tiles.count() == 2 and "hopper-smaller.jpg" in page.locator("#person-faces").inner_text()
        face = page.locator("#face-pick input")
        face.click()
        page.get_by_role("option", name="hopper-smaller.jpg").click()
        page.locator("#remove-face").click()
        page.locator("#remove-face").get_by_text("Remove this face for good?").wait_for(timeout=30_000)
        assert len(services.shared().faces(person="Grace Hopper")) == 2  # the first click only asked
        page.locator("#remove-face").click()
        page.locator("#manage-note").get_by_text("Removed the face from hopper-smaller.jpg").wait_for(timeout=120_000)
        page.wait_for_function("() => document.querySelectorAll('#person-faces img').length === 1", timeout=30_000)
        assert [f.image for f in services.shared().faces(person="Grace Hopper")] == ["hopper-mirrored.jpg"]
        assert "Grace Hopper (1)" in page.locator("#people-tiles").inner_text()
        text = page.locator("body").inner_text()
        assert "/tmp/" not in text and not page.get_by_text("Error", exact=True).filter(visible=True).count()
    finally:
        page.close()
        demo.close()
