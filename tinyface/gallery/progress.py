"""A progress line on stderr for long jobs.

On a terminal, one line rewritten in place (at most 10 times a second):

    indexing  1234/10000 files  12%  1180 faces  35.2 files/s  ETA 4m09s

Anywhere else (a log file, CI), the same text as a plain line at most every
``PLAIN_EVERY`` seconds, and once at the end.  Not tqdm: these few lines give
the two behaviours the command line needs without a new dependency.
"""
import sys
import time

PLAIN_EVERY = 10.0      # seconds between plain lines when stderr is not a terminal
TTY_EVERY = 0.1


class Progress:
    """``update(done, faces)`` as work advances, ``close()`` at the end; ``enabled=False``
    prints nothing."""

    def __init__(self, total, label="indexing", stream=None, enabled=True):
        self.total, self.label = total, label
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = self.last = time.monotonic()
        self.done = self.faces = 0
        self.shown = None                # (done, faces) of the last line written

    def update(self, done, faces):
        self.done, self.faces = done, faces
        now = time.monotonic()
        if self.enabled and now - self.last >= (TTY_EVERY if self.tty else PLAIN_EVERY):
            self.last = now
            self._write(now)

    def close(self):
        if self.enabled and self.shown != (self.done, self.faces):
            self._write(time.monotonic())
        if self.enabled:
            if self.tty:
                self.stream.write("\n")
                self.stream.flush()

    def _write(self, now):
        self.shown = (self.done, self.faces)
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        share = f" {100 * self.done // self.total:3d}%" if self.total else ""
        left = (self.total - self.done) / rate if rate > 0 and self.total > self.done else 0
        text = (f"{self.label} {self.done:>{len(str(self.total))}}/{self.total} files{share}  "
                f"{self.faces} faces  {rate:.1f} files/s  ETA {_duration(left)}")
        self.stream.write(f"\r{text}\033[K" if self.tty else text + "\n")
        self.stream.flush()


def _duration(seconds) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"
