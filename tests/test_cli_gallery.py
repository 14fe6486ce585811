"""The gallery sub-commands, run through ``facedemo.cli.main`` as a user would, against real Chroma."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from facedemo.cli import main
from facedemo.gallery.server import chroma_command, chroma_server, free_port

REPO = Path(__file__).resolve().parent.parent
BBT = REPO.parent / "shared" / "faces" / "bbt_faceapi"
MODEL = "dlib-resnet"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared face photos are not part of the repository)")
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("FACEDEMO_MODEL", MODEL)
    monkeypatch.setenv("FACEDEMO_GALLERY", str(tmp_path / "default-gallery"))
    monkeypatch.delenv("CHROMA_HOST", raising=False)
    monkeypatch.delenv("CHROMA_PORT", raising=False)


def one_error_line(err: str) -> str:
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.shared
@pytest.mark.slow
def test_enroll_identify_people_rename_delete(capsys, tmp_path):
    g = tmp_path / "g"
    for person in ("leonard", "sheldon", "raj"):
        photos = sorted(need(BBT / person).glob("*.png"))
        code, out, _ = run(capsys, "enroll", person, *photos, "--gallery", g, "--json")
        assert code == 0 and len(json.loads(out)["added"]) == len(photos)
    code, out, _ = run(capsys, "enroll", "raj", sorted((BBT / "raj").glob("*.png"))[0], "--gallery", g)
    assert code == 0 and "already enrolled as raj" in out

    code, out, _ = run(capsys, "people", "--gallery", g, "--json")
    people = json.loads(out)
    assert [(p["name"], p["images"]) for p in people] == [("leonard", 5), ("raj", 5), ("sheldon", 5)]
    assert all(
        p["faces"]["dlib-resnet"] == 5 and set(p["faces"].values()) == {5} for p in people
    )  # every model holds every face

    annotated = tmp_path / "annotated.jpg"
    group = BBT / "_group_photos" / "bbt2.jpg"
    code, out, _ = run(capsys, "identify", group, "--gallery", g, "--top-k", "2", "--out", annotated, "--json")
    assert code == 0
    faces = json.loads(out)["faces"]
    assert [f["name"] for f in faces] == ["raj", "leonard", "sheldon"]
    for f in faces:
        assert set(f) == {"box", "name", "distance", "candidates", "score", "margin", "nearest"} and len(f["box"]) == 4
        assert len(f["candidates"]) == 2 and set(f["candidates"][0]) == {"name", "distance"}
        assert f["candidates"][0] == {"name": f["name"], "distance": f["distance"]}
    assert Image.open(annotated).size == Image.open(group).size

    code, out, _ = run(capsys, "identify", group, "--gallery", g, "--method", "knn")
    assert code == 0 and "raj (distance" in out and "method knn" in out

    code, out, _ = run(capsys, "people", "--gallery", g, "rename", "raj", "Rajesh")
    assert code == 0 and "Renamed raj to Rajesh" in out
    code, out, _ = run(capsys, "people", "delete", "Rajesh", "--gallery", g, "--json")
    assert code == 0 and json.loads(out) == {"deleted": "Rajesh", "faces": 5, "models_deleted": []}
    code, out, _ = run(capsys, "people", "--gallery", g, "--json")
    assert [p["name"] for p in json.loads(out)] == ["leonard", "sheldon"]
    code, out, _ = run(capsys, "identify", group, "--gallery", g, "--json")
    assert [f["name"] for f in json.loads(out)["faces"]] == [None, "leonard", "sheldon"]
    assert json.loads(out)["faces"][0]["distance"] is None


@pytest.mark.shared
@pytest.mark.slow
def test_import_shows_progress_and_summary(capsys, tmp_path):
    code, out, err = run(capsys, "import", need(BBT), "--gallery", tmp_path / "g")
    assert code == 0
    assert "import" in err and "40/40" in err  # the tqdm bar on stderr
    assert "40 photo(s):" in out and "for 8 people" in out and "skipped" in out
    code, out, _ = run(capsys, "import", BBT, "--gallery", tmp_path / "g", "--json")
    report = json.loads(out)
    assert report["added"] == 0 and report["duplicates"] + len(report["skipped"]) == 40


def test_user_errors_are_one_line_exit_2(capsys, tmp_path):
    g = tmp_path / "g"
    code, _, err = run(capsys, "people", "delete", "../x", "--gallery", g)
    assert code == 2 and "cannot be a name" in one_error_line(err)
    code, _, err = run(capsys, "people", "--gallery", g, "delete", "nobody")
    assert code == 2 and "Nobody called 'nobody'" in one_error_line(err)
    code, _, err = run(capsys, "people", "--gallery", g, "--chroma-port", "8000")
    assert code == 2 and "--chroma-host" in one_error_line(err)
    code, _, err = run(capsys, "people", "--chroma-host", "127.0.0.1", "--chroma-port", free_port())
    assert code == 2 and "Chroma server" in one_error_line(err)
    code, _, err = run(capsys, "import", tmp_path / "nowhere", "--gallery", g)
    assert code == 2 and "does not exist" in one_error_line(err)
    code, out, _ = run(capsys, "people", "--gallery", g)
    assert code == 0 and "empty" in out


def test_identify_on_an_empty_gallery_returns_unknown_faces_to_name(capsys, tmp_path):
    """First use: nobody enrolled, a group photo; every face comes back unknown with a note, and one of
    them is then enrolled from the result and named on the next identify."""
    g, group = tmp_path / "g", REPO / "facedemo" / "ui" / "examples" / "group.jpg"
    code, out, _ = run(capsys, "identify", group, "--gallery", g, "--json")
    assert code == 0
    result = json.loads(out)
    assert [f["name"] for f in result["faces"]] == [None, None]
    assert all(f["distance"] is None and f["candidates"] == [] and len(f["box"]) == 4 for f in result["faces"])
    assert result["people"] == 0 and "Nobody is enrolled for model 'dlib-resnet' yet" in result["note"]
    code, out, _ = run(capsys, "identify", group, "--gallery", g)
    assert code == 0 and "2. box" in out and "unknown" in out and "--face 0" in out
    code, out, _ = run(capsys, "enroll", "Grace Hopper", group, "--face", 1, "--gallery", g)
    assert code == 0
    code, out, _ = run(capsys, "identify", group, "--gallery", g, "--json")
    result = json.loads(out)
    assert [f["name"] for f in result["faces"]] == [None, "Grace Hopper"] and result["note"] is None
    assert result["people"] == 1 and 0 < result["expected_fpir"] <= 0.0101
    code, out, _ = run(capsys, "identify", group, "--gallery", g)
    assert code == 0 and "With 1 person enrolled, about 1 stranger in 100 gets a name" in out


def test_identify_errors(capsys, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (120, 120), "white").save(blank)
    code, _, err = run(capsys, "identify", blank, "--gallery", tmp_path / "g")
    assert code == 2 and "no face" in one_error_line(err)
    code, _, err = run(capsys, "identify", tmp_path / "missing.jpg", "--gallery", tmp_path / "g")
    assert code == 2 and "does not exist" in one_error_line(err)


def test_default_gallery_comes_from_the_environment(capsys, tmp_path):
    code, _, _ = run(capsys, "people")
    assert code == 0 and (tmp_path / "default-gallery" / "chroma.sqlite3").exists()


@pytest.mark.shared
@pytest.mark.slow
def test_commands_against_a_chroma_server(capsys, tmp_path, monkeypatch):
    if chroma_command() is None:
        pytest.skip("the `chroma` command is not installed")
    photos = sorted(need(BBT / "penny").glob("*.png"))
    with chroma_server(tmp_path / "db") as (host, port):
        monkeypatch.setenv("CHROMA_HOST", host)
        monkeypatch.setenv("CHROMA_PORT", str(port))
        code, out, _ = run(capsys, "enroll", "penny", *photos[:3], "--gallery", tmp_path / "thumbs-only", "--json")
        assert code == 0 and len(json.loads(out)["added"]) == 3
        code, out, _ = run(capsys, "people", "--json")
        assert [(p["name"], p["images"], p["faces"]["dlib-resnet"]) for p in json.loads(out)] == [("penny", 3, 3)]
        code, out, _ = run(capsys, "identify", photos[4], "--json")
        assert [f["name"] for f in json.loads(out)["faces"]] == ["penny"]
        assert not (tmp_path / "thumbs-only" / "chroma.sqlite3").exists()  # the server holds the vectors
        assert len(list((tmp_path / "thumbs-only" / "thumbs" / "default").glob("*.jpg"))) == 3


def test_bench_gallery_small(capsys):
    code, out, _ = run(
        capsys, "bench", "gallery", "--sizes", "300", "--queries", "30", "--backends", "embedded", "--json"
    )
    assert code == 0
    (row,) = json.loads(out)["rows"]
    assert row["size"] == 300 and row["backend"] == "embedded"
    assert row["recall_at_1"] >= 0.95 and 0 < row["p50_ms"] <= row["p99_ms"]
    code, _, err = run(capsys, "bench", "gallery", "--sizes", "ten")
    assert code == 2 and "--sizes" in one_error_line(err)
