"""Calibration: choosing the threshold, writing it beside the model, threshold_for reading it."""
import datetime
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import tinyface
from tinyface.errors import InputError, TinyfaceError
from tinyface.evaluation import calibrate
from tinyface.evaluation.pairs import Pair, PairList
from tinyface.verify import DEFAULT_THRESHOLD, calibration_note, threshold_for

MODELS = Path(__file__).parent / "data" / "models"


def scores_and_labels():
    same = np.r_[np.ones(1000, bool), np.zeros(1000, bool)]
    rng = np.random.default_rng(0)
    return np.where(same, rng.normal(0.6, 0.12, 2000), rng.normal(0.1, 0.12, 2000)), same


def test_choose_for_a_far():
    s, y = scores_and_labels()
    point = calibrate.choose_threshold(s, y, far=1e-2)
    assert point.far <= 1e-2 and point.far == np.mean(s[~y] >= point.threshold)
    assert calibrate.choose_threshold(s, y).accuracy >= point.accuracy


@pytest.mark.parametrize("far, match", [(1e-4, "needs at least 10000 different-person pairs; "
                                                "these pairs have 1000"),
                                        (0, "between 0 and 1"), (1.5, "between 0 and 1")])
def test_unmeasurable_or_bad_far(far, match):
    s, y = scores_and_labels()
    with pytest.raises(InputError, match=match):
        calibrate.choose_threshold(s, y, far=far)


def test_record():
    s, y = scores_and_labels()
    s[0] = np.nan
    point = calibrate.choose_threshold(s[1:], y[1:], far=1e-2)
    pl = PairList([Pair("a", "b", bool(v), 0) for v in y], 1, "p.txt (CSV, 1000 same + 1000 different)")
    record = calibrate.calibration_record(point, pl, s, far=1e-2, aligned=True, flip=False,
                                          date=datetime.date(2024, 5, 6))
    assert record == {"method": "far", "target_far": 1e-2, "far": point.far, "tar": point.tar,
                      "accuracy": point.accuracy, "pairs": pl.description, "scored": 1999,
                      "skipped": 1, "aligned": True, "flip": False, "date": "2024-05-06"}


@pytest.fixture
def model_copy(tmp_path):
    for name in ("mobilefacenet-relu6-opset10.onnx", "mobilefacenet-relu6-opset10.json"):
        shutil.copy(MODELS / name, tmp_path / name)
    return tmp_path / "mobilefacenet-relu6-opset10.onnx"


def test_written_threshold_is_the_models(model_copy):
    model = tinyface.load(model_copy)
    assert threshold_for(model) == (DEFAULT_THRESHOLD, None)
    record = {"method": "best accuracy", "far": 0.0123, "pairs": "pairsDevTrain.txt (LFW format)",
              "flip": False}
    path = calibrate.write_threshold(model, 0.3012, record)
    assert path == model_copy.with_suffix(".json")
    entries = json.loads(path.read_text())
    original = json.loads((MODELS / "mobilefacenet-relu6-opset10.json").read_text())
    assert entries == dict(original, threshold=0.3012, calibration=record)
    assert '"input_size": [112, 112],' in path.read_text()         # lists stay on one line
    reloaded = tinyface.load(model_copy)
    assert threshold_for(reloaded) == (0.3012, record)
    assert calibration_note(record) == "FAR 1.23% on pairsDevTrain.txt"
    assert calibration_note(record, flip=True) == "FAR 1.23% on pairsDevTrain.txt, measured without --flip"
    assert calibration_note(dict(record, aligned=True), flip=False, aligned=False) == \
        "FAR 1.23% on pairsDevTrain.txt, measured on aligned crops"


def test_a_model_without_a_sidecar_gets_one(tmp_path):
    shutil.copy(MODELS / "mobilefacenet-relu6-opset10.onnx", tmp_path / "m.onnx")
    model = tinyface.load(tmp_path / "m.onnx")
    calibrate.write_threshold(model, 0.25, {"method": "best accuracy"})
    assert json.loads((tmp_path / "m.json").read_text()) == {
        "threshold": 0.25, "calibration": {"method": "best accuracy"}}


def test_model_from_bytes_cannot_be_calibrated():
    model = tinyface.load((MODELS / "mobilefacenet-relu6-opset10.onnx").read_bytes())
    with pytest.raises(TinyfaceError, match="loaded from a file"):
        calibrate.write_threshold(model, 0.3, {})


def test_bundled_model_ships_a_calibrated_threshold():
    threshold, record = threshold_for(tinyface.load())
    assert record is not None and record["pairs"].startswith("pairsDevTrain.txt")
    assert 0 < threshold < 1 and record["scored"] == 2200
