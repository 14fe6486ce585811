"""In a real browser (Debian's chromium through Playwright): a model has one colour on the Explorer, in the ROC
of the gallery's pairs and in the robustness chart, as a person reads it from each figure's legend."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_app import launch
from test_browser import browser  # noqa: F401  (a fixture)
from test_browser_tabs import open_tab

from facedemo.explorer.colours import model_colour

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.shared]

LEGENDS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(plot => ({
    title: (plot.querySelector('.gtitle') || {}).textContent || '',
    entries: Array.from(plot.querySelectorAll('.legend .traces')).map(entry => ({
        text: entry.querySelector('.legendtext').textContent,
        stroke: (entry.querySelector('.legendlines path, .legendpoints path') || {style: {}}).style.stroke,
    })),
}))"""


def rgb(colour: str) -> str:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


@pytest.fixture(scope="module")
def cast_app(settings, shared_faces, tmp_path_factory):
    """Eight people of the Big Bang Theory cast, three photos each, embedded by dlib-resnet."""
    demo, services, url = launch(
        replace(settings, gallery_models=("dlib-resnet",)), tmp_path_factory.mktemp("colour-gallery")
    )
    gallery = services.owned()
    cast = shared_faces / "bbt_faceapi"
    for folder in sorted(p for p in cast.iterdir() if p.is_dir() and not p.name.startswith("_")):
        # The cast's folders are labelled truth: the guards' questions (a look-alike with one model only, #33)
        # are answered as a user who knows them would.
        gallery.enroll(folder.name, sorted(folder.glob("*.png"))[:3], confirm=True, odd_photos="keep")
    yield url
    demo.close()


def test_a_model_has_the_same_colour_in_the_roc_and_the_robustness_chart(browser, cast_app):  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(cast_app, wait_until="domcontentloaded")
        page.get_by_role("tab", name="Explorer").wait_for(timeout=60_000)
        open_tab(page, "Explorer")
        page.get_by_role("button", name="Explore", exact=True).click()
        drawn = "(part) => Array.from(document.querySelectorAll('.js-plotly-plot .gtitle')).some(t => t.textContent.includes(part))"
        page.wait_for_function(drawn, arg="ROC on every pair", timeout=180_000)
        page.get_by_text("Robustness on LFW", exact=False).first.click()
        page.get_by_role("button", name="Show the robustness curves").click()
        page.wait_for_function(drawn, arg="against severity", timeout=60_000)
        page.wait_for_timeout(1000)
        plots = page.evaluate(LEGENDS)

        def stroke_in(title_part: str) -> str:
            (plot,) = [p for p in plots if title_part in p["title"]]
            (entry,) = [e for e in plot["entries"] if e["text"].startswith("dlib-resnet")]
            return entry["stroke"]

        roc, robustness = stroke_in("ROC on every pair"), stroke_in("against severity")
        assert roc == robustness == rgb(model_colour("dlib-resnet")), (roc, robustness)
        # the robustness note says how the panels are made fair
        note = page.locator("body").inner_text()
        assert "same severities" in note or "left out" in note
    finally:
        page.close()
