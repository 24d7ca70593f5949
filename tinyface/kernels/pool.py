"""Max pooling on NHWC maps.

Layout: ``x`` is N x H x W x C, ``out`` is N x OH x OW x C::

    out[n, i, j, c] = max_{ky < KH, kx < KW} x[n, i*sh + ky - pt, j*sw + kx - pl, c]

where positions outside the map are skipped (as if padded with -inf).  The
caller computes OH and OW (including ONNX's ceil_mode rule), so every window
holds at least one real pixel.
"""
import numba
import numpy as np
from numba import prange


@numba.njit(parallel=True, cache=True)
def max_pool(x, kh, kw, sh, sw, pt, pl, out):
    N, H, W, C = x.shape
    _, OH, OW, _ = out.shape
    for row in prange(N * OH):
        n = row // OH
        i = row % OH
        for j in range(OW):
            o = out[n, i, j]
            for c in range(C):
                o[c] = -np.inf
            for ky in range(kh):
                y = i * sh + ky - pt
                if y < 0 or y >= H:
                    continue
                for kx in range(kw):
                    xx = j * sw + kx - pl
                    if xx < 0 or xx >= W:
                        continue
                    px = x[n, y, xx]
                    for c in range(C):
                        if px[c] > o[c]:
                            o[c] = px[c]
