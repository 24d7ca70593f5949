"""The progress counter: drawn on a terminal, silent otherwise."""
import io
import re

from tinyface.evaluation.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_drawn_on_a_terminal():
    stream = Terminal()
    with Progress("embedding", 3, stream) as p:
        p.advance(1)
        p.advance(2)                  # the last one is always drawn
    assert re.fullmatch(r"(\rembedding 1/3 \([0-9.]+/s\))?\rembedding 3/3 \([0-9.]+/s\)\n",
                        stream.getvalue())


def test_silent_when_not_a_terminal():
    stream = io.StringIO()
    with Progress("embedding", 3, stream) as p:
        p.advance(3)
    assert stream.getvalue() == ""
