"""runtime.metadata: what a model says about itself (sidecar JSON, metadata_props, graph),
every bad value a one-line ModelError naming the file -- the cases the fuzzer found."""
import numpy as np
import onnx
import pytest

import tinyface
from onnx_builders import GraphBuilder

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
