"""Draw docs/EVALUATION.md's two pictures of #23 as PNGs, in Debian's chromium (kaleido is not installed here).

Usage: .venv/bin/python scripts/explain_figures.py [--pairs pairsDevTest.txt] [--out docs]

* ``explain.png``: where each available model looks, on the public-domain example photos only
  (facedemo/ui/examples: Eileen Collins and her edited copy, then Collins and Grace Hopper); no LFW face
  is ever drawn into the repository.
* ``disagreements.png``: every model pair's distances on LFW pairs (a pairs file under ../shared/faces/lfw),
  points only, no faces: the disagreements are the points in the off-diagonal quadrants.
"""

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from playwright.sync_api import sync_playwright  # noqa: E402

from facedemo.evaluation import read_pairs  # noqa: E402
from facedemo.evaluation.disagreement import compare_pairs  # noqa: E402
from facedemo.explorer.figures import occlusion_figure, verdicts_figure  # noqa: E402
from facedemo.pipeline import Pipeline  # noqa: E402
from facedemo.settings import SHARED_LFW, Settings  # noqa: E402

EXAMPLES = REPO / "facedemo" / "ui" / "examples"


def save_png(browser, figure, path: Path) -> None:
    width, height = figure.layout.width or 900, figure.layout.height or 520
    page = browser.new_page(viewport={"width": int(width) + 20, "height": int(height) + 20})
    page.set_content(figure.to_html(include_plotlyjs=True, full_html=True, config={"displayModeBar": False}))
    page.wait_for_selector(".main-svg")
    page.locator(".plotly-graph-div").first.screenshot(path=str(path))
    page.close()
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", default="pairsDevTest.txt", help="LFW pairs file under ../shared/faces/lfw")
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    args = parser.parse_args()
    pipeline = Pipeline(Settings.from_env())
    same = pipeline.explain(EXAMPLES / "astronaut.jpg", EXAMPLES / "astronaut_2.jpg")
    different = pipeline.explain(EXAMPLES / "astronaut.jpg", EXAMPLES / "hopper.jpg")
    result = compare_pairs(pipeline, read_pairs(SHARED_LFW / args.pairs, SHARED_LFW), source=args.pairs)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        figure = occlusion_figure(
            same.maps + different.maps, "Where each model looks: Collins vs her edited copy, then vs Hopper"
        )
        save_png(browser, figure, args.out / "explain.png")
        save_png(browser, verdicts_figure(result), args.out / "disagreements.png")
        browser.close()


if __name__ == "__main__":
    main()
