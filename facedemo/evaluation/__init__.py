"""Evaluation: how well a model separates people, measured the standard ways. Metrics (scikit-learn),
labelled pairs (LFW's files or a CSV), cached embeddings of many photos, the LFW protocol, calibration of
thresholds on View 1 (with the distance distributions it writes, read from ``models.distributions``), and
probe-set identification."""

from .calibration import CALIBRATION_PAIRS, Calibration, calibrate
from .embed import EmbeddedImages, embed_images
from .identification import ProbeIdentification, identify_probes
from .pairs import Pair, PairsFileError, read_csv_pairs, read_lfw_pairs, read_pairs
from .verification import PairsEvaluation, evaluate_pairs

__all__ = [
    "CALIBRATION_PAIRS",
    "Calibration",
    "EmbeddedImages",
    "Pair",
    "PairsEvaluation",
    "PairsFileError",
    "ProbeIdentification",
    "calibrate",
    "embed_images",
    "evaluate_pairs",
    "identify_probes",
    "read_csv_pairs",
    "read_lfw_pairs",
    "read_pairs",
]
