"""Gallery sub-commands: enroll, import, identify, people (list, delete, rename), and `bench gallery`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ConfirmationNeeded, ImageError, InvalidParameterError, LooksLikeSomeoneError, OddPhotosError
from ..rules import DEFAULT_METHOD, described, methods
from .common import add_pipeline_args


def _add_store_args(p: argparse.ArgumentParser, nested: bool = False) -> None:
    # Under `people delete|rename` the defaults are suppressed so `people --gallery X delete NAME` keeps X.
    keep = {"default": argparse.SUPPRESS} if nested else {}
    p.add_argument("--gallery", help="gallery folder (default: $FACEDEMO_GALLERY, else <repo>/gallery)", **keep)
    p.add_argument("--chroma-host", help="use a Chroma server at this host (default: $CHROMA_HOST)", **keep)
    p.add_argument(
        "--chroma-port", type=int, help="the Chroma server's port (default: $CHROMA_PORT, else 8000)", **keep
    )


def register(sub) -> None:
    _register_enroll(sub)
    _register_import(sub)
    _register_identify(sub)
    _register_backfill(sub)
    _register_people(sub)


def _register_enroll(sub) -> None:
    p = sub.add_parser("enroll", help="add photos of one person to the gallery")
    p.add_argument("name")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument(
        "--face", type=int, dest="face_index", help="which face to enroll when a photo holds several (0 = leftmost)"
    )
    p.add_argument(
        "--confirm",
        action="store_true",
        help="enroll even a face the gallery already names as someone else (without it, the enroll is refused "
        "with the question)",
    )
    odd = p.add_mutually_exclusive_group()
    odd.add_argument(
        "--keep-odd",
        dest="odd_photos",
        action="store_const",
        const="keep",
        help="enroll the photos whose face does not look like the others' too (without it or --drop-odd, the "
        "enroll is refused naming them)",
    )
    odd.add_argument(
        "--drop-odd",
        dest="odd_photos",
        action="store_const",
        const="drop",
        help="leave out the photos whose face does not look like the others'",
    )
    _add_store_args(p)
    add_pipeline_args(p)
    p.set_defaults(handler=cmd_enroll)


def _register_import(sub) -> None:
    p = sub.add_parser(
        "import", help="enroll a folder-per-identity tree, or a zip of one (folders starting with '_' are skipped)"
    )
    p.add_argument("folder", metavar="FOLDER_OR_ZIP")
    _add_store_args(p)
    add_pipeline_args(p)
    p.set_defaults(handler=cmd_import)


def _register_identify(sub) -> None:
    p = sub.add_parser("identify", help="name every face in an image")
    p.add_argument("image")
    p.add_argument("--top-k", type=int, default=3, help="candidates to list per face (default 3)")
    p.add_argument(
        "--method",
        choices=methods(),
        default=DEFAULT_METHOD,
        help=f"{described()} (default {DEFAULT_METHOD}; the classifier's strangers: $FACEDEMO_STRANGERS)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        help="L2 distance beyond which a face is unknown (classifier: 1 - the probability needed); default: one that follows "
        "the number of people enrolled so that about $FACEDEMO_TARGET_FPIR (1%%) of strangers get a name",
    )
    p.add_argument("--out", help="write the image with boxes and names here")
    p.add_argument(
        "--compare",
        action="store_true",
        help="identify with every available model that has people enrolled (each at its own threshold): a row per model and face",
    )
    _add_store_args(p)
    add_pipeline_args(p)
    p.set_defaults(handler=cmd_identify)


def _register_backfill(sub) -> None:
    p = sub.add_parser(
        "backfill",
        help="embed every enrolled face with a model that has none of them yet (a model added after the "
        "people were enrolled: a fine-tuned one, the CASIA model once converted), from the stored face regions",
    )
    p.add_argument("--model", help="only this model (default: every available model)")
    _add_store_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_backfill)


def _register_people(sub) -> None:
    p = sub.add_parser(
        "people",
        help="list the people in the gallery; `people delete NAME`, `people rename OLD NEW`, `people faces NAME`, "
        "`people remove-face NAME FACE_ID`",
    )
    _add_store_args(p)
    p.add_argument("--model", help="only people enrolled with this model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_people)
    actions = p.add_subparsers(dest="action", parser_class=type(p))
    for action, arguments, text, handler in (
        ("delete", ("name",), "remove a person: every embedding and every thumbnail", cmd_delete),
        ("faces", ("name",), "list one person's enrolled faces (with the ids remove-face takes)", cmd_faces),
        (
            "remove-face",
            ("name", "face_id"),
            "remove one face of a person (a wrong photo): its embeddings, region and thumbnail",
            cmd_remove_face,
        ),
        ("rename", ("old", "new"), "rename a person", cmd_rename),
    ):
        _register_person_action(actions, action, arguments, text, handler)


def _register_person_action(actions, action: str, arguments, text: str, handler) -> None:
    """One of ``people``'s actions on a person: its positional arguments, the store's options and --json."""
    a = actions.add_parser(action, help=text)
    for argument in arguments:
        a.add_argument(argument, **({"metavar": "FACE_ID"} if argument == "face_id" else {}))
    _add_store_args(a, nested=True)
    a.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    a.set_defaults(handler=handler)


def register_bench(bench) -> None:
    b = bench.add_parser(
        "gallery", help="Chroma query latency and recall@1 at 1k/10k/100k synthetic faces, embedded and server"
    )
    b.add_argument("--sizes", default="1000,10000,100000", help="comma-separated collection sizes")
    b.add_argument("--queries", type=int, default=200)
    b.add_argument("--backends", default="embedded,server", help="embedded, server or both")
    b.add_argument(
        "--uniform",
        action="store_true",
        help="uniform random unit vectors (harder for HNSW) instead of clusters of ten",
    )
    b.add_argument("--json", action="store_true")
    b.set_defaults(handler=cmd_bench_gallery)

    b = bench.add_parser(
        "identify", help="compare the identification methods on real photos (enrolled people and strangers)"
    )
    b.add_argument("--lfw", default=None, help="LFW folder (default ../shared/faces/lfw)")
    b.add_argument("--people", type=int, default=40, help="enrolled people (LFW people with >= 10 photos)")
    b.add_argument("--enroll", type=int, default=5, help="photos enrolled per person; the rest are probes")
    b.add_argument("--strangers", type=int, default=150, help="probe photos of people not enrolled")
    b.add_argument("--model")
    b.add_argument(
        "--open-set",
        action="store_true",
        help="NIST's open-set measure instead: FNIR at FPIR (DET curves) for every decision rule at several gallery sizes, "
        "and the threshold that follows the gallery size",
    )
    b.add_argument(
        "--sizes", default="10,100,1000", help="with --open-set: gallery sizes in people (default 10,100,1000)"
    )
    b.add_argument(
        "--target-fpir",
        type=float,
        help="with --open-set: the FPIR the size-following threshold aims at (default $FACEDEMO_TARGET_FPIR, else 0.01)",
    )
    b.add_argument(
        "--no-classifier",
        action="store_true",
        help="with --open-set: skip the logistic-regression method (its training is the slow part)",
    )
    b.add_argument(
        "--save-calibration",
        action="store_true",
        help="with --open-set: write the fitted impostor tails to $FACEDEMO_HOME/openset.json, where identification reads them",
    )
    b.add_argument("--json", action="store_true")
    b.set_defaults(handler=cmd_bench_identify)

    b = bench.add_parser(
        "seam",
        help="identify latency on a group photo and Chroma calls per identify at several gallery sizes; "
        "enrolling with every model against one; the backfill rate of a model added later",
    )
    b.add_argument(
        "--photo",
        help="the group photo (default: bbt4.jpg of ../shared/faces, its cast enrolled; else the example group)",
    )
    b.add_argument("--sizes", default="10,1000,10000", help="gallery sizes in people (default 10,1000,10000)")
    b.add_argument("--repeats", type=int, default=5)
    b.add_argument(
        "--enroll", type=int, default=40, help="LFW photos to enroll for the enrollment and backfill figures (0: skip)"
    )
    b.add_argument("--model")
    b.add_argument("--json", action="store_true")
    b.set_defaults(handler=cmd_bench_seam)


def cmd_bench_seam(args) -> int:
    from ..bench.seam import bench_seam
    from ..settings import SHARED_FACES, SHARED_LFW
    from ..vision.images import identity_folders
    from .common import emit, pipeline_from

    pipeline = pipeline_from(args)
    cast = SHARED_FACES / "bbt_faceapi"
    if args.photo:
        photo, people = args.photo, {}
    elif (cast / "_group_photos" / "bbt4.jpg").is_file():
        photo, people = cast / "_group_photos" / "bbt4.jpg", {name: files[:5] for name, files in identity_folders(cast)}
    else:
        examples = Path(__file__).resolve().parent.parent / "ui" / "examples"
        photo, people = (
            examples / "group.jpg",
            {"Eileen Collins": [examples / "astronaut.jpg"], "Grace Hopper": [examples / "hopper.jpg"]},
        )
    singles = (
        [files[0] for _, files in identity_folders(SHARED_LFW)][: args.enroll]
        if args.enroll and SHARED_LFW.is_dir()
        else []
    )
    report = bench_seam(
        pipeline,
        Path(photo),
        people,
        _sizes(args.sizes),
        args.repeats,
        singles,
        log=lambda m: print(m, file=sys.stderr),
    )
    emit(args, report.to_json(), report.text())
    return 0


def gallery_from(args):
    """The gallery the arguments ask for, through the front door the dashboard uses (``Services``)."""
    from .common import services_from

    return services_from(args).gallery(None)


def cmd_enroll(args) -> int:
    from .common import emit

    try:
        result = gallery_from(args).enroll(
            args.name, args.images, args.model, args.face_index, confirm=args.confirm, odd_photos=args.odd_photos
        )
    except LooksLikeSomeoneError as exc:
        raise ConfirmationNeeded(f"{exc} (--confirm)") from None
    except OddPhotosError as exc:
        raise ConfirmationNeeded(f"{exc} (--keep-odd or --drop-odd)") from None
    lines = [f"{result.person}: {len(result.added)} photo(s) added, embedded with {', '.join(result.models)}."]
    lines += [f"  note: {n}" for n in result.notes]
    lines += [f"  skipped {d.image}: already enrolled as {d.person}" for d in result.duplicates]
    lines += [f"  skipped {s.path}: {s.reason}" for s in result.skipped]
    emit(args, result.to_json(), "\n".join(lines))
    return 0


def cmd_import(args) -> int:
    from .common import emit, progress_bar

    gallery = gallery_from(args)
    progress = progress_bar("photo", "import")
    try:
        report = gallery.import_path(args.folder, args.model, progress)
    finally:
        progress.close()
    lines = [
        f"{report.total} photo(s): {report.added} face(s) added for {len(report.enrolled)} people, "
        f"{report.duplicates} already in the gallery, {len(report.skipped)} skipped (model {report.model})."
    ]
    lines += [f"  skipped {s.path}: {s.reason}" for s in report.skipped]
    lines += [f"  note: {w}" for w in report.warnings]
    emit(args, report.to_json(), "\n".join(lines))
    return 0


def cmd_identify(args) -> int:
    from ..gallery import annotate
    from ..gallery.identify import size_note
    from ..services.usecases import fill_in
    from ..vision.images import refuse_special
    from .common import emit, services_from

    services = services_from(args)
    gallery = services.gallery(None)
    if args.compare:
        return _compare_identify(args, services)
    fill_in([gallery], [gallery.model_name(args.model)])
    image = gallery.pipeline.load(args.image)
    result = gallery.identify(image, args.model, args.top_k, args.method, args.threshold)
    lines = [
        f"{len(result.faces)} face(s) in {args.image} (model {result.model}, method {result.method}, threshold {result.threshold:.3f}):"
    ]
    note = size_note(result, gallery.pipeline.settings.target_fpir if args.threshold is None else None)
    if note:
        lines.append(note)
    for i, match in enumerate(result.faces, 1):
        x1, y1, x2, y2 = match.face.box
        who = f"{match.name} (distance {match.distance:.3f})" if match.name else "unknown"
        others = ", ".join(f"{c.name} {c.distance:.3f}" for c in match.candidates)
        lines.append(f"  {i}. box ({x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}): {who}   candidates: {others or '-'}")
    if result.note:
        lines.append(f"{result.note} To enroll face 1: python -m facedemo enroll NAME {args.image} --face 0")
    if args.out:
        refuse_special(args.out)
        try:
            annotate(image, result).save(args.out)
        except (OSError, ValueError) as exc:
            raise ImageError(f"Cannot write '{args.out}': {exc}.") from None
        lines.append(f"annotated image written to {args.out}")
    emit(args, result.to_json(), "\n".join(lines))
    return 0


def _compare_identify(args, services) -> int:
    from ..services.usecases import fill_in
    from .common import emit

    if args.out or args.threshold is not None:
        raise InvalidParameterError(
            "--compare uses each model's own threshold and draws nothing: leave out --threshold and --out."
        )
    gallery = services.gallery(None)
    models = [gallery.model_name(args.model)] if args.model else services.available_models()
    fill_in([gallery], models)
    comparison = gallery.compare_models(args.image, args.top_k, args.method, [args.model] if args.model else None)
    split = comparison.disagreements
    lines = [f"The models disagree on faces {', '.join(map(str, split))}." if split else "The models agree."]
    lines += [f"{'model':<24}{'#':>3}  {'name':<28}{'distance':>9}{'threshold':>10}  score (stranger pairs this close)"]
    for r in comparison.results:
        for i, m in enumerate(r.faces, 1):
            near = m.nearest
            name = m.name or (f"unknown (nearest {near.name})" if near else "unknown")
            distance = m.distance if m.name else (near.distance if near else None)
            shown = "-" if distance is None else f"{distance:.3f}"
            score = m.score.text if m.score else "-"
            lines.append(f"{r.model:<24}{i:>3}  {name:<28}{shown:>9}{r.threshold:>10.3f}  {score}")
    lines += [f"{r.model}: {r.ms_per_face:.0f} ms per face" for r in comparison.results if r.ms_per_face is not None]
    lines += [f"{m}: not run ({why})" for m, why in comparison.unavailable.items()]
    lines += list(comparison.notes)
    emit(args, comparison.to_json(), "\n".join(lines))
    return 0


def _store_gallery(args):
    """people/delete/rename/backfill: the gallery, with no model loaded until one is needed."""
    return gallery_from(args)


def cmd_backfill(args) -> int:
    from .common import emit, progress_bar, services_from

    services = services_from(args)
    gallery = services.gallery(None)
    models = [gallery.model_name(args.model)] if args.model else services.available_models()
    progress = progress_bar("face", "backfill")
    try:
        reports = [gallery.backfill(m, progress) for m in models]
    finally:
        progress.close()
    lines = [
        f"{r.model}: {r.added} face(s) added ({r.rate:.1f} faces/s)." + (f" {r.note()}" if r.note() else "")
        for r in reports
    ]
    emit(args, {"models": [r.to_json() for r in reports]}, "\n".join(lines))
    return 0


def cmd_people(args) -> int:
    from .common import emit

    people = _store_gallery(args).people(args.model)
    lines = [
        f"{p.name}  ({p.images} photo{'s' if p.images != 1 else ''}; "
        + ", ".join(f"{m} {n}" for m, n in sorted(p.faces.items()))
        + ")"
        for p in people
    ]
    emit(args, [p.to_json() for p in people], "\n".join(lines) if lines else "The gallery is empty.")
    return 0


def cmd_faces(args) -> int:
    from .common import emit

    faces = _store_gallery(args).faces(person=args.name)
    lines = [f"{f.id}  {f.image}  ({', '.join(f.models) or 'no model'}; enrolled {f.enrolled_at})" for f in faces]
    emit(args, [f.to_json() for f in faces], "\n".join(lines))
    return 0


def cmd_remove_face(args) -> int:
    from .common import emit

    done = _store_gallery(args).remove_face(args.name, args.face_id)
    emit(args, done.to_json(), done.text())
    return 0


def cmd_delete(args) -> int:
    from .common import emit

    done = _store_gallery(args).delete(args.name)
    emit(args, done.to_json(), done.text())
    return 0


def cmd_rename(args) -> int:
    from .common import emit

    count = _store_gallery(args).rename(args.old, args.new)
    emit(
        args,
        {"old": args.old.strip(), "new": args.new.strip(), "faces": count},
        f"Renamed {args.old.strip()} to {args.new.strip()} ({count} face(s)).",
    )
    return 0


def cmd_bench_gallery(args) -> int:
    from ..bench.gallery import bench_gallery
    from .common import emit

    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        raise InvalidParameterError(f"--sizes must be comma-separated numbers, not '{args.sizes}'.") from None
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    report = bench_gallery(sizes, backends, args.queries, args.uniform, log=lambda m: print(m, file=sys.stderr))
    emit(args, report.to_json(), report.text())
    return 0


def cmd_bench_identify(args) -> int:
    from ..bench.identify import bench_identify
    from ..pipeline import Pipeline
    from ..settings import Settings
    from .common import emit

    pipeline = Pipeline(Settings.from_env())
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    if args.open_set:
        from ..bench.identify import bench_open_set
        from ..evaluation.openset import save_open_set_calibration

        sizes = _sizes(args.sizes)
        report = bench_open_set(
            pipeline,
            args.lfw,
            sizes,
            target_fpir=args.target_fpir,
            model=args.model,
            classifier=not args.no_classifier,
            log=log,
        )
        if args.save_calibration:
            home = pipeline.settings.home
            saved = save_open_set_calibration(home, report.model, report.tails, report.target_fpir, report.curves)
            log(f"impostor tails written to {saved}")
    else:
        report = bench_identify(pipeline, args.lfw, args.people, args.enroll, args.strangers, args.model, log=log)
    emit(args, report.to_json(), report.text())
    return 0


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise InvalidParameterError(f"--sizes must be comma-separated positive numbers, not '{text}'.")
    return sizes
