"""Softmax over the last axis of an R x C array.

    out[r, c] = exp(x[r, c] - max_c x[r]) / sum_c exp(x[r, c] - max_c x[r])

Subtracting the row maximum keeps exp() from overflowing; the sum is taken
in float64 so long rows lose no precision.
"""
import numba
import numpy as np
from numba import prange


@numba.njit(parallel=True, cache=True)
def softmax_rows(x, out):
    R, C = x.shape
    for r in prange(R):
        m = x[r, 0]
        for c in range(1, C):
            if x[r, c] > m:
                m = x[r, c]
        total = 0.0
        for c in range(C):
            e = np.exp(x[r, c] - m)
            out[r, c] = e
            total += e
        inv = 1.0 / total
        for c in range(C):
            out[r, c] = np.float32(out[r, c] * inv)
