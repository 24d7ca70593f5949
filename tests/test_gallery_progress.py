"""gallery.progress: a line rewritten in place on a terminal, plain lines elsewhere."""
import io

from tinyface.gallery import progress
from tinyface.gallery.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_plain_lines_when_not_a_terminal(monkeypatch):
    monkeypatch.setattr(progress, "PLAIN_EVERY", 0.0)
    out = io.StringIO()
    bar = Progress(200, stream=out)
    bar.update(50, 60)
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "\r" not in out.getvalue()      # close() does not repeat it
    assert lines[0].startswith("indexing  50/200 files  25%  60 faces") and "ETA" in lines[0]


def test_one_line_rewritten_on_a_terminal(monkeypatch):
    monkeypatch.setattr(progress, "TTY_EVERY", 0.0)
    out = Terminal()
    bar = Progress(10, stream=out)
    for i in range(1, 11):
        bar.update(i, i)
    bar.close()
    text = out.getvalue()
    assert text.count("\r") == 10 and text.endswith("\n") and text.count("\n") == 1
    assert "10/10 files 100%" in text


def test_nothing_when_disabled():
    out = Terminal()
    bar = Progress(10, stream=out, enabled=False)
    bar.update(5, 5)
    bar.close()
    assert out.getvalue() == ""


def test_throttled_between_updates():
    out = io.StringIO()
    bar = Progress(10, stream=out)                  # plain lines at most every 10 s
    for i in range(10):
        bar.update(i, i)
    assert out.getvalue() == ""
