"""progress: a line rewritten in place on a terminal; elsewhere plain lines (``plain``)
or nothing."""
import io
import re

from tinyface import progress
from tinyface.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def indexing(stream, total, **options):
    return Progress("indexing", total, "files", stream=stream, **options)


def test_plain_lines_when_not_a_terminal(monkeypatch):
    monkeypatch.setattr(progress, "PLAIN_EVERY", 0.0)
    out = io.StringIO()
    bar = indexing(out, 200, plain=True)
    bar.update(50, faces=60)
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "\r" not in out.getvalue()      # close() does not repeat it
    assert lines[0].startswith("indexing  50/200 files  25%  60 faces") and "files/s  ETA" in lines[0]


def test_one_line_rewritten_on_a_terminal(monkeypatch):
    monkeypatch.setattr(progress, "TTY_EVERY", 0.0)
    out = Terminal()
    bar = indexing(out, 10)
    for i in range(1, 11):
        bar.update(i, faces=i)
    bar.close()
    text = out.getvalue()
    assert text.count("\r") == 10 and text.endswith("\n") and text.count("\n") == 1
    assert "10/10 files 100%" in text


def test_nothing_when_disabled_or_not_a_terminal_without_plain():
    for out, options in ((Terminal(), {"enabled": False}), (io.StringIO(), {})):
        with indexing(out, 10, **options) as bar:
            bar.update(5, faces=5)
            bar.advance(5)
        assert out.getvalue() == ""


def test_plain_lines_throttled_between_updates():
    out = io.StringIO()
    bar = indexing(out, 10, plain=True)             # plain lines at most every 10 s
    for i in range(10):
        bar.update(i, faces=i)
    assert out.getvalue() == ""


def test_advance_and_the_last_count_always_drawn_on_a_terminal():
    stream = Terminal()
    with Progress("embedding", 3, stream=stream) as p:
        p.advance(1)
        p.advance(2)                  # the last one is always drawn
    assert re.fullmatch(r"(\rembedding 1/3  33%  [0-9.]+/s  ETA \S+\x1b\[K)?"
                        r"\rembedding 3/3 100%  [0-9.]+/s  ETA 0m00s\x1b\[K\n", stream.getvalue())


def test_an_empty_job_draws_nothing():
    stream = Terminal()
    with Progress("embedding", 0, stream=stream):
        pass
    assert stream.getvalue() == ""
