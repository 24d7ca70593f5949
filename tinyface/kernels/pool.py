"""Max pooling on NHWC maps.

Layout: ``x`` is N x H x W x C, ``out`` is N x OH x OW x C, both float32 and
C-contiguous::

    out[n, i, j, c] = max_{ky < KH, kx < KW} x[n, i*sh + ky - pt, j*sw + kx - pl, c]

where positions outside the map are skipped (as if padded with -inf): the loops
run over the part of each window inside the map only, so a huge kernel over a
small map costs no more than the map.  The caller computes OH and OW
(including ONNX's ceil_mode rule) and keeps the pads smaller than the kernel,
so every window holds at least one real pixel.

The maximum runs over the window's pixels in row-major order from -inf, each
pixel replacing it where it is greater (``simd.maximum``: a NaN never wins),
on vectors of channels: a pixel's C channels are contiguous, so a window is
ceil(C / LANES) vectors per pixel.  The last vector of a pixel reads on into
the next pixel's channels where the array goes on (``load``), or only its own
(``load_part``) at the array's end; only the pixel's own channels are stored.
"""
import numba
import numpy as np
from numba import prange

from tinyface.kernels.simd import LANES, load, load_part, maximum, splat, store_part


@numba.njit(parallel=True, cache=True)
def max_pool(x, kh, kw, sh, sw, pt, pl, out):
    N, H, W, C = x.shape
    _, OH, OW, _ = out.shape
    flat, out_flat = x.reshape(-1), out.reshape(-1)
    for row in prange(N * OH):
        n = row // OH
        i = row % OH
        y0 = i * sh - pt
        for j in range(OW):
            x0 = j * sw - pl
            o = (row * OW + j) * C
            for c0 in range(0, C, LANES):
                m = splat(-np.inf)
                for y in range(max(y0, 0), min(y0 + kh, H)):      # the window's rows inside the map
                    for xx in range(max(x0, 0), min(x0 + kw, W)):
                        p = ((n * H + y) * W + xx) * C + c0
                        if p + LANES <= flat.size:
                            m = maximum(m, load(flat, p))
                        else:
                            m = maximum(m, load_part(flat, p, C - c0))
                store_part(out_flat, o + c0, m, C - c0)
