"""The thread setting for every parallel kernel.

Kernels parallelise with Numba's ``prange``; this module is the one place
that sets how many threads they use.  Default: ``TINYFACE_NUM_THREADS`` from
the environment if set, else Numba's default (all cores).
"""
import os

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
