"""Model metadata: the sidecar's threshold and calibration, and keys it does not know."""
import json
import warnings
from pathlib import Path

import pytest

from tinyface.errors import ModelError
from tinyface.graph.onnx_file import read_model
from tinyface.runtime.metadata import read_info

MODEL = Path(__file__).parent / "data" / "models" / "mobilefacenet-relu6-opset10.onnx"


@pytest.fixture(scope="module")
def graph():
    return read_model(MODEL)


def info_with(graph, tmp_path, entries):
    (tmp_path / "m.json").write_text(json.dumps(entries))
    return read_info(graph, tmp_path / "m.onnx")


def test_shipped_sidecar_is_read_without_warnings(graph):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        info = read_info(graph, MODEL)
    assert info.input_size == (112, 112) and info.embedding_size == 128
    assert info.threshold is None and info.calibration is None


def test_threshold_and_calibration(graph, tmp_path):
    record = {"method": "far", "far": 0.001, "pairs": "p.txt"}
    info = info_with(graph, tmp_path, {"threshold": 0.41, "calibration": record})
    assert info.threshold == 0.41 and info.calibration == record
    info = info_with(graph, tmp_path, {"threshold": "0.3"})        # strings, as in ONNX metadata
    assert info.threshold == 0.3 and info.calibration is None


@pytest.mark.parametrize("entries, match", [
    ({"threshold": 1.5}, r"threshold.*\[-1, 1\]"),
    ({"threshold": "high"}, "threshold"),
    ({"threshold": True}, "threshold"),
    ({"threshold": 0.3, "calibration": [1, 2]}, "calibration.*JSON object"),
    ({"threshold": 0.3, "calibration": "not json"}, "calibration.*JSON object"),
    ({"calibration": {"far": 0.01}}, "without a 'threshold'"),
    ({"channel_order": "BGR"}, "channel_order 'BGR'"),
])
def test_bad_entries_are_model_errors(graph, tmp_path, entries, match):
    with pytest.raises(ModelError, match=match):
        info_with(graph, tmp_path, entries)


def test_unknown_keys_warn(graph, tmp_path):
    with pytest.warns(UserWarning, match=r"unknown metadata key 'thresold' ignored"):
        info = info_with(graph, tmp_path, {"thresold": 0.5, "comment": "kept for people"})
    assert info.threshold is None


def test_sidecar_must_be_an_object(graph, tmp_path):
    (tmp_path / "m.json").write_text("[1, 2]")
    with pytest.raises(ModelError, match="JSON object"):
        read_info(graph, tmp_path / "m.onnx")
