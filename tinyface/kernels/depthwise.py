"""Depthwise convolution (groups = channels) on NHWC maps.

Layout: ``x`` is N x H x W x C, ``w`` is KH x KW x C (packed at load time from
ONNX's C x 1 x KH x KW), ``out`` is N x OH x OW x C::

    out[n, i, j, c] = epilogue(sum_{ky, kx} x[n, i*sh + ky - pt, j*sw + kx - pl, c] * w[ky, kx, c])

The innermost loop runs over the contiguous channels, so it vectorises.  The
same kernel runs GDConv (a kernel as large as the map, no padding, 1 x 1 out).
Output rows are independent and run in parallel.
"""
import numba
from numba import prange

from tinyface.kernels.epilogue import activate


@numba.njit(parallel=True, cache=True)
def depthwise(x, w, sh, sw, pt, pl, bias, slope1, lo1, hi1, res, has_res, slope2, lo2, hi2, out):
    """out = epilogue(depthwise_conv(x, w)); shapes are checked by the caller."""
    N, H, W, C = x.shape
    KH, KW, _ = w.shape
    _, OH, OW, _ = out.shape
    for row in prange(N * OH):
        n = row // OH
        i = row % OH
        for j in range(OW):
            o = out[n, i, j]
            for c in range(C):
                o[c] = bias[c]
            for ky in range(KH):
                y = i * sh + ky - pt
                if y < 0 or y >= H:
                    continue
                for kx in range(KW):
                    xx = j * sw + kx - pl
                    if xx < 0 or xx >= W:
                        continue
                    px = x[n, y, xx]
                    wk = w[ky, kx]
                    for c in range(C):
                        o[c] += px[c] * wk[c]
            for c in range(C):
                v = activate(o[c], slope1[c], lo1, hi1)
                if has_res:
                    v += res[n, i, j, c]
                o[c] = activate(v, slope2[c], lo2, hi2)
