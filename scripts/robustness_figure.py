"""Regenerate docs/robustness.png: the Explorer's robustness chart (accuracy against severity, one panel per
condition, one line per model) of the figures that ship in facedemo/data/robustness/, rendered in Debian's chromium.

    .venv/bin/python scripts/robustness_figure.py [--out docs/robustness.png]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from facedemo.evaluation.robustness import cached_robustness
from facedemo.explorer.figures import robustness_figure
from facedemo.pipeline import Pipeline
from facedemo.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "robustness.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        pipeline = Pipeline(Settings.from_env(home=Path(home), device="cpu"))  # an empty home: the shipped figures
        result = cached_robustness(pipeline, None, pairs_file="pairsDevTest.txt")
        figure = robustness_figure(result)
        figure.update_layout(width=1200)
        page_file = Path(home) / "robustness.html"
        figure.write_html(page_file, include_plotlyjs=True)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1240, "height": int(figure.layout.height) + 40})
            page.goto(page_file.as_uri())
            page.wait_for_selector(".js-plotly-plot")
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
    print(f"wrote {args.out} ({', '.join(result.models)})")


if __name__ == "__main__":
    main()
