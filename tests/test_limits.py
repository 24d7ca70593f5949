"""tinyface.limits: defaults, the environment variables, set_limits, and the message."""
import pytest

import tinyface
from tinyface.limits import DEFAULTS, check_limit, current_limits, get_limit, set_limits


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch):
    for name in DEFAULTS:
        monkeypatch.delenv(f"TINYFACE_{name}", raising=False)
    yield
    set_limits(**{name: None for name in DEFAULTS})


def test_defaults():
    assert get_limit("MAX_TENSOR_ELEMENTS") == 2**28
    assert get_limit("MAX_RUN_BYTES") == 2**31
    assert get_limit("MAX_IMAGE_PIXELS") == 2**26
    assert current_limits() == (2**28, 2**31, 2**26)


def test_environment_then_set_limits_then_reset(monkeypatch):
    monkeypatch.setenv("TINYFACE_MAX_IMAGE_PIXELS", "1000")
    assert get_limit("MAX_IMAGE_PIXELS") == 1000
    set_limits(MAX_IMAGE_PIXELS=50)
    assert get_limit("MAX_IMAGE_PIXELS") == 50             # set_limits wins over the environment
    set_limits(MAX_IMAGE_PIXELS=None)
    assert get_limit("MAX_IMAGE_PIXELS") == 1000


@pytest.mark.parametrize("value", ["", "-5", "0", "1e9", "lots", "2.5"])
def test_bad_environment_value_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("TINYFACE_MAX_RUN_BYTES", value)
    with pytest.raises(tinyface.TinyfaceError, match="TINYFACE_MAX_RUN_BYTES must be a positive integer"):
        get_limit("MAX_RUN_BYTES")


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "x"])
def test_bad_set_limits_value(value):
    with pytest.raises(tinyface.TinyfaceError, match="must be a positive integer"):
        set_limits(MAX_RUN_BYTES=value)


def test_unknown_limit():
    with pytest.raises(tinyface.TinyfaceError, match="unknown limit"):
        set_limits(MAX_EVERYTHING=1)


def test_check_limit_message_names_the_limit_and_the_variable():
    check_limit("MAX_TENSOR_ELEMENTS", 2**28, tinyface.ModelError, "w")      # at the limit: fine
    with pytest.raises(tinyface.ModelError) as info:
        check_limit("MAX_TENSOR_ELEMENTS", 2**28 + 1, tinyface.ModelError, "m.onnx: tensor 'w' of shape [..]")
    assert str(info.value) == ("m.onnx: tensor 'w' of shape [..] needs 268,435,457 elements, more than "
                               "MAX_TENSOR_ELEMENTS = 268,435,456 (set TINYFACE_MAX_TENSOR_ELEMENTS to allow more)")
