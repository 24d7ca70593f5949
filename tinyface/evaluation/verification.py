"""The verification protocol: score a pair list with a model and report it.

``score_pairs`` embeds each image once and gives one cosine similarity per
pair (NaN where an image gave no embedding).  ``evaluate`` turns scores into
the report ``tinyface eval pairs`` prints:

* accuracy under k-fold cross-validation, mean and standard deviation over
  the folds: each fold is scored at the best threshold of the *other* folds
  (LFW's protocol; for View 2 the folds are the file's ten sets);
* the same accuracy counting skipped pairs (no face, unreadable) as errors;
* ROC AUC, EER, and TAR at FAR = 1e-1 ... 1e-4 where the number D of
  different-person pairs can show that FAR (D * FAR >= 1);
* the best threshold on all scored pairs (fit to them: not a held-out figure).
"""
import os

import numpy as np

from tinyface.errors import InputError
from tinyface.evaluation import metrics
from tinyface.evaluation.embed import embed_images

FARS = (1e-1, 1e-2, 1e-3, 1e-4)
DEFAULT_FOLDS = 10


def cosine_scores(vectors: dict, pairs) -> np.ndarray:
    """cos(a, b) per pair, NaN where either image has no vector (layout: float64, (N,))."""
    scores = np.full(len(pairs), np.nan)
    for i, pair in enumerate(pairs):
        a, b = vectors.get(pair.a), vectors.get(pair.b)
        if a is not None and b is not None:
            norm = np.linalg.norm(a) * np.linalg.norm(b)
            scores[i] = float(np.dot(a, b) / norm) if norm > 0 else 0.0
    return scores


def score_pairs(model, pair_list, *, aligned, flip=False, cache=None, pipeline=None):
    """(scores, ImageEmbeddings) for a :class:`~tinyface.evaluation.pairs.PairList`.

    The pairs' paths are made absolute, as the embedding keys are.
    """
    found = embed_images(model, pair_list.images, aligned=aligned, flip=flip,
                         pipeline=pipeline, cache=cache)
    pairs = [p._replace(a=os.path.abspath(p.a), b=os.path.abspath(p.b)) for p in pair_list.pairs]
    return cosine_scores(found.vectors, pairs), found


def fold_ids(pair_list, folds=None) -> tuple[np.ndarray, str]:
    """(one fold id per pair, how the folds were made).

    A file with several LFW sets (View 2) uses them; ``folds`` must then be
    None or that number.  Otherwise ``folds`` stratified folds (default 10, or
    one per pair when there are fewer pairs).
    """
    same = np.array([p.same for p in pair_list.pairs])
    if pair_list.sets > 1:
        if folds not in (None, pair_list.sets):
            raise InputError(f"{pair_list.description}: the file's {pair_list.sets} sets are "
                             f"the folds; --folds must be {pair_list.sets} or left out")
        return np.array([p.set for p in pair_list.pairs]), f"the file's {pair_list.sets} sets"
    k = min(DEFAULT_FOLDS, len(same)) if folds is None else folds
    if not 2 <= k <= len(same):
        raise InputError(f"--folds must be between 2 and the number of pairs ({len(same)}), got {k}")
    return metrics.stratified_folds(same, k), f"{k} stratified folds"


def evaluate(pair_list, scores, failed=None, folds=None, threshold=None, notes=None) -> dict:
    """The report (JSON-ready dict) for scores of ``pair_list`` (NaN: skipped pair).

    ``failed``: absolute image path -> reason, for the skipped pairs' causes.
    ``notes``: absolute image path -> note from the embedding (several faces, resized).
    ``threshold``: (value, how it was chosen), e.g. the model's calibrated
    threshold, to report what it gives on these pairs.
    """
    same = np.array([p.same for p in pair_list.pairs])
    scored = require_scores(pair_list, scores, failed)
    s, y = scores[scored], same[scored]
    ids, how = fold_ids(pair_list, folds)
    per_fold = metrics.kfold(scores, same, ids)
    acc = np.array([f.accuracy for f in per_fold])
    acc_all = np.array([f.accuracy_with_skipped for f in per_fold])
    roc = metrics.roc_curve(s, y)
    rate, rate_threshold = metrics.eer(roc)
    different = int((~y).sum())
    best = metrics.best_threshold(s, y)
    report = {
        "pairs": pair_list.description,
        "total": len(same), "same": int(same.sum()), "different": int((~same).sum()),
        "scored": int(scored.sum()), "skipped": int((~scored).sum()),
        "skipped_by_reason": skipped_by_reason(pair_list, scored, failed or {}),
        "images_with_several_faces": sum("faces" in n for n in (notes or {}).values()),
        "images_resized": sum(n.startswith("resized") for n in (notes or {}).values()),
        "folds": {"count": len(per_fold), "made_from": how,
                  "accuracy_mean": float(acc.mean()), "accuracy_std": float(acc.std(ddof=1)),
                  "accuracy_standard_error": float(acc.std(ddof=1) / np.sqrt(len(acc))),
                  "accuracy_with_skipped_mean": float(acc_all.mean()),
                  "accuracy_with_skipped_std": float(acc_all.std(ddof=1)),
                  "per_fold": [f._asdict() for f in per_fold]},
        "auc": metrics.auc(roc), "eer": rate, "eer_threshold": rate_threshold,
        "tar_at_far": [tar_record(s, y, far, different) for far in FARS],
        "best_threshold": best._asdict(),
    }
    if threshold is not None:
        value, about = threshold
        report["model_threshold"] = dict(metrics.at_threshold(s, y, value)._asdict(), about=about)
    return report


def require_scores(pair_list, scores, failed=None) -> np.ndarray:
    """The mask of scored pairs; InputError, with an example failure, when there is none."""
    scored = ~np.isnan(scores)
    if not scored.any():
        example = next(iter((failed or {}).items()), None)
        hint = f"; e.g. {example[0]}: {example[1]}" if example else ""
        raise InputError(f"{pair_list.description}: no pair could be scored{hint}")
    return scored


def skipped_by_reason(pair_list, scored, failed) -> dict:
    """{'no face': pairs, 'unreadable': pairs} over the skipped pairs (a pair counts once)."""
    counts = {"no face": 0, "unreadable": 0}
    for pair, ok in zip(pair_list.pairs, scored):
        if not ok:
            reasons = [failed.get(os.path.abspath(p), "") for p in (pair.a, pair.b)]
            counts["unreadable" if any(r.startswith("unreadable") for r in reasons) else "no face"] += 1
    return counts


def tar_record(s, y, far, different) -> dict:
    if not metrics.far_is_measurable(far, different):
        return {"far": far, "measurable": False, "needs_different_pairs": int(round(1 / far))}
    point = metrics.at_far(s, y, far)
    return {"far": far, "measurable": True, "tar": point.tar, "far_achieved": point.far,
            "threshold": point.threshold}


def format_report(report: dict) -> str:
    """The report as the lines ``tinyface eval pairs`` prints."""
    f = report["folds"]
    skipped = report["skipped"]
    causes = ", ".join(f"{n} {why}" for why, n in report["skipped_by_reason"].items() if n)
    lines = [
        f"pairs: {report['pairs']}",
        f"scored {report['scored']} of {report['total']} pairs; skipped {skipped}"
        + (f" ({causes})" if skipped else ""),
    ]
    if report["images_with_several_faces"] or report["images_resized"]:
        lines.append(f"images with several faces (the largest used): "
                     f"{report['images_with_several_faces']}; resized to the model's input size: "
                     f"{report['images_resized']}")
    lines += [
        f"accuracy {pct(f['accuracy_mean'])} ± {pct(f['accuracy_std'])} "
        f"(mean ± std over {f['made_from']}; each fold at the threshold chosen on the others; "
        f"standard error {pct(f['accuracy_standard_error'])})",
        f"accuracy counting the {skipped} skipped pairs as errors: "
        f"{pct(f['accuracy_with_skipped_mean'])} ± {pct(f['accuracy_with_skipped_std'])}",
        f"ROC AUC {report['auc']:.4f}, EER {pct(report['eer'])} "
        f"(threshold {report['eer_threshold']:.4f})",
    ]
    for r in report["tar_at_far"]:
        if r["measurable"]:
            lines.append(f"TAR at FAR {r['far']:.0e}: {pct(r['tar'])} (threshold "
                         f"{r['threshold']:.4f}, FAR measured {pct(r['far_achieved'])})")
        else:
            lines.append(f"TAR at FAR {r['far']:.0e}: not measurable with {report['different']} "
                         f"different-person pairs (needs {r['needs_different_pairs']})")
    b = report["best_threshold"]
    lines.append(f"best threshold on all scored pairs: {b['threshold']:.4f} (accuracy "
                 f"{pct(b['accuracy'])}, FAR {pct(b['far'])}, TAR {pct(b['tar'])}; fit to these "
                 f"pairs, not a held-out figure)")
    if "model_threshold" in report:
        m = report["model_threshold"]
        lines.append(f"at the model's threshold {m['threshold']:.4f} ({m['about']}): accuracy "
                     f"{pct(m['accuracy'])}, FAR {pct(m['far'])}, TAR {pct(m['tar'])}")
    return "\n".join(lines)


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"
