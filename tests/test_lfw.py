"""Pairs files (LFW and CSV), the embedding cache, the face choice and fallback, and a small real LFW run."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facedemo.cli import main
from facedemo.errors import FaceDemoError
from facedemo.evaluation import PairsFileError, embed_images, evaluate_pairs, read_csv_pairs, read_lfw_pairs, read_pairs
from facedemo.settings import Settings
from facedemo.vision.align import center_crop_face
from facedemo.vision.detect import Face

REPO = Path(__file__).resolve().parent.parent
LFW = REPO.parent / "shared" / "faces" / "lfw"
needs_lfw = pytest.mark.skipif(not (LFW / "pairsDevTrain.txt").is_file(), reason="../shared/faces/lfw is absent")
JSON_KEYS = [
    "model",
    "flip",
    "accuracy",
    "accuracy_std",
    "auc",
    "val",
    "far",
    "threshold",
    "mean_pos_distance",
    "mean_neg_distance",
    "loss",
    "pairs",
    "detection_failures",
]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- LFW pairs files ------------------------------------------------------------------------------
def test_view2_format_folds_and_paths(tmp_path):
    pairs = read_lfw_pairs(
        write(tmp_path / "pairs.txt", "2\t1\nAl\t1\t2\nBo\t1\tCy\t12\nDi 3 4\nEd 1 Fa 1\n"), Path("/lfw")
    )
    assert [p.fold for p in pairs] == [0, 0, 1, 1]
    assert [p.same for p in pairs] == [True, False, True, False]
    assert pairs[0].a == Path("/lfw/Al/Al_0001.jpg") and pairs[0].b == Path("/lfw/Al/Al_0002.jpg")
    assert pairs[1].b == Path("/lfw/Cy/Cy_0012.jpg")


def test_view1_format_is_one_fold(tmp_path):
    pairs = read_lfw_pairs(write(tmp_path / "dev.txt", "2\nAl 1 2\nAl 3 4\nBo 1 Cy 1\nDi 1 Ed 2\n"), tmp_path)
    assert [p.same for p in pairs] == [True, True, False, False]
    assert {p.fold for p in pairs} == {0}


def test_first_n_folds(tmp_path):
    path = write(tmp_path / "pairs.txt", "3 1\nA 1 2\nB 1 C 1\nD 1 2\nE 1 F 1\nG 1 2\nH 1 I 1\n")
    assert len(read_lfw_pairs(path, tmp_path, folds=2)) == 4
    assert {p.fold for p in read_lfw_pairs(path, tmp_path, folds=1)} == {0}
    with pytest.raises(PairsFileError, match="--folds must be between 1 and 3, not 4"):
        read_lfw_pairs(path, tmp_path, folds=4)


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "is empty"),
        ("ten 300\nA 1 2\n", "first line of bad.txt should be"),
        ("2 1\nA 1 2\nB 1 C 1\n", "promises 2 fold"),
        ("1 1\nA 1 2 3 4 5\nB 1 C 1\n", "Line 2 of bad.txt should be 'name n1 n2'"),
        ("1 1\nA one 2\nB 1 C 1\n", "'one' should be an image number"),
    ],
)
def test_bad_lfw_files_say_what_is_wrong(tmp_path, text, words):
    with pytest.raises(PairsFileError, match=words) as info:
        read_lfw_pairs(write(tmp_path / "bad.txt", text), tmp_path)
    assert isinstance(info.value, FaceDemoError)


def test_missing_pairs_file(tmp_path):
    with pytest.raises(PairsFileError, match="does not exist"):
        read_pairs(tmp_path / "nope.txt", tmp_path)


# -- CSV pairs --------------------------------------------------------------------------------------
def test_csv_accepts_every_spelling_of_same(tmp_path):
    text = "\ufeffA, B ,Same\nx/1.jpg,x/2.jpg,1\nx/1.jpg,y/1.jpg,0\np.jpg,q.jpg, TRUE\np.jpg,r.jpg,false\ns.jpg,t.jpg,Yes\ns.jpg,u.jpg,no\n\n"
    pairs = read_csv_pairs(write(tmp_path / "pairs.csv", text), tmp_path)
    assert [p.same for p in pairs] == [True, False, True, False, True, False]
    assert pairs[0].a == tmp_path / "x/1.jpg" and pairs[1].b == tmp_path / "y/1.jpg"


def test_csv_fold_column_or_stratified_folds(tmp_path):
    with_folds = read_csv_pairs(
        write(tmp_path / "f.csv", "a,b,same,fold\n1.jpg,2.jpg,1,3\n1.jpg,3.jpg,0,4\n"), tmp_path
    )
    assert [p.fold for p in with_folds] == [3, 4]
    rows = "".join(f"{i}.jpg,{i + 1}.jpg,{i % 2}\n" for i in range(20))
    split = read_csv_pairs(write(tmp_path / "s.csv", "a,b,same\n" + rows), tmp_path)
    folds = [p.fold for p in split]
    assert sorted(set(folds)) == list(range(10))
    for fold in range(10):  # stratified: one same and one different pair in each fold
        assert sorted(p.same for p in split if p.fold == fold) == [False, True]


@pytest.mark.parametrize(
    "text, words",
    [
        ("left,right,same\n1.jpg,2.jpg,1\n", "needs a header row with the columns a, b, same"),
        ("a,b,same\n1.jpg,2.jpg,maybe\n", "Row 2 of bad.csv: 'same' must be 1/0, true/false or yes/no, not 'maybe'"),
        ("a,b,same\n1.jpg,,1\n", "Row 2 of bad.csv needs two image paths"),
        ("a,b,same\n", "has a header but no pairs"),
        ("a,b,same,fold\n1.jpg,2.jpg,1,x\n", "'fold' must be a whole number"),
    ],
)
def test_bad_csv_files_say_what_is_wrong(tmp_path, text, words):
    with pytest.raises(PairsFileError, match=words):
        read_pairs(write(tmp_path / "bad.csv", text), tmp_path)


def test_folds_are_refused_for_csv(tmp_path):
    with pytest.raises(PairsFileError, match="--folds applies to LFW"):
        read_pairs(write(tmp_path / "p.csv", "a,b,same\n1.jpg,2.jpg,1\n"), tmp_path, folds=2)


# -- the embedding loop with a fake detector and embedder -------------------------------------------
class FakeDetector:
    """Bright images hold two faces: a big one in the corner and a small one in the centre. Dark ones none."""

    def __init__(self):
        self.calls = 0

    def detect_many(self, images):
        self.calls += len(images)
        out = []
        for image in images:
            if np.asarray(image).mean() < 10:
                out.append([])
                continue
            big = Face((0, 0, 60, 60), 0.99, ((15, 20),) * 5)
            small = Face((40, 40, 60, 60), 0.99, ((45, 48),) * 5)
            out.append([big, small])
        return out


class FakeEmbedder:
    def __init__(self, spec):
        self.spec = spec
        self.calls = 0

    def embed(self, crops):
        self.calls += len(crops)
        return np.array([[c[0] / 100, c[1] / 100, 1.0, 0.0] for c in crops], dtype=np.float32)


class FakePipeline:
    def __init__(self, home):
        from dataclasses import replace

        from facedemo.models.registry import get_spec

        self.settings = Settings(home=home)
        self._spec = replace(get_spec("dlib-resnet"), name="fake", dim=4)
        self.detector = FakeDetector()
        self.embedder_ = FakeEmbedder(self._spec)

    def spec(self, name=None):
        return self._spec

    def load(self, path):
        return Image.open(path).convert("RGB")

    def aligned(self, image, face, spec, alignment):
        return face.center  # the fake embedder encodes which face was aligned

    def embedder(self, name=None):
        return self.embedder_

    def embed_crops(self, model, crops, flip=None):
        return self.embedder_.embed(crops)

    def flip(self, model=None):
        return False

    def fetch_weights_id(self, model=None):
        return "fake-weights"

    def alignment(self, model=None):
        return self.settings.alignment or self._spec.alignment


def photos(tmp_path, dark=()):
    paths = []
    for i in range(5):
        path = tmp_path / f"p{i}.png"
        Image.new("RGB", (100, 100), (0, 0, 0) if i in dark else (200, 180, 160)).save(path)
        paths.append(path)
    return paths


def test_central_face_is_embedded_not_the_largest(tmp_path):
    pipeline = FakePipeline(tmp_path / "home")
    result = embed_images(pipeline, photos(tmp_path), "fake", "similarity")
    for vector in result.vectors.values():
        assert vector[:2] == pytest.approx([0.5, 0.5])  # the small centred face (centre 50, 50), not (30, 30)


def test_no_face_falls_back_to_a_centre_crop_and_is_counted(tmp_path):
    pipeline = FakePipeline(tmp_path / "home")
    paths = photos(tmp_path, dark={1, 3})
    result = embed_images(pipeline, paths, "fake", "similarity")
    assert set(result.failures) == {paths[1], paths[3]}
    expected = center_crop_face(Image.new("RGB", (100, 100))).center
    assert result.vectors[paths[1]][:2] == pytest.approx([expected[0] / 100, expected[1] / 100])


def test_cache_skips_known_photos_and_notices_changed_ones(tmp_path):
    paths = photos(tmp_path, dark={2})
    first = FakePipeline(tmp_path / "home")
    assert embed_images(first, paths, "fake", "similarity").computed == 5
    assert first.embedder_.calls == 5 and first.detector.calls == 5

    second = FakePipeline(tmp_path / "home")  # a new process: only the files on disk carry over
    again = embed_images(second, paths, "fake", "similarity")
    assert again.computed == 0 and second.embedder_.calls == 0 and second.detector.calls == 0
    assert again.failures == (paths[2],)

    stat = paths[0].stat()
    os.utime(paths[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    third = FakePipeline(tmp_path / "home")
    assert embed_images(third, paths, "fake", "similarity").computed == 1

    crop = FakePipeline(tmp_path / "home")  # another alignment: new embeddings, but detections are reused
    assert embed_images(crop, paths, "fake", "crop").computed == 5
    assert crop.embedder_.calls == 5 and crop.detector.calls == 0


def test_embeddings_of_other_weights_are_not_reused(tmp_path):
    from facedemo.models.registry import get_spec, weights_fingerprint

    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    first.write_bytes(b"one")
    second.write_bytes(b"other")
    spec = get_spec("facenet-vggface2")
    keys = [
        weights_fingerprint(spec, Settings(home=tmp_path, facenet_weights={spec.name: str(path)}))
        for path in (first, second, first)
    ]
    assert keys[0] != keys[1] and keys[0] == keys[2]


def test_missing_photos_are_refused_before_any_work(tmp_path):
    pipeline = FakePipeline(tmp_path / "home")
    with pytest.raises(PairsFileError, match="1 of the 2 photos named by the pairs are missing"):
        embed_images(pipeline, [photos(tmp_path)[0], tmp_path / "gone.jpg"], "fake")
    assert pipeline.detector.calls == 0


# -- the command line -------------------------------------------------------------------------------
def test_cli_user_errors_are_one_line(tmp_path, capsys):
    code = main(["eval", "lfw", "--root", str(tmp_path), "--pairs", "missing.txt", "--json"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: The pairs file") and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv", [["eval", "lfw", "--far", "5"], ["calibrate", "--far", "0"]])
def test_cli_refuses_a_bad_far_at_once(tmp_path, capsys, argv):
    assert main([*argv, "--root", str(tmp_path)]) == 2
    assert "--far is a false accept rate between 0 and 1" in capsys.readouterr().err


def test_cli_calibrate_needs_view1(tmp_path, capsys):
    assert main(["calibrate", "--root", str(tmp_path), "--model", "dlib-resnet"]) == 2
    assert "pairsDevTrain.txt does not exist" in capsys.readouterr().err


# -- real photos, real MTCNN, real dlib ---------------------------------------------------------------
def small_view1(tmp_path, n=10) -> Path:
    """The first n same-person and first n different-person pairs of LFW View 1 (pairsDevTrain.txt)."""
    lines = (LFW / "pairsDevTrain.txt").read_text().splitlines()
    per_class = int(lines[0])
    same, different = lines[1 : 1 + n], lines[1 + per_class : 1 + per_class + n]
    return write(tmp_path / "small.txt", "\n".join([str(n), *same, *different]) + "\n")


@pytest.mark.slow
@pytest.mark.shared
@needs_lfw
def test_real_lfw_run_is_accurate_and_cached(tmp_path, monkeypatch):
    from facedemo.pipeline import Pipeline

    pairs = read_pairs(small_view1(tmp_path), LFW)
    pipeline = Pipeline(Settings.from_env(home=tmp_path / "home", model="dlib-resnet", alignment="similarity"))
    first = evaluate_pairs(pipeline, pairs, "dlib-resnet")
    assert first.accuracy > 0.8
    assert list(first.to_json()) == JSON_KEYS
    assert first.to_json()["pairs"] == 20 and first.computed == first.images > 0
    assert 0 <= first.metrics.stats.mean_pos < first.metrics.stats.mean_neg <= 2

    embedder = pipeline.embedder("dlib-resnet")
    calls = []
    monkeypatch.setattr(embedder, "embed", lambda crops: calls.append(len(crops)))
    second = evaluate_pairs(pipeline, pairs, "dlib-resnet")
    assert calls == [] and second.computed == 0
    assert second.distances == pytest.approx(first.distances)


@pytest.mark.slow
@pytest.mark.shared
@needs_lfw
def test_cli_eval_pairs_csv_counts_a_photo_without_a_face(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FACEDEMO_HOME", str(tmp_path / "home"))
    Image.new("RGB", (250, 250), (128, 128, 128)).save(tmp_path / "blank.jpg")
    root = tmp_path
    for name in ("Aaron_Peirsol", "Abdullah_Gul"):
        (root / name).symlink_to(LFW / name)
    csv = (
        "a,b,same\n"
        "Aaron_Peirsol/Aaron_Peirsol_0001.jpg,Aaron_Peirsol/Aaron_Peirsol_0002.jpg,yes\n"
        "Abdullah_Gul/Abdullah_Gul_0001.jpg,Abdullah_Gul/Abdullah_Gul_0002.jpg,yes\n"
        "Aaron_Peirsol/Aaron_Peirsol_0001.jpg,Abdullah_Gul/Abdullah_Gul_0001.jpg,no\n"
        "blank.jpg,Abdullah_Gul/Abdullah_Gul_0002.jpg,no\n"
    )
    write(tmp_path / "pairs.csv", csv)
    code = main(
        [
            "eval",
            "pairs",
            "--root",
            str(root),
            "--pairs",
            str(tmp_path / "pairs.csv"),
            "--model",
            "dlib-resnet",
            "--json",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)
    assert list(data) == JSON_KEYS
    assert data["detection_failures"] == 1 and data["pairs"] == 4 and data["model"] == "dlib-resnet"
    assert data["mean_pos_distance"] < data["mean_neg_distance"]


def test_a_new_alignment_template_is_not_served_from_the_cache(tmp_path):
    """Embeddings depend on the model's input layout: changing the template must recompute them."""
    from dataclasses import replace

    paths = photos(tmp_path)
    first = FakePipeline(tmp_path / "home")
    assert embed_images(first, paths, "fake", "similarity").computed == 5
    moved = FakePipeline(tmp_path / "home")
    moved._spec = replace(moved._spec, template=tuple((x, y + 0.05) for x, y in moved._spec.template))
    assert embed_images(moved, paths, "fake", "similarity").computed == 5
