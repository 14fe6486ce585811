"""Identify with every model: the same photo, a row per model and face, through the real app and the CLI."""

from __future__ import annotations

import json

import pytest
from gradio_client import Client
from test_app import EXAMPLES, launch, photo
from test_cli_gallery import one_error_line

from facedemo.cli import main


def names(row: dict) -> list:
    return [face["name"] for face in row["faces"]]


@pytest.mark.slow
def test_compare_every_model_through_the_api(casia_settings, tmp_path):
    """Two models with people enrolled: one row per model, each at its own threshold, the faces in the same order."""
    demo, services, url = launch(casia_settings, tmp_path / "gallery")
    try:
        client = Client(url, verbose=False)
        client.predict("Eileen Collins", [photo("astronaut.jpg")], api_name="/enroll")  # once: every model embeds it
        annotated, table, note, result = client.predict(photo("group.jpg"), 3, "centroid", api_name="/identify_compare")
    finally:
        demo.close()
    rows = {row["model"]: row for row in result["models"]}
    available = {s.name for s in services.pipeline.models() if s.available}
    assert set(rows) == available == {"dlib-resnet", "facenet-casia-webface"}
    assert len(result["models"]) == 2  # one row per model
    for row in rows.values():
        assert names(row) == ["Eileen Collins", None]  # Collins enrolled, Grace Hopper a stranger, by both models
        assert row["faces"][0]["distance"] < row["threshold"]
    assert rows["dlib-resnet"]["threshold"] != rows["facenet-casia-webface"]["threshold"]
    assert [b["box"] for b in rows["dlib-resnet"]["faces"]] == [
        b["box"] for b in rows["facenet-casia-webface"]["faces"]
    ]
    assert [u["model"] for u in result["unavailable"]] == ["facenet-vggface2"] and "facenet-vggface2" in note
    assert "The models agree on every face." in table  # Collins named and Hopper unknown by both
    assert table.count("Eileen Collins") >= 4  # named by both models; Hopper's nearest, greyed, in both
    assert table.count("cmp-nearest") == 2 and table.count("unknown side") == 2  # Hopper, by each model
    assert len(annotated["annotations"]) == 2


def test_compare_in_public_mode_keeps_each_visitor_apart(settings, tmp_path):
    """A visitor's comparison searches their own gallery and the shared one, never another visitor's."""
    demo, services, url = launch(settings, tmp_path / "gallery", public=True)
    try:
        assert not hasattr(services.shared(), "enroll")  # a visitor's view of the shared gallery cannot write
        services.owned().enroll("Grace Hopper", [photo("hopper.jpg")["path"]])
        alice, bob = Client(url, verbose=False), Client(url, verbose=False)
        alice.predict("Alice Private", [photo("astronaut.jpg")], api_name="/enroll")
        *_, mine = alice.predict(photo("group.jpg"), 3, "centroid", api_name="/identify_compare")
        *_, theirs = bob.predict(photo("group.jpg"), 3, "centroid", api_name="/identify_compare")
    finally:
        demo.close()
    assert sorted(row["model"] for row in mine["models"]) == [
        "dlib-resnet",
        "facenet-casia-webface",
    ]  # one enrollment, every model
    assert all(names(row) == ["Alice Private", "Grace Hopper"] for row in mine["models"])
    assert all(names(row) == [None, "Grace Hopper"] for row in theirs["models"])
    assert all(
        c["name"] != "Alice Private" for row in theirs["models"] for face in row["faces"] for c in face["candidates"]
    )


def test_compare_with_nobody_enrolled_is_a_sentence(settings, tmp_path):
    demo, _, url = launch(settings, tmp_path / "empty")
    try:
        with pytest.raises(Exception, match="No model has anyone enrolled"):
            Client(url, verbose=False).predict(photo("group.jpg"), 3, "centroid", api_name="/identify_compare")
    finally:
        demo.close()


def test_identify_compare_in_the_cli(capsys, tmp_path, monkeypatch, home):
    monkeypatch.setenv("FACEDEMO_HOME", str(home))
    gallery = tmp_path / "g"
    assert (
        main(
            [
                "enroll",
                "Eileen Collins",
                f"{EXAMPLES}/astronaut.jpg",
                "--gallery",
                str(gallery),
                "--model",
                "dlib-resnet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["identify", f"{EXAMPLES}/group.jpg", "--gallery", str(gallery), "--compare", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = {row["model"]: row for row in result["models"]}
    assert sorted(rows) == ["dlib-resnet", "facenet-casia-webface"]  # enrolled once, seen by both offline models
    assert all(names(row) == ["Eileen Collins", None] for row in rows.values())
    assert "facenet-vggface2" in {u["model"] for u in result["unavailable"]}
    # the same answer as a plain identify with that model
    assert (
        main(["identify", f"{EXAMPLES}/group.jpg", "--gallery", str(gallery), "--model", "dlib-resnet", "--json"]) == 0
    )
    alone = json.loads(capsys.readouterr().out)
    assert alone.pop("ms_per_face") > 0 and rows["dlib-resnet"].pop("ms_per_face") > 0  # measured in each run
    assert alone == rows["dlib-resnet"]
    assert (
        main(["identify", f"{EXAMPLES}/group.jpg", "--gallery", str(gallery), "--compare", "--threshold", "0.5"]) == 2
    )
    assert "--compare uses each model's own threshold" in one_error_line(capsys.readouterr().err)
