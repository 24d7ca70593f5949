"""gallery.fingerprint: the same model gives the same fingerprint however it is given;
any change of weights or preprocessing gives another."""
import json
import shutil

import pytest

import tinyface
from gallery_testing import OPSET10, tiny_model
from tinyface.errors import TinyfaceError
from tinyface.gallery.fingerprint import model_card
from tinyface.paths import default_model_path


def test_the_bundled_model_by_path_none_or_loaded():
    by_path, by_none = model_card(default_model_path()), model_card(None)
    loaded = model_card(tinyface.load())
    assert by_path == by_none
    assert loaded.fingerprint == by_path.fingerprint and loaded.dim == 128
    assert loaded.input_size == (112, 112)
    assert model_card(OPSET10).fingerprint != by_path.fingerprint


def test_weights_and_preprocessing_change_the_fingerprint(tmp_path):
    a = model_card(tiny_model(tmp_path / "a.onnx", seed=0))
    assert model_card(tiny_model(tmp_path / "b.onnx", seed=0)).fingerprint == a.fingerprint
    assert model_card(tiny_model(tmp_path / "c.onnx", seed=1)).fingerprint != a.fingerprint
    (tmp_path / "d").mkdir()
    shutil.copy(tmp_path / "a.onnx", tmp_path / "d" / "a.onnx")
    (tmp_path / "d" / "a.json").write_text(json.dumps({"mean": [0, 0, 0], "std": [255, 255, 255]}))
    assert model_card(tmp_path / "d" / "a.onnx").fingerprint != a.fingerprint


def test_anything_else_is_refused():
    with pytest.raises(TinyfaceError, match="expected a tinyface Model"):
        model_card(42)
