"""Issue #23 through the real dashboard's API (gradio_client): where each model looks on a Verify pair
(``/explain``), and where the models disagree on the gallery's own people (``/disagreements``)."""

from __future__ import annotations

import json

import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from test_app import EXAMPLES, launch  # noqa: E402

BBT_PEOPLE = ("amy", "howard", "penny", "sheldon")


def photo(name: str):
    return handle_file(str(EXAMPLES / name))


@pytest.fixture(scope="module")
def app(settings, tmp_path_factory):
    gallery = tmp_path_factory.mktemp("explain-gallery")
    demo, services, url = launch(settings, gallery)
    yield services, url, gallery
    demo.close()


@pytest.mark.slow
def test_explain_draws_a_map_per_available_model_on_the_examples(app):
    services, url, _ = app
    note, plot, record = Client(url, verbose=False).predict(
        photo("astronaut.jpg"), photo("astronaut_2.jpg"), api_name="/explain"
    )
    available = services.available_models()
    assert [m["model"] for m in record["models"]] == available and available
    for m in record["models"]:
        assert len(m["map"]) == m["grid"] and all(len(row) == m["grid"] for row in m["map"])
        assert m["occluded"] == "a" and m["same_person"] is True  # the same astronaut, for every model
    figure = json.loads(plot["plot"])
    assert sum(t["type"] == "heatmap" for t in figure["data"]) == len(available)
    assert "face A" in note and "Red" in note and "Blue" in note
    assert all(name in note for name in available)


def test_both_endpoints_are_named_with_their_parameters(app):
    _, url, _ = app
    named = Client(url, verbose=False).view_api(return_format="dict")["named_endpoints"]
    assert [p["parameter_name"] for p in named["/explain"]["parameters"]] == ["a", "b"]
    assert [p["parameter_name"] for p in named["/disagreements"]["parameters"]] == ["source", "hardest"]


def test_explain_needs_two_photos_it_can_read(app, tmp_path):
    _, url, _ = app
    client = Client(url, verbose=False)
    with pytest.raises(Exception, match="Please add photo B first"):
        client.predict(photo("hopper.jpg"), None, api_name="/explain")
    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    with pytest.raises(Exception, match="not an image file we can read"):
        client.predict(handle_file(str(text)), photo("hopper.jpg"), api_name="/explain")


@pytest.mark.parametrize(
    "args, sentence",
    [
        (("gallery", "abc"), "The number of hardest pairs must be a whole number from 1 to 25, not 'abc'."),
        (("gallery", 1000), "The number of hardest pairs must be a whole number from 1 to 25, not 1000."),
        (("gallery", 2.5), "The number of hardest pairs must be a whole number from 1 to 25, not 2.5."),
        (("everyone", 5), "Pick the pairs to judge: 'gallery' or 'lfw', not 'everyone'."),
    ],
)
def test_disagreement_parameters_are_sentences(app, args, sentence):
    _, url, _ = app
    with pytest.raises(Exception) as caught:
        Client(url, verbose=False).predict(*args, api_name="/disagreements")
    assert sentence in str(caught.value) and "went wrong on our side" not in str(caught.value)


def test_disagreements_on_an_empty_gallery_say_what_to_enroll(settings, tmp_path):
    demo, _, url = launch(settings, tmp_path / "empty")
    try:
        note, plot, tiles, record = Client(url, verbose=False).predict("gallery", 10, api_name="/disagreements")
    finally:
        demo.close()
    assert "Nobody is enrolled in the gallery yet" in note and "two photos or more" in note
    assert plot is None and record is None and not tiles


@pytest.mark.slow
def test_disagreements_on_a_few_bbt_people(app, shared_faces):
    """Four people of bbt_faceapi, three photos each, enrolled through /enroll: the verdicts in the JSON are
    each model's distance against its threshold, and the disagreements are exactly the pairs they split."""
    services, url, gallery = app
    client = Client(url, verbose=False)
    folder = shared_faces / "bbt_faceapi"
    for person in BBT_PEOPLE:
        photos = sorted((folder / person).glob("*.png"))[:3]
        client.predict(person.title(), [handle_file(str(p)) for p in photos], api_name="/enroll")
    note, plot, tiles, record = client.predict("gallery", 5, api_name="/disagreements")

    models = [m["model"] for m in record["models"]]
    assert record["source"] == "gallery" and record["pairs"] > 0 and models
    thresholds = {m["model"]: m["threshold"] for m in record["models"]}
    for m in record["models"]:
        assert f"**{m['model']}** is right on" in note
    assert f"**{record['pairs']}** pairs of the gallery's own people" in note
    split = record["disagreements"]
    assert record["disagreement_count"] == len(split)
    for p in split:
        assert set(p["same_person"]) == set(models) and len(set(p["same_person"].values())) == 2
        for m in models:
            assert p["same_person"][m] == (p["distances"][m] <= thresholds[m] + 1e-4)
            assert p["correct"][m] == (p["same_person"][m] == p["same"])
    for m, h in record["hardest"].items():
        assert all(not p["same"] and p["same_person"][m] for p in h["false_accepts"])
        assert all(p["same"] and not p["same_person"][m] for p in h["false_rejects"])
        assert len(h["false_accepts"]) <= 5 and len(h["false_rejects"]) <= 5
    if len(models) >= 2:
        assert plot is not None
        assert f"{len(split)} on which the verdicts differ" in json.loads(plot["plot"])["layout"]["title"]["text"]
    # Nothing in the answer names a file on the server: thumbnails are inline, paths left out of the JSON.
    answer = json.dumps([note, tiles, record])
    assert str(gallery) not in answer and "/gradio_api/file=" not in answer
    if split or any(h["false_accepts"] or h["false_rejects"] for h in record["hardest"].values()):
        assert "data:image/jpeg;base64," in tiles


def test_lfw_pairs_are_shown_inline_and_named_without_their_folder(shared_faces):
    """LFW's photos sit outside what gradio may serve: the page gets them inline, and the JSON names them as
    person/file, never by their path on this server."""
    from facedemo.evaluation.disagreement import LabelledPair, compare_verdicts
    from facedemo.ui.disagreements import disagreement_json, disagreement_note, disagreement_tiles

    lfw = shared_faces / "lfw"
    a, b = lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg", lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0002.jpg"
    c = lfw / "Abdullah_Gul" / "Abdullah_Gul_0013.jpg"
    pairs = [
        LabelledPair(str(a), str(b), True, ("Aaron_Peirsol",) * 2, (str(a), str(b))),
        LabelledPair(str(a), str(c), False, ("Aaron_Peirsol", "Abdullah_Gul"), (str(a), str(c))),
    ]
    result = compare_verdicts(
        pairs, {"m1": [0.3, 0.5], "m2": [0.9, 0.85]}, {"m1": 0.6, "m2": 0.8}, 5, "pairsDevTest.txt"
    )
    note, tiles, record = disagreement_note(result), disagreement_tiles(result, 5), disagreement_json(result)
    assert "**2** pairs of LFW View 1 test pairs: 1 of the same person, 1 of different people." in note
    assert "The models' verdicts differ on **2** pair(s)" in note
    assert tiles.count("data:image/jpeg;base64,") == 2 * 2 + 2 + 2  # both split pairs, m1's false accept, m2's reject
    assert "Aaron Peirsol" in tiles
    assert [(p["a"], p["b"]) for p in record["disagreements"]] == [  # the most decided split first
        ("Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "Aaron_Peirsol/Aaron_Peirsol_0002.jpg"),
        ("Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "Abdullah_Gul/Abdullah_Gul_0013.jpg"),
    ]
    assert all("images" not in p for p in record["disagreements"])
    assert str(shared_faces) not in json.dumps([note, record]) and str(shared_faces) not in tiles


@pytest.mark.slow
def test_public_disagreements_are_each_visitors_own(settings, tmp_path, shared_faces):
    """Public mode: a visitor's disagreements are on their own gallery only, with inline thumbnails; another
    visitor, who enrolled nobody, is told what to enroll."""
    demo, services, url = launch(settings, tmp_path / "public", public=True)
    try:
        services.visitors.stop_expiry()
        owner, other = Client(url, verbose=False), Client(url, verbose=False)
        for person in ("leonard", "raj"):
            photos = sorted((shared_faces / "bbt_faceapi" / person).glob("*.png"))[:2]
            owner.predict(person.title(), [handle_file(str(p)) for p in photos], api_name="/enroll")
        note, _, tiles, record = owner.predict("gallery", 3, api_name="/disagreements")
        assert record["pairs"] == 6 and "**6** pairs of the gallery's own people: 2 of the same person" in note
        assert "/gradio_api/file=" not in tiles and str(tmp_path) not in json.dumps([note, tiles, record])
        note, plot, tiles, record = other.predict("gallery", 3, api_name="/disagreements")
        assert "Nobody is enrolled in your private gallery yet" in note and record is None and plot is None
    finally:
        demo.close()


@pytest.mark.slow
def test_lfw_disagreements_through_the_app(app, shared_faces, tmp_path, monkeypatch):
    """The LFW source end to end, on six of View 1's test pairs instead of its 1,000 (minutes on a CPU the
    first time): real models, the note in words, inline photos, no server path."""
    services, url, _ = app
    lines = (shared_faces / "lfw" / "pairsDevTest.txt").read_text().splitlines()
    small = tmp_path / "pairsDevTest.txt"
    small.write_text("\n".join(["3", *lines[1:4], *lines[501:504]]) + "\n")
    from facedemo.services import lfw

    whole = lfw.lfw_disagreements

    def six_pairs(pipeline, flights, public, **options):
        return whole(pipeline, flights, public, root=shared_faces / "lfw", pairs_file=str(small), **options)

    monkeypatch.setattr(lfw, "lfw_disagreements", six_pairs)
    note, plot, tiles, record = Client(url, verbose=False).predict("lfw", 3, api_name="/disagreements")
    assert record["pairs"] == 6 and record["source"] == "pairsDevTest.txt"
    assert "**6** pairs of LFW View 1 test pairs: 3 of the same person, 3 of different people." in note
    assert {m["model"] for m in record["models"]} == set(services.available_models())
    answer = json.dumps([note, tiles, record])
    assert str(shared_faces) not in answer and str(tmp_path) not in answer and "/gradio_api/file=" not in answer
    if len(record["models"]) >= 2:
        assert plot is not None
