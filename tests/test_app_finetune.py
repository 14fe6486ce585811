"""The dashboard on real cast photos: zip import, a group photo named, a fine-tune that shows up everywhere."""

from __future__ import annotations

import json
import zipfile

import pytest
from gradio_client import Client, handle_file
from test_app import launch

pytestmark = [pytest.mark.slow, pytest.mark.shared]

CAST = ["amy", "bernadette", "howard", "leonard", "penny", "raj", "sheldon", "stuart"]


@pytest.fixture(scope="module")
def bbt_app(settings, shared_faces, tmp_path_factory):
    from dataclasses import replace

    home = tmp_path_factory.mktemp("finetune-home")
    demo, services, url = launch(replace(settings, home=home), tmp_path_factory.mktemp("bbt-gallery"))
    archive = tmp_path_factory.mktemp("zip") / "bbt.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((shared_faces / "bbt_faceapi").rglob("*.png")):
            zf.write(path, f"bbt/{path.relative_to(shared_faces / 'bbt_faceapi')}")
        zf.writestr("../escape/evil.png", b"not really")  # a zip-slip entry is ignored, never written
    services.lfw_root = lfw_test_subset(shared_faces / "lfw", tmp_path_factory.mktemp("lfw"))
    yield services, url, archive
    demo.close()


def lfw_test_subset(lfw, root, per_kind: int = 20):
    """LFW's View 1 test pairs cut to the first ``per_kind`` same-person and different-person pairs (the
    real file's format and photos), so the Fine-tune tab's comparison on them runs in seconds, not minutes."""
    lines = (lfw / "pairsDevTest.txt").read_text().splitlines()
    total = int(lines[0])
    pairs = lines[1 : 1 + per_kind] + lines[1 + total : 1 + total + per_kind]
    (root / "pairsDevTest.txt").write_text("\n".join([str(per_kind), *pairs]) + "\n")
    for line in pairs:
        parts = line.split()
        for name in (parts[0], parts[2] if len(parts) == 4 else parts[0]):
            if not (root / name).exists():
                (root / name).symlink_to(lfw / name)
    return root


def test_zip_import_then_group_photo_then_finetune(bbt_app, shared_faces):
    services, url, archive = bbt_app
    client = Client(url, verbose=False)
    summary = client.predict(handle_file(str(archive)), api_name="/import")
    assert "of **8** people" in summary
    *_, people = client.predict(api_name="/people")
    assert sorted(p["name"] for p in people) == CAST
    assert not (archive.parent.parent / "escape").exists()

    # Group photo bbt4 has six of the cast; every face found must be named as one of them.
    *_, result = client.predict(
        handle_file(str(shared_faces / "bbt_faceapi" / "_group_photos" / "bbt4.jpg")), api_name="/identify"
    )
    named = [f["name"] for f in result["faces"] if f["name"]]
    assert len(named) >= 4 and set(named) <= set(CAST)
    assert len(set(named)) == len(named), f"two faces got the same name: {named}"

    note, table, curves, map_before, map_after, hist_before, hist_after, _saved, report = client.predict(
        "dlib-resnet", "bbt-adapter", 10, api_name="/finetune"
    )
    assert report["name"] == "bbt-adapter" and report["val_people"] >= 2
    # Against its base where it counts: LFW's test pairs, each model at its own threshold, the verdict first.
    versus = report["versus_base"]
    assert versus["on"] == "general" and versus["pairs"] == 40 and versus["verdict"] in ("better", "worse", "same")
    words = {"better": "Better than", "worse": "Worse than", "same": "As good as"}[versus["verdict"]]
    assert note.startswith(f"**{words} the base (dlib-resnet) on LFW View 1 test pairs (40 pairs)")
    assert report["before"]["general"]["accuracy_at_threshold"] == versus["base_accuracy"]
    # The before/after maps and histograms hold the held-out people's faces only.
    held = set(report["held_out_people"])
    assert len(held) == report["val_people"]
    for figure in (map_before, map_after):
        assert {t["name"] for t in json.loads(figure["plot"])["data"]} == held
    for figure in (hist_before, hist_after):
        counts = [t["name"] for t in json.loads(figure["plot"])["data"]]
        assert sum(int(c.split("(")[1].rstrip(")")) for c in counts) == report["before"]["pairs"]
    metrics = {row[0] for row in table["data"]}
    assert {"Mean distance, same person", "Different-person pairs accepted (FAR)", "Threshold (distance)"} <= metrics
    assert not [m for m in metrics if "_" in m]  # no metric by its short name on the page
    assert "bbt-adapter" in {s.name for s in services.pipeline.models()}
    # The new model identifies against the gallery straight away.
    *_, again = client.predict(
        handle_file(str(shared_faces / "bbt_faceapi" / "_group_photos" / "bbt4.jpg")),
        "bbt-adapter",
        api_name="/identify",
    )
    assert len([f for f in again["faces"] if f["name"]]) >= 3
    with pytest.raises(Exception, match="already exists"):
        client.predict("dlib-resnet", "bbt-adapter", 3, api_name="/finetune")

    # ArcFace, trained for darkness on the gallery's own thumbnails: the table has the degraded slice, the
    # curves have a point per epoch, and the saved model's curves come back on their own.
    services.lfw_root = archive.parent / "no-lfw-here"  # a Space: the comparison falls back on the held-out people
    note, table, curves, *_figures, saved, report = client.predict(
        "dlib-resnet", "bbt-dark", 6, "arcface", "dark", 3, api_name="/finetune"
    )
    assert report["versus_base"]["on"] == "held_out" and "general" not in report["before"]
    assert "LFW is not on this machine, so this compares them on the held-out people only." in note
    assert report["loss"] == "arcface" and report["augment"]["condition"] == "dark" and "slice" in report["after"]
    assert {"Degraded: accuracy at the threshold", "Degraded: AUC (1 is perfect, 0.5 is chance)"} <= {
        row[0] for row in table["data"]
    }
    points = [len(trace["x"]) for trace in json.loads(curves["plot"])["data"]]
    assert points == [report["epochs_run"]] * 4
    again, again_table = client.predict("bbt-dark", api_name="/finetune_curves")
    assert (
        json.loads(again["plot"])["data"] == json.loads(curves["plot"])["data"] and again_table["data"] == table["data"]
    )
