"""Depthwise convolution (groups = channels) on NHWC maps.

Layout: ``x`` is N x H x W x C, ``w`` is KH x KW x C (packed at load time from
ONNX's C x 1 x KH x KW), ``out`` is N x OH x OW x C::

    out[n, i, j, c] = epilogue(sum_{ky, kx} x[n, i*sh + ky - pt, j*sw + kx - pl, c] * w[ky, kx, c])

The innermost loop always runs over the contiguous channels, so it
vectorises, and the epilogue is applied before the single store.  3x3
windows that lie wholly inside the map take fast paths with the taps written
out: at stride 1, four neighbouring outputs at once, which share their
weight vectors and overlapping input columns (27 loads for 36 multiply-adds
instead of 72).  Border pixels and other kernel sizes (GDConv: a kernel as
large as the map, 1 x 1 output) take the general path.  Output rows are
independent and run in parallel.
"""
import numba
import numpy as np
from numba import prange

from tinyface.kernels.epilogue import activate


@numba.njit(inline="always", cache=True)
def _finish(acc, c, bias, slope1, lo1, hi1, res_px, has_res, slope2, lo2, hi2):
    v = activate(acc + bias[c], slope1[c], lo1, hi1)
    if has_res:
        v += res_px[c]
    return activate(v, slope2[c], lo2, hi2)


@numba.njit(inline="always", cache=True)
def _general_pixel(x, w, n, i, j, sh, sw, pt, pl, acc):
    """acc[c] = sum over the taps that fall inside the map (zero padding)."""
    _, H, W, C = x.shape
    KH, KW, _ = w.shape
    acc[:] = 0.0
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
                acc[c] += px[c] * wk[c]


@numba.njit(parallel=True, cache=True, fastmath={"contract"})
def depthwise(x, w, sh, sw, pt, pl, bias, slope1, lo1, hi1, res, has_res, slope2, lo2, hi2, out):
    """out = epilogue(depthwise_conv(x, w)); shapes are checked by the caller."""
    N, H, W, C = x.shape
    KH, KW, _ = w.shape
    _, OH, OW, _ = out.shape
    is3x3 = KH == 3 and KW == 3
    for row in prange(N * OH):
        n = row // OH
        i = row % OH
        y0 = i * sh - pt
        acc = np.empty((4, C), np.float32)
        j = 0
        while j < OW:
            x0 = j * sw - pl
            inside = is3x3 and y0 >= 0 and y0 + 3 <= H and x0 >= 0
            if inside and sw == 1 and j + 3 < OW and x0 + 6 <= W:
                _four_3x3(x, w, n, y0, x0, acc)
                count = 4
            elif inside and x0 + 3 <= W:
                _one_3x3(x, w, n, y0, x0, sw, acc)
                count = 1
            else:
                _general_pixel(x, w, n, i, j, sh, sw, pt, pl, acc[0])
                count = 1
            for k in range(count):
                o = out[n, i, j + k]
                r = res[n, i, j + k] if has_res else res[0, 0, 0]
                a = acc[k]
                for c in range(C):
                    o[c] = _finish(a[c], c, bias, slope1, lo1, hi1, r, has_res, slope2, lo2, hi2)
            j += count


@numba.njit(inline="always", cache=True)
def _one_3x3(x, w, n, y0, x0, sw, acc):
    """One interior output: acc[0, c] = sum of the nine taps."""
    for c in range(x.shape[3]):
        s = 0.0
        for ky in range(3):
            s += (x[n, y0 + ky, x0, c] * w[ky, 0, c] + x[n, y0 + ky, x0 + 1, c] * w[ky, 1, c]
                  + x[n, y0 + ky, x0 + 2, c] * w[ky, 2, c])
        acc[0, c] = s


@numba.njit(inline="always", cache=True)
def _four_3x3(x, w, n, y0, x0, acc):
    """Four neighbouring interior outputs at stride 1: acc[k, c] for k = 0..3.

    Each input column feeds up to three outputs and each weight four, so the
    loads are shared; x, w and acc are indexed directly (three base pointers)
    so LLVM can prove the loop safe to vectorise over c.
    """
    for c in range(x.shape[3]):
        s0 = np.float32(0.0); s1 = np.float32(0.0); s2 = np.float32(0.0); s3 = np.float32(0.0)
        for ky in range(3):
            y = y0 + ky
            u0 = w[ky, 0, c]; u1 = w[ky, 1, c]; u2 = w[ky, 2, c]
            t0 = x[n, y, x0, c]; t1 = x[n, y, x0 + 1, c]; t2 = x[n, y, x0 + 2, c]
            t3 = x[n, y, x0 + 3, c]; t4 = x[n, y, x0 + 4, c]; t5 = x[n, y, x0 + 5, c]
            s0 += t0 * u0 + t1 * u1 + t2 * u2
            s1 += t1 * u0 + t2 * u1 + t3 * u2
            s2 += t2 * u0 + t3 * u1 + t4 * u2
            s3 += t3 * u0 + t4 * u1 + t5 * u2
        acc[0, c] = s0
        acc[1, c] = s1
        acc[2, c] = s2
        acc[3, c] = s3
