"""dlib's ResNet descriptor converted to torch (models/dlib_torch.py): on real LFW faces the torch module
gives dlib's own ``compute_face_descriptor`` descriptors on the same chips; the conversion is cached
atomically and keyed on the ``.dat``; a conversion that fails leaves the model on dlib's own engine, with
the reason in its status note; the cache keys of dlib-resnet do not depend on the engine."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("dlib")

from facedemo.models import dlib_resnet, dlib_torch  # noqa: E402
from facedemo.models.dlib_resnet import DlibEmbedder, DlibFamily, DlibTorchEmbedder, dlib_model_files  # noqa: E402
from facedemo.models.registry import get_spec, weights_digest, weights_fingerprint  # noqa: E402
from facedemo.pipeline import Pipeline  # noqa: E402
from facedemo.vision.detect import central_face  # noqa: E402

SPEC = get_spec("dlib-resnet")


@pytest.fixture(scope="module")
def lfw_chips(shared_faces, settings):
    """The aligned 150x150 chips of 20 LFW photos of 20 different people, as the pipeline cuts them
    (similarity alignment), and dlib's own chips of the first 5 (its shape predictor and get_face_chip)."""
    pipeline = Pipeline(replace(settings, dlib_engine="dlib"))
    people = sorted(p for p in (shared_faces / "lfw").iterdir() if p.is_dir())
    chips, native = [], []
    for person in people[:: len(people) // 20][:20]:
        image = pipeline.load(sorted(person.glob("*.jpg"))[0])
        found = pipeline.detect(image)
        faces = [central_face(found, image.size)] if found else []
        chips += [pipeline.aligned(image, f, SPEC) for f in faces]
        if len(native) < 5:
            native += [pipeline.aligned(image, f, SPEC, "native") for f in faces]
    assert len(chips) >= 18  # a detection may miss, not many
    return chips + native


def dlib_descriptors(chips) -> np.ndarray:
    """dlib's own network on the chips: the reference (num_jitters 0, as the pipeline calls it)."""
    import dlib

    net = dlib.face_recognition_model_v1(str(dlib_model_files()["descriptor"]))
    pixels = [np.ascontiguousarray(np.asarray(c.convert("RGB"), dtype=np.uint8)) for c in chips]
    return np.array([list(v) for v in net.compute_face_descriptor(pixels)], dtype=np.float64)


@pytest.mark.shared
def test_torch_module_gives_dlibs_descriptors_on_real_faces(lfw_chips, settings):
    # torch itself (the CPU's default is ONNX Runtime, checked against torch in tests/test_onnx.py)
    embedder = Pipeline(replace(settings, cpu_engine="torch")).embedder(SPEC.name)
    assert isinstance(embedder, DlibTorchEmbedder)
    ours = embedder.embed(lfw_chips).astype(np.float64)
    theirs = dlib_descriptors(lfw_chips)
    theirs /= np.linalg.norm(theirs, axis=1, keepdims=True)
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() >= 0.9999, f"cosine between torch and dlib: min {cosines.min():.7f}"
    # the distances the thresholds are read against agree to the third decimal and beyond
    d_ours = np.linalg.norm(ours[:, None] - ours[None], axis=2)
    d_theirs = np.linalg.norm(theirs[:, None] - theirs[None], axis=2)
    assert np.abs(d_ours - d_theirs).max() < 1e-4
    people = len(lfw_chips) - 5  # the similarity chips: one person each (the native ones repeat 5 of them)
    assert d_theirs[:people, :people][np.triu_indices(people, 1)].min() > 0.3  # a test that can fail


@pytest.mark.shared
def test_batches_give_what_single_faces_give(lfw_chips, settings):
    embedder = Pipeline(replace(settings, batch_size=7)).embedder(SPEC.name)
    together = embedder.embed(lfw_chips[:9])
    alone = np.concatenate([embedder.embed([c]) for c in lfw_chips[:9]])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_the_engine_does_not_change_the_keys(settings):
    """Caches, the gallery and the shipped data are keyed on the .dat: the same for both engines."""
    torch_pipeline, dlib_pipeline = Pipeline(settings), Pipeline(replace(settings, dlib_engine="dlib"))
    assert isinstance(dlib_pipeline.embedder(SPEC.name), DlibEmbedder)
    assert torch_pipeline.embedder(SPEC.name).weights_file == dlib_model_files()["descriptor"]
    assert torch_pipeline.fetch_weights_id(SPEC.name) == dlib_pipeline.fetch_weights_id(SPEC.name)
    assert weights_digest(SPEC, settings) == weights_digest(SPEC, dlib_pipeline.settings)
    assert weights_fingerprint(SPEC, settings) is not None


def test_the_conversion_is_cached_once_and_keyed_on_the_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    first = dlib_resnet.prepare_torch(SPEC)
    assert first.action == "converted" and first.path.parent == tmp_path / "checkpoints"
    assert f"torch{dlib_torch.CONVERTER_VERSION}" in first.path.name
    assert [p.name for p in first.path.parent.iterdir()] == [first.path.name]  # no temporary file left
    assert dlib_resnet.prepare_torch(SPEC).action == "present"
    first.path.write_bytes(b"truncated")  # a broken cache file is made again, not trusted
    module = dlib_resnet.load_torch_module(SPEC)
    assert isinstance(module, dlib_torch.DlibResNet) and first.path.stat().st_size > 20_000_000


def test_a_file_that_is_not_the_network_is_refused_with_where(tmp_path):
    data = dlib_model_files()["descriptor"].read_bytes()
    cut = tmp_path / "cut.dat"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="at byte"):
        dlib_torch.convert(cut)
    longer = tmp_path / "longer.dat"
    longer.write_bytes(data + b"\x00")
    with pytest.raises(ValueError, match="1 bytes left"):
        dlib_torch.convert(longer)


def test_a_failed_conversion_falls_back_to_dlib_and_says_why(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def broken(path):
        raise ValueError("at byte 12: found layer 'con_9', expected con_4 or con_5")

    monkeypatch.setattr(dlib_torch, "convert", broken)
    family = DlibFamily()  # a fresh one: the registry's own family keeps its state for the process
    assert "converted to a torch module on first use" in family.status(SPEC, settings).note
    embedder = family.build(SPEC, settings, Pipeline(settings).device)
    assert isinstance(embedder, DlibEmbedder)
    note = family.status(SPEC, settings).note
    assert "dlib's own descriptor" in note and "con_9" in note
    assert family.status(SPEC, settings).available
