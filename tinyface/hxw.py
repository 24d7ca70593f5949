"""Sizes written as text, ``HEIGHTxWIDTH``: the one parser for every command-line
option, metadata value and tool that takes one."""
import re

_HXW = re.compile(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*")


def parse_hxw(text):
    """``"112x96"`` -> ``(112, 96)``; None when ``text`` is not two whole numbers joined by
    x (spaces around them allowed).  Whether the numbers are positive or fit a model is
    for the caller to say."""
    m = _HXW.fullmatch(text)
    return (int(m.group(1)), int(m.group(2))) if m else None
