"""The explorer's figures hold what they should, and the HTML report opens offline."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import plotly
import pytest

from facedemo.errors import FaceDemoError
from facedemo.evaluation.metrics import roc
from facedemo.explorer import gallery_views, model_view, write_report
from facedemo.explorer.figures import (
    FigureError,
    distance_histogram,
    embedding_map,
    metrics_table,
    project,
    report_html,
    roc_figure,
)


def clusters(people=("ann", "bob", "cy"), per_person=4, dim=16, seed=0):
    """Unit vectors in tight clusters, one per person."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(people), dim))
    vectors, names = [], []
    for centre, person in zip(centres, people):
        for _ in range(per_person):
            v = centre + 0.1 * rng.normal(size=dim)
            vectors.append(v / np.linalg.norm(v))
            names.append(person)
    return np.array(vectors, dtype=np.float32), names


def test_pca_below_ten_points_even_when_umap_is_asked():
    vectors, _ = clusters(per_person=3)  # 9 points
    coords, used = project(vectors, "umap")
    assert used == "pca" and coords.shape == (9, 2)
    assert np.ptp(coords[:, 0]) > 0


def test_projection_of_one_or_two_points_and_errors():
    assert project(np.ones((1, 8)), "pca")[0].shape == (1, 2)
    assert project(np.eye(2, 8), "pca")[0].shape == (2, 2)
    with pytest.raises(FigureError, match="no embeddings"):
        project(np.zeros((0, 8)))
    with pytest.raises(FigureError, match="Unknown projection 'tsne'"):
        project(np.eye(3), "tsne")


def test_embedding_map_one_trace_per_person_with_hover_names_and_ids():
    vectors, names = clusters(per_person=3)
    ids = [f"id{i}" for i in range(len(names))]
    fig = embedding_map(vectors, names, "pca", hover=[f"photo{i}.jpg" for i in range(len(names))], ids=ids)
    assert [t.name for t in fig.data] == ["ann", "bob", "cy"]
    assert sum(len(t.x) for t in fig.data) == 9
    bob = fig.data[1]
    assert all(text.startswith("bob<br>photo") for text in bob.text)
    assert list(bob.customdata) == ["id3", "id4", "id5"]
    assert fig.layout.meta["method"] == "pca"


@pytest.mark.slow
def test_umap_map_separates_clusters():
    vectors, names = clusters(per_person=8)
    fig = embedding_map(vectors, names, "umap")
    assert fig.layout.meta["method"] == "umap"
    centres = np.array([[np.mean(t.x), np.mean(t.y)] for t in fig.data])
    spread = max(np.std(t.x) + np.std(t.y) for t in fig.data)
    gaps = [np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i + 1, 3)]
    assert min(gaps) > spread  # each person's points lie together, apart from the others


def test_histogram_has_both_classes_and_the_threshold_line():
    fig = distance_histogram([0.2, 0.3, 0.9, 1.0, 1.1], [1, 1, 0, 0, 0], threshold=0.6)
    assert [t.type for t in fig.data] == ["bar", "bar"]  # binned on the server: 50 bars whatever the pairs
    assert fig.data[0].name == "same person (2)" and fig.data[1].name == "different people (3)"
    assert len(fig.data[0].x) == 50 and sum(fig.data[0].customdata) == 2 and sum(fig.data[1].customdata) == 3
    width = fig.data[0].x[1] - fig.data[0].x[0]
    assert [round(x, 6) for x, n in zip(fig.data[0].x, fig.data[0].customdata) if n] == [
        round(x, 6) for x in fig.data[0].x if abs(x - 0.2) <= width / 2 or abs(x - 0.3) <= width / 2
    ]
    assert abs(sum(fig.data[1].y) - 1) < 1e-9
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert len(lines) == 1 and lines[0].x0 == lines[0].x1 == 0.6
    assert not distance_histogram([0.2, 0.9], [1, 0], threshold=None).layout.shapes


def test_roc_curves_of_several_models_on_one_chart():
    good = roc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0])
    poor = roc([0.1, 0.5, 0.3, 0.9], [1, 1, 0, 0])
    fig = roc_figure({"model-a": good, "model-b": poor})
    assert [t.name for t in fig.data] == ["model-a (AUC 1.0000)", "model-b (AUC 0.7500)", "chance"]
    assert list(fig.data[1].x) == list(poor.fpr)
    with pytest.raises(FigureError):
        roc_figure({})


def test_metrics_table_rows():
    fig = metrics_table([{"model": "a", "accuracy": 0.98765, "pairs": 10}, {"model": "b", "accuracy": 0.5, "pairs": 4}])
    table = fig.data[0]
    assert list(table.header.values) == ["metric", "a", "b"]  # a column per model: it reads on a phone
    assert [list(c) for c in table.cells.values] == [["accuracy", "pairs"], ["0.9877", "10"], ["0.5000", "4"]]


def test_report_is_standalone_html_with_plotly_js(tmp_path):
    vectors, names = clusters(per_person=3)
    figures = [embedding_map(vectors, names, "pca"), distance_histogram([0.2, 0.9], [1, 0], 0.5)]
    path = report_html(tmp_path / "out" / "report.html", figures, title="A <report>")
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and "A &lt;report&gt;" in text
    assert f"plotly.js v{plotly.offline.get_plotlyjs_version()}" in text  # the library itself, embedded
    assert "<script src=" not in text  # nothing fetched from a CDN
    assert text.count("window.PLOTLYENV=window.PLOTLYENV") == 2
    assert len(text) > 1_000_000


# -- the explorer: views of a gallery ------------------------------------------------------------
class FakeGallery:
    """Two 'models' over the same people, as the store would hand them back."""

    def __init__(self, data):
        self.data = data
        self.store = SimpleNamespace(models=lambda: list(data))
        self.pipeline = SimpleNamespace(spec=lambda name: SimpleNamespace(name=name), threshold=lambda name: 0.5)

    def people(self):
        return [SimpleNamespace(name=n) for n in sorted({n for _, names in self.data.values() for n in names})]

    def embeddings(self, model):
        model = getattr(model, "name", model)  # the explorer hands over the spec it resolved, as to the real gallery
        vectors, names = self.data[model]
        return (
            vectors,
            names,
            [f"{model}-{i}" for i in range(len(names))],
            [Path(f"/thumbs/{i}.jpg") for i in range(len(names))],
        )


def test_model_view_metrics_and_notes():
    vectors, names = clusters()
    view = model_view("m", vectors, names, threshold=0.5)
    assert view.metrics is not None and view.metrics.pairs == 12 * 11 // 2
    assert view.row()["auc"] > 0.99 and view.row()["accuracy at threshold"] > 0.9
    lonely = model_view("m", vectors[:3], ["a", "b", "c"])
    assert lonely.metrics is None and "no same-person pairs" in lonely.row()["note"]


def test_report_of_two_models_of_one_gallery(tmp_path):
    a, names = clusters(seed=1)
    b, _ = clusters(seed=2)
    views = gallery_views(FakeGallery({"model-a": (a, names), "model-b": (b, names)}))
    assert [v.model for v in views] == ["model-a", "model-b"]
    text = write_report(views, tmp_path / "r.html", method="pca").read_text()
    # table + ROC + (map + histogram) per model
    assert text.count("window.PLOTLYENV=window.PLOTLYENV") == 6
    for model in ("model-a", "model-b"):
        assert f"{model}: embeddings" in text and f"{model} (AUC" in text


def test_empty_gallery_says_so():
    with pytest.raises(FaceDemoError, match="gallery is empty"):
        gallery_views(FakeGallery({}))
    with pytest.raises(FaceDemoError, match="Nobody in the gallery is embedded with model-a yet"):
        gallery_views(FakeGallery({"model-a": (np.zeros((0, 4)), [])}))


def test_explore_for_the_dashboard_tab():
    from facedemo.explorer import explore

    a, names = clusters()
    result = explore(FakeGallery({"model-a": (a, names)}), "model-a", "pca")
    assert result.method == "pca" and result.model == "model-a"
    assert [t.name for t in result.projection.data] == ["ann", "bob", "cy"]
    assert result.histogram.layout.shapes[0].x0 == 0.5
    assert "12 faces of 3 people" in result.note
    assert result.to_json()["projection"] == "pca"


def test_probe_folder_is_read_per_person(tmp_path):
    from facedemo.evaluation.identification import probe_photos

    for person, files in {"ann": ["1.jpg", "2.PNG", "notes.txt"], "bob": ["a.jpeg"], "_group": ["g.jpg"]}.items():
        (tmp_path / person).mkdir()
        for name in files:
            (tmp_path / person / name).write_bytes(b"x")
    paths, names = probe_photos(tmp_path)
    assert names == ["ann", "ann", "bob"]
    assert [p.name for p in paths] == ["1.jpg", "2.PNG", "a.jpeg"]
    with pytest.raises(FaceDemoError, match="holds no photos in per-person folders"):
        probe_photos(tmp_path / "_group")
    with pytest.raises(FaceDemoError, match="does not exist"):
        probe_photos(tmp_path / "nobody")


FACES = Path(__file__).resolve().parent.parent.parent / "shared" / "faces" / "5celeb"


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.skipif(not FACES.is_dir(), reason="../shared/faces/5celeb is absent")
def test_cli_explore_and_identify_on_a_real_gallery(tmp_path, monkeypatch, capsys):
    import json

    from facedemo.cli import main

    monkeypatch.setenv("FACEDEMO_HOME", str(tmp_path / "home"))
    gallery = tmp_path / "gallery"
    assert main(["import", str(FACES / "val"), "--gallery", str(gallery), "--model", "dlib-resnet"]) == 0
    probe = tmp_path / "probe"
    for person in sorted(p for p in (FACES / "train").iterdir() if p.is_dir()):
        (probe / person.name).mkdir(parents=True)
        for photo in sorted(person.iterdir())[:2]:
            (probe / person.name / photo.name).symlink_to(photo)
    for person in ("penny", "howard"):  # strangers: not in the gallery, so the open-set curve is reported too
        (probe / person).mkdir()
        for photo in sorted((FACES.parent / "bbt_faceapi" / person).glob("*.png"))[:2]:
            (probe / person / photo.name).symlink_to(photo)
    capsys.readouterr()
    assert (
        main(
            [
                "eval",
                "identify",
                "--gallery",
                str(gallery),
                "--probe",
                str(probe),
                "--model",
                "dlib-resnet",
                "--top-k",
                "3",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["identities"] == 5 and result["probes"] + result["no_face"] + result["unknown_probes"] == 14
    assert result["top1"] >= 0.8 and result["topk"]["3"] >= result["top1"]
    assert set(result["open_set"]) == {"centroid", "nearest", "knn"}  # every rule that decides from distances
    for open_set in result["open_set"].values():
        assert open_set["mated"] == result["probes"] and open_set["nonmated"] == result["unknown_probes"] >= 3
        assert set(open_set["fnir_at_fpir"]) == {"0.001", "0.01", "0.1"} and len(open_set["det"]["fpir"]) == len(
            open_set["det"]["fnir"]
        )

    out = tmp_path / "report.html"
    assert (
        main(["explore", "--gallery", str(gallery), "--model", "dlib-resnet", "--method", "pca", "--out", str(out)])
        == 0
    )
    text = out.read_text()
    assert "dlib-resnet: embeddings" in text and "dlib-resnet (AUC" in text and "<script src=" not in text
    for person in ("ben_afflek", "madonna"):
        assert person in text


def test_the_verify_figure_labels_its_threshold_once_and_shows_the_whole_distribution():
    """Verify printed "threshold 0.42" twice, one on top of the other, and cut CASIA's histogram at 1.6."""
    import json
    from pathlib import Path

    from facedemo.explorer.figures import compare_figure, verify_figure

    shipped = json.loads((Path(__file__).resolve().parent.parent / "facedemo/data/distributions.json").read_text())
    one = verify_figure("dlib-resnet", 0.3, 0.42, shipped["dlib-resnet"])
    assert [a.text for a in one.layout.annotations] == ["threshold 0.42", "this pair 0.30"]
    assert one.layout.title.text == "dlib-resnet: this pair among LFW pairs"
    casia = shipped["facenet-casia-webface"]
    wide = verify_figure("facenet-casia-webface", 0.9, 1.14, casia)
    last = max(e for e, n in zip(casia["edges"][1:], casia["different"]) if n)
    assert wide.layout.xaxis.range[1] >= last > 1.6
    both = compare_figure(
        [("dlib-resnet", 0.3, 0.42, shipped["dlib-resnet"]), ("facenet-casia-webface", 0.9, 1.14, casia)]
    )
    assert sum(a.text.startswith("threshold") for a in both.layout.annotations) == 2


def test_the_training_curves_have_no_empty_label():
    """The fine-tune chart showed plotly's placeholder "new text" where a label had no text."""
    from facedemo.explorer.figures import training_curves_figure

    history = [
        {
            "epoch": i,
            "train_loss": 1 / i,
            "val_loss": 1.2 / i,
            "val_mean_pos_distance": 0.5,
            "val_mean_neg_distance": 1.0,
        }
        for i in range(1, 6)
    ]
    fig = training_curves_figure(history, "cast: training curves", best_epoch=3)
    assert all(a.text for a in fig.layout.annotations)
    assert [a.text for a in fig.layout.annotations].count("kept") == 1 and len(fig.layout.shapes) == 2


def test_a_person_has_the_same_colour_on_maps_side_by_side():
    """Two models' maps of one gallery gave the same person different colours when their people differed."""
    from facedemo.explorer.figures import embedding_map

    vectors, names = clusters(("ann", "bob", "cy"))
    everyone = ["ann", "bob", "cy", "dee"]
    a = embedding_map(vectors, names, "pca", people=everyone)
    keep = [i for i, n in enumerate(names) if n != "ann"]  # the second model has no face of ann
    b = embedding_map(vectors[keep], [names[i] for i in keep], "pca", people=everyone)
    colour = lambda fig: {t.name: t.marker.color for t in fig.data}  # noqa: E731
    assert colour(b) == {k: v for k, v in colour(a).items() if k != "ann"}
    assert len(set(colour(a).values())) == 3


def test_the_metrics_table_gives_long_names_room():
    """The Explorer's table cut "dlib-resnet" to "llib-resne": columns were all the same width."""
    from facedemo.explorer.figures import metrics_table

    rows = [
        {"model": "facenet-casia-webface", "faces": 40, "auc": 0.99871, "note": ""},
        {"model": "dlib-resnet", "faces": 40, "auc": 0.99912, "note": ""},
    ]
    widths = list(metrics_table(rows).data[0].columnwidth)
    assert widths[1] >= len("facenet-casia-webface") and widths[1] > widths[2] >= len("dlib-resnet")


def test_two_faces_draw_on_a_clean_axis():
    """Two faces span one direction: the other coordinate is exactly 0, not rounding noise that plotly printed
    as a tick label "7.764069909936053x10^-17"."""
    from facedemo.explorer.figures import project

    rng = np.random.default_rng(3)
    coords, method = project(rng.normal(size=(2, 128)), "pca")
    assert method == "pca" and np.all(coords[:, 1] == 0.0) and abs(coords[0, 0]) > 0.1


def test_a_large_gallery_is_sampled_and_binned_and_says_so():
    """Past MAX_PAIRS pairs a view measures every same-person pair and a random sample of the rest, the map
    draws MAX_POINTS faces, and the figures and the note say so (a 10,000-person gallery answered 735 MB)."""
    from facedemo.bench.gallery import synthetic_vectors
    from facedemo.explorer import explore
    from facedemo.explorer.exploration import MAX_POINTS
    from facedemo.explorer.views import MAX_PAIRS

    people, per = 1_500, 2  # 3,000 faces: 4.5 million pairs
    vectors = synthetic_vectors(people * per, per_person=per)
    names = [f"p{k % people}" for k in range(people * per)]
    result = explore(FakeGallery({"model-a": (vectors, names)}), "model-a", "pca")
    view = result.view
    assert view.sampled and len(view.distances) == MAX_PAIRS and view.all_pairs == 3_000 * 2_999 // 2
    assert view.labels.sum() == people  # every same-person pair is there
    assert sum(len(t.x) for t in result.projection.data) == MAX_POINTS
    assert "random sample" in result.projection.layout.title.text and "pairs" in result.histogram.layout.title.text
    assert f"a random sample of {MAX_POINTS:,} faces" in result.note and "of the 4,498,500 pairs" in result.note
    assert len(result.histogram.to_json()) < 50_000
