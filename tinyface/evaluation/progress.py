"""A one-line progress counter on stderr for long jobs.

Redrawn in place at most five times a second; silent when stderr is not a
terminal (a log file or a pipe gets nothing), so scripts stay clean.
"""
import sys
import time


class Progress:
    """``with Progress("embedding", total) as p: ... p.advance(n)`` -> ``embedding 120/4992``."""

    def __init__(self, label: str, total: int, stream=None):
        self.label, self.total, self.done = label, total, 0
        self.stream = sys.stderr if stream is None else stream
        self.active = total > 0 and self.stream.isatty()
        self.started = self.shown = time.monotonic()

    def advance(self, n: int = 1):
        self.done += n
        now = time.monotonic()
        if self.active and (now - self.shown >= 0.2 or self.done >= self.total):
            self.shown = now
            rate = self.done / max(now - self.started, 1e-9)
            self.stream.write(f"\r{self.label} {self.done}/{self.total} ({rate:.1f}/s)")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.active and self.done:
            self.stream.write("\n")
            self.stream.flush()
