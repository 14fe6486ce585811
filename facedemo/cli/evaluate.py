"""Evaluation sub-commands: ``eval lfw``, ``eval pairs``, ``eval robustness``, ``eval identify``, ``calibrate``,
``explore`` and ``scoreboard``.

Handlers only parse, call the core (``evaluation``, ``explorer``) and print; progress bars go to stderr."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import DataUnavailableError, GalleryError, InvalidParameterError
from ..evaluation.calibration import CALIBRATION_PAIRS, check_far
from ..evaluation.disagreement import DEFAULT_HARDEST
from ..evaluation.robustness import DEFAULT_PAIRS as DEFAULT_ROBUSTNESS_PAIRS
from ..models import data
from ..rules import distance_methods
from ..settings import SHARED_LFW as DEFAULT_LFW
from ..settings import default_gallery_dir
from ..vision.degrade import CONDITIONS, DEFAULT_SEVERITIES
from ..words import faces_of_people
from .common import add_pipeline_args, pipeline_from


def register(sub) -> None:
    p = sub.add_parser("eval", help="measure models on labelled pairs (LFW protocol, CSV pairs)")
    ev = p.add_subparsers(dest="eval", required=True, parser_class=type(p))

    e = ev.add_parser("lfw", help="the LFW 10-fold protocol on pairs.txt (View 2)")
    e.add_argument(
        "--root", type=Path, default=DEFAULT_LFW, help=f"the LFW photos, one folder per person (default: {DEFAULT_LFW})"
    )
    e.add_argument(
        "--pairs", default="pairs.txt", help="LFW pairs file, as a path or relative to --root (default: pairs.txt)"
    )
    e.add_argument("--folds", type=int, help="use only the first N folds (a quick run)")
    _add_eval_args(e)
    e.set_defaults(handler=cmd_eval)

    e = ev.add_parser("pairs", help="any labelled pairs: a CSV with columns a,b,same (paths relative to --root)")
    e.add_argument("--root", type=Path, required=True, help="folder the CSV's paths are relative to")
    e.add_argument("--pairs", required=True, help="the CSV file")
    _add_eval_args(e)
    e.set_defaults(handler=cmd_eval, folds=None)

    e = ev.add_parser(
        "robustness",
        help="verification when one photo of each pair is blurred, darkened, shrunk, compressed, covered or noisy",
    )
    e.add_argument(
        "--root", type=Path, default=DEFAULT_LFW, help=f"the photos, one folder per person (default: {DEFAULT_LFW})"
    )
    e.add_argument(
        "--pairs",
        default=DEFAULT_ROBUSTNESS_PAIRS,
        help=f"LFW pairs file or CSV a,b,same, as a path or relative to --root (default: {DEFAULT_ROBUSTNESS_PAIRS}, "
        "View 1's test half, independent of the thresholds calibrated on pairsDevTrain.txt)",
    )
    e.add_argument("--folds", type=int, help="LFW pairs files: use only the first N folds")
    e.add_argument(
        "--conditions",
        nargs="+",
        action="extend",
        help=f"conditions, space- or comma-separated (default: all: {', '.join(CONDITIONS)})",
    )
    e.add_argument(
        "--severities",
        nargs="+",
        action="extend",
        help=f"severities 1 (mild) to 5 (harsh), space- or comma-separated (default: {','.join(map(str, DEFAULT_SEVERITIES))})",
    )
    add_pipeline_args(e, model=False)
    e.add_argument("--model", nargs="+", action="extend", help="one or more models (default: every available model)")
    e.add_argument("--far", type=float, default=1e-3, help="false accept rate at which VAL is reported (default: 1e-3)")
    e.set_defaults(handler=cmd_robustness)

    p = sub.add_parser("calibrate", help=f"choose a model's threshold on LFW View 1 ({CALIBRATION_PAIRS}) and save it")
    p.add_argument(
        "--root", type=Path, default=DEFAULT_LFW, help=f"the LFW photos and View 1 files (default: {DEFAULT_LFW})"
    )
    p.add_argument("--far", type=float, default=1e-3, help="false accept rate for the strict threshold (default: 1e-3)")
    p.add_argument(
        "--use",
        choices=["accuracy", "far"],
        default="accuracy",
        help="which threshold verify and identify use: the best-accuracy one (default) or the FAR one",
    )
    p.add_argument(
        "--all",
        action="store_true",
        help="every piece of the model's data, not only its thresholds: distance distributions, open-set impostor "
        "tails and DET curves (`bench identify --open-set`), the classifier's strangers' vectors, and the "
        "robustness figures of all nine conditions at severities 1, 3, 5 (tens of minutes on a CPU)",
    )
    p.add_argument(
        "--ship",
        action="store_true",
        help="with --all: also copy the results into facedemo/data, where they ship with facedemo (for maintainers)",
    )
    add_pipeline_args(p)
    p.set_defaults(handler=cmd_calibrate)

    _register_gallery_commands(sub, ev)


def _add_eval_args(parser) -> None:
    add_pipeline_args(parser, model=False)
    parser.add_argument("--model", nargs="+", action="extend", help="one or more models (default: the default model)")
    parser.add_argument(
        "--far", type=float, default=1e-3, help="false accept rate at which VAL is reported (default: 1e-3)"
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="every available model (or --model's) on the same pairs, each at its own threshold: the pairs on "
        "which their verdicts differ, and each model's hardest false accepts and false rejects",
    )
    parser.add_argument(
        "--hardest",
        type=int,
        default=DEFAULT_HARDEST,
        help=f"with --compare: how many false accepts and false rejects to list per model (default: {DEFAULT_HARDEST})",
    )


def _register_gallery_commands(sub, ev) -> None:
    """``eval identify`` and ``explore`` read a gallery (facedemo.gallery)."""
    e = ev.add_parser(
        "identify", help="top-1/top-k identification of a folder-per-identity probe set against a gallery"
    )
    e.add_argument("--gallery", help="gallery folder (default: $FACEDEMO_GALLERY, else <repo>/gallery)")
    e.add_argument("--probe", type=Path, required=True, help="probe photos, one folder per person")
    e.add_argument("--top-k", type=int, default=5, help="also report top-k accuracy for this k (default: 5)")
    add_pipeline_args(e)
    e.set_defaults(handler=cmd_identify)

    p = sub.add_parser(
        "explore", help="write a standalone HTML report: embedding maps, distance histograms, ROC, metrics"
    )
    p.add_argument("--gallery", help="gallery folder (default: $FACEDEMO_GALLERY, else <repo>/gallery)")
    p.add_argument(
        "--model", nargs="+", action="extend", help="one or more models (default: every model in the gallery)"
    )
    p.add_argument("--method", choices=["umap", "pca"], default="umap", help="2-D projection (default: umap)")
    p.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    add_pipeline_args(p, model=False)
    p.set_defaults(handler=cmd_explore)

    p = sub.add_parser(
        "scoreboard",
        help="every model on the gallery's own faces: leave-one-out identification, every pair, ms per face",
    )
    p.add_argument("--gallery", help="gallery folder (default: $FACEDEMO_GALLERY, else <repo>/gallery)")
    p.add_argument("--model", nargs="+", action="extend", help="one or more models (default: every available model)")
    p.add_argument(
        "--method",
        choices=distance_methods(),
        default="centroid",
        help="the decision method of the leave-one-out identification (default: centroid)",
    )
    add_pipeline_args(p, model=False)
    p.set_defaults(handler=cmd_scoreboard)


def _services(args):
    """The front door for a gallery folder that must exist."""
    from .common import services_from

    folder = args.gallery or default_gallery_dir()
    if not Path(folder).is_dir():
        raise GalleryError(
            f"The gallery folder {folder} does not exist; create one with `python -m facedemo import FOLDER --gallery {folder}`."
        )
    return services_from(args)


def _gallery(args):
    from ..services.usecases import fill_in

    services = _services(args)
    gallery = services.gallery(None)
    wanted = getattr(args, "model", None)
    wanted = [wanted] if isinstance(wanted, str) else list(wanted or [])
    fill_in([gallery], [gallery.model_name(m) for m in wanted] or services.available_models())
    return gallery


def cmd_identify(args) -> int:
    from ..evaluation import identify_probes
    from .common import emit

    report = identify_probes(_gallery(args), args.probe, args.model, ks=(1, args.top_k))
    r = report.result
    text = (
        f"{report.model}: top-1 {r.top1:.2%}, top-{args.top_k} {r.topk[args.top_k]:.2%} over {r.probes} probe photos "
        f"of a gallery of {r.identities} people ({r.unknown_probes} probes of people not in the gallery, "
        f"{report.no_face} with no face, {report.unreadable} unreadable: left out)"
    )
    emit(args, report.to_json(), text)
    return 0


def cmd_explore(args) -> int:
    from ..explorer import explorer_figures, gallery_views, write_report
    from .common import emit

    views = gallery_views(_gallery(args), args.model)
    figures = explorer_figures(views, args.method)
    path = write_report(views, args.out, args.method, figures=figures)
    emit(
        args,
        {
            "out": str(path),
            "models": [v.row() for v in views],
            "projections": figures.projections(),
            "points": figures.points(),  # each face as the maps draw it: model, person, face id, x, y
        },
        f"wrote {path} ({', '.join(v.model for v in views)})",
    )
    return 0


def cmd_scoreboard(args) -> int:
    from ..services import usecases
    from .common import emit, progress_bar

    progress = progress_bar("step", "scoreboard")
    try:
        board = usecases.scoreboard(_services(args).request(None), args.model, args.method, progress)
    finally:
        progress.close()
    emit(args, board.to_json(), scoreboard_text(board))
    return 0


def scoreboard_text(board) -> str:
    """The board as a plain table (* marks the best of a row), then what each row means."""
    models = [m.model for m in board.models]
    width = max(len(r.label) for r in board.rows) + 2
    cells = [max(len(m), 12) + 2 for m in models]
    lines = [
        f"{faces_of_people(board.faces, board.people)}, {board.method} method; * marks the best of a row.",
        "",
        "".ljust(width) + "".join(m.rjust(w) for m, w in zip(models, cells)),
    ]
    for r in board.rows:
        shown = [(("* " if m in r.best else "") + r.shown(m)).rjust(w) for m, w in zip(models, cells)]
        lines.append(r.label.ljust(width) + "".join(shown))
    lines += ["", *(f"{r.label}: {r.sentence}" for r in board.rows)]
    if board.disagreements:
        lines += ["", f"The models name {len(board.disagreements)} face(s) differently:"]
        lines += [
            f"  {d.face_id} ({d.person}): " + ", ".join(f"{m} {n or 'unknown'}" for m, n in d.answers.items())
            for d in board.disagreements
        ]
    lines += [f"Note: {n}" for n in board.notes]
    lines += [f"Not scored: {m}: {r}" for m, r in board.unavailable.items()]
    return "\n".join(lines)


def resolve_pairs(root: Path, pairs: str) -> Path:
    given = Path(pairs).expanduser()
    if given.is_file() or given.is_absolute():
        return given
    return Path(root) / given


def tqdm_progress(label: str):
    """A progress callback drawing a tqdm bar on stderr, only when there is work to do."""
    from tqdm import tqdm

    state = {}

    def update(done: int, total: int, message: str = "") -> None:
        if total == 0:
            return
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc=label, unit="photo", file=sys.stderr, dynamic_ncols=True)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def cmd_eval(args) -> int:
    from ..evaluation import evaluate_pairs, read_pairs
    from .common import emit

    check_far(args.far)
    if not Path(args.root).is_dir():
        raise DataUnavailableError(f"The photo folder {args.root} does not exist.")
    path = resolve_pairs(args.root, args.pairs)
    pairs = read_pairs(path, args.root, args.folds)
    pipeline = pipeline_from(args)
    if args.compare:
        return compare_models_on_pairs(args, pipeline, pairs, path.name)
    names = args.model or [pipeline.default_model()]
    results = []
    for name in names:
        label = f"{pipeline.spec(name).name} ({pipeline.alignment(name)})"
        results.append(evaluate_pairs(pipeline, pairs, name, far=args.far, progress=tqdm_progress(label)))
    payload = [r.to_json() for r in results]
    emit(args, payload[0] if len(payload) == 1 else payload, "\n".join(describe(r, args.far) for r in results))
    return 0


def compare_models_on_pairs(args, pipeline, pairs, source: str) -> int:
    from ..evaluation.disagreement import compare_pairs
    from .common import emit

    if args.hardest < 0:
        raise InvalidParameterError(f"--hardest must be 0 or more, not {args.hardest}.")
    result = compare_pairs(pipeline, pairs, args.model, args.hardest, source, args.far, tqdm_progress)
    emit(args, result.to_json(), disagreement_text(result))
    return 0


def disagreement_text(result) -> str:
    def line(p) -> str:
        label = "same person" if p.pair.same else "different people"
        verdicts = ", ".join(
            f"{m} {p.distances[m]:.3f} ({'same' if p.same_person[m] else 'different'})" for m in result.models
        )
        return f"    {label}: {p.pair.a} | {p.pair.b}: {verdicts}{' [no face found]' if p.pair.no_face else ''}"

    lines = [f"{result.pairs} pairs of {result.source}, each model at its own threshold:"]
    for m in result.models:
        h = result.hardest[m]
        lines.append(
            f"  {m}: threshold {result.thresholds[m]:.3f}, accuracy {result.accuracy[m]:.2%}, "
            f"{h.false_accept_count} false accepts, {h.false_reject_count} false rejects, "
            f"right on {result.right_on_disagreements(m)} of the {len(result.disagreements)} disagreements"
        )
    lines.append(f"the {len(result.disagreements)} pairs on which the models' verdicts differ:")
    lines += [line(p) for p in result.disagreements]
    for m, h in result.hardest.items():
        lines += [f"{m}: hardest false accepts (different people, closest first):", *map(line, h.false_accepts)]
        lines += [f"{m}: hardest false rejects (the same person, farthest first):", *map(line, h.false_rejects)]
    lines += [f"{m}: not run ({why})" for m, why in result.unavailable.items()]
    return "\n".join(lines)


def describe(result, far: float) -> str:
    m = result.metrics
    folds = len(m.cv.fold_accuracies)
    how = f"{folds}-fold" if folds > 1 else "best threshold on the same pairs"
    return (
        f"{result.model} ({result.alignment}{', flip' if result.flip else ''}): accuracy {m.cv.accuracy:.2%} ± {m.cv.accuracy_std:.2%} ({how}), "
        f"AUC {m.roc.auc:.4f}, VAL {m.at_far.val:.2%} @ FAR {m.at_far.far:.4f} (target {far:g}), "
        f"threshold {m.cv.threshold:.3f}, mean distance same {m.stats.mean_pos:.3f} / different {m.stats.mean_neg:.3f}, "
        f"contrastive loss {m.loss:.4f}, {m.pairs} pairs of {result.images} photos, "
        f"{result.detection_failures} with no face found (centre crop used)"
    )


def _listed(values) -> list[str]:
    return [v for value in values or [] for v in value.split(",") if v.strip()]


def _severities(values) -> list[int] | None:
    levels = []
    for v in _listed(values):
        try:
            levels.append(int(v))
        except ValueError:
            raise InvalidParameterError(
                f"A severity is a whole number from 1 (mild) to 5 (harsh), not '{v}'."
            ) from None
    return levels or None


def cmd_robustness(args) -> int:
    from ..evaluation import read_pairs
    from ..evaluation.robustness import check_slices, evaluate_robustness
    from .common import emit

    check_far(args.far)
    conditions, severities = check_slices(_listed(args.conditions) or None, _severities(args.severities))
    if not Path(args.root).is_dir():
        raise DataUnavailableError(f"The photo folder {args.root} does not exist.")
    path = resolve_pairs(args.root, args.pairs)
    pairs = read_pairs(path, args.root, args.folds)
    result = evaluate_robustness(
        pipeline_from(args), pairs, args.model, conditions, severities, args.far, path.name, tqdm_progress
    )
    emit(args, result.to_json(), robustness_table(result))
    return 0


def robustness_table(result) -> str:
    lines = [
        f"{result.pairs} pairs of {result.pairs_file}; the second photo of each pair degraded before detection. "
        f"accuracy at each model's calibrated threshold, VAL at FAR {result.far:g}, mean distance of same / different pairs, "
        f"photos with no face found (a centre crop stood in)."
    ]
    header = f"  {'slice':<16}{'accuracy':>9}{'AUC':>8}{'VAL':>8}{'same':>8}{'diff':>8}{'no face':>9}"
    for name, m in result.models.items():
        lines += ["", f"{name} (threshold {m.threshold:.3f}, {m.photos} degraded photos per slice)", header]

        def row(label, s):
            return (
                f"  {label:<16}{s.accuracy:>9.2%}{s.auc:>8.4f}{s.val:>8.2%}{s.mean_pos_distance:>8.3f}"
                f"{s.mean_neg_distance:>8.3f}{s.detection_failures:>9}"
            )

        lines.append(row("clean", m.clean))
        for condition, levels in m.conditions.items():
            lines += [row(f"{condition}:{level}", metrics) for level, metrics in sorted(levels.items())]
        lines.append(f"  ({m.computed} photos embedded now, the rest from the cache)")
    for name, reason in result.unavailable.items():
        lines.append(f"\n{name}: not run ({reason})")
    return "\n".join(lines)


def cmd_calibrate(args) -> int:
    from ..evaluation import calibrate
    from .common import emit

    check_far(args.far)
    if args.ship and not args.all:
        raise InvalidParameterError("--ship copies what --all measured: give both.")
    pipeline = pipeline_from(args)
    name = pipeline.spec(args.model).name
    label = f"{name} ({pipeline.alignment(name)})"
    result = calibrate(pipeline, args.root, name, args.far, args.use, progress=tqdm_progress(label))
    r = result.record
    text = (
        f"{name} ({result.alignment}) on {r['pairs']} View 1 pairs:\n"
        f"  best accuracy {r['accuracy']:.2%} at threshold {r['accuracy_threshold']:.4f}\n"
        f"  FAR <= {args.far:g}: threshold {r['far_threshold']:.4f}, VAL {r['val_at_far_target']:.2%}, FAR {result.far_at_far_threshold:.4f}\n"
        f"  saved threshold {r['threshold']:.4f} ({r['criterion']}) to {result.file}"
    )
    if not args.all:
        emit(args, result.to_json(), text)
        return 0
    written = calibrate_the_rest(pipeline, name, args.root, args.far)
    if args.ship:
        written += ship(pipeline, name, args.far)
    text += "\n" + "\n".join(f"  {what}: {where}" for what, where in written)
    emit(args, {**result.to_json(), "written": dict(written)}, text)
    return 0


def calibrate_the_rest(pipeline, name: str, root: Path, far: float) -> list[tuple[str, str]]:
    """`calibrate --all` after the thresholds: each of the model's other data, into $FACEDEMO_HOME."""
    from ..bench.identify import bench_open_set
    from ..evaluation import read_pairs
    from ..evaluation.openset import save_open_set_calibration
    from ..evaluation.robustness import evaluate_robustness
    from ..gallery.classifier import save_strangers

    home = Path(pipeline.settings.home)
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    report = bench_open_set(pipeline, root, [10, 100, 1000], model=name, log=log)
    saved = save_open_set_calibration(home, report.model, report.tails, report.target_fpir, report.curves)
    written = [("open-set tails and DET curves", str(saved))]
    written.append(("strangers' vectors", str(save_strangers(pipeline, name, root, data.mine(home, "strangers")))))
    path = resolve_pairs(root, DEFAULT_ROBUSTNESS_PAIRS)
    result = evaluate_robustness(
        pipeline,
        read_pairs(path, root),
        [name],
        list(CONDITIONS),
        list(DEFAULT_SEVERITIES),
        far,
        path.name,
        tqdm_progress,
    )
    written.append(("robustness figures", result.files[name]))
    return written


def ship(pipeline, name: str, far: float) -> list[tuple[str, str]]:
    """Copy one model's data from $FACEDEMO_HOME into facedemo/data (``--ship``), each where facedemo reads
    its shipped copy."""
    import shutil

    from ..files import read_json, update_json

    home = Path(pipeline.settings.home)
    copied = []
    for kind, options in (
        ("thresholds", {"indent": 2, "sort_keys": True}),
        ("distributions", {}),
        ("openset", {"indent": 1}),
    ):
        record = read_json(data.mine(home, kind)).get(name)
        if record:
            update_json(data.shipped(kind), name, record, **options)
            copied.append((f"shipped {data.shipped(kind).name}", str(data.shipped(kind))))
    strangers, robustness = data.shipped("strangers"), data.shipped("robustness")
    strangers.mkdir(parents=True, exist_ok=True)
    copied.append(("shipped strangers", str(shutil.copy(data.mine(home, "strangers") / f"{name}.npz", strangers))))
    robustness.mkdir(parents=True, exist_ok=True)
    for old in robustness.glob(f"{name}-*.json"):  # figures of other weights or pairs: replaced
        old.unlink()
    for file in data.mine(home, "robustness").glob(f"{name}-*.json"):
        record = read_json(file)
        if record.get("far_target") == far and record.get("clean"):
            copied.append(("shipped robustness figures", str(shutil.copy(file, robustness))))
    return copied
