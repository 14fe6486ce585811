"""Regenerate the README's pictures: each dashboard tab in use, in Debian's chromium.

Usage: .venv/bin/python scripts/screenshots.py [--out docs]
Needs ../shared/faces and /usr/bin/chromium. Pictures that show faces use only the public-domain example
photos (facedemo/ui/examples); the Explorer and Fine-tune pictures, which show only plots and names, use
a gallery of the Big Bang Theory cast from ../shared/faces (whose photos are never copied into the repo).
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dataclasses import replace  # noqa: E402

from playwright.sync_api import sync_playwright  # noqa: E402

from facedemo.services import Services  # noqa: E402
from facedemo.settings import Settings  # noqa: E402
from facedemo.ui import CSS, build_app, theme  # noqa: E402
from facedemo.ui.explore_tab import ExplorerState  # noqa: E402

EXAMPLES = REPO / "facedemo" / "ui" / "examples"
CAST = REPO.parent / "shared" / "faces" / "bbt_faceapi"


def launch(gallery_setup, port: int):
    tmp = Path(tempfile.mkdtemp(prefix="facedemo-shots-"))
    services = Services(replace(Settings.from_env(home=tmp / "home"), gallery_dir=tmp / "gallery", public=False))
    gallery_setup(services.shared())
    explorer = ExplorerState()
    explorer.warm_up()
    demo = build_app(services, explorer)
    demo.queue().launch(server_port=port, prevent_thread_lock=True, quiet=True, theme=theme(), css=CSS)
    return demo


def public_domain(gallery) -> None:
    gallery.enroll("Eileen Collins", [EXAMPLES / "astronaut.jpg"])
    gallery.enroll("Grace Hopper", [EXAMPLES / "hopper.jpg"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    args = parser.parse_args()
    args.out.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )

        demo = launch(public_domain, 7898)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto("http://127.0.0.1:7898/", wait_until="domcontentloaded")
        page.get_by_role("tab", name="Verify").wait_for(timeout=60_000)
        page.locator("#verify-a input[type=file]").set_input_files(str(EXAMPLES / "astronaut.jpg"))
        page.locator("#verify-b input[type=file]").set_input_files(str(EXAMPLES / "astronaut_2.jpg"))
        page.wait_for_timeout(1500)
        page.get_by_role("button", name="Verify", exact=True).click()
        page.locator("#verify-verdict").get_by_text("Same person").wait_for(timeout=120_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(args.out / "verify.png"), full_page=True)

        page.get_by_role("button", name="Compare every model", exact=True).click()
        page.locator("#verify-verdict").get_by_text("facenet-casia-webface").wait_for(timeout=300_000)
        page.wait_for_timeout(2000)
        page.screenshot(path=str(args.out / "compare.png"), full_page=True)

        page.get_by_role("tab", name="Identify").click()
        page.locator("#identify-image input[type=file]").set_input_files(str(EXAMPLES / "group.jpg"))
        page.wait_for_timeout(1500)
        page.get_by_role("button", name="Identify", exact=True).click()
        page.wait_for_function("() => document.body.innerText.includes('Grace Hopper (')", timeout=120_000)
        page.wait_for_timeout(2000)
        page.screenshot(path=str(args.out / "identify.png"), full_page=True)

        page.get_by_role("tab", name="Gallery").click()
        page.wait_for_timeout(4000)
        page.screenshot(path=str(args.out / "gallery.png"), full_page=True)
        page.close()

        # A phone: every tab on two lines, the verdict and its figure stacked.
        page = browser.new_page(viewport={"width": 400, "height": 900})
        page.goto("http://127.0.0.1:7898/", wait_until="domcontentloaded")
        page.get_by_role("tab", name="Verify").wait_for(timeout=60_000)
        page.locator("#verify-a input[type=file]").set_input_files(str(EXAMPLES / "astronaut.jpg"))
        page.locator("#verify-b input[type=file]").set_input_files(str(EXAMPLES / "hopper.jpg"))
        page.wait_for_timeout(2000)
        page.get_by_role("button", name="Verify", exact=True).click()
        page.locator("#verify-verdict").get_by_text("Different people").wait_for(timeout=120_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(args.out / "phone.png"), full_page=True)
        page.close()
        demo.close()

        def both_models(gallery) -> None:  # the cast, embedded by every model that runs offline
            gallery.import_path(CAST)

        demo = launch(both_models, 7899)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto("http://127.0.0.1:7899/", wait_until="domcontentloaded")
        page.get_by_role("tab", name="Explorer").wait_for(timeout=60_000)
        page.get_by_role("tab", name="Explorer").click()
        page.get_by_label("Models (pick two to compare)").click()
        page.get_by_role("option", name="facenet-casia-webface", exact=True).click()
        page.keyboard.press("Escape")
        page.get_by_role("button", name="Explore", exact=True).click()
        page.wait_for_function("() => document.body.innerText.includes('faces of 8 people')", timeout=120_000)
        page.wait_for_timeout(3000)
        page.screenshot(path=str(args.out / "explorer.png"), full_page=True)

        page.get_by_role("tab", name="Fine-tune").click()
        page.get_by_label("New model name").fill("cast-adapter")
        page.get_by_role("button", name="Fine-tune", exact=True).click()
        page.wait_for_function("() => document.body.innerText.includes('Saved cast-adapter')", timeout=300_000)
        page.wait_for_timeout(3000)
        page.screenshot(path=str(args.out / "finetune.png"), full_page=True)
        browser.close()
        demo.close()
    print("screenshots in", args.out)


if __name__ == "__main__":
    main()
