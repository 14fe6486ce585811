"""What the dashboard shows from LFW and the shipped measurements: the models' disagreements on LFW View 1's
test pairs (computed once for everyone), the robustness figures and the open-set curves. Functions of the
pipeline and where LFW is; the façade holds the one ``Flights`` that keeps the answers.
"""

from __future__ import annotations

from pathlib import Path

from .. import params
from ..errors import DataUnavailableError
from ..evaluation import read_pairs
from ..evaluation.disagreement import DEFAULT_HARDEST, Disagreements, compare_pairs
from ..evaluation.embed import chosen_models, uncached
from ..evaluation.robustness import DEFAULT_PAIRS as ROBUSTNESS_PAIRS
from ..evaluation.robustness import RobustnessResult, cached_robustness
from ..models.thresholds import OPEN_SET, open_set_record
from ..pipeline import Pipeline
from ..rules import methods
from ..settings import SHARED_LFW
from .facade import Flights

# CPU seconds to detect and embed one LFW photo with one model on this project's 2 cores (docs/BENCHMARKS.md,
# "LFW disagreements").
LFW_CPU_S_PER_PHOTO = 0.035


def lfw_test_pairs(root: Path = SHARED_LFW) -> tuple[Path, Path] | None:
    """LFW View 1's test pairs and their photo folder, or None where they are not on this machine (a Space)."""
    path = Path(root) / ROBUSTNESS_PAIRS
    return (path, Path(root)) if path.is_file() else None


def has_lfw(root: Path = SHARED_LFW, pairs_file: str = ROBUSTNESS_PAIRS) -> bool:
    """Whether LFW's pairs file is on this machine: what ``lfw_disagreements`` needs (a Space has none)."""
    return (Path(root) / pairs_file).is_file()


def lfw_cost(pipeline: Pipeline, root: Path = SHARED_LFW, pairs_file: str = ROBUSTNESS_PAIRS) -> tuple[int, float]:
    """What ``lfw_disagreements`` would compute before answering: photos to embed (summed over the models)
    and the CPU seconds that takes here; (0, 0.0) once every model's embeddings are cached."""
    path = Path(root) / pairs_file
    if not path.is_file():
        return 0, 0.0
    photos = [p for pair in read_pairs(path, root) for p in (pair.a, pair.b)]
    todo = sum(uncached(pipeline, photos, name) for name in chosen_models(pipeline)[0])
    return todo, todo * LFW_CPU_S_PER_PHOTO


def lfw_disagreements(
    pipeline: Pipeline,
    flights: Flights,
    public: bool,
    root: Path = SHARED_LFW,
    pairs_file: str = ROBUSTNESS_PAIRS,
    hardest: int = DEFAULT_HARDEST,
    progress_for=None,
) -> Disagreements:
    """Every available model on LFW View 1's test pairs (unseen by the calibration), through the
    evaluation cache: minutes on a CPU the first time, then a second or so. ``progress_for(label)``: a
    progress callback per model (the dashboard's bar through those minutes).

    The work is done once for everyone (``flights``): two visitors asking at once wait for one computation,
    and the answer is kept for the next. In public mode a first computation that would cost more than
    ``params.MAX_REQUEST_CPU_S`` is refused with its cost: the operator fills the cache once."""
    path = Path(root) / pairs_file
    if not path.is_file():
        raise DataUnavailableError(f"LFW's {pairs_file} is not on this machine (looked in {root}).")

    def compute() -> Disagreements:
        if public:
            photos, seconds = lfw_cost(pipeline, root, pairs_file)
            if seconds > params.MAX_REQUEST_CPU_S:
                raise DataUnavailableError(
                    f"LFW's pairs are not embedded on this server yet: {photos:,} photo embeddings, about "
                    f"{seconds:.0f} s of CPU, more than one request may take here ({params.MAX_REQUEST_CPU_S:.0f} s). "
                    "Judge your own gallery's pairs instead."
                )
        pairs = read_pairs(path, root)
        return compare_pairs(pipeline, pairs, hardest=hardest, source=pairs_file, progress_for=progress_for)

    return flights.once(("lfw", str(path), int(hardest), tuple(chosen_models(pipeline)[0])), compute)


def robustness(pipeline: Pipeline, root: Path = SHARED_LFW) -> RobustnessResult:
    """The robustness figures `eval robustness` saved for LFW View 1's test pairs, for every model that has
    them (nothing is computed here: a full run takes tens of minutes per model on a CPU)."""
    path = Path(root) / ROBUSTNESS_PAIRS
    pairs = read_pairs(path, root) if path.is_file() else None  # None: the shipped figures (no LFW here)
    result = cached_robustness(pipeline, pairs, pairs_file=ROBUSTNESS_PAIRS)
    if not result.models:
        raise DataUnavailableError(
            "No model here has robustness figures yet: they are measured on LFW, a few minutes per condition "
            "on a CPU (`eval robustness`, docs/EVALUATION.md)."
        )
    return result


def open_set_curves(pipeline: Pipeline, model: str, size: int) -> tuple[list[dict], str]:
    """The DET curves measured on LFW for one gallery size (``bench identify --open-set``), and where they come from."""
    record = open_set_record(pipeline.spec(model), pipeline.settings.home)
    sizes = sorted(int(n) for n in (record or {}).get("curves", {}))
    if not sizes:
        raise DataUnavailableError(
            f"No open-set curves were measured for {model} yet: they come from a run on LFW "
            '(docs/GALLERY.md, "Open-set identification").'
        )
    chosen = min(sizes, key=lambda n: abs(n - size))
    curves = [c for c in record["curves"][str(chosen)] if c["label"] in methods()]  # what Identify offers
    mated, strangers = curves[0]["mated"], curves[0]["nonmated"]
    whose = "shipped with facedemo" if Path(record["file"]) == OPEN_SET else "this machine's own calibration"
    note = (
        f"Measured on LFW with {chosen:,} people enrolled: {mated} searches of them and {strangers} of "
        f"strangers ({whose}, {record.get('date', 'undated')})."
    )
    return curves, note


def open_set_comparison(pipeline: Pipeline, size: int, models=None) -> tuple[list[dict], str]:
    """Every model's DET curves at one gallery size, for one figure (each curve with its ``model``):
    ``models``, else every available model with open-set curves; the others are named in the note."""
    wanted = [pipeline.spec(m).name for m in models or []] or [s.name for s in pipeline.models() if s.available]
    curves, notes, missing = [], [], []
    for name in dict.fromkeys(wanted):
        try:
            found, note = open_set_curves(pipeline, name, size)
        except DataUnavailableError:
            missing.append(name)
            continue
        curves += [{**c, "model": name} for c in found]
        notes.append(f"**{name}**: {note[0].lower()}{note[1:]}")
    if not curves:
        raise DataUnavailableError(
            f"No open-set curves were measured for {', '.join(wanted)} yet: they come from a run on LFW "
            '(docs/GALLERY.md, "Open-set identification").'
        )
    if missing:
        notes.append(f"Not measured yet (no curves to draw): {', '.join(missing)}.")
    return curves, "  \n".join(notes)
