"""A real browser (Debian's chromium through Playwright, as tests/test_browser.py): the Verify tab's
"Where does each model look?" draws the occlusion maps."""

from __future__ import annotations

import pytest
from test_app import EXAMPLES
from test_browser import browser, page_url, upload  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_occlusion_maps_in_a_real_browser(browser, page_url):  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    try:
        page.goto(page_url, wait_until="domcontentloaded")
        page.get_by_role("tab", name="Verify").wait_for(timeout=60_000)
        upload(page, "verify-a", EXAMPLES / "astronaut.jpg")
        upload(page, "verify-b", EXAMPLES / "astronaut_2.jpg")
        for elem_id in ("verify-a", "verify-b"):  # both previews shown: both uploads are done
            page.locator(f"#{elem_id} img[src*='astronaut']").wait_for(timeout=30_000)
        page.get_by_role("button", name="Where does each model look?", exact=True).click()
        page.locator("#verify-explain-plot .js-plotly-plot").wait_for(timeout=120_000)
        assert page.locator("#verify-explain-plot .heatmaplayer, #verify-explain-plot .imagelayer").count() > 0
        assert "face A" in page.locator("#verify-explain-note").inner_text()
    finally:
        page.close()
