"""Every metric against small cases worked out by hand (the arithmetic is in the comments)."""

import json

import numpy as np
import pytest

from facedemo.errors import FaceDemoError
from facedemo.evaluation.metrics import (
    MetricsError,
    accuracy_at,
    all_pairs,
    best_threshold,
    contrastive_loss,
    cross_validated_accuracy,
    distance_stats,
    identification_accuracy,
    pair_metrics,
    rates_at,
    roc,
    val_at_far,
)

# Four same-person pairs and four different-person pairs.
POS = [0.1, 0.2, 0.3, 0.8]
NEG = [0.25, 0.9, 1.0, 1.1]
D = np.array(POS + NEG)
Y = np.array([1] * 4 + [0] * 4)


def test_best_threshold_separable_sits_in_the_gap():
    result = best_threshold([0.1, 0.2, 0.6, 0.7], [1, 1, 0, 0])
    assert result.accuracy == 1.0
    assert result.threshold == pytest.approx(0.4)  # midway between 0.2 and 0.6


def test_best_threshold_ties_go_to_the_strictest_cut():
    # cut 0.1 -> 1 TP + 2 TN = 3/4; cut 0.3 -> 2/4; cut 0.5 -> 2 TP + 1 TN = 3/4; the first 3/4 wins.
    result = best_threshold([0.1, 0.5, 0.3, 0.9], [1, 1, 0, 0])
    assert result.accuracy == 0.75
    assert result.threshold == pytest.approx(0.2)  # midway between 0.1 and the next distance 0.3


def test_best_threshold_on_the_eight_pairs():
    # cut 0.8: all 4 same accepted, only 0.25 of the different ones wrongly accepted -> 7/8.
    result = best_threshold(D, Y)
    assert result.accuracy == 0.875
    assert result.threshold == pytest.approx(0.85)
    assert accuracy_at(D, Y, result.threshold) == 0.875


def test_best_threshold_with_one_class_accepts_all_or_none():
    assert best_threshold([0.2, 0.4], [1, 1]).accuracy == 1.0
    assert best_threshold([0.2, 0.4], [1, 1]).threshold == pytest.approx(0.4)
    only_different = best_threshold([0.2, 0.4], [0, 0])
    assert only_different.accuracy == 1.0 and only_different.threshold < 0.2


def test_roc_auc_by_counting_ordered_pairs():
    # positives -0.1, -0.5 vs negatives -0.3, -0.9: 3 of the 4 (pos, neg) pairs are ordered right.
    curve = roc([0.1, 0.5, 0.3, 0.9], [1, 1, 0, 0])
    assert curve.auc == pytest.approx(0.75)
    assert curve.fpr[0] == 0 and curve.tpr[-1] == 1 and curve.fpr[-1] == 1
    assert curve.thresholds[0] == -np.inf  # nothing accepted
    assert json.dumps(curve.to_json())  # JSON-safe: -inf becomes null


def test_val_at_far_zero_and_quarter():
    # FAR 0: the loosest cut before the first different pair (0.25) is 0.2 -> 2 of 4 same accepted.
    strict = val_at_far(D, Y, far=0.0)
    assert (strict.val, strict.far, strict.threshold) == (0.5, 0.0, pytest.approx(0.2))
    # FAR 1/4: cut 0.8 accepts all 4 same and only 0.25 of the different -> VAL 1, FAR 0.25.
    loose = val_at_far(D, Y, far=0.25)
    assert (loose.val, loose.far, loose.threshold) == (1.0, 0.25, pytest.approx(0.8))
    # FAR 1e-3 with 4 different pairs is FAR 0.
    assert val_at_far(D, Y).val == 0.5


def test_rates_at_threshold():
    rates = rates_at(D, Y, 0.3)  # accepts 0.1, 0.2, 0.3 (same) and 0.25 (different)
    assert rates.val == 0.75 and rates.far == 0.25
    assert rates_at(D, Y, 2.0).far == 1.0
    assert rates_at(D, Y, 0.0).val == 0.0


def test_distance_stats():
    stats = distance_stats(D, Y)
    assert stats.mean_pos == pytest.approx(0.35)
    # deviations -0.25, -0.15, -0.05, 0.45 -> squares sum 0.29 -> var 0.0725
    assert stats.std_pos == pytest.approx(np.sqrt(0.0725))
    assert stats.mean_neg == pytest.approx(0.8125)
    assert (stats.n_pos, stats.n_neg) == (4, 4)


def test_contrastive_loss():
    # same 0.5 -> 0.25; different 0.4 -> (1 - 0.4)^2 = 0.36; different 1.5 -> 0 (beyond the margin).
    assert contrastive_loss([0.5, 0.4, 1.5], [1, 0, 0]) == pytest.approx((0.25 + 0.36 + 0) / 3 / 2)
    assert contrastive_loss([0.0, 2.0], [1, 0]) == 0.0
    assert contrastive_loss([0.4], [0], margin=0.5) == pytest.approx(0.01 / 2)


def test_cross_validated_accuracy_holds_each_fold_out():
    # fold 0 is scored at fold 1's best threshold (0.4): both right. fold 1 at fold 0's (0.5): 0.5 <= 0.5
    # is wrongly accepted -> 1/2.
    cv = cross_validated_accuracy([0.1, 0.9, 0.3, 0.5], [1, 0, 1, 0], [0, 0, 1, 1])
    assert cv.fold_accuracies == (1.0, 0.5)
    assert cv.fold_thresholds == (pytest.approx(0.4), pytest.approx(0.5))
    assert cv.accuracy == pytest.approx(0.75)
    assert cv.accuracy_std == pytest.approx(0.25)
    assert cv.threshold == pytest.approx(0.45)


def test_cross_validated_accuracy_single_fold_uses_its_own_best():
    cv = cross_validated_accuracy(D, Y, np.zeros(8))
    assert cv.accuracy == 0.875 and cv.accuracy_std == 0.0


def test_pair_metrics_collects_everything():
    m = pair_metrics(D, Y, folds=[0, 1] * 4)
    data = m.to_json()
    assert data["pairs"] == 8 and data["val"] == 0.5 and data["far"] == 0.0
    assert data["auc"] == pytest.approx(m.roc.auc)
    assert json.dumps(data)


def test_identification_top1_and_topk():
    gallery = np.array([[1, 0], [0.8, 0.6], [0, 1], [-1, 0]])
    names = ["A", "A", "B", "C"]
    # probe 1 is B but lies nearest A's second photo (0.283 vs 0.632): wrong at top-1, right at top-2.
    probes = np.array([[0.6, 0.8], [1, 0], [0, -1]])
    result = identification_accuracy(probes, ["B", "A", "D"], gallery, names, ks=(1, 2, 3))
    assert result.top1 == 0.5
    assert result.topk == {1: 0.5, 2: 1.0, 3: 1.0}
    assert (result.probes, result.identities, result.unknown_probes) == (2, 3, 1)


def test_identification_with_two_identities():
    result = identification_accuracy([[1, 0], [0.1, 1]], ["A", "A"], [[1, 0], [0, 1]], ["A", "B"], ks=(1, 2))
    assert result.top1 == 0.5 and result.topk[2] == 1.0


def test_all_pairs_labels_and_distances():
    d, same = all_pairs(np.array([[1, 0], [0, 1], [-1, 0]]), ["a", "a", "b"])
    assert list(same) == [True, False, False]
    assert d == pytest.approx([np.sqrt(2), 2.0, np.sqrt(2)])


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: best_threshold([0.1, 0.2], [1]), "2 distances but 1 labels"),
        (lambda: best_threshold([], []), "no pairs"),
        (lambda: val_at_far([0.1, 0.2], [1, 1]), "no different-person"),
        (lambda: roc([0.1, 0.2], [0, 0]), "no same-person"),
        (lambda: val_at_far(D, Y, far=2), "between 0 and 1"),
        (lambda: identification_accuracy([[1, 0]], ["X"], [[1, 0]], ["A"]), "None of the probe"),
    ],
)
def test_errors_are_sentences(call, words):
    with pytest.raises(MetricsError, match=words) as info:
        call()
    assert isinstance(info.value, FaceDemoError)
