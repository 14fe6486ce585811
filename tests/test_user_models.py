"""Bring your own model (FACEDEMO_MODELS, models/declared.py): an ONNX graph declared in a TOML file runs
beside the built-in models. The CASIA FaceNet exported to ONNX and declared as data gives the built-in
model's vectors and verdicts on real faces; every wrong declaration is a sentence naming the file and the
model, shown as the model's unavailable reason, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tomllib
from PIL import Image
from test_browser import browser, explore_beside, upload  # noqa: F401  (browser is a fixture)

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from facedemo.errors import InvalidParameterError  # noqa: E402
from facedemo.models import onnx_engine  # noqa: E402
from facedemo.models.facenet import standardised  # noqa: E402
from facedemo.pipeline import Pipeline  # noqa: E402
from facedemo.services.usecases import compare_verify  # noqa: E402
from facedemo.settings import Settings  # noqa: E402
from facedemo.vision.detect import central_face  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CASIA = "facenet-casia-webface"
# The CASIA FaceNet as the built-in model runs it: facenet-pytorch's standardisation, its margin crop.
CASIA_AS_DATA = """
[[model]]
name = "casia-onnx"
onnx = "casia.onnx"
input_size = [160, 160]
channels = "rgb"
mean = 127.5
std = 128.0
alignment = "crop"
margin = 14
template = "facenet"
distance = "euclidean"
threshold = 1.10
flip = false
"""


def run(*args, home, env):
    environment = {**os.environ, "PYTHONPATH": str(REPO), "FACEDEMO_DEVICE": "cpu", "FACEDEMO_HOME": str(home), **env}
    command = [sys.executable, "-m", "facedemo", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=environment, timeout=600)


def tiny_graph(path, output: str = "vector", side: int = 112):
    """A real ONNX graph, small: (n, 3, side, side) in; per-channel means (a 3-vector) out, or the input
    itself (``output="image"``: not a vector)."""
    from onnx import TensorProto, helper

    pixels = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", 3, side, side])
    if output == "vector":
        out = helper.make_tensor_value_info("vectors", TensorProto.FLOAT, ["n", 3])
        axes = helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3])
        node = helper.make_node("ReduceMean", ["pixels", "axes"], ["vectors"], keepdims=0)
        graph = helper.make_graph([node], "tiny", [pixels], [out], initializer=[axes])
    else:
        out = helper.make_tensor_value_info("vectors", TensorProto.FLOAT, ["n", 3, side, side])
        graph = helper.make_graph([helper.make_node("Identity", ["pixels"], ["vectors"])], "tiny", [pixels], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def settings_with(monkeypatch, tmp_path, toml: str, home):
    path = tmp_path / "models.toml"
    path.write_text(toml)
    monkeypatch.setenv("FACEDEMO_MODELS", str(path))
    return Settings.from_env(device="cpu", home=home), path


WRONG = {
    "unknown field": ('onnx = "tiny.onnx"\ninput_size = 112\ninptu_size = 112', "unknown field 'inptu_size'"),
    "missing file": ('onnx = "nowhere.onnx"\ninput_size = 112', "nowhere.onnx, which does not exist"),
    "wrong input size": (
        'onnx = "tiny.onnx"\ninput_size = 160',
        "declares input_size = 160, but its graph takes 112x112",
    ),
    "not a vector": ('onnx = "image.onnx"\ninput_size = 112', "is not one vector per face"),
    "not square": ('onnx = "tiny.onnx"\ninput_size = [112, 96]', "the input must be square"),
    "bad channels": (
        'onnx = "tiny.onnx"\ninput_size = 112\nchannels = "rgba"',
        "channels = 'rgba': use 'rgb' or 'bgr'",
    ),
    "url without sha256": ('onnx = "https://example.org/m.onnx"\ninput_size = 112', "give its sha256"),
}


def test_each_wrong_declaration_is_its_models_reason(monkeypatch, tmp_path, home):
    tiny_graph(tmp_path / "tiny.onnx")
    tiny_graph(tmp_path / "image.onnx", output="image")
    toml = "".join(f'[[model]]\nname = "{case}"\n{body}\n\n' for case, (body, _) in WRONG.items())
    toml += '[[model]]\nname = "tiny"\nonnx = "tiny.onnx"\ninput_size = 112\n'
    settings, path = settings_with(monkeypatch, tmp_path, toml, home)
    statuses = {s.name: s for s in Pipeline(settings).models()}
    for case, (_, words) in WRONG.items():
        status = statuses[case]
        assert not status.available and words in status.reason, (case, status.reason)
        assert status.reason.startswith(f"{path}: model '{case}'"), status.reason
    tiny = statuses["tiny"]
    assert tiny.available and tiny.dim == 3 and "uncalibrated" in tiny.note and "facedemo's default" in tiny.note
    assert statuses["dlib-resnet"].available  # the built-in models are still there


@pytest.mark.parametrize(
    "text, words",
    [("[[model]\nname = 'x'", "is not valid TOML"), ("[models]\nname = 'x'", r"should hold only \[\[model\]\] tables")],
)
def test_a_file_that_is_not_declarations_is_a_sentence(monkeypatch, tmp_path, home, text, words):
    with pytest.raises(InvalidParameterError, match=words):
        settings_with(monkeypatch, tmp_path, text, home)
    monkeypatch.setenv("FACEDEMO_MODELS", str(tmp_path / "missing.toml"))
    with pytest.raises(InvalidParameterError, match="which does not exist"):
        Settings.from_env()


def test_models_json_lists_a_declared_model_and_the_cli_refuses_a_broken_one(tmp_path, home):
    tiny_graph(tmp_path / "tiny.onnx")
    path = tmp_path / "models.toml"
    path.write_text('[[model]]\nname = "tiny"\nonnx = "tiny.onnx"\ninput_size = 112\n\n[[model]]\nname = "gone"\n')
    out = run("models", "--json", home=home, env={"FACEDEMO_MODELS": str(path)})
    assert out.returncode == 0, out.stderr
    models = {m["name"]: m for m in json.loads(out.stdout)}
    assert (
        models["tiny"]["available"] and models["tiny"]["dim"] == 3 and "uncalibrated" in models["tiny"]["calibration"]
    )
    assert models["gone"]["reason"] == f"{path}: model 'gone' needs onnx = \"...\"."
    refused = run("models", "prepare", "gone", home=home, env={"FACEDEMO_MODELS": str(path)})
    assert refused.returncode != 0 and "needs onnx" in refused.stderr and "Traceback" not in refused.stderr
    bad = path.with_name("bad.toml")
    bad.write_text("[[model]\n")
    refused = run("models", "--json", home=home, env={"FACEDEMO_MODELS": str(bad)})
    assert refused.returncode != 0 and "is not valid TOML" in refused.stderr and "Traceback" not in refused.stderr


@pytest.fixture(scope="module")
def casia_as_data(tmp_path_factory, casia_settings):
    """The CASIA FaceNet exported to ONNX (``onnx_engine.export``, checked against torch) and declared as data:
    the declaration's file and its tables."""
    folder = tmp_path_factory.mktemp("declared")
    module = Pipeline(casia_settings).embedder(CASIA).module  # the torch network, whichever engine runs it
    onnx_engine.export(module, standardised, 160, folder / "casia.onnx", 2)
    (folder / "models.toml").write_text(CASIA_AS_DATA)
    return folder / "models.toml", tuple(tomllib.loads(CASIA_AS_DATA)["model"])


def lfw_photos(shared_faces, count=8):
    people = sorted(p for p in (shared_faces / "lfw").iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) >= 2)
    return [sorted(person.glob("*.jpg"))[:2] for person in people[:: len(people) // count][:count]]


@pytest.mark.shared
@pytest.mark.slow  # the export of InceptionResnetV1 (~6 s) and two models over 16 LFW photos
def test_the_casia_facenet_declared_as_onnx_is_the_built_in_model(shared_faces, casia_as_data, casia_settings):
    path, tables = casia_as_data
    pipeline = Pipeline(replace(casia_settings, models_file=path, declared_models=tables))
    assert {s.name: s for s in pipeline.models()}["casia-onnx"].available

    chips = {CASIA: [], "casia-onnx": []}
    for pair in lfw_photos(shared_faces):
        image = pipeline.load(pair[0])
        face = central_face(pipeline.detect(image), image.size)
        for name in chips:
            chips[name].append(pipeline.aligned(image, face, pipeline.spec(name)))
    ours = pipeline.embedder("casia-onnx").embed(chips["casia-onnx"]).astype(np.float64)
    theirs = pipeline.embedder(CASIA).embed(chips[CASIA]).astype(np.float64)
    assert (ours * theirs).sum(axis=1).min() >= 0.9999

    same, other = lfw_photos(shared_faces)[0], lfw_photos(shared_faces)[1]
    for a, b in ((same[0], same[1]), (same[0], other[0])):
        comparison, _ = compare_verify(pipeline, a, b)
        verdicts = {r.model: r for r in comparison.results}
        assert verdicts["casia-onnx"].same_person == verdicts[CASIA].same_person
        assert abs(verdicts["casia-onnx"].distance - verdicts[CASIA].distance) < 1e-3


@pytest.mark.slow  # the export (~6 s), an app, an enrollment with three models
def test_a_declared_model_runs_beside_the_built_in_ones_in_the_app(casia_as_data, casia_settings, tmp_path):
    """Verify's "Compare every model" and Identify's compare, through the app's API: the declared model has its
    row beside the built-in ones, with the built-in CASIA model's verdicts and names."""
    from gradio_client import Client
    from test_app import launch, photo

    path, tables = casia_as_data
    demo, services, url = launch(replace(casia_settings, models_file=path, declared_models=tables), tmp_path / "g")
    try:
        client = Client(url, verbose=False)
        *_, verified = client.predict(photo("astronaut.jpg"), photo("astronaut_2.jpg"), api_name="/compare")
        client.predict("Eileen Collins", [photo("astronaut.jpg")], api_name="/enroll")
        *_, identified = client.predict(photo("group.jpg"), 3, "centroid", api_name="/identify_compare")
    finally:
        demo.close()
    rows = {row["model"]: row for row in verified["models"]}
    assert {"casia-onnx", CASIA, "dlib-resnet"} <= set(rows)
    assert rows["casia-onnx"]["same_person"] == rows[CASIA]["same_person"] is True
    assert abs(rows["casia-onnx"]["distance"] - rows[CASIA]["distance"]) < 1e-3
    assert any(
        "uncalibrated" in note and "calibrate --model casia-onnx" in note for note in rows["casia-onnx"]["notes"]
    )
    assert not any("uncalibrated" in note for note in rows[CASIA]["notes"])
    named = {row["model"]: [face["name"] for face in row["faces"]] for row in identified["models"]}
    assert named["casia-onnx"] == named[CASIA] == ["Eileen Collins", None]


@pytest.mark.shared
@pytest.mark.slow  # 12 cast photos enrolled with three models, then scored
def test_the_scoreboard_scores_a_declared_model_like_the_built_in_one(
    shared_faces, casia_as_data, casia_settings, tmp_path
):
    """Every enrolled face is embedded with the declared model too, the scoreboard gives it the built-in
    CASIA model's figures on the same gallery (the same network, run from its declaration), and the Explorer
    has its faces to draw."""
    from facedemo.services import Services, usecases

    path, tables = casia_as_data
    settings = replace(casia_settings, models_file=path, declared_models=tables, gallery_dir=tmp_path / "g")
    services = Services(replace(settings, model=None, public=False))
    cast = shared_faces / "bbt_faceapi"
    for person in ("amy", "howard", "leonard", "penny"):
        services.owned().enroll(person, sorted((cast / person).glob("*.png"))[:3], confirm=True)
    board = usecases.scoreboard(services.request(None)).to_json()
    scores = {m["model"]: m for m in board["models"]}
    assert {"casia-onnx", CASIA, "dlib-resnet"} <= set(scores)
    ours, theirs = scores["casia-onnx"], scores[CASIA]
    assert ours["identification"]["correct"] == theirs["identification"]["correct"]
    assert abs(ours["verification"]["auc"] - theirs["verification"]["auc"]) < 1e-3
    explored = usecases.gallery_to_explore(services.request(None), ["casia-onnx", CASIA], demo=False)
    assert explored.complete and explored.models == ["casia-onnx", CASIA]  # what the Explorer draws
    assert explored.gallery.store.count("casia-onnx") == explored.gallery.store.count(CASIA) == 12


def test_a_graph_from_a_url_is_downloaded_once_and_checked(monkeypatch, tmp_path, home):
    """A URL with its sha256: `models prepare` downloads it (a real HTTP server on this machine) into
    $FACEDEMO_HOME/downloads; a file whose sha256 differs is not kept, and says so."""
    import functools
    import hashlib
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    digest = hashlib.sha256(tiny_graph(served / "tiny.onnx").read_bytes()).hexdigest()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/tiny.onnx"
    try:
        toml = f'[[model]]\nname = "web"\nonnx = "{url}"\nsha256 = "{digest}"\ndim = 3\ninput_size = 112\n\n'
        toml += f'[[model]]\nname = "forged"\nonnx = "{url}"\nsha256 = "{"0" * 64}"\ndim = 3\ninput_size = 112\n'
        settings, path = settings_with(monkeypatch, tmp_path, toml, tmp_path / "home")
        pipeline = Pipeline(settings)
        before = {s.name: s for s in pipeline.models()}
        assert not before["web"].available and "models prepare web" in before["web"].reason
        from facedemo.errors import ModelUnavailableError
        from facedemo.models.registry import prepare

        done = prepare(pipeline.spec("web"), settings)
        assert done.action == "downloaded" and done.path.parent == tmp_path / "home" / "downloads"
        assert {s.name: s for s in pipeline.models()}["web"].available
        assert prepare(pipeline.spec("web"), settings).action == "present"  # once
        assert pipeline.embedder("web").embed([Image.new("RGB", (112, 112), (10, 20, 30))]).shape == (1, 3)
        with pytest.raises(
            ModelUnavailableError, match=f"{path}: model 'forged': the file downloaded from .* has sha256"
        ):
            prepare(pipeline.spec("forged"), settings)
        assert not {s.name: s for s in pipeline.models()}["forged"].available
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.browser
@pytest.mark.slow  # the export (~6 s), an app with three models, a real Chromium
def test_a_declared_model_beside_the_built_in_ones_in_a_real_browser(browser, casia_as_data, casia_settings, tmp_path):  # noqa: F811
    """What a researcher sees in the browser after declaring their model: Verify's "Compare every model" has
    its verdict beside the built-in ones, saying it is uncalibrated; once someone is enrolled, the Explorer
    draws its embeddings beside the built-in dlib-resnet's."""
    from test_app import EXAMPLES, launch

    path, tables = casia_as_data
    demo, services, url = launch(replace(casia_settings, models_file=path, declared_models=tables), tmp_path / "g")
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    try:
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("tab", name="Verify").wait_for(timeout=60_000)
        page.get_by_role("tab", name="Verify").click()
        for side, photo in (("verify-a", "astronaut.jpg"), ("verify-b", "astronaut_2.jpg")):
            upload(page, side, EXAMPLES / photo)
            page.locator(f"#{side} img[src*='astronaut']").first.wait_for(timeout=30_000)
        page.wait_for_timeout(1000)  # the photos' change events answered before the click (test_browser)
        page.get_by_role("button", name="Compare every model").click()
        verdict = page.locator("#verify-verdict")
        verdict.get_by_text("casia-onnx").first.wait_for(timeout=180_000)
        text = verdict.inner_text()
        assert "facenet-casia-webface" in text and "dlib-resnet" in text
        assert "uncalibrated" in text and "calibrate --model casia-onnx" in text

        services.owned().enroll("Eileen Collins", [EXAMPLES / "astronaut.jpg", EXAMPLES / "astronaut_2.jpg"])
        explore_beside(page, "casia-onnx", ["dlib-resnet", "casia-onnx"])
    finally:
        page.screenshot(path=str(tmp_path / "last.png"), full_page=True)  # what the page showed, for a failure
        page.close()
        demo.close()


def test_the_built_in_models_are_declared_as_data(tmp_path):
    """builtin.toml is where the built-in models come from (their unchanged figures: tests/test_shipped_data.py
    matches every shipped calibration on keys made of the specs' template, margin and input size); an edit
    there is an edit of the model, and a wrong table is a sentence naming the file."""
    from facedemo.models.declared import BUILTIN, builtin_specs
    from facedemo.models.registry import DEFAULT_ORDER, MODELS

    specs, order = builtin_specs()
    assert specs == MODELS and order == DEFAULT_ORDER == ("facenet-vggface2", "dlib-resnet", "facenet-casia-webface")
    edited = tmp_path / "builtin.toml"
    edited.write_text(BUILTIN.read_text().replace("margin = 30", "margin = 24"))
    assert builtin_specs(edited)[0]["dlib-resnet"].crop_margin == 24 != MODELS["dlib-resnet"].crop_margin
    edited.write_text(BUILTIN.read_text().replace("margin = 30", "margni = 30"))
    with pytest.raises(ValueError, match=r"builtin.toml: model 'dlib-resnet' has unknown field 'margni'"):
        builtin_specs(edited)
