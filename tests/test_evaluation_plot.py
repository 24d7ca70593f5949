"""The figures: PNGs are written, and a missing matplotlib is a clear error."""
import sys

import numpy as np
import pytest
from PIL import Image

from tinyface.errors import TinyfaceError
from tinyface.evaluation import identify
from tinyface.evaluation.pairs import Pair, PairList
from tinyface.evaluation.plot import plot_identification, plot_pairs
from tinyface.evaluation.verification import evaluate

pytest.importorskip("matplotlib")


def report_and_scores():
    rng = np.random.default_rng(0)
    same = np.r_[np.ones(150, bool), np.zeros(150, bool)]
    scores = np.where(same, rng.normal(0.6, 0.12, 300), rng.normal(0.1, 0.12, 300))
    scores[3] = np.nan
    pl = PairList([Pair(f"{i}a", f"{i}b", bool(s), 0) for i, s in enumerate(same)], 1, "test pairs")
    return evaluate(pl, scores), scores, same


def test_pairs_plot_is_a_png(tmp_path):
    report, scores, same = report_and_scores()
    out = tmp_path / "roc.png"
    plot_pairs(scores, same, report, out, {"best threshold": 0.35, "model's threshold": 0.3})
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > 1000


def test_identification_plot_is_a_png(tmp_path):
    rng = np.random.default_rng(0)
    probes, gallery = rng.normal(size=(30, 8)), rng.normal(size=(30, 8))
    labels = np.arange(30)
    report = identify.identification_report(probes + 0.5 * gallery, labels, gallery, labels,
                                            distractors=rng.normal(size=(200, 8)))
    out = tmp_path / "cmc.png"
    plot_identification(report, out)
    with Image.open(out) as im:
        assert im.format == "PNG"


def test_unwritable_plot(tmp_path):
    report, scores, same = report_and_scores()
    with pytest.raises(TinyfaceError, match="cannot write plot"):
        plot_pairs(scores, same, report, tmp_path / "no" / "roc.png")


def test_missing_matplotlib_says_how_to_install(monkeypatch, tmp_path):
    report, scores, same = report_and_scores()
    monkeypatch.setitem(sys.modules, "matplotlib", None)          # import matplotlib -> ImportError
    with pytest.raises(TinyfaceError, match=r"pip install 'tinyface\[plot\]'"):
        plot_pairs(scores, same, report, tmp_path / "roc.png")
