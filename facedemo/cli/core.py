"""Foundation sub-commands: models, detect, verify, bench."""

from __future__ import annotations

from ..settings import Settings
from .common import add_pipeline_args, pipeline_from


def register(sub) -> None:
    p = sub.add_parser("models", help="list the face models and whether each can run here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_models)

    p = sub.add_parser("detect", help="find the faces in an image")
    p.add_argument("image")
    add_pipeline_args(p, model=False)
    p.set_defaults(handler=cmd_detect)

    p = sub.add_parser("verify", help="are the faces in two images the same person?")
    p.add_argument("image_a")
    p.add_argument("image_b")
    p.add_argument("--threshold", type=float, help="L2 distance at or below which the faces are the same person")
    add_pipeline_args(p)
    p.set_defaults(handler=cmd_verify)

    p = sub.add_parser("bench", help="benchmarks that print figures and ratios")
    bench = p.add_subparsers(dest="bench", required=True)
    b = bench.add_parser("pipeline", help="naive facenet-pytorch loop vs this pipeline, on the same images")
    b.add_argument("--images", help="folder of images (searched recursively); default: 256 photos from ../shared/faces/lfw")
    b.add_argument("--limit", type=int, default=256)
    b.add_argument("--model", default="facenet-vggface2", help="facenet-* (random weights if the real ones are missing: timing only) or dlib-resnet")
    b.add_argument("--device")
    b.add_argument("--json", action="store_true")
    b.set_defaults(handler=cmd_bench_pipeline)
    b = bench.add_parser("load", help="many clients at once against a running dashboard (loopback only): errors, p50/p95 per endpoint, requests/s")
    b.add_argument("--url", default="http://127.0.0.1:7860/", help="the dashboard (127.0.0.1, ::1 or localhost only)")
    b.add_argument("--clients", type=int, default=20)
    b.add_argument("--requests", type=int, default=10, help="requests per client (verify, identify, people in turn)")
    b.add_argument("--seconds", type=float, default=300.0, help="stop sending after this long")
    b.add_argument("--json", action="store_true")
    b.set_defaults(handler=cmd_bench_load)
    from . import gallery  # bench gallery lives with the gallery commands

    if hasattr(gallery, "register_bench"):
        gallery.register_bench(bench)


def cmd_models(args) -> int:
    from .common import emit
    from ..pipeline import Pipeline

    pipeline = Pipeline(Settings.from_env())
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


def cmd_detect(args) -> int:
    from .common import emit

    pipeline = pipeline_from(args)
    image = pipeline.load(args.image)
    faces = pipeline.detect(image)
    text = [f"{len(faces)} face(s) in {args.image} ({image.width}x{image.height}, device: {pipeline.device.description})"]
    for i, f in enumerate(faces, 1):
        x1, y1, x2, y2 = f.box
        text.append(f"  {i}. box ({x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f})  score {f.score:.3f}")
    emit(args, {"faces": [f.to_json() for f in faces]}, "\n".join(text))
    return 0


def cmd_verify(args) -> int:
    from .common import emit

    pipeline = pipeline_from(args)
    result, _, _ = pipeline.verify(args.image_a, args.image_b, args.model, args.threshold)
    verdict = "SAME person" if result.same_person else "DIFFERENT people"
    text = [
        f"{verdict}: distance {result.distance:.3f} {'<=' if result.same_person else '>'} threshold {result.threshold:.3f} "
        f"(cosine similarity {result.similarity:.3f}; model {result.model}, {pipeline.device.description})",
        *result.notes,
    ]
    emit(args, result.to_json(), "\n".join(text))
    return 0


def cmd_bench_load(args) -> int:
    import sys

    from .common import emit
    from ..bench.load import bench_load

    report = bench_load(args.url, args.clients, args.requests, args.seconds, log=lambda m: print(m, file=sys.stderr))
    emit(args, report.to_json(), report.text())
    return 0


def cmd_bench_pipeline(args) -> int:
    from .common import emit
    from ..bench.pipeline import bench_pipeline

    report = bench_pipeline(args.images, args.limit, args.model, args.device)
    emit(args, report, report["text"])
    return 0
