"""The command line as a user runs it: a subprocess, JSON out, one-line errors, no tracebacks."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(*args, home=None, env=None):
    environment = {**os.environ, "PYTHONPATH": str(REPO), "FACEDEMO_DEVICE": "cpu", **(env or {})}
    if home:
        environment["FACEDEMO_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "facedemo", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environment,
        timeout=600,
    )


def test_models_json(home):
    out = run("models", "--json", home=home)
    assert out.returncode == 0, out.stderr
    models = {m["name"]: m for m in json.loads(out.stdout)}
    assert set(models["dlib-resnet"]) == {"name", "dim", "available", "reason"}
    assert models["dlib-resnet"] == {"name": "dlib-resnet", "dim": 128, "available": True, "reason": None}
    assert models["facenet-vggface2"]["dim"] == 512
    if not models["facenet-vggface2"]["available"]:
        assert "FACEDEMO_FACENET_VGGFACE2_WEIGHTS" in models["facenet-vggface2"]["reason"]


def test_detect_json(collage, tmp_path, home):
    path = tmp_path / "two.jpg"
    collage.save(path)
    out = run("detect", path, "--json", home=home)
    assert out.returncode == 0, out.stderr
    faces = json.loads(out.stdout)["faces"]
    assert len(faces) == 2
    assert len(faces[0]["box"]) == 4 and len(faces[0]["landmarks"]) == 5 and faces[0]["score"] > 0.9
    text = run("detect", path, home=home)
    assert text.stdout.startswith("2 face(s)")


def test_user_errors_are_one_line(tmp_path, home):
    not_image = tmp_path / "notes.txt"
    not_image.write_text("hello")
    for args in (
        ("verify", tmp_path / "missing.jpg", not_image),
        ("verify", not_image, not_image),
        ("verify", not_image),
        ("detect", tmp_path),
        ("verify", not_image, not_image, "--model", "nonsense"),
    ):
        out = run(*args, home=home)
        assert out.returncode == 2, (args, out)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
        assert "Traceback" not in out.stderr


def test_verify_tells_people_apart_on_unseen_lfw_pairs(shared_faces, tmp_path, home):
    """Ten pairs from the last fold of LFW View 2 that no other test touches, through the CLI."""
    root = shared_faces / "lfw"
    lines = (root / "pairs.txt").read_text().splitlines()
    fold10 = lines[1 + 9 * 600 : 1 + 10 * 600]
    same = [line.split("\t") for line in fold10[:300]][100:105]
    different = [line.split("\t") for line in fold10[300:]][100:105]

    def photo(name, number):
        return root / name / f"{name}_{int(number):04d}.jpg"

    verdicts = []
    for name, a, b in same:
        verdicts.append((True, photo(name, a), photo(name, b)))
    for name_a, a, name_b, b in different:
        verdicts.append((False, photo(name_a, a), photo(name_b, b)))
    for expected, a, b in verdicts:
        out = run("verify", a, b, "--model", "dlib-resnet", "--json", home=home)
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        assert set(result) >= {"model", "distance", "similarity", "threshold", "same_person"}
        assert result["same_person"] is expected, (a.name, b.name, result)
