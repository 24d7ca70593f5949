"""Helpers shared by the kernel property tests (tests/test_kernels_*.py)."""
import numba
import numpy as np
import pytest
from hypothesis import settings, strategies as st


def examples(n):
    """``n`` examples under the default profile, 10x under "thorough" (see conftest)."""
    return max(1, n * settings.default.max_examples // 25)


def on_threads(n, fn):
    """Run ``fn()`` with ``n`` Numba threads, then restore the previous count."""
    old = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        return fn()
    finally:
        numba.set_num_threads(old)


needs_2_threads = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")

seeds = st.integers(0, 2**32 - 1)


def assert_same_on_1_and_2_threads(fn):
    """``fn()`` gives bit-identical results on 1 and 2 threads and leaves the count as it was."""
    before = numba.get_num_threads()
    one = on_threads(1, fn)
    two = on_threads(2, fn)
    assert numba.get_num_threads() == before
    np.testing.assert_array_equal(one, two)
