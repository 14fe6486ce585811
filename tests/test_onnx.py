"""ONNX Runtime on the CPU (models/onnx_engine.py): on real LFW chips its vectors are torch's for the
CASIA FaceNet and dlib-resnet; the export is cached beside the weights, named by their content, made again
when the file there is broken, and never kept when it fails its check (the model then runs on torch, and
its status says why); FACEDEMO_CPU_ENGINE chooses; training still gets the torch network."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from facedemo.errors import InvalidParameterError  # noqa: E402
from facedemo.models import onnx_engine  # noqa: E402
from facedemo.models.dlib_resnet import DlibFamily, DlibTorchEmbedder, dlib_model_files  # noqa: E402
from facedemo.models.facenet import FacenetEmbedder  # noqa: E402
from facedemo.models.onnx_engine import OnnxEmbedder, onnx_file  # noqa: E402
from facedemo.models.registry import get_spec, weights_digest, weights_fingerprint  # noqa: E402
from facedemo.pipeline import Pipeline  # noqa: E402
from facedemo.settings import Settings  # noqa: E402
from facedemo.vision.detect import central_face  # noqa: E402

DLIB = get_spec("dlib-resnet")
CASIA = get_spec("facenet-casia-webface")


def lfw_chips(shared_faces, pipeline, spec, count=10):
    """The aligned chips of ``count`` LFW photos of different people, as the pipeline cuts them."""
    people = sorted(p for p in (shared_faces / "lfw").iterdir() if p.is_dir())
    chips = []
    for person in people[:: len(people) // count][:count]:
        image = pipeline.load(sorted(person.glob("*.jpg"))[0])
        found = pipeline.detect(image)
        chips += [pipeline.aligned(image, central_face(found, image.size), spec)] if found else []
    assert len(chips) >= count - 1  # a detection may miss, not many
    return chips


def assert_same_vectors(onnx, torch, chips):
    ours, theirs = onnx.embed(chips).astype(np.float64), torch.embed(chips).astype(np.float64)
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() >= 0.99999, f"ONNX Runtime against torch: min cosine {cosines.min():.7f}"
    d = np.linalg.norm(theirs[:, None] - theirs[None], axis=2)
    assert d[np.triu_indices(len(chips), 1)].min() > 0.3  # different people: a comparison that can fail


@pytest.mark.shared
def test_onnx_gives_torchs_dlib_descriptors_on_real_faces(shared_faces, settings):
    pipeline = Pipeline(settings)
    embedder = pipeline.embedder(DLIB.name)
    assert isinstance(embedder, OnnxEmbedder) and isinstance(embedder.torch, DlibTorchEmbedder)
    assert_same_vectors(embedder, embedder.torch, lfw_chips(shared_faces, pipeline, DLIB))
    assert "ONNX Runtime on the CPU" in {s.name: s for s in pipeline.models()}[DLIB.name].note


@pytest.mark.shared
@pytest.mark.slow  # the CASIA conversion (~10 s, once a session) and its export (~3 s)
def test_onnx_gives_torchs_facenet_vectors_on_real_faces(shared_faces, casia_settings):
    pipeline = Pipeline(casia_settings)
    embedder = pipeline.embedder(CASIA.name)
    assert isinstance(embedder, OnnxEmbedder) and isinstance(embedder.torch, FacenetEmbedder)
    assert embedder.onnx_file.parent == embedder.weights_file.parent  # cached beside its weights
    assert_same_vectors(embedder, embedder.torch, lfw_chips(shared_faces, pipeline, CASIA))
    assert "ONNX Runtime on the CPU" in {s.name: s for s in pipeline.models()}[CASIA.name].note
    # full fine-tuning deep-copies the torch network: it is still there behind ONNX Runtime
    assert type(embedder.module).__name__ == "InceptionResnetV1" and not embedder.module.training


def test_the_export_is_cached_by_content_and_a_broken_file_is_made_again(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    device = Pipeline(settings).device
    first = DlibFamily().build(DLIB, settings, device)
    assert isinstance(first, OnnxEmbedder) and first.onnx_file.parent == tmp_path / "checkpoints"
    assert sorted(p.suffix for p in first.onnx_file.parent.iterdir()) == [".onnx", ".pt"]  # no temporary file
    size = first.onnx_file.stat().st_size
    first.onnx_file.write_bytes(b"truncated")  # a broken cache file is exported again, not trusted
    again = DlibFamily().build(DLIB, settings, device)
    assert isinstance(again, OnnxEmbedder) and again.onnx_file == first.onnx_file
    assert first.onnx_file.stat().st_size == size
    chips = np.random.default_rng(0).integers(0, 256, (3, 150, 150, 3), dtype=np.uint8)
    from PIL import Image

    faces = [Image.fromarray(c) for c in chips]
    np.testing.assert_allclose(again.embed(faces), first.embed(faces), atol=1e-6)


def test_the_cache_name_follows_the_weights_content(tmp_path):
    weights = tmp_path / "net.pt"
    weights.write_bytes(b"one checkpoint")
    before = onnx_file(weights)
    weights.write_bytes(b"another checkpoint")
    assert onnx_file(weights) != before and onnx_file(weights).parent == tmp_path


def test_an_export_that_fails_its_check_runs_on_torch_and_says_why(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(onnx_engine, "MIN_COSINE", 1.5)  # no export can pass: the check is what is tested
    family = DlibFamily()  # a fresh one: the registry's own keeps its fall-backs for the process
    embedder = family.build(DLIB, settings, Pipeline(settings).device)
    assert isinstance(embedder, DlibTorchEmbedder)
    assert not list((tmp_path / "checkpoints").glob("*.onnx*"))  # a file that failed is not kept
    note = family.status(DLIB, settings).note
    assert "torch on the CPU, not ONNX Runtime" in note and "disagrees with torch" in note and "min cosine" in note
    assert family.status(DLIB, settings).available


def test_the_engine_setting_chooses_and_the_keys_stay(settings, monkeypatch):
    torch_settings = replace(settings, cpu_engine="torch")
    embedder = Pipeline(torch_settings).embedder(DLIB.name)
    assert isinstance(embedder, DlibTorchEmbedder)
    assert "FACEDEMO_CPU_ENGINE=torch" in {s.name: s for s in Pipeline(torch_settings).models()}[DLIB.name].note
    onnx = Pipeline(settings).embedder(DLIB.name)
    assert onnx.weights_file == embedder.weights_file == dlib_model_files()["descriptor"]
    assert weights_digest(DLIB, settings) == weights_digest(DLIB, torch_settings)
    assert weights_fingerprint(DLIB, settings) == weights_fingerprint(DLIB, torch_settings)
    monkeypatch.setenv("FACEDEMO_CPU_ENGINE", "Torch")
    assert Settings.from_env().cpu_engine_name() == "torch"
    monkeypatch.setenv("FACEDEMO_CPU_ENGINE", "tensorrt")
    with pytest.raises(InvalidParameterError, match="FACEDEMO_CPU_ENGINE must be onnx or torch"):
        Settings.from_env()
    monkeypatch.delenv("FACEDEMO_CPU_ENGINE")
    assert Settings.from_env().cpu_engine_name() == "onnx"  # onnxruntime is installed here


def test_concurrent_calls_share_one_session_and_get_their_own_answers(settings):
    """Two pipelines views share the loaded model; four threads at once get what each would alone."""
    from PIL import Image

    pipeline = Pipeline(settings)
    embedder = pipeline.embedder(DLIB.name)
    assert pipeline.with_models_home(settings.home).embedder(DLIB.name) is embedder
    rng = np.random.default_rng(1)
    batches = [[Image.fromarray(c) for c in rng.integers(0, 256, (5, 150, 150, 3), dtype=np.uint8)] for _ in range(4)]
    alone = [embedder.embed(b) for b in batches]
    together: list = [None] * 4

    def run(i):
        together[i] = embedder.embed(batches[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(alone, together):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.slow  # a CLI run: imports, two pipelines, MTCNN (~15 s)
def test_bench_cpu_measures_both_engines_in_one_run(home):
    """`bench cpu` as a user runs it, tiny: both engines measured, every figure positive, the same vectors."""
    import json
    from pathlib import Path

    from test_cli_core import run

    examples = Path(__file__).resolve().parent.parent / "facedemo" / "ui" / "examples"
    out = run(
        "bench", "cpu", "--model", "dlib-resnet", "--images", examples, "--limit", "3", "--batch", "4",
        "--callers", "1,2", "--repeats", "1", "--json", home=home,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    (figures,) = report["models"]
    assert figures["model"] == "dlib-resnet" and figures["faces"] >= 2 and figures["batch"] == 4
    assert figures["torch"]["engine"] == "torch" and figures["onnx"]["engine"] == "onnx"
    for engine in ("torch", "onnx"):
        assert figures[engine]["ms_per_face"] > 0
        assert set(figures[engine]["concurrent_ms_per_face"]) == {"1", "2"}
    assert figures["ratio"] > 0 and set(figures["concurrent_ratio"]) == {"1", "2"}
    assert figures["min_cosine"] >= 0.99999
