"""Verification metrics: known answers, hand-made k-fold, and scikit-learn as the reference."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy.optimize import brentq
from sklearn.metrics import roc_auc_score, roc_curve as sk_roc_curve

from tinyface.errors import InputError
from tinyface.evaluation import metrics


def labelled(same_scores, different_scores):
    s = np.r_[same_scores, different_scores].astype(np.float64)
    y = np.r_[np.ones(len(same_scores), bool), np.zeros(len(different_scores), bool)]
    return s, y


# -- known answers ------------------------------------------------------------------

def test_perfectly_separable():
    s, y = labelled([0.6, 0.7, 0.9], [0.1, 0.2])
    roc = metrics.roc_curve(s, y)
    assert metrics.auc(roc) == 1.0
    assert metrics.eer(roc)[0] == 0.0
    best = metrics.best_threshold(s, y)
    assert best.threshold == pytest.approx(0.4) and best.accuracy == 1.0
    assert (best.far, best.tar) == (0.0, 1.0)
    point = metrics.at_far(s, y, 0.01)
    assert (point.far, point.tar) == (0.0, 1.0) and 0.2 < point.threshold <= 0.6


def test_identical_distributions():
    s, y = labelled([0.1, 0.4, 0.4, 0.8], [0.1, 0.4, 0.4, 0.8])
    roc = metrics.roc_curve(s, y)
    np.testing.assert_array_equal(roc.far, roc.tar)          # the diagonal, point by point
    assert metrics.auc(roc) == 0.5
    assert metrics.eer(roc)[0] == pytest.approx(0.5)


def test_all_scores_tied():
    s, y = labelled([0.3, 0.3], [0.3, 0.3, 0.3])
    roc = metrics.roc_curve(s, y)
    np.testing.assert_array_equal(roc.far, [0, 1])
    np.testing.assert_array_equal(roc.tar, [0, 1])
    assert roc.thresholds[0] == np.inf and roc.thresholds[1] == 0.3
    assert metrics.auc(roc) == 0.5
    assert metrics.eer(roc) == (pytest.approx(0.5), pytest.approx(0.3))
    best = metrics.best_threshold(s, y)          # rejecting all is right for the 3 of 5
    assert best.accuracy == pytest.approx(0.6) and best.threshold > 0.3 and best.tar == 0.0


def test_reversed_scores():
    s, y = labelled([0.1, 0.2], [0.8, 0.9])
    roc = metrics.roc_curve(s, y)
    assert metrics.auc(roc) == 0.0
    assert metrics.eer(roc)[0] == pytest.approx(1.0)


def test_tar_at_far_by_hand():
    # 10 different pairs: FAR 0.1 allows the top one (0.95) in, not the second (0.5).
    s, y = labelled([0.99, 0.9, 0.6, 0.55, 0.3], [0.95, 0.5] + [0.0] * 8)
    point = metrics.at_far(s, y, 0.1)
    assert point.far == pytest.approx(0.1) and point.tar == pytest.approx(0.8)
    assert point.threshold == pytest.approx((0.55 + 0.5) / 2)
    point = metrics.at_far(s, y, 0.05)                      # nothing above 0.95 but 0.99
    assert point.far == 0.0 and point.tar == pytest.approx(0.2)
    assert 0.95 < point.threshold <= 0.99


def test_far_measurable_needs_one_pair_per_rate():
    assert metrics.far_is_measurable(1e-3, 1000) and metrics.far_is_measurable(1e-3, 1100)
    assert not metrics.far_is_measurable(1e-3, 999)
    assert not metrics.far_is_measurable(1e-4, 1100)


def test_best_threshold_ties_take_the_middle_candidate():
    # Splits at 0.25, 0.45 and 0.65 are all 4/6 right; the middle one is taken.
    s, y = labelled([0.3, 0.5, 0.7], [0.2, 0.4, 0.6])
    best = metrics.best_threshold(s, y)
    assert best.threshold == pytest.approx(0.45)
    assert best.accuracy == pytest.approx(4 / 6)


def test_best_threshold_between_adjacent_floats():
    a = 0.5
    b = float(np.nextafter(a, 1))
    best = metrics.best_threshold([b, a], [True, False])
    assert best.accuracy == 1.0 and a < best.threshold <= b


def test_best_threshold_one_class():
    assert metrics.best_threshold([0.2, 0.4], [True, True]).accuracy == 1.0
    assert metrics.best_threshold([0.2, 0.4], [False, False]).accuracy == 1.0


# -- k-fold ---------------------------------------------------------------------------

def test_stratified_folds():
    np.testing.assert_array_equal(metrics.stratified_folds([1, 1, 1, 0, 0], 2), [0, 1, 0, 1, 0])
    with pytest.raises(InputError, match="folds"):
        metrics.stratified_folds([1, 0], 3)


KFOLD = [  # (score, same, fold), worked out by hand in the test below
    (0.9, 1, 0), (0.5, 1, 0), (0.4, 0, 0), (0.1, 0, 0),
    (0.8, 1, 1), (0.6, 1, 1), (0.55, 0, 1), (0.2, 0, 1),
    (0.7, 1, 2), (0.3, 1, 2), (0.35, 0, 2), (0.0, 0, 2),
]


def test_kfold_threshold_comes_from_the_other_folds():
    s, y, f = (np.array(c) for c in zip(*KFOLD))
    # Fold 0 held out: on folds 1+2 the best split is 0.575 (7/8), so fold 0's 0.5 is missed.
    # Fold 1 held out: on folds 0+2 it is 0.45 (7/8): fold 1's different 0.55 is accepted.
    # Fold 2 held out: on folds 0+1, 0.45 and 0.575 tie at 7/8; the lower middle, 0.45: 0.3 missed.
    results = metrics.kfold(s, y.astype(bool), f)
    assert [r.threshold for r in results] == pytest.approx([0.575, 0.45, 0.45])
    assert [r.accuracy for r in results] == [0.75, 0.75, 0.75]
    # Fitting all 12 pairs at once would claim 10/12: the protocol must not.
    assert metrics.best_threshold(s, y.astype(bool)).accuracy == pytest.approx(10 / 12)


def test_kfold_skipped_pairs_count_as_errors_only_in_the_second_figure():
    s, y, f = (np.array(c, np.float64) for c in zip(*KFOLD))
    s, y, f = np.r_[s, np.nan], np.r_[y, 1].astype(bool), np.r_[f, 0]
    results = metrics.kfold(s, y, f)
    assert [r.threshold for r in results] == pytest.approx([0.575, 0.45, 0.45])
    assert results[0].accuracy == 0.75 and results[0].accuracy_with_skipped == pytest.approx(3 / 5)
    assert (results[0].pairs, results[0].skipped) == (5, 1)
    assert results[1].accuracy_with_skipped == 0.75


def test_kfold_needs_scored_pairs_in_every_fold():
    with pytest.raises(InputError, match="no scored pair"):
        metrics.kfold([0.1, np.nan, 0.3, 0.2], [True, True, False, False], [0, 1, 0, 0])


# -- against scikit-learn -------------------------------------------------------------

scores_and_labels = st.integers(2, 60).flatmap(lambda n: st.tuples(
    st.lists(st.integers(-6, 6), min_size=n, max_size=n),      # few values: many ties
    st.lists(st.booleans(), min_size=n, max_size=n),
)).filter(lambda t: any(t[1]) and not all(t[1]))


@given(scores_and_labels)
def test_roc_matches_scikit_learn(case):
    s, y = np.array(case[0]) / 6.0, np.array(case[1])
    roc = metrics.roc_curve(s, y)
    fpr, tpr, thresholds = sk_roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(roc.far, fpr)
    np.testing.assert_allclose(roc.tar, tpr)
    np.testing.assert_array_equal(roc.thresholds[1:], thresholds[1:])
    assert metrics.auc(roc) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


@given(scores_and_labels)
def test_eer_matches_the_crossing_of_scikit_learns_curve(case):
    s, y = np.array(case[0]) / 6.0, np.array(case[1])
    fpr, tpr, _ = sk_roc_curve(y, s, drop_intermediate=False)
    reference = brentq(lambda x: 1 - x - np.interp(x, fpr, tpr), 0, 1, xtol=1e-12)
    rate, _ = metrics.eer(metrics.roc_curve(s, y))
    assert rate == pytest.approx(reference, abs=1e-9)


@given(scores_and_labels, st.sampled_from([0.0, 0.05, 0.1, 0.3, 0.5]))
def test_at_far_is_the_best_tar_within_the_far(case, target):
    s, y = np.array(case[0]) / 6.0, np.array(case[1])
    point = metrics.at_far(s, y, target)
    assert point.far <= target
    assert point.tar == pytest.approx(np.mean(s[y] >= point.threshold))
    assert point.far == pytest.approx(np.mean(s[~y] >= point.threshold))
    for t in np.unique(s):      # every threshold with a higher TAR breaks the FAR
        if np.mean(s[y] >= t) > point.tar:
            assert np.mean(s[~y] >= t) > target


@given(scores_and_labels)
def test_best_threshold_matches_brute_force(case):
    s, y = np.array(case[0]) / 6.0, np.array(case[1])
    candidates = np.r_[np.unique(s), np.inf]
    brute = max(np.mean((s >= t) == y) for t in candidates)
    best = metrics.best_threshold(s, y)
    assert best.accuracy == pytest.approx(brute)
    assert best.accuracy == pytest.approx(np.mean((s >= best.threshold) == y))


# -- bad input ------------------------------------------------------------------------

@pytest.mark.parametrize("scores, same, match", [
    ([0.1, 0.2], [True], "one length"),
    ([], [], "no scores"),
    ([0.1, np.nan], [True, False], "NaN"),
    ([0.1, 0.2], [True, True], "both"),
    ([0.1, 0.2], [2, 0], "booleans"),
])
def test_bad_scores_are_input_errors(scores, same, match):
    with pytest.raises(InputError, match=match):
        metrics.roc_curve(scores, same)
