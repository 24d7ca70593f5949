"""PNG figures of an evaluation, drawn with matplotlib (the optional extra ``tinyface[plot]``).

* :func:`plot_pairs`: the ROC curve (TAR against FAR, FAR on a log axis) with
  the EER and the measurable TAR-at-FAR points, and the histograms of
  same-person and different-person similarities with the chosen threshold.
* :func:`plot_identification`: the CMC curve, and rank-1 against the number of
  distractors (log axis) when there are any.

matplotlib is imported only here, and only when a figure is asked for.
"""
import numpy as np

from tinyface.errors import TinyfaceError
from tinyface.evaluation import metrics

SAME_COLOUR, DIFFERENT_COLOUR = "#1f77b4", "#d62728"


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend, or a TinyfaceError saying how to get it."""
    try:
        import matplotlib
    except ImportError:
        raise TinyfaceError("--plot needs matplotlib: pip install 'tinyface[plot]' "
                            "(or pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, out):
    try:
        fig.savefig(out, dpi=120)
    except (OSError, ValueError) as exc:
        raise TinyfaceError(f"cannot write plot '{out}': {getattr(exc, 'strerror', None) or exc}") from None
    finally:
        import matplotlib.pyplot as plt
        plt.close(fig)


def plot_pairs(scores, same, report, out, thresholds=None):
    """ROC and similarity histograms of scored pairs to ``out`` (PNG).

    ``report``: :func:`tinyface.evaluation.verification.evaluate`'s dict.
    ``thresholds``: {label: value} drawn on the histograms (default: the best
    threshold on these pairs).
    """
    plt = pyplot()
    s = np.asarray(scores, np.float64)
    y = np.asarray(same, bool)
    s, y = s[~np.isnan(s)], y[~np.isnan(s)]
    roc = metrics.roc_curve(s, y)
    if thresholds is None:
        thresholds = {"best threshold": report["best_threshold"]["threshold"]}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    fig.suptitle(report["pairs"], fontsize=10)

    floor = 1 / max(1, report["different"]) / 2       # where FAR = 0 is drawn on the log axis
    left.step(np.maximum(roc.far, floor), roc.tar, where="post", color="black", lw=1.3,
              label=f"ROC (AUC {report['auc']:.4f})")
    left.plot([report["eer"]], [1 - report["eer"]], "o", color="grey",
              label=f"EER {100 * report['eer']:.2f}%")
    for r in report["tar_at_far"]:
        if r["measurable"]:
            left.plot([r["far"]], [r["tar"]], "s", ms=5,
                      label=f"TAR {100 * r['tar']:.1f}% at FAR {r['far']:.0e}")
    left.set_xscale("log")
    left.set_xlim(floor, 1)
    left.set_ylim(max(0.0, min(roc.tar[roc.far >= 1e-2].min(), 0.9) - 0.05), 1.005)
    left.set_xlabel("false accept rate (log; FAR 0 drawn at the left edge)")
    left.set_ylabel("true accept rate")
    left.grid(True, which="both", alpha=0.3)
    left.legend(loc="lower right", fontsize=8)

    bins = np.linspace(min(s.min(), -0.2), max(s.max(), 1.0), 60)
    right.hist(s[y], bins=bins, alpha=0.55, color=SAME_COLOUR, label=f"same person ({y.sum()})")
    right.hist(s[~y], bins=bins, alpha=0.55, color=DIFFERENT_COLOUR,
               label=f"different people ({(~y).sum()})")
    for (label, t), style in zip(thresholds.items(), ("-", "--", ":")):
        right.axvline(t, color="black", ls=style, lw=1.2, label=f"{label} {t:.4f}")
    right.set_xlabel("cosine similarity")
    right.set_ylabel("pairs")
    right.set_ylim(0, right.get_ylim()[1] * 1.3)             # room for the legend
    right.legend(fontsize=8)
    fig.tight_layout()
    save(fig, out)


def plot_identification(report, out):
    """CMC curve (and rank-1 against distractors, when the report has them) to ``out`` (PNG)."""
    plt = pyplot()
    panels = 2 if report.get("distractors") else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.2), squeeze=False)
    cmc = np.asarray(report["cmc"])
    ax = axes[0, 0]
    ax.step(np.arange(1, len(cmc) + 1), cmc, where="post", color="black")
    ax.set_xscale("log")
    ax.set_xlabel("rank (log)")
    ax.set_ylabel("identification rate")
    ax.set_title(f"CMC: {report['probes']} probes, {report['identities']} identities", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if panels == 2:
        rows = report["distractors"]
        ax = axes[0, 1]
        counts = [r["distractors"] for r in rows if r["distractors"] > 0]
        ax.plot(counts, [100 * r["rank1"] for r in rows if r["distractors"] > 0], "o-", color="black")
        if rows[0]["distractors"] == 0:
            ax.axhline(100 * rows[0]["rank1"], color="grey", ls="--",
                       label=f"no distractors {100 * rows[0]['rank1']:.1f}%")
        ax.set_xscale("log")
        ax.set_xlabel("distractors added (log)")
        ax.set_ylabel("rank-1 identification rate (%)")
        ax.set_title("rank-1 as the gallery grows", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        if rows[0]["distractors"] == 0:
            ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, out)
