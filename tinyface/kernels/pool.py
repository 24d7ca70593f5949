"""Max pooling on NHWC maps.

Layout: ``x`` is N x H x W x C, ``out`` is N x OH x OW x C::

    out[n, i, j, c] = max_{ky < KH, kx < KW} x[n, i*sh + ky - pt, j*sw + kx - pl, c]

where positions outside the map are skipped (as if padded with -inf): the loops
run over the part of each window inside the map only, so a huge kernel over a
small map costs no more than the map.  The caller computes OH and OW
(including ONNX's ceil_mode rule) and keeps the pads smaller than the kernel,
so every window holds at least one real pixel.
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
            y0 = i * sh - pt
            x0 = j * sw - pl
            for y in range(max(y0, 0), min(y0 + kh, H)):      # the window's rows inside the map
                for xx in range(max(x0, 0), min(x0 + kw, W)):
                    px = x[n, y, xx]
                    for c in range(C):
                        if px[c] > o[c]:
                            o[c] = px[c]
