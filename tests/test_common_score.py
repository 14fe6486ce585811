"""One scale for every model: the common score read off the shipped LFW distributions, and the comparisons
that show it (with the margin to each threshold, the time per face, and where the models disagree), in the
core on real photos, through the real app, and in Debian's chromium at 400 px."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_app import EXAMPLES, launch
from test_browser import browser, upload  # noqa: F401  (browser is a fixture)

from facedemo.files import read_json
from facedemo.models import distributions
from facedemo.models.distributions import CommonScore, common_score
from facedemo.models.thresholds import SHIPPED as THRESHOLDS

SHIPPED = read_json(distributions.SHIPPED)
CALIBRATED = read_json(THRESHOLDS)
MODELS = sorted(SHIPPED)
SPLIT_PAIR = ("raj/raj5.png", "sheldon/sheldon1.png")  # dlib-resnet: 0.33 (same); CASIA: 1.36 (different)


# -- the score function against the shipped distributions --------------------------------------------
def test_every_built_in_model_ships_its_distributions():
    assert MODELS == ["dlib-resnet", "facenet-casia-webface"]


@pytest.mark.parametrize("model", MODELS)
def test_the_score_rises_with_the_distance_from_none_to_all(model):
    record = SHIPPED[model]
    grid = np.linspace(0.0, record["edges"][-1] + 0.2, 400)
    shares = [common_score(record, d, model).stranger_share for d in grid]
    assert np.all(np.diff(shares) >= 0)  # monotone: a closer pair is never more common among strangers
    assert shares[0] == 0.0 and shares[-1] == 1.0
    assert common_score(record, 0.0).text == f"fewer than 1 in {sum(record['different']):,}"
    assert common_score(record, record["edges"][-1]).text == f"all {sum(record['different']):,}"


@pytest.mark.parametrize("model", MODELS)
def test_at_each_models_own_threshold_the_score_is_what_its_pairs_say(model):
    """The same meaning for every model: at its verification threshold the score is the share of its LFW
    different-person pairs that were that close, as counted from the histogram and as measured when the
    threshold was calibrated on the same pairs (``far`` in thresholds.json), to within one bin's pairs."""
    record, threshold = SHIPPED[model], CALIBRATED[model]["threshold"]
    edges, counts = np.asarray(record["edges"]), np.asarray(record["different"])
    total = counts.sum()
    i = int(np.searchsorted(edges, threshold, side="right")) - 1  # the bin the threshold falls in
    below, inside = counts[:i].sum(), counts[i]
    score = common_score(record, threshold, model)
    assert below / total <= score.stranger_share <= (below + inside) / total
    assert abs(score.stranger_share - CALIBRATED[model]["far"]) <= inside / total
    assert 0.001 < score.stranger_share < 0.05  # both models' thresholds: about 1 stranger pair in 100
    assert score.pairs == total and score.source == record["source"] and score.resolved


def test_the_same_raw_distance_means_different_things_to_the_two_models():
    """0.45 is past dlib-resnet's threshold and deep inside CASIA's same-person side: the score says so."""
    dlib = common_score(SHIPPED["dlib-resnet"], 0.45)
    casia = common_score(SHIPPED["facenet-casia-webface"], 0.45)
    assert dlib.resolved and dlib.stranger_share > 0.01
    assert not casia.resolved and casia.text == "fewer than 1 in 1,100"


def test_the_words_of_a_score():
    def text(share: float) -> str:
        return CommonScore("m", 0.4, share, 1100, "LFW").text

    assert text(1 / 183) == "1 in 180"
    assert text(1 / 2049) == "fewer than 1 in 1,100"  # finer than the pairs can say
    assert text(2 / 1100) == "1 in 550"
    assert text(0.38) == "38 in 100"
    assert text(1.0) == "all 1,100"


def test_a_model_without_distributions_gets_no_number(tmp_path):
    assert distributions.load("facenet-vggface2", tmp_path) is None
    assert common_score(None, 0.5) is None
    assert common_score({"edges": [0, 1], "same": [3], "different": [0]}, 0.5) is None


# -- the core on real photos -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def cast(shared_faces) -> Path:
    return shared_faces / "bbt_faceapi"


@pytest.fixture(scope="module")
def casia_pipeline(casia_settings):
    from facedemo.pipeline import Pipeline

    return Pipeline(casia_settings)


@pytest.mark.slow  # both models loaded: about 40 s on 2 cores
def test_verify_compare_on_a_pair_the_models_agree_on(casia_pipeline):
    comparison = casia_pipeline.compare_models(EXAMPLES / "astronaut.jpg", EXAMPLES / "astronaut_2.jpg")
    assert [r.model for r in comparison.results] == ["facenet-casia-webface", "dlib-resnet"]
    assert comparison.agree and comparison.split is None
    for r in comparison.results:
        assert r.same_person and r.margin < 0 and r.margin == pytest.approx(r.distance - r.threshold)
        assert r.score == common_score(SHIPPED[r.model], r.distance, r.model)
        assert r.ms_per_face > 0
    record = comparison.to_json()
    assert record["agree"] is True and record["split"] is None
    alone, _, _ = casia_pipeline.verify(EXAMPLES / "astronaut.jpg", EXAMPLES / "astronaut_2.jpg", "dlib-resnet")
    assert alone.score == common_score(SHIPPED["dlib-resnet"], alone.distance, "dlib-resnet")
    assert alone.ms_per_face > 0 and alone.to_json()["margin"] == round(alone.distance - alone.threshold, 4)
    assert all(m["score"]["text"] and m["ms_per_face"] > 0 and m["margin"] < 0 for m in record["models"])


@pytest.mark.slow
@pytest.mark.shared
def test_verify_compare_says_when_the_verdicts_split(casia_pipeline, cast):
    comparison = casia_pipeline.compare_models(*(cast / p for p in SPLIT_PAIR))
    by = {r.model: r for r in comparison.results}
    assert by["dlib-resnet"].same_person and not by["facenet-casia-webface"].same_person
    assert not comparison.agree
    assert comparison.split == (
        "The models disagree: facenet-casia-webface says different people, dlib-resnet says same person."
    )
    # raw distances cannot be compared; the scores can: dlib-resnet found this pair closer than any of its
    # LFW stranger pairs, CASIA as close as a good share of them
    assert by["dlib-resnet"].score.text == "fewer than 1 in 1,100"
    assert by["facenet-casia-webface"].score.stranger_share > 0.1
    assert by["dlib-resnet"].margin < 0 < by["facenet-casia-webface"].margin


@pytest.fixture(scope="module")
def cast_app(casia_settings, cast, tmp_path_factory):
    """The dashboard with the cast enrolled (three photos each) in both offline models."""
    demo, services, url = launch(casia_settings, tmp_path_factory.mktemp("score-gallery"))
    gallery = services.owned()
    for folder in sorted(p for p in cast.iterdir() if p.is_dir() and not p.name.startswith("_")):
        gallery.enroll(folder.name, sorted(folder.glob("*.png"))[:3])
    yield services, url
    demo.close()


@pytest.mark.slow
@pytest.mark.shared
def test_identify_compare_marks_the_faces_the_models_name_differently(cast_app, cast):
    from facedemo.gallery.identify import compare_models

    gallery = cast_app[0].owned()  # the cast, three photos each, in both models
    comparison = compare_models(gallery.pipeline, [gallery], cast / "_group_photos" / "bbt1.jpg")
    split = comparison.disagreements
    assert split, "the two models name every face of bbt1 alike"
    for i, matches in enumerate(zip(*(r.faces for r in comparison.results)), 1):
        assert (len({m.name for m in matches}) > 1) == (i in split)
    record = comparison.to_json()
    assert record["agree"] is False and record["disagree"] == split
    unknown = 0
    for result in comparison.results:
        assert result.ms_per_face > 0
        record = SHIPPED[result.model]
        for face, shown in zip(
            result.faces, next(r for r in comparison.to_json()["models"] if r["model"] == result.model)["faces"]
        ):
            if face.name is None:  # unknown: its nearest person, and how near, are kept and scored
                unknown += 1
                assert face.nearest == face.candidates[0] and face.margin > 0
                assert face.score == common_score(record, face.nearest.distance, result.model)
                assert shown["nearest"] == {"name": face.nearest.name, "distance": round(face.nearest.distance, 4)}
            else:
                assert face.nearest is None and shown["nearest"] is None and face.margin <= 0
                assert face.score == common_score(record, face.distance, result.model)
    assert unknown  # some model left a face of bbt1 unknown: that is where the models split


# -- through the real app, and in a real browser at 400 px -------------------------------------------
def upload_file(path: Path):
    from gradio_client import handle_file

    return handle_file(str(path))


@pytest.mark.slow
@pytest.mark.shared
def test_the_api_carries_the_score_the_split_and_the_nearest(cast_app, cast):
    from gradio_client import Client

    services, url = cast_app
    client = Client(url, verbose=False)
    verdict, _, _, compared = client.predict(*(upload_file(cast / p) for p in SPLIT_PAIR), api_name="/compare")
    assert compared["agree"] is False
    assert compared["split"] == (
        "The models disagree: facenet-casia-webface says different people, dlib-resnet says same person."
    )
    assert compared["split"] in verdict and "score: stranger pairs this close" in verdict
    for row in compared["models"]:
        assert row["ms_per_face"] > 0 and row["score"]["pairs"] > 1000
        assert row["margin"] == pytest.approx(row["distance"] - row["threshold"], abs=2e-4)
        assert row["score"]["text"] in verdict

    _, table, _, found = client.predict(
        upload_file(cast / "_group_photos" / "bbt1.jpg"), 3, "centroid", api_name="/identify_compare"
    )
    assert found["agree"] is False and found["disagree"]
    assert "≠ the models disagree" in table and "The models disagree on face" in table
    unknown = [f for row in found["models"] for f in row["faces"] if f["name"] is None]
    assert unknown and all(f["nearest"]["name"] and f["score"] and f["margin"] > 0 for f in unknown)
    assert table.count("cmp-nearest") == len(unknown)

    _, table, _, _, _, alone = client.predict(
        upload_file(cast / "_group_photos" / "bbt2.jpg"), "dlib-resnet", 3, "centroid", api_name="/identify"
    )
    assert alone["ms_per_face"] > 0
    assert all((f["nearest"] is None) == (f["name"] is not None) for f in alone["faces"])
    assert all(f["score"]["text"] in table for f in alone["faces"])
    strangers = [f for f in alone["faces"] if f["name"] is None]  # dlib-resnet leaves Raj unknown here
    assert strangers and table.count("cmp-nearest") == len(strangers)
    assert all(f"nearest: {f['nearest']['name']} {f['nearest']['distance']:.3f}" in table for f in strangers)


WIDER_THAN_THE_WINDOW = """() => [...document.querySelectorAll('table, .cmp-table, .cmp-row, .cmp-cell')]
    .filter(e => e.offsetParent !== null)
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 || e.scrollWidth > e.clientWidth + 1)
    .map(e => e.className || e.tagName)"""


def assert_inside(page, locator, width: int) -> None:
    """Every one of these is on screen and ends inside the window: nothing to scroll sideways for."""
    assert locator.count(), "nothing to look at"
    for element in locator.all():
        assert element.is_visible()
        box = element.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width + 1, f"{element.inner_text()!r} is cut"


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.browser
def test_a_phone_sees_the_score_the_split_and_the_nearest(browser, cast_app, cast, tmp_path):  # noqa: F811
    width = 400
    _, url = cast_app
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("tab", name="Verify").wait_for(timeout=60_000)
        page.get_by_role("tab", name="Verify").click()
        upload(page, "verify-a", cast / SPLIT_PAIR[0])
        upload(page, "verify-b", cast / SPLIT_PAIR[1])
        for which in ("verify-a", "verify-b"):
            page.locator(f"#{which} img").first.wait_for(timeout=30_000)
        page.wait_for_timeout(500)
        page.get_by_role("button", name="Compare every model").click()
        verdict = page.locator("#verify-verdict")
        split = verdict.locator(".cmp-split")
        split.wait_for(timeout=120_000)
        assert split.inner_text() == (
            "The models disagree: facenet-casia-webface says different people, dlib-resnet says same person."
        )
        assert_inside(page, verdict.locator(".cmp-verdict"), width)  # the verdicts and the common scores,
        assert_inside(page, verdict.locator(".cmp-score"), width)  # one per model, whole, in the window
        scores = verdict.locator(".cmp-score").all_inner_texts()
        assert len(scores) == 2 and all(s.startswith("score: stranger pairs this close") for s in scores)
        assert "fewer than 1 in 1,100" in scores[1]  # dlib-resnet's, second: closer than every LFW stranger pair
        margins = verdict.locator(".cmp-margin").all_inner_texts()  # signed, with the side in words
        assert "over the threshold: different-people side" in margins[0] and margins[0].count("+") == 1
        assert "under the threshold: same-person side" in margins[1] and "-0." in margins[1]
        assert "how many of LFW's different-person pairs" in verdict.inner_text()  # the one sentence
        assert page.evaluate(WIDER_THAN_THE_WINDOW) == []

        page.get_by_role("tab", name="Identify").click()
        upload(page, "identify-image", cast / "_group_photos" / "bbt1.jpg")
        page.locator("#identify-image img").first.wait_for(timeout=30_000)
        page.wait_for_timeout(500)
        page.get_by_role("button", name="Compare every model").click()
        table = page.locator("#identify-table")
        table.locator(".cmp-disagree").first.wait_for(timeout=120_000)
        first = table.locator(".cmp-face").first  # the faces the models disagree on come first, marked
        assert "≠ the models disagree" in first.inner_text()
        assert "over the threshold: unknown side" in first.inner_text()  # the unknown answer's margin
        nearest = table.locator(".cmp-nearest").first
        assert nearest.inner_text().startswith("(nearest: ")
        assert nearest.evaluate("e => getComputedStyle(e).color") == "rgb(136, 136, 136)"  # greyed
        assert_inside(page, table.locator(".cmp-score"), width)
        assert_inside(page, table.locator(".cmp-name"), width)
        assert page.evaluate(WIDER_THAN_THE_WINDOW) == []

        # one model's table (the default, dlib-resnet, which leaves Raj unknown): his nearest, greyed
        upload(page, "identify-image", cast / "_group_photos" / "bbt2.jpg")
        page.wait_for_timeout(1500)
        page.get_by_role("button", name="Identify", exact=True).click()
        table.locator(".identify-rows .cmp-nearest").first.wait_for(timeout=120_000)
        assert "ms per face" in table.inner_text()
        assert_inside(page, table.locator(".cmp-score"), width)
        assert page.evaluate(WIDER_THAN_THE_WINDOW) == []
    finally:
        page.screenshot(path=str(tmp_path / "score-400.png"), full_page=True)
        page.close()


def test_the_margin_in_words():
    from facedemo.ui.compare_view import IDENTIFY_SIDES, margin_text

    assert margin_text(-0.0891) == "-0.089 (under the threshold: same-person side)"
    assert margin_text(0.2217) == "+0.222 (over the threshold: different-people side)"
    assert margin_text(0.0, IDENTIFY_SIDES).endswith("named side)")  # at the threshold is a match, as in verify
    assert "no distance threshold" in margin_text(None)  # the classifier's limit is a probability
