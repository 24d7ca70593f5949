"""hxw: the one parser of sizes written as HEIGHTxWIDTH."""
import pytest

from tinyface.hxw import parse_hxw


@pytest.mark.parametrize("text, size", [("112x96", (112, 96)), (" 112 X 112 ", (112, 112)),
                                        ("96×96", (96, 96)), ("0x5", (0, 5))])
def test_two_whole_numbers_joined_by_x(text, size):
    assert parse_hxw(text) == size


@pytest.mark.parametrize("text", ["112", "112x", "x96", "112x96x3", "-1x5", "1.5x2", "abc", ""])
def test_anything_else_is_none(text):
    assert parse_hxw(text) is None
