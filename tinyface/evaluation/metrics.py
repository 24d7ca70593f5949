"""Verification metrics on similarity scores, in NumPy.

Layout: ``scores`` is a 1-D float array of N similarities (one per pair of
faces), ``same`` a 1-D bool array of N labels (True: the pair shows one
person).  A pair is *accepted* at threshold t when ``score >= t``.  With
S same-person and D different-person pairs::

    TAR(t) = #{same pairs with score >= t} / S          true accept rate (TPR)
    FAR(t) = #{different pairs with score >= t} / D     false accept rate (FPR)
    FRR(t) = 1 - TAR(t)                                 false reject rate
    accuracy(t) = (#{same, score >= t} + #{different, score < t}) / N

The ROC curve is (FAR, TAR) as t falls from +inf (nothing accepted) past
every distinct score to the lowest (everything accepted); its area (AUC) is
the probability that a random same pair scores above a random different pair,
ties counting one half.  The EER is the rate at which FAR = FRR on that curve,
read where the curve's straight segments cross the line FAR = 1 - TAR.
"""
from typing import NamedTuple

import numpy as np

from tinyface.errors import InputError


class Roc(NamedTuple):
    """ROC points, thresholds descending: point i accepts scores >= thresholds[i].

    Point 0 has threshold +inf (FAR = TAR = 0); the last accepts every pair.
    """
    far: np.ndarray
    tar: np.ndarray
    thresholds: np.ndarray


class OperatingPoint(NamedTuple):
    """A threshold and what it gives on the pairs it was measured on."""
    threshold: float
    far: float
    tar: float
    accuracy: float


def check_scores(scores, same, both_classes=True):
    """``scores`` as float64 and ``same`` as bool, 1-D and of one length, or InputError."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(same)
    if s.ndim != 1 or y.shape != s.shape:
        raise InputError(f"scores and labels must be 1-D of one length, got shapes "
                         f"{s.shape} and {y.shape}")
    if y.dtype != bool:
        if not np.isin(y, (0, 1)).all():
            raise InputError("labels must be booleans (or 0/1)")
        y = y.astype(bool)
    if len(s) == 0:
        raise InputError("no scores given")
    if not np.isfinite(s).all():
        raise InputError(f"{int((~np.isfinite(s)).sum())} scores are NaN or infinite")
    if both_classes and (y.all() or not y.any()):
        raise InputError(f"need both same-person and different-person pairs, got "
                         f"{int(y.sum())} same and {int((~y).sum())} different")
    return s, y


def roc_curve(scores, same) -> Roc:
    """The ROC at every distinct score (see the module docstring); needs both classes."""
    s, y = check_scores(scores, same)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]   # s[i] > s[i + 1] or the end
    true_accepts = np.cumsum(y)[last_of_run]
    false_accepts = last_of_run + 1 - true_accepts
    return Roc(far=np.r_[0, false_accepts] / (~y).sum(),
               tar=np.r_[0, true_accepts] / y.sum(),
               thresholds=np.r_[np.inf, s[last_of_run]])


def auc(roc: Roc) -> float:
    """Area under the ROC curve by the trapezoidal rule (exact for a step curve with ties)."""
    return float(np.sum(np.diff(roc.far) * (roc.tar[1:] + roc.tar[:-1]) / 2))


def eer(roc: Roc) -> tuple[float, float]:
    """(EER, threshold): where FAR = FRR on the ROC's segments.

    FAR - FRR rises from -1 (point 0) to +1 (last point); on the first segment
    where it reaches 0 both rates and the threshold are interpolated linearly.
    """
    gap = roc.far - (1 - roc.tar)
    i = int(np.argmax(gap >= 0))
    if gap[i] == 0:
        return float(roc.far[i]), float(roc.thresholds[i])
    alpha = -gap[i - 1] / (gap[i] - gap[i - 1])
    rate = roc.far[i - 1] + alpha * (roc.far[i] - roc.far[i - 1])
    upper = roc.thresholds[i - 1] if np.isfinite(roc.thresholds[i - 1]) else roc.thresholds[i]
    return float(rate), float(upper + alpha * (roc.thresholds[i] - upper))


def point_threshold(roc: Roc, i: int) -> float:
    """A threshold that realises ROC point i, halfway to the next lower score.

    Any t in (thresholds[i + 1], thresholds[i]] accepts exactly the pairs of
    point i; the midpoint keeps a margin on both sides (the lowest score
    itself for the last point, the next float above the top score for point 0).
    """
    t = roc.thresholds
    if i == 0:
        return float(np.nextafter(t[1], np.inf))
    if i == len(t) - 1:
        return float(t[i])
    mid = (t[i] + t[i + 1]) / 2
    return float(mid if mid > t[i + 1] else t[i])


def far_is_measurable(far: float, different: int) -> bool:
    """Whether D different-person pairs can show a FAR as small as ``far``: D * far >= 1."""
    return different * far >= 1 - 1e-9


def at_far(scores, same, far: float) -> OperatingPoint:
    """The highest-TAR point whose FAR is at most ``far`` (its threshold: point_threshold)."""
    s, y = check_scores(scores, same)
    roc = roc_curve(s, y)
    i = int(np.searchsorted(roc.far, far * (1 + 1e-9), side="right")) - 1
    return at_threshold(s, y, point_threshold(roc, i))


def best_threshold(scores, same) -> OperatingPoint:
    """The threshold of highest accuracy on these pairs.

    Candidates split the sorted scores between two distinct values (at the
    midpoint), below the lowest (accept all) or above the highest (accept
    none).  When several candidates tie for the best accuracy, the middle one
    of them (the lower of two middles) is taken.  One class alone is allowed.
    """
    s, y = check_scores(scores, same, both_classes=False)
    order = np.argsort(s, kind="stable")
    s, y = s[order], y[order]
    n = len(s)
    # Split k accepts s[k:]: correct = different pairs below k + same pairs from k on.
    different_below = np.r_[0, np.cumsum(~y)]
    same_from = y.sum() - np.r_[0, np.cumsum(y)]
    correct = different_below + same_from
    splits = np.r_[0, np.flatnonzero(np.diff(s)) + 1, n]      # k where s[k - 1] < s[k]
    best = splits[correct[splits] == correct[splits].max()]
    k = int(best[(len(best) - 1) // 2])
    if k == 0:
        t = float(s[0])
    elif k == n:
        t = float(np.nextafter(s[-1], np.inf))
    else:
        mid = (s[k - 1] + s[k]) / 2
        t = float(mid if mid > s[k - 1] else s[k])
    return at_threshold(s, y, t)


def at_threshold(scores, same, threshold: float) -> OperatingPoint:
    """FAR, TAR and accuracy at ``threshold`` (a rate over an absent class is 0)."""
    s, y = check_scores(scores, same, both_classes=False)
    accepted = s >= threshold
    far = float(accepted[~y].mean()) if (~y).any() else 0.0
    tar = float(accepted[y].mean()) if y.any() else 0.0
    return OperatingPoint(float(threshold), far, tar, float(np.mean(accepted == y)))


def stratified_folds(same, k: int) -> np.ndarray:
    """Fold ids 0..k-1 (int array, one per pair): the i-th same pair goes to fold i mod k,
    then the different pairs continue the count, so folds differ in size and in
    same/different balance by at most one pair."""
    y = np.asarray(same, bool)
    if not 2 <= k <= len(y):
        raise InputError(f"need 2 <= folds <= the number of pairs ({len(y)}), got {k}")
    folds = np.empty(len(y), np.int64)
    order = np.r_[np.flatnonzero(y), np.flatnonzero(~y)]
    folds[order] = np.arange(len(y)) % k
    return folds


class FoldResult(NamedTuple):
    """One held-out fold: the threshold chosen on the other folds and its accuracy here."""
    threshold: float
    accuracy: float                 # over the fold's scored pairs
    accuracy_with_skipped: float    # the fold's unscored pairs counted as errors
    pairs: int
    skipped: int


def kfold(scores, same, folds) -> list[FoldResult]:
    """Cross-validated accuracy: each fold scored at the best threshold of the others.

    ``scores`` may hold NaN for pairs that could not be scored (no face, an
    unreadable image): they take no part in choosing thresholds, are left out
    of ``accuracy`` and count as errors in ``accuracy_with_skipped``.
    ``folds``: one fold id per pair (e.g. :func:`stratified_folds`, or LFW
    View 2's ten sets).
    """
    s = np.asarray(scores, np.float64)
    y = np.asarray(same, bool)
    f = np.asarray(folds)
    if not (s.shape == y.shape == f.shape) or s.ndim != 1:
        raise InputError(f"scores, labels and folds must be 1-D of one length, got shapes "
                         f"{s.shape}, {y.shape} and {f.shape}")
    ids = np.unique(f)
    if len(ids) < 2:
        raise InputError(f"need at least 2 folds, got {len(ids)}")
    scored = ~np.isnan(s)
    results = []
    for fold in ids:
        held = f == fold
        train, test = scored & ~held, scored & held
        if not train.any() or not test.any():
            raise InputError(f"fold {fold} or the folds around it have no scored pair")
        t = best_threshold(s[train], y[train]).threshold
        right = int(((s[test] >= t) == y[test]).sum())
        results.append(FoldResult(t, right / int(test.sum()), right / int(held.sum()),
                                  int(held.sum()), int((held & ~scored).sum())))
    return results
