"""`bench gpu` as a user runs it, on CPU with tiny sizes and real photos: every section is there and
every figure is a real, positive measurement. And the embedder's batch size follows the device."""

import json

import pytest
from test_cli_core import run

from facedemo.settings import Settings


@pytest.mark.slow
def test_bench_gpu_on_cpu_reports_every_section(shared_faces, home, tmp_path):
    groups = tmp_path / "groups"  # one cast photo (6 faces), linked, not copied: keeps the test under 30 s
    groups.mkdir()
    (groups / "bbt4.jpg").symlink_to(shared_faces / "bbt_faceapi" / "_group_photos" / "bbt4.jpg")
    out = run(
        "bench",
        "gpu",
        "--device",
        "cpu",
        "--batches",
        "2",
        "--images",
        "4",
        "--chunks",
        "1,4",
        "--repeats",
        "1",
        "--groups",
        groups,
        "--json",
        home=home,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert set(report) == {
        "device",
        "model",
        "weights",
        "images",
        "batch_size",
        "raw",
        "pipeline_embed",
        "mtcnn",
        "end_to_end",
        "group_photos",
        "naive",
        "agreement",
        "dlib",
        "notes",
    }
    assert report["device"].startswith("CPU") and report["images"] == 4 and report["batch_size"] == 32
    assert set(report["raw"]) == {"fp32", "fp16", "bf16"}
    assert report["raw"]["fp32"]["2"] > 0  # fp32 always runs; half precisions run or say "unsupported: ..."
    for precision in ("fp16", "bf16"):
        value = report["raw"][precision]["2"]
        assert (isinstance(value, float) and value > 0) or value.startswith("unsupported"), value
    assert report["pipeline_embed"]["faces_per_s"] > 0 and report["pipeline_embed"]["faces"] >= 2
    assert set(report["mtcnn"]) == {"1", "4"} and min(report["mtcnn"].values()) > 0
    e2e = report["end_to_end"]
    assert e2e["images"] == 4 and e2e["faces"] >= 4 and e2e["images_per_s"] > 0 and e2e["chunk"] == 4
    assert report["naive"]["faces"] == 4 and report["naive"]["images_per_s"] > 0  # one LFW face each
    [group] = report["group_photos"]
    assert group["photo"] == "bbt4.jpg" and group["faces"] == 6 and group["seconds"] > 0 and group["megapixels"] > 0.3
    for value in report["agreement"]["embedding"].values():
        assert isinstance(value, str) or 0.99 < value["min"] <= value["mean"] <= 1.0 + 1e-6
    detection = report["agreement"]["detection"]
    assert detection["counts_equal"] == detection["images"] == 4 and detection["iou_min"] == 1.0

    dlib = report["dlib"]  # dlib-resnet's torch engine: speed, and the same descriptors as dlib's own
    assert dlib["engine"] == "torch" and dlib["raw"]["2"] > 0 and dlib["pipeline_embed"]["faces_per_s"] > 0
    assert dlib["agreement"]["dlib's compute_face_descriptor (CPU)"]["min"] >= 0.9999
    fp16 = dlib["agreement"]["its own fp32, in fp16"]
    assert isinstance(fp16, str) or 0.99 < fp16["min"] <= fp16["mean"] <= 1.0 + 1e-6

    text = run("bench", "gpu", "--device", "cpu", "--batches", "two", home=home)
    assert text.returncode == 2 and "Traceback" not in text.stderr


def test_embedder_batch_follows_the_device(monkeypatch):
    assert Settings().embed_batch_size(cuda=False) == 32
    assert Settings().embed_batch_size(cuda=True) == 256
    monkeypatch.setenv("FACEDEMO_BATCH_SIZE", "64")
    assert Settings.from_env().embed_batch_size(cuda=True) == 64
    monkeypatch.delenv("FACEDEMO_BATCH_SIZE")
    assert Settings.from_env().batch_size is None
