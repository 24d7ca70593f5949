"""The pair protocol's report: folds, skipped pairs, measurable FARs, the text."""
import numpy as np
import pytest

from tinyface.errors import InputError
from tinyface.evaluation import metrics
from tinyface.evaluation.pairs import Pair, PairList
from tinyface.evaluation.verification import cosine_scores, evaluate, fold_ids, format_report


def pair_list(same, sets=1):
    pairs = [Pair(f"/x/{i}a.jpg", f"/x/{i}b.jpg", bool(s), i * sets // len(same))
             for i, s in enumerate(same)]
    return PairList(pairs, sets, "test pairs")


def synthetic(n=200, seed=0):
    """n same pairs around 0.6 and n different around 0.1, overlapping a little."""
    rng = np.random.default_rng(seed)
    same = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    scores = np.where(same, rng.normal(0.6, 0.12, 2 * n), rng.normal(0.1, 0.12, 2 * n))
    return same, scores


def test_report_figures():
    same, scores = synthetic()
    report = evaluate(pair_list(same), scores)
    assert (report["total"], report["same"], report["different"], report["skipped"]) == (400, 200, 200, 0)
    folds = report["folds"]
    assert folds["count"] == 10 and folds["made_from"] == "10 stratified folds"
    per_fold = [f["accuracy"] for f in folds["per_fold"]]
    assert folds["accuracy_mean"] == pytest.approx(np.mean(per_fold))
    assert folds["accuracy_std"] == pytest.approx(np.std(per_fold, ddof=1))
    assert folds["accuracy_with_skipped_mean"] == folds["accuracy_mean"]
    roc = metrics.roc_curve(scores, same)
    assert report["auc"] == metrics.auc(roc) and report["eer"] == metrics.eer(roc)[0]
    measurable = [r["far"] for r in report["tar_at_far"] if r["measurable"]]
    assert measurable == [1e-1, 1e-2]                    # 200 different pairs: not 1e-3
    assert report["tar_at_far"][2] == {"far": 1e-3, "measurable": False, "needs_different_pairs": 1000}
    assert report["best_threshold"]["accuracy"] >= folds["accuracy_mean"] - 0.02


def test_skipped_pairs_lower_only_the_second_accuracy():
    same, scores = synthetic()
    scores[:40] = np.nan                                 # 40 same pairs had no face
    failed = {f"/x/{i}a.jpg": "no face: none detected" for i in range(40)}
    notes = {"/x/50a.jpg": "3 faces, largest used", "/x/51b.jpg": "resized from 250x250"}
    report = evaluate(pair_list(same), scores, failed, notes=notes)
    assert (report["images_with_several_faces"], report["images_resized"]) == (1, 1)
    assert report["skipped"] == 40 and report["scored"] == 360
    assert report["skipped_by_reason"] == {"no face": 40, "unreadable": 0}
    f = report["folds"]
    assert f["accuracy_with_skipped_mean"] < f["accuracy_mean"] - 0.05
    assert f["accuracy_with_skipped_mean"] == pytest.approx(
        np.mean([r["accuracy"] * (r["pairs"] - r["skipped"]) / r["pairs"] for r in f["per_fold"]]))
    text = format_report(report)
    assert "skipped 40 (40 no face)" in text
    assert "counting the 40 skipped pairs as errors" in text
    assert "several faces (the largest used): 1; resized to the model's input size: 1" in text


def test_view2_sets_are_the_folds():
    same = np.tile(np.r_[np.ones(3, bool), np.zeros(3, bool)], 4)
    pl = pair_list(same, sets=4)
    ids, how = fold_ids(pl)
    assert ids.tolist() == [p.set for p in pl.pairs] and how == "the file's 4 sets"
    assert fold_ids(pl, 4)[0].tolist() == ids.tolist()
    with pytest.raises(InputError, match="4 sets are the folds"):
        fold_ids(pl, 10)
    with pytest.raises(InputError, match="--folds must be between 2"):
        fold_ids(pair_list(same), 1)


def test_model_threshold_and_text():
    same, scores = synthetic()
    report = evaluate(pair_list(same), scores, threshold=(0.35, "not calibrated, the default"))
    m = report["model_threshold"]
    assert m["threshold"] == 0.35 and m["far"] == np.mean(scores[~same] >= 0.35)
    text = format_report(report)
    assert "TAR at FAR 1e-03: not measurable with 200 different-person pairs (needs 1000)" in text
    assert "at the model's threshold 0.3500 (not calibrated, the default)" in text
    assert "each fold at the threshold chosen on the others" in text


def test_nothing_scored_names_an_example():
    same = np.array([True, False])
    with pytest.raises(InputError, match="no pair could be scored; e.g. /x/0a.jpg: unreadable"):
        evaluate(pair_list(same), np.full(2, np.nan), {"/x/0a.jpg": "unreadable: no such file"})


def test_cosine_scores():
    vectors = {"a": np.array([1.0, 0.0]), "b": np.array([3.0, 3.0]), "z": np.zeros(2)}
    pairs = [Pair("a", "b", True, 0), Pair("a", "missing", False, 0), Pair("a", "z", False, 0)]
    scores = cosine_scores(vectors, pairs)
    assert scores[0] == pytest.approx(np.sqrt(0.5)) and np.isnan(scores[1]) and scores[2] == 0.0
