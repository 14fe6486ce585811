"""Evaluation sub-commands: ``eval lfw``, ``eval pairs``, ``eval identify``, ``calibrate`` and ``explore``.

Handlers only parse, call the core (``lfw``, ``explorer``) and print; progress bars go to stderr."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import FaceDemoError
from ..settings import REPO_ROOT
from .common import add_pipeline_args, pipeline_from

DEFAULT_LFW = REPO_ROOT.parent / "shared" / "faces" / "lfw"
CALIBRATION_PAIRS = "pairsDevTrain.txt"  # LFW View 1: thresholds are never chosen on View 2


def register(sub) -> None:
    p = sub.add_parser("eval", help="measure models on labelled pairs (LFW protocol, CSV pairs)")
    ev = p.add_subparsers(dest="eval", required=True, parser_class=type(p))

    e = ev.add_parser("lfw", help="the LFW 10-fold protocol on pairs.txt (View 2)")
    e.add_argument("--root", type=Path, default=DEFAULT_LFW, help=f"the LFW photos, one folder per person (default: {DEFAULT_LFW})")
    e.add_argument("--pairs", default="pairs.txt", help="LFW pairs file, as a path or relative to --root (default: pairs.txt)")
    e.add_argument("--folds", type=int, help="use only the first N folds (a quick run)")
    _add_eval_args(e)
    e.set_defaults(handler=cmd_eval)

    e = ev.add_parser("pairs", help="any labelled pairs: a CSV with columns a,b,same (paths relative to --root)")
    e.add_argument("--root", type=Path, required=True, help="folder the CSV's paths are relative to")
    e.add_argument("--pairs", required=True, help="the CSV file")
    _add_eval_args(e)
    e.set_defaults(handler=cmd_eval, folds=None)

    p = sub.add_parser("calibrate", help=f"choose a model's threshold on LFW View 1 ({CALIBRATION_PAIRS}) and save it")
    p.add_argument("--root", type=Path, default=DEFAULT_LFW, help=f"the LFW photos and View 1 files (default: {DEFAULT_LFW})")
    p.add_argument("--far", type=float, default=1e-3, help="false accept rate for the strict threshold (default: 1e-3)")
    p.add_argument(
        "--use", choices=["accuracy", "far"], default="accuracy",
        help="which threshold verify and identify use: the best-accuracy one (default) or the FAR one",
    )
    add_pipeline_args(p)
    p.set_defaults(handler=cmd_calibrate)

    _register_gallery_commands(sub, ev)


def _add_eval_args(parser) -> None:
    add_pipeline_args(parser, model=False)
    parser.add_argument("--model", nargs="+", action="extend", help="one or more models (default: the default model)")
    parser.add_argument("--far", type=float, default=1e-3, help="false accept rate at which VAL is reported (default: 1e-3)")


def _register_gallery_commands(sub, ev) -> None:
    """``eval identify`` and ``explore`` read a gallery (facedemo.gallery)."""
    e = ev.add_parser("identify", help="top-1/top-k identification of a folder-per-identity probe set against a gallery")
    e.add_argument("--gallery", help="gallery folder (default: $FACEDEMO_GALLERY, else <repo>/gallery)")
    e.add_argument("--probe", type=Path, required=True, help="probe photos, one folder per person")
    e.add_argument("--top-k", type=int, default=5, help="also report top-k accuracy for this k (default: 5)")
    add_pipeline_args(e)
    e.set_defaults(handler=cmd_identify)

    p = sub.add_parser("explore", help="write a standalone HTML report: embedding maps, distance histograms, ROC, metrics")
    p.add_argument("--gallery", help="gallery folder (default: $FACEDEMO_GALLERY, else <repo>/gallery)")
    p.add_argument("--model", nargs="+", action="extend", help="one or more models (default: every model in the gallery)")
    p.add_argument("--method", choices=["umap", "pca"], default="umap", help="2-D projection (default: umap)")
    p.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    add_pipeline_args(p, model=False)
    p.set_defaults(handler=cmd_explore)


def _gallery(args):
    import os

    from ..gallery import Gallery
    from ..store import open_store

    folder = args.gallery or os.environ.get("FACEDEMO_GALLERY") or None
    if folder and not Path(folder).is_dir():
        raise FaceDemoError(f"The gallery folder {folder} does not exist; create one with `python -m facedemo import FOLDER --gallery {folder}`.")
    return Gallery(pipeline_from(args), open_store(folder))


def cmd_identify(args) -> int:
    from ..explorer import identify_probes
    from . import emit

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
    from ..explorer import gallery_views, write_report
    from . import emit

    views = gallery_views(_gallery(args), args.model)
    path = write_report(views, args.out, args.method)
    emit(args, {"out": str(path), "models": [v.row() for v in views]}, f"wrote {path} ({', '.join(v.model for v in views)})")
    return 0


def check_far(far: float) -> None:
    """Refuse a bad --far before minutes of embedding, not after."""
    if not 0.0 < far < 1.0:
        raise FaceDemoError(f"--far is a false accept rate between 0 and 1 (e.g. 1e-3), not {far:g}.")


def resolve_pairs(root: Path, pairs: str) -> Path:
    given = Path(pairs).expanduser()
    if given.is_file() or given.is_absolute():
        return given
    return Path(root) / given


def tqdm_progress(label: str):
    """A progress callback drawing a tqdm bar on stderr, only when there is work to do."""
    from tqdm import tqdm

    state = {}

    def update(done: int, total: int) -> None:
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
    from ..lfw import evaluate_pairs, read_pairs
    from . import emit

    check_far(args.far)
    if not Path(args.root).is_dir():
        raise FaceDemoError(f"The photo folder {args.root} does not exist.")
    pairs = read_pairs(resolve_pairs(args.root, args.pairs), args.root, args.folds)
    pipeline = pipeline_from(args)
    names = args.model or [pipeline.default_model()]
    results = []
    for name in names:
        label = f"{pipeline.spec(name).name} ({pipeline.settings.alignment})"
        results.append(evaluate_pairs(pipeline, pairs, name, far=args.far, progress=tqdm_progress(label)))
    payload = [r.to_json() for r in results]
    emit(args, payload[0] if len(payload) == 1 else payload, "\n".join(describe(r, args.far) for r in results))
    return 0


def describe(result, far: float) -> str:
    m = result.metrics
    folds = len(m.cv.fold_accuracies)
    how = f"{folds}-fold" if folds > 1 else "best threshold on the same pairs"
    return (
        f"{result.model} ({result.alignment}): accuracy {m.cv.accuracy:.2%} ± {m.cv.accuracy_std:.2%} ({how}), "
        f"AUC {m.roc.auc:.4f}, VAL {m.at_far.val:.2%} @ FAR {m.at_far.far:.4f} (target {far:g}), "
        f"threshold {m.cv.threshold:.3f}, mean distance same {m.stats.mean_pos:.3f} / different {m.stats.mean_neg:.3f}, "
        f"contrastive loss {m.loss:.4f}, {m.pairs} pairs of {result.images} photos, "
        f"{result.detection_failures} with no face found (centre crop used)"
    )


def cmd_calibrate(args) -> int:
    from datetime import datetime, timezone

    from .. import distributions
    from ..lfw import evaluate_pairs, read_lfw_pairs
    from ..metrics import best_threshold, rates_at
    from ..thresholds import save_calibration
    from . import emit

    check_far(args.far)
    pairs_file = Path(args.root) / CALIBRATION_PAIRS
    pairs = read_lfw_pairs(pairs_file, args.root)
    pipeline = pipeline_from(args)
    name = pipeline.spec(args.model).name
    alignment = pipeline.settings.alignment
    result = evaluate_pairs(pipeline, pairs, name, far=args.far, progress=tqdm_progress(f"{name} ({alignment})"))
    best = best_threshold(result.distances, result.labels)
    strict = result.metrics.at_far
    chosen = best.threshold if args.use == "accuracy" else strict.threshold
    at_chosen = rates_at(result.distances, result.labels, chosen)
    command = f"python -m facedemo calibrate --model {name} --far {args.far:g} --use {args.use}"
    if alignment != "similarity":
        command += f" --alignment {alignment}"
    record = {
        "threshold": round(chosen, 4),
        "criterion": "best accuracy" if args.use == "accuracy" else f"FAR <= {args.far:g}",
        "far": round(at_chosen.far, 5),  # measured on View 1 at `threshold`
        "val": round(at_chosen.val, 5),
        "accuracy_threshold": round(best.threshold, 4),
        "accuracy": round(best.accuracy, 5),
        "far_target": args.far,
        "far_threshold": round(strict.threshold, 4),
        "val_at_far_target": round(strict.val, 5),
        "alignment": alignment,
        "pairs": len(pairs),
        "detection_failures": result.detection_failures,
        "source": f"LFW View 1 {CALIBRATION_PAIRS}",
        "command": command,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }
    path = save_calibration(name, record, pipeline.settings.home)
    # The Verify tab shows where a pair's distance falls among these View 1 distances.
    histograms = distributions.histogram_record(
        result.distances[result.labels], result.distances[~result.labels], source=f"LFW View 1 {CALIBRATION_PAIRS}, {alignment} alignment"
    )
    distributions.save(name, histograms, pipeline.settings.home)
    text = (
        f"{name} ({alignment}) on {len(pairs)} View 1 pairs:\n"
        f"  best accuracy {best.accuracy:.2%} at threshold {best.threshold:.4f}\n"
        f"  FAR <= {args.far:g}: threshold {strict.threshold:.4f}, VAL {strict.val:.2%}, FAR {strict.far:.4f}\n"
        f"  saved threshold {chosen:.4f} ({record['criterion']}) to {path}"
    )
    emit(args, {"model": name, **record, "file": str(path)}, text)
    return 0
