"""``cluster FOLDER_OR_ZIP``: group the faces of an unlabelled album into people; ``bench cluster``: the
clustering methods scored on LFW."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

from ..errors import ArchiveError, GalleryError, InvalidParameterError


def register(sub) -> None:
    from ..gallery.cluster import CLUSTER_METHODS, DEFAULT_CLUSTER_METHOD, DEFAULT_SCALE
    from .common import add_pipeline_args

    p = sub.add_parser("cluster", help="group every face of a folder or zip of photos into people (no names needed)")
    p.add_argument("album", metavar="FOLDER_OR_ZIP", help="a folder of photos (searched recursively) or a zip of them")
    p.add_argument(
        "--method",
        choices=list(CLUSTER_METHODS),
        default=DEFAULT_CLUSTER_METHOD,
        help=f"how faces are grouped (default: {DEFAULT_CLUSTER_METHOD}; see docs/GALLERY.md for the comparison)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        help=f"L2 distance under which two faces are linked (default: {DEFAULT_SCALE:g} x the model's verification "
        "threshold, the multiple that grouped LFW best; docs/GALLERY.md)",
    )
    p.add_argument("--gallery", help="label faces that match people enrolled in this gallery folder (default: none)")
    add_pipeline_args(p)
    p.set_defaults(handler=cmd_cluster)


def register_bench(bench) -> None:
    from ..bench.cluster import SCALES
    from ..gallery.cluster import CLUSTER_METHODS

    b = bench.add_parser(
        "cluster",
        help="the clustering methods on LFW photos of a few hundred people: pairwise precision/recall, BCubed F",
    )
    b.add_argument("--lfw", default=None, help="LFW folder (default ../shared/faces/lfw)")
    b.add_argument("--people", type=int, default=300, help="people in the album (default 300)")
    b.add_argument("--singles", type=int, default=150, help="of them, people with exactly one photo (default 150)")
    b.add_argument("--max-photos", type=int, default=8, help="photos per person at most (default 8)")
    b.add_argument("--methods", default=",".join(CLUSTER_METHODS), help="comma-separated methods (default: all)")
    b.add_argument(
        "--scales",
        default=",".join(f"{s:g}" for s in SCALES),
        help="thresholds as multiples of the verification threshold",
    )
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--model")
    b.add_argument("--json", action="store_true")
    b.set_defaults(handler=cmd_bench_cluster)


@contextmanager
def _bar(unit: str, desc: str):
    from tqdm import tqdm

    bar = None

    def progress(done: int, total: int, message: str = "") -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit=unit, file=sys.stderr, desc=desc)
        bar.total = total
        if message:
            bar.set_postfix_str(message, refresh=False)
        bar.update(done - bar.n)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.close()


def cmd_cluster(args) -> int:
    from ..gallery.album import cluster_album
    from ..services.usecases import fill_in
    from .common import emit, services_from

    source = Path(args.album)
    if not source.exists():
        raise ArchiveError(f"'{source}' does not exist; give a folder of photos or a zip of them.")
    services = services_from(args)
    pipeline = services.pipeline
    galleries = []
    if args.gallery:
        if not Path(args.gallery).is_dir():
            raise GalleryError(f"The gallery folder {args.gallery} does not exist.")
        galleries.append(services.gallery(None))
        fill_in(galleries, [pipeline.spec(args.model).name])
    with _bar("photo", "cluster") as progress:
        album = cluster_album(pipeline, source, args.model, args.method, args.threshold, galleries, progress=progress)
    with album:
        groups = album.groups()
        lines = [
            f"{len(album.faces)} face(s) in {album.images} photo(s): {len(groups)} group(s) "
            f"(model {album.model}, {album.method}, threshold {album.threshold:.3f})"
        ]
        for group in groups:
            who = f" [{group.person}]" if group.person else ""
            lines.append(f"  group {group.id + 1}{who}: " + ", ".join(f"{f.image} #{f.index + 1}" for f in group.faces))
        lines += [f"  skipped {s.image}: {s.reason}" for s in album.skipped]
        emit(args, album.to_json(), "\n".join(lines))
    return 0


def cmd_bench_cluster(args) -> int:
    from ..bench.cluster import bench_cluster
    from ..pipeline import Pipeline
    from ..settings import Settings
    from .common import emit

    try:
        scales = [float(s) for s in args.scales.split(",") if s.strip()]
    except ValueError:
        raise InvalidParameterError(f"--scales must be comma-separated numbers, not '{args.scales}'.") from None
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    with _bar("photo", "embed") as progress:
        report = bench_cluster(
            Pipeline(Settings.from_env()),
            args.lfw,
            args.people,
            args.singles,
            args.max_photos,
            args.model,
            methods,
            scales,
            args.seed,
            progress,
            log=lambda m: print(m, file=sys.stderr),
        )
    emit(args, report.to_json(), report.text())
    return 0
