"""The thread setting for every parallel kernel, and who may launch them.

Kernels parallelise with Numba's ``prange``; this module is the one place
that sets how many threads they use.  Default: ``TINYFACE_NUM_THREADS`` from
the environment if set (read when this module is imported, which loading any
model does), else Numba's default (all cores).  The setting is per calling
thread, as Numba's is.

Numba runs parallel kernels on one of three threading layers, whichever it
finds first: TBB, OpenMP, or its own ``workqueue``.  The first two accept
launches from several Python threads at once; ``workqueue`` does not (it
aborts the process: "Concurrent access has been detected"), and it is what
Numba falls back to on a machine without libgomp or TBB.  ``launches()``
therefore serialises kernel launches until the layer is known (it is chosen at
the first launch), and for good when it is ``workqueue``.
"""
import os
import threading
from contextlib import nullcontext

import numba

from tinyface.errors import TinyfaceError


def set_num_threads(n):
    """Use ``n`` threads (1 .. number of cores) in every kernel from now on."""
    limit = numba.config.NUMBA_NUM_THREADS
    if not isinstance(n, int) or not 1 <= n <= limit:
        raise TinyfaceError(f"number of threads must be an integer from 1 to {limit}, got {n!r}")
    numba.set_num_threads(n)


def get_num_threads():
    return numba.get_num_threads()


def apply_environment():
    value = os.environ.get("TINYFACE_NUM_THREADS")
    if value:
        try:
            set_num_threads(int(value))
        except ValueError:
            raise TinyfaceError(f"TINYFACE_NUM_THREADS must be an integer, got {value!r}") from None


THREAD_SAFE_LAYERS = ("tbb", "omp")
_launch_lock = threading.Lock()
_layer_is_thread_safe = None       # unknown until the first launch


_NO_LOCK = nullcontext()


def launches():
    """The context to hold around kernel launches: the launch lock, unless the layer is thread-safe.

    It is the lock itself (or a context doing nothing), not a Python context manager
    wrapped around it: ``with`` takes and gives back a lock in C, so an interrupt
    (Ctrl-C) arriving at any instant cannot leave it held.  A generator-based wrapper
    could be interrupted after taking the lock and before its ``with`` began; the
    lock then stayed held as long as the traceback lived, and the next run waited
    for ever (the likely cause of one hang of the keyboard-interrupt test on a loaded
    machine).
    """
    global _layer_is_thread_safe
    if _layer_is_thread_safe is None:
        try:
            _layer_is_thread_safe = numba.threading_layer() in THREAD_SAFE_LAYERS
        except ValueError:          # no parallel kernel has run yet
            return _launch_lock
    return _NO_LOCK if _layer_is_thread_safe else _launch_lock


def _after_fork_in_child():
    global _launch_lock
    _launch_lock = threading.Lock()     # the parent's may have been held at the fork


os.register_at_fork(after_in_child=_after_fork_in_child)
apply_environment()
