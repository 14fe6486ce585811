"""Lists that never trap (#35, item 2), progress where the eye is (item 3) and one message at a time (item
4), in a real browser (Debian's chromium, driven by Playwright): once an
enrollment has used its photos the list is empty, so the next person's uploads start a list of their own
(they were added to the previous person's), and no file the gallery has since erased stays on screen (after a
delete, the next enrollment said a file shown on the page did not exist)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_app import EXAMPLES, launch
from test_browser import browser, upload_many  # noqa: F401  (browser is a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def upload_photos(page, person: str, paths) -> None:
    """Type the name and upload the photos on the Gallery tab; returns once the last one is listed."""
    page.get_by_label("Name").first.fill(person)
    upload_many(page, "enroll-photos", paths)
    page.locator("#enroll-photos").get_by_text(Path(paths[-1]).stem, exact=True).first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)


def press_enroll(page, person: str, photos: int) -> None:
    page.get_by_role("button", name="Enroll", exact=True).click()
    page.locator("#enroll-note").get_by_text(f"Enrolled {photos} photo(s) of {person}").wait_for(timeout=180_000)


def test_an_enrollments_photos_leave_the_list_once_used(browser, settings, tmp_path):  # noqa: F811
    demo, services, url = launch(settings, tmp_path / "gallery")
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    photos, note = page.locator("#enroll-photos"), page.locator("#enroll-note")
    try:
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("tab", name="Gallery").wait_for(timeout=60_000)
        page.get_by_role("tab", name="Gallery").click()
        upload_photos(page, "Grace Hopper", [EXAMPLES / "hopper.jpg"])
        press_enroll(page, "Grace Hopper", 1)
        page.wait_for_function(
            "() => !document.querySelector('#enroll-photos').innerText.includes('hopper')", timeout=30_000
        )
        page.wait_for_timeout(1000)
        assert "Enrolled 1 photo(s) of Grace Hopper" in note.inner_text()  # emptying the list kept the answer

        # The next person's photos are a list of their own (a file name shows as "hopper" and ".jpg").
        upload_photos(page, "Eileen Collins", [EXAMPLES / "astronaut.jpg", EXAMPLES / "astronaut_2.jpg"])
        assert "hopper" not in photos.inner_text()
        assert note.inner_text().strip() == ""  # a new upload clears the earlier answer
        press_enroll(page, "Eileen Collins", 2)
        assert "already enrolled" not in note.inner_text()
        assert {p.name: p.images for p in services.shared().people()} == {"Grace Hopper": 1, "Eileen Collins": 2}

        # Delete her (the second click deletes), then enroll her again from new uploads of the same photos.
        page.locator("#person-pick input").fill("Eileen Collins")
        page.locator("#delete-person").click()
        page.locator("#delete-person").get_by_text("for good?").wait_for(timeout=30_000)
        page.locator("#delete-person").click()
        page.locator("#manage-note").get_by_text("Deleted Eileen Collins").wait_for(timeout=180_000)
        assert "astronaut" not in photos.inner_text()  # nothing of hers is on screen to be read again
        upload_photos(page, "Eileen Collins", [EXAMPLES / "astronaut.jpg"])
        press_enroll(page, "Eileen Collins", 1)
        assert "does not exist" not in page.locator("body").inner_text()
    finally:
        page.close()
        demo.close()


def test_one_message_at_a_time(browser, settings, tmp_path):  # noqa: F811
    """#35, item 4: the toast of a mistake does not sit over the next result, and a refused rename does not
    leave the previous rename's note beside its error."""
    demo, services, url = launch(settings, tmp_path / "gallery")
    services.owned().enroll("Grace Hopper", [EXAMPLES / "hopper.jpg"])
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    toasts, note = page.locator(".toast-wrap"), page.locator("#manage-note")
    rename = page.get_by_role("button", name="Rename", exact=True)
    try:
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("tab", name="Gallery").wait_for(timeout=60_000)
        page.get_by_role("tab", name="Gallery").click()
        rename.click()  # nobody picked: a mistake
        toasts.get_by_text("Pick the person to rename.").wait_for(timeout=30_000)

        page.locator("#person-pick input").fill("Grace Hopper")
        page.get_by_label("New name").fill("Amazing Grace")
        page.wait_for_timeout(500)
        rename.click()
        note.get_by_text("Renamed Grace Hopper to Amazing Grace").wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        assert "Pick the person to rename." not in toasts.inner_text()  # the mistake's toast went with the click
        assert [p.name for p in services.shared().people()] == ["Amazing Grace"]

        page.locator("#person-pick input").fill("")
        page.wait_for_timeout(500)
        rename.click()  # refused again: its own toast, and the earlier rename's note is gone
        toasts.get_by_text("Pick the person to rename.").wait_for(timeout=30_000)
        page.wait_for_function("() => !document.querySelector('#manage-note').innerText.includes('Renamed')")
    finally:
        page.close()
        demo.close()


PROGRESS = "{0} .progress-level, {0} .progress-text, {0} .meta-text, {0} .eta-bar"


def progress_by(page, area: str, button) -> float:
    """Waits for the progress drawn in ``area`` while an action runs; returns its distance in pixels from the
    button that started it (top to top), after checking that a person can see it (not clipped to nothing)."""
    page.wait_for_function(f"() => document.querySelector({PROGRESS.format(area)!r})", timeout=60_000)
    shown = page.locator(PROGRESS.format(area)).first.bounding_box()
    clicked = button.bounding_box()
    assert shown and shown["height"] >= 8 and shown["width"] >= 30, shown
    return abs(shown["y"] - clicked["y"])


def test_progress_shows_by_the_button_that_started_it(browser, settings, tmp_path, shared_faces):  # noqa: F811
    """#35, item 3: enrolling photos showed its progress clipped to nothing, and 'Where does each model look?'
    1,500 px below the button."""
    demo, services, url = launch(settings, tmp_path / "gallery")
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("tab", name="Verify").wait_for(timeout=60_000)
        upload_many(page, "verify-a", [EXAMPLES / "astronaut.jpg"])
        upload_many(page, "verify-b", [EXAMPLES / "astronaut_2.jpg"])
        page.locator("#verify-b img").first.wait_for(timeout=30_000)
        page.wait_for_timeout(1000)
        explain = page.locator("#verify-explain")
        explain.click()
        assert progress_by(page, "#verify-explain-status", explain) < 250
        page.locator("#verify-explain-status").get_by_text("The occlusion maps are below").wait_for(timeout=180_000)

        page.get_by_role("tab", name="Gallery").click()
        page.get_by_label("Name").first.fill("Penny")
        upload_many(page, "enroll-photos", sorted((shared_faces / "bbt_faceapi" / "penny").glob("*.png")))
        page.locator("#enroll-photos").get_by_text("penny5", exact=True).wait_for(timeout=30_000)
        page.wait_for_timeout(1000)
        enroll = page.get_by_role("button", name="Enroll", exact=True)
        enroll.click()
        assert progress_by(page, "#enroll-note", enroll) < 250
        page.locator("#enroll-note").get_by_text("Enrolled 5 photo(s) of Penny").wait_for(timeout=180_000)

        # Grouping an album (several seconds on a CPU): its progress under its button, not clipped to nothing.
        page.get_by_role("tab", name="Album").click()
        upload_many(page, "album-files", [EXAMPLES / n for n in ("astronaut.jpg", "astronaut_2.jpg", "hopper.jpg")])
        page.wait_for_timeout(1500)
        group = page.locator("#album-group")
        group.click()
        assert progress_by(page, "#album-note", group) < 250
        page.locator("#album-groups img").nth(2).wait_for(timeout=180_000)
    finally:
        page.close()
        demo.close()
