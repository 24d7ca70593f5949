"""A progress line on stderr for long jobs.

On a terminal, one line rewritten in place (at most 10 times a second, and
always at the end):

    indexing  1234/10000 files  12%  1180 faces  35.2 files/s  ETA 4m09s

Anywhere else (a log file, CI) nothing, or with ``plain=True`` the same text
as a plain line at most every ``PLAIN_EVERY`` seconds and once at the end.
Not tqdm: these few lines give the two behaviours the command line needs
without a new dependency.
"""
import sys
import time

PLAIN_EVERY = 10.0      # seconds between plain lines when stderr is not a terminal
TTY_EVERY = 0.1


class Progress:
    """``update(done, **counts)`` or ``advance(n)`` as work advances, ``close()`` at the end
    (or ``with Progress(...) as p``).  ``counts`` are shown after the share, e.g.
    ``faces=1180`` as "1180 faces"; ``unit`` names what ``total`` counts; ``enabled=False``
    prints nothing."""

    def __init__(self, label, total, unit="", stream=None, enabled=True, plain=False):
        self.label, self.total, self.unit = label, total, unit
        self.stream = sys.stderr if stream is None else stream
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.enabled = enabled and (self.tty or plain)
        self.start = self.last = time.monotonic()
        self.done, self.counts = 0, {}
        self.shown = None                # (done, counts) of the last line written

    def update(self, done, **counts):
        self.done, self.counts = done, counts
        now = time.monotonic()
        due = now - self.last >= (TTY_EVERY if self.tty else PLAIN_EVERY)
        if self.enabled and (due or (self.tty and done >= self.total)):
            self.last = now
            self._write(now)

    def advance(self, n=1):
        self.update(self.done + n, **self.counts)

    def close(self):
        if self.enabled and self.shown != (self.done, self.counts) and (self.done or self.total):
            self._write(time.monotonic())
        if self.enabled and self.tty and self.shown is not None:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _write(self, now):
        self.shown = (self.done, dict(self.counts))
        rate = self.done / max(now - self.start, 1e-9)
        unit = f" {self.unit}" if self.unit else ""
        share = f" {100 * self.done // self.total:3d}%" if self.total else ""
        counts = "".join(f"  {value} {name}" for name, value in self.counts.items())
        left = (self.total - self.done) / rate if rate > 0 and self.total > self.done else 0
        text = (f"{self.label} {self.done:>{len(str(self.total))}}/{self.total}{unit}{share}{counts}  "
                f"{rate:.1f}{unit}/s  ETA {_duration(left)}")
        self.stream.write(f"\r{text}\033[K" if self.tty else text + "\n")
        self.stream.flush()


def _duration(seconds) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"
