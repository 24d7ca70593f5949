"""Who owns the memory of bound schedules, and how much of it is kept.

A ``Schedule`` (``runtime.schedule``) owns the buffers its steps were bound
to; they are freed with it.  Idle schedules wait in one process-wide
``ScheduleCache`` for the next run of the same model, input shapes, batch
size and thread count.  A run takes its schedule out of the cache (so two
threads never share one) and gives it back when it has finished; the cache
then drops the least recently used schedules until it is within both limits:

- ``max_bytes``, the buffer bytes of all idle schedules together (default
  128 MiB, or ``TINYFACE_BUFFER_CACHE_MB`` megabytes from the environment);
- ``max_schedules``, their number (default 64), which bounds the Python
  objects of many small schedules too.

A schedule larger than ``max_bytes`` on its own is freed after its run.  The
memory in use at any moment is therefore at most ``max_bytes`` plus the
schedules running at that moment (one per calling thread).  MobileFaceNet's
schedule takes about 5 MB per image of the batch it was bound for; MTCNN's
P-Net one per pyramid level, up to ~40 bytes per input pixel.

``LRUDict`` bounds the plans' smaller caches keyed by input shape (the shape
checks) by their number of entries.
"""
import ctypes
import itertools
import os
import threading
import weakref
from collections import OrderedDict

from tinyface.errors import TinyfaceError
from tinyface.kernels.tuning import BUFFER_CACHE_BYTES as DEFAULT_MAX_BYTES, \
    BUFFER_CACHE_SCHEDULES as DEFAULT_MAX_SCHEDULES, RELEASE_BYTES, MiB


class LRUDict:
    """A dict of at most ``size`` entries; the least recently read or written goes first.

    Plans are shared between threads; each OrderedDict method used here is one
    atomic step under the GIL, and a key another thread removed in between is
    simply absent, so no lock is needed (none to be left held across a fork).
    """

    def __init__(self, size):
        self.size = size
        self._items = OrderedDict()

    def get(self, key):
        value = self._items.get(key)
        if value is not None:
            try:
                self._items.move_to_end(key)
            except KeyError:
                pass
        return value

    def put(self, key, value):
        self._items[key] = value
        while len(self._items) > self.size:
            try:
                self._items.popitem(last=False)
            except KeyError:
                break

    def __len__(self):
        return len(self._items)


class ScheduleCache:
    """Idle schedules by (plan, key), bounded in bytes and in number (see the module)."""

    def __init__(self, max_bytes=DEFAULT_MAX_BYTES, max_schedules=DEFAULT_MAX_SCHEDULES):
        self.max_bytes = max_bytes
        self.max_schedules = max_schedules
        self._idle = OrderedDict()     # (plan token, key) -> [schedules], least recently used first
        self._count = 0
        self._bytes = 0
        self._lock = threading.Lock()
        self._tokens = itertools.count()

    def register(self, plan):
        """A token for ``plan``'s entries; they are dropped when the plan is collected."""
        token = next(self._tokens)
        weakref.finalize(plan, self.forget, token)
        return token

    def take(self, token, key):
        """An idle schedule for (token, key), now the caller's alone; or None."""
        with self._lock:
            shelf = self._idle.get((token, key))
            if not shelf:
                return None
            schedule = shelf.pop()
            if not shelf:
                del self._idle[(token, key)]
            self._count -= 1
            self._bytes -= schedule.nbytes
            return schedule

    def give(self, token, key, schedule):
        """Keep ``schedule`` for the next run of (token, key), then trim to the limits."""
        with self._lock:
            self._idle.setdefault((token, key), []).append(schedule)
            self._idle.move_to_end((token, key))
            self._count += 1
            self._bytes += schedule.nbytes
            dropped = self._trim()
        release(dropped)

    def forget(self, token):
        """Drop every idle schedule of one plan."""
        with self._lock:
            for entry in [entry for entry in self._idle if entry[0] == token]:
                for schedule in self._idle.pop(entry):
                    self._count -= 1
                    self._bytes -= schedule.nbytes

    def set_limits(self, max_bytes=None, max_schedules=None):
        with self._lock:
            if max_bytes is not None:
                self.max_bytes = max_bytes
            if max_schedules is not None:
                self.max_schedules = max_schedules
            dropped = self._trim()
        release(dropped)

    def stats(self):
        """(idle schedules, their buffer bytes)."""
        with self._lock:
            return self._count, self._bytes

    def _trim(self):
        """Drop least recently used schedules until within the limits; returns them."""
        dropped = []
        while self._idle and (self._bytes > self.max_bytes or self._count > self.max_schedules):
            entry, shelf = next(iter(self._idle.items()))
            schedule = shelf.pop(0)
            if not shelf:
                del self._idle[entry]
            self._count -= 1
            self._bytes -= schedule.nbytes
            dropped.append(schedule)
        return dropped

    def after_fork(self):
        """In a forked child: a fresh lock (the parent's may have been held at the fork)."""
        self._lock = threading.Lock()


def _c_malloc_trim():
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None


_malloc_trim = _c_malloc_trim()


def release(schedules):
    """Free dropped schedules, and return the C library's free pages to the system.

    Buffers under glibc's mmap threshold (which rises to 32 MB as large blocks
    are freed) live in malloc's heaps, one heap per thread that allocated; freed,
    they stay resident until reused.  ``malloc_trim(0)`` hands their pages back
    when ``RELEASE_BYTES`` or more go at once (measured: eight threads with their
    own input sizes plateau at 300-345 MB RSS instead of 450-520 MB).
    """
    freed = sum(schedule.nbytes for schedule in schedules)
    schedules.clear()
    if freed >= RELEASE_BYTES and _malloc_trim is not None:
        _malloc_trim(0)


def _limit_from_environment():
    value = os.environ.get("TINYFACE_BUFFER_CACHE_MB")
    if not value:
        return DEFAULT_MAX_BYTES
    try:
        megabytes = float(value)
    except ValueError:
        megabytes = -1
    if megabytes < 0:
        raise TinyfaceError(f"TINYFACE_BUFFER_CACHE_MB must be a number of megabytes >= 0, got {value!r}")
    return int(megabytes * MiB)


SCHEDULES = ScheduleCache(_limit_from_environment())
os.register_at_fork(after_in_child=SCHEDULES.after_fork)


def set_buffer_cache(max_bytes=None, max_schedules=None):
    """Set how much memory idle bound schedules may keep (see the module).

    ``max_bytes``: total buffer bytes (0 keeps none: every run binds anew);
    ``max_schedules``: how many.  ``None`` leaves a limit as it is.
    """
    for name, value in (("max_bytes", max_bytes), ("max_schedules", max_schedules)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise TinyfaceError(f"{name} must be an integer >= 0, got {value!r}")
    SCHEDULES.set_limits(max_bytes, max_schedules)


def buffer_cache_stats():
    """(idle schedules kept, their buffer bytes), for monitoring."""
    return SCHEDULES.stats()
