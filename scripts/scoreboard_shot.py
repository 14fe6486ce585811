"""The scoreboard of docs/EVALUATION.md, regenerated: a gallery of LFW people the project never uses for
calibration, imported, scored by ``python -m facedemo scoreboard`` and shot in Debian's chromium.

Usage: .venv/bin/python scripts/scoreboard_shot.py [--people 30] [--photos 3] [--out docs/scoreboard.png]
Needs ../shared/faces/lfw and /usr/bin/chromium. The people: those with at least ``--photos`` photos who
are in neither of View 1's pairs files (thresholds, robustness) nor in the open-set calibration's split
(``bench identify --open-set``: its gallery, strangers and calibration strangers), the first ``--people``
by name; their first ``--photos`` photos each. The picture shows the table only (names, numbers,
sentences), never a face: LFW's photos are not copied into the repository.
"""

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from playwright.sync_api import sync_playwright  # noqa: E402

from facedemo.bench.identify import open_set_split  # noqa: E402
from facedemo.cli import main as cli  # noqa: E402
from facedemo.services import Services  # noqa: E402
from facedemo.settings import Settings  # noqa: E402
from facedemo.ui import CSS, build_app, theme  # noqa: E402

LFW = REPO.parent / "shared" / "faces" / "lfw"


def unused_people(lfw: Path, photos: int) -> list[str]:
    """LFW people with at least ``photos`` photos that no calibration of the project has seen."""
    used = set()
    for name in ("pairsDevTrain.txt", "pairsDevTest.txt"):
        for line in (lfw / name).read_text().splitlines()[1:]:
            parts = line.split()
            used |= {parts[0]} | ({parts[2]} if len(parts) == 4 else set())
    split = open_set_split(lfw)
    used |= set(split.gallery) | {p.parent.name for p in split.strangers + split.calibration}
    return sorted(
        p.name for p in lfw.iterdir() if p.is_dir() and p.name not in used and len(list(p.glob("*.jpg"))) >= photos
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=30)
    parser.add_argument("--photos", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "scoreboard.png")
    parser.add_argument("--gallery", type=Path, help="a gallery this script imported before: score and shoot it again")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="facedemo-scoreboard-"))
    os.environ["FACEDEMO_HOME"] = str(tmp / "home")  # the shipped calibrations only, no earlier run's
    gallery = args.gallery or tmp / "gallery"
    if args.gallery is None:
        people = tmp / "people"
        for name in unused_people(LFW, args.photos)[: args.people]:
            (people / name).mkdir(parents=True)
            for photo in sorted((LFW / name).glob("*.jpg"))[: args.photos]:
                shutil.copy(photo, people / name / photo.name)
        assert cli(["import", str(people), "--gallery", str(gallery)]) == 0
    assert cli(["scoreboard", "--gallery", str(gallery)]) == 0
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli(["scoreboard", "--gallery", str(gallery), "--json"]) == 0
    (tmp / "scoreboard.json").write_text(out.getvalue())
    print("JSON in", tmp / "scoreboard.json")
    print({m["model"]: m["identification"] for m in json.loads(out.getvalue())["models"]})

    services = Services(replace(Settings.from_env(), gallery_dir=gallery, public=False))
    demo = build_app(services)
    demo.queue().launch(server_port=7897, prevent_thread_lock=True, quiet=True, theme=theme(), css=CSS)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.goto("http://127.0.0.1:7897/", wait_until="domcontentloaded")
        page.get_by_role("tab", name="Explorer").wait_for(timeout=60_000)
        page.get_by_role("tab", name="Explorer").click()
        page.get_by_role("button", name="Score every model").click()
        page.locator("#scoreboard-table td[data-row]").first.wait_for(timeout=600_000)
        page.wait_for_timeout(1000)
        top = page.get_by_text("Scoreboard: every model on").bounding_box()
        bottom = page.locator("#scoreboard-table").bounding_box()
        clip = {"x": 0, "y": top["y"] - 8, "width": 1000, "height": bottom["y"] + bottom["height"] - top["y"] + 16}
        page.screenshot(path=str(args.out), clip=clip, full_page=True)
        browser.close()
    demo.close()
    print("picture in", args.out)


if __name__ == "__main__":
    main()
