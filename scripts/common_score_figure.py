"""Draw docs/common_score.png: each model's LFW different-person (and same-person) distance histograms, as
shipped in facedemo/data/distributions.json, with the common score drawn over them.

Usage: .venv/bin/python scripts/common_score_figure.py [--out docs/common_score.png]

One panel per model on its own raw distance axis: the bars are the shipped histograms, the line is the
common score (``facedemo.models.distributions.common_score``: the share of the model's different-person pairs
at least that close, on a log scale), the dashed line the model's verification threshold. The two panels'
distances differ by a factor of about three; the score's line reads the same on both. Only shipped numbers
are drawn (no face, no photo). matplotlib is a dev requirement (requirements-dev.txt).
"""

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from facedemo.files import read_json  # noqa: E402
from facedemo.models import distributions  # noqa: E402
from facedemo.models.thresholds import SHIPPED as THRESHOLDS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "common_score.png")
    args = parser.parse_args()
    records, calibrated = read_json(distributions.SHIPPED), read_json(THRESHOLDS)
    models = sorted(records)
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.2), squeeze=False)
    for ax, model in zip(axes[0], models):
        record, threshold = records[model], calibrated[model]["threshold"]
        edges = np.asarray(record["edges"])
        ax.stairs(record["same"], edges, fill=True, alpha=0.35, color="tab:green", label="same person (LFW pairs)")
        ax.stairs(record["different"], edges, fill=True, alpha=0.35, color="tab:red", label="different people")
        ax.set_xlabel(f"{model}: L2 distance (its own scale)")
        ax.set_ylabel("pairs per bin")
        top = float(edges[np.nonzero(np.add(record["same"], record["different"]))[0][-1] + 2])
        ax.set_xlim(0, top)
        score = ax.twinx()
        grid = np.linspace(0, top, 600)
        shares = np.array([distributions.common_score(record, d).stranger_share for d in grid])
        floor = 1.0 / sum(record["different"])
        score.plot(grid, np.maximum(shares, floor / 2), color="black", lw=1.6, label="score")
        score.axhline(floor, color="grey", lw=0.8, ls=":")
        score.text(0.01 * top, floor * 1.15, f"1 pair in {round(1 / floor):,}: the data's floor", fontsize=8)
        score.set_yscale("log")
        score.set_ylim(floor / 2, 1.2)
        score.set_ylabel("score: share of stranger pairs this close")
        at = distributions.common_score(record, threshold, model)
        ax.axvline(threshold, color="black", ls="--", lw=1)
        score.annotate(
            f"threshold {threshold:g}\nscore {at.text}",
            (threshold, at.stranger_share),
            xytext=(8, -30),
            textcoords="offset points",
            fontsize=9,
            arrowprops={"arrowstyle": "->", "lw": 0.8},
        )
        ax.set_title(f"{model} ({record['source']})", fontsize=9)
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    fig.suptitle("One scale for every model: how many LFW stranger pairs came at least this close", fontsize=11)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
