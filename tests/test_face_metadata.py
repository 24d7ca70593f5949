"""face.metadata: what a model says about itself (sidecar JSON, metadata_props, graph):
the threshold and calibration, keys it does not know, and every bad value a one-line
ModelError naming the file (the cases the fuzzer found)."""
import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest

import tinyface
from onnx_builders import GraphBuilder
from tinyface.errors import ModelError
from tinyface.graph.onnx_file import read_model
from tinyface.face.metadata import read_info

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


FACE = np.zeros((6, 6, 3), np.uint8)


def small_model(meta=None, shape=("N", 3, 6, 6)):
    g = GraphBuilder(13)
    y = g.add("Relu", ["x"])
    model = g.build({"x": list(shape)}, [y])
    for key, value in (meta or {}).items():
        model.metadata_props.add(key=key, value=value)
    return model


def with_sidecar(tmp_path, text):
    onnx.save(small_model(), tmp_path / "m.onnx")
    (tmp_path / "m.json").write_bytes(text.encode() if isinstance(text, str) else text)
    return tmp_path / "m.onnx"


def refused(source, match):
    with pytest.raises(tinyface.ModelError, match=match) as info:
        tinyface.load(source)
    assert "\n" not in str(info.value)


def test_good_sidecar(tmp_path):
    path = with_sidecar(tmp_path, '{"input_size": [6, 6], "mean": [0, 0, 0], "std": "1,2,4", "embedding_size": 3}')
    model = tinyface.load(path)
    assert model.info.input_size == (6, 6) and model.info.std == (1.0, 2.0, 4.0)
    assert model.info.embedding_size == 3
    assert model.embed(FACE).shape == (1, 108)


@pytest.mark.parametrize("text", ["[]", "3", '"abc"', "null"])
def test_sidecar_that_is_not_an_object(tmp_path, text):
    """Before: TypeError for 3 and null, a misleading 'not valid JSON' for "abc", and []
    was accepted."""
    refused(with_sidecar(tmp_path, text), "must hold a JSON object")


def test_sidecar_nested_too_deep(tmp_path):
    """Before: RecursionError."""
    refused(with_sidecar(tmp_path, "[" * 100_000), "not valid JSON")


def test_sidecar_not_utf8(tmp_path):
    refused(with_sidecar(tmp_path, b"\xff\xfe{}"), "not valid JSON")


@pytest.mark.parametrize("size", ["[1, 2, 3]", '["a", "b"]', "[0, 0]", "[-6, 6]", "[6.5, 6]", "[true, true]",
                                  "5", "null", '"6x"'])
def test_bad_input_size(tmp_path, size):
    """Before: three numbers were a ValueError, [true, true] gave 1 x 1, and the others
    waited for embed to fail."""
    refused(with_sidecar(tmp_path, f'{{"input_size": {size}}}'), "input_size must be two positive integers")


@pytest.mark.parametrize("meta", [{"tinyface.input_size": "100000x100000"}, {"tinyface.input_size": "-6x6"}])
def test_input_size_in_metadata_props(meta):
    """Before: 100000 x 100000 was taken, and embed resized every face to 10^10 pixels."""
    refused(small_model(meta), "MAX_IMAGE_PIXELS|input_size must be")


def test_input_size_from_the_graph_is_held_to_the_pixel_limit(monkeypatch):
    monkeypatch.setenv("TINYFACE_MAX_IMAGE_PIXELS", "35")
    refused(small_model(), "input_size 6x6 needs 36 pixels")


@pytest.mark.parametrize("value", ['"abc"', "-5", "[1]", "0", "true"])
def test_bad_embedding_size(tmp_path, value):
    """Before: "abc" and [1] raised ValueError/TypeError, -5 was taken."""
    refused(with_sidecar(tmp_path, f'{{"embedding_size": {value}}}'), "embedding_size must be a positive integer")


@pytest.mark.parametrize("entry", ['"mean": "nan,nan,nan"', '"std": "inf,1,1"', '"std": [true, true, true]',
                                   '"std": [0, 1, 1]', '"mean": {"a": 1}', '"mean": [1, 2]'])
def test_bad_normalisation(tmp_path, entry):
    """Before: NaN means and infinite or boolean stds were taken (every face then NaN or 0)."""
    refused(with_sidecar(tmp_path, f"{{{entry}}}"), "must be three finite numbers")
