"""``finetune``: adapt a model to a folder of your own people and compare it with its base."""

from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "finetune", help="fine-tune a model on a folder-per-identity tree (triplet loss, semi-hard mining)"
    )
    p.add_argument("--data", type=Path, required=True, help="training photos: one sub-folder per person")
    p.add_argument("--base", required=True, help="the model to start from (see `models`)")
    p.add_argument("--name", required=True, help="the new model's name")
    p.add_argument(
        "--mode",
        choices=["adapter", "full"],
        default="adapter",
        help="adapter: a head on frozen embeddings (default); full: InceptionResnetV1's last blocks",
    )
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument(
        "--val",
        type=Path,
        help="validation people (a folder-per-identity tree of people not in --data); default: a quarter of --data's people, held out",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--general",
        type=Path,
        help="a general pairs file (LFW format or CSV a,b,same) to show what the fine-tune costs elsewhere",
    )
    p.add_argument(
        "--general-root",
        type=Path,
        help="the folder the --general pairs' photos are in (default: the pairs file's folder)",
    )
    p.add_argument(
        "--loss",
        default="triplet",
        help="triplet (semi-hard triplet loss, default) or arcface (additive angular margin, s=30, m=0.5)",
    )
    p.add_argument(
        "--augment",
        metavar="CONDITION[:SEVERITY]",
        help="train for a condition (e.g. dark:3, blur, mask:2; see vision/degrade.py): "
        "the training faces are also seen degraded, and the report adds the held-out people's degraded slice",
    )
    p.add_argument("--device")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_finetune)


def cmd_finetune(args) -> int:
    from .. import params
    from ..gallery.store import check_model_name
    from ..training import finetune
    from ..training.augment import Augment
    from ..training.losses import check_loss
    from .common import emit, pipeline_from

    loss, augment = check_loss(args.loss), Augment.parse(args.augment)  # refused before any model loads
    check_model_name(args.name)
    params.epochs(args.epochs)
    pipeline = pipeline_from(args)
    bars: dict = {}
    progress = _progress_bars(bars)
    try:
        general = (args.general, args.general_root or args.general.parent) if args.general else None
        result = finetune(
            pipeline,
            args.data,
            args.base,
            args.name,
            args.mode,
            args.epochs,
            args.val,
            args.seed,
            progress,
            general,
            loss,
            augment,
        )
    finally:
        for bar in bars.values():
            bar.close()
    emit(args, result.to_json(), _report_text(result, augment, args.general))
    return 0


def _progress_bars(bars: dict):
    """A progress callback that draws one bar for training epochs and one for embedding, kept in ``bars``."""
    from tqdm import tqdm

    def progress(done: int, total: int, message: str) -> None:
        kind = "train" if message.startswith("epoch") else "embed"
        bar = bars.get(kind) or bars.setdefault(
            kind, tqdm(total=total, desc="training" if kind == "train" else "embedding", file=sys.stderr, leave=False)
        )
        if bar.total != total:
            bar.reset(total)
        bar.n = done
        bar.set_postfix_str(message if kind == "train" else "")
        bar.refresh()

    return progress


def _report_text(result, augment, general: Path | None) -> str:
    """What a person reads: before/after on the held-out people, the slices, the epochs and the verdict."""
    b, a = result.before, result.after
    rows = [f"{'held-out people, clean':<24}{'before':>10}{'after':>10}"]
    for key in (
        "loss",
        "mean_pos_distance",
        "mean_neg_distance",
        "accuracy",
        "val",
        "far",
        "val_at_far",
        "auc",
        "threshold",
    ):
        rows.append(f"  {key:<22}{b[key]:>10.4f}{a[key]:>10.4f}")
    sections = [("slice", f"held-out people, one photo of each pair {augment.label if augment else ''}")]
    if general:
        sections += [
            ("general", f"general pairs ({general.name})"),
            ("general_slice", f"general pairs, second photo {augment.label if augment else ''}"),
        ]
    for key, title in sections:
        if key in b:
            rows.append(f"{title}, {b[key]['pairs']} pairs:")
            for metric in ("accuracy", "auc", "val_at_far", "val", "far", "mean_pos_distance", "mean_neg_distance"):
                rows.append(f"  {metric:<22}{b[key][metric]:>10.4f}{a[key][metric]:>10.4f}")
    rows.append("epoch  train loss  held-out loss  mean pos  mean neg")
    rows += [
        f"{h['epoch']:>5}{h['train_loss']:>12.4f}{h['val_loss']:>15.4f}{h['val_mean_pos_distance']:>10.4f}{h['val_mean_neg_distance']:>10.4f}"
        for h in result.history
    ]
    return (
        f"Saved {result.name} ({result.mode} on {result.base}, {result.loss} loss"
        f"{', for ' + augment.label if augment else ''}) in {result.path}\n"
        f"{result.train_people} training people, {result.val_people} validation people never trained on; "
        f"{result.epochs_run} epochs, best at {result.best_epoch}; {len(result.skipped)} photos skipped (no face)\n"
        + "\n".join(rows)
        + (f"\n{result.verdict()}" if result.verdict() else "")
        + f"\n{result.versus_base()['text']}"
    )
