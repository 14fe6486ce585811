"""An accessible page (#35, item 6), in a real browser (Debian's chromium, driven by Playwright): axe-core
(axe-playwright-python bundles it) finds no violation of impact "serious" or "critical" on any tab at 1400 and
400 px, contrast included, with the theme and CSS ``python app.py`` serves; each of Verify's uploads has its
own accessible name; a result's face pictures have a text alternative."""

from __future__ import annotations

import pytest
from test_app import EXAMPLES, launch
from test_browser import browser, upload_many  # noqa: F401  (browser is a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
axe_playwright = pytest.importorskip("axe_playwright_python.sync_playwright")


def violations(page) -> list[str]:
    found = axe_playwright.Axe().run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {', '.join(str(n['target']) for n in v['nodes'][:3])}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("width", [1400, 400])
def test_axe_core_finds_nothing_serious_on_any_tab(browser, settings, tmp_path, width):  # noqa: F811
    demo, services, url = launch(settings, tmp_path / "gallery")
    page = browser.new_page(viewport={"width": width, "height": 1000})
    try:
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("tab", name="Verify").wait_for(timeout=60_000)
        page.wait_for_timeout(2000)
        tabs = [t.inner_text().strip() for t in page.get_by_role("tab").all()]
        assert {"Verify", "Identify", "Gallery", "Album", "Explorer", "Fine-tune"} <= set(tabs), tabs
        found = {}
        for tab in tabs:
            page.get_by_role("tab", name=tab, exact=True).click()
            page.wait_for_timeout(1500)
            found[tab] = violations(page)
        assert not any(found.values()), found

        # Both of Verify's uploads are named after their labels (both were "Drop an image file here to upload").
        page.get_by_role("tab", name="Verify", exact=True).click()
        assert page.locator("#verify-a").get_by_label("Photo A: upload a file").count() >= 1
        assert page.locator("#verify-b").get_by_label("Photo B: upload a file").count() >= 1
        # A result: the faces compared are a picture with a text alternative, and the page is still clean.
        upload_many(page, "verify-a", [EXAMPLES / "astronaut.jpg"])
        upload_many(page, "verify-b", [EXAMPLES / "astronaut_2.jpg"])
        page.locator("#verify-b img").first.wait_for(timeout=30_000)
        page.wait_for_timeout(1000)
        page.get_by_role("button", name="Verify", exact=True).click()
        page.locator("#verify-verdict").get_by_text("same person", exact=False).first.wait_for(timeout=120_000)
        page.wait_for_timeout(1000)
        alts = [i.get_attribute("alt") for i in page.locator("#verify-crops img").all()]
        assert alts and set(alts) == {"The faces compared, aligned as the model sees them"}, alts
        assert violations(page) == []
    finally:
        page.close()
        demo.close()
