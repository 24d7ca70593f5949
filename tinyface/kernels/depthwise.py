"""Depthwise convolution (groups = channels) on NHWC maps.

Layout: ``x`` is N x H x W x C, ``w`` is KH x KW x C (packed at load time from
ONNX's C x 1 x KH x KW), ``out`` is N x OH x OW x C::

    out[n, i, j, c] = epilogue(sum_{ky, kx} x[n, i*sh + ky - pt, j*sw + kx - pl, c] * w[ky, kx, c])

The innermost loop always runs over the contiguous channels, so it
vectorises, and the epilogue is applied before the single store.

3x3 kernels are computed one output row at a time by ``dw3x3_row`` from the
three input rows it reads (a row of zeros stands in for padding rows).  At
stride 1, four neighbouring outputs are computed at once: they share their
weight vectors and overlapping input columns (27 loads for 36 multiply-adds
instead of 72).  Other kernel sizes (GDConv: a kernel as large as the map,
1 x 1 output) take the general path.  Output rows are independent and run in
parallel.
"""
import numba
import numpy as np
from numba import prange

from tinyface.kernels.epilogue import activate

FAST = {"contract"}   # a*b+c as one FMA; no reassociation


@numba.njit(inline="always", cache=True)
def _finish(acc, c, bias, slope1, lo1, hi1, res_px, has_res, slope2, lo2, hi2):
    v = activate(acc + bias[c], slope1[c], lo1, hi1)
    if has_res:
        v += res_px[c]
    return activate(v, slope2[c], lo2, hi2)


@numba.njit(inline="always", cache=True, fastmath=FAST)
def _row_taps(r, w, ky, x0, c):
    """Channel c of kernel row ky applied to input row r at four neighbouring outputs:
    columns x0 .. x0+5 are loaded once and shared."""
    t0 = r[x0, c]; t1 = r[x0 + 1, c]; t2 = r[x0 + 2, c]
    t3 = r[x0 + 3, c]; t4 = r[x0 + 4, c]; t5 = r[x0 + 5, c]
    u0 = w[ky, 0, c]; u1 = w[ky, 1, c]; u2 = w[ky, 2, c]
    return (t0 * u0 + t1 * u1 + t2 * u2, t1 * u0 + t2 * u1 + t3 * u2,
            t2 * u0 + t3 * u1 + t4 * u2, t3 * u0 + t4 * u1 + t5 * u2)


@numba.njit(inline="always", cache=True, fastmath=FAST)
def _four(r0, r1, r2, w, x0, acc):
    """acc[k, c] for four neighbouring outputs at stride 1, columns x0 .. x0+5 inside."""
    for c in range(acc.shape[1]):
        a0, a1, a2, a3 = _row_taps(r0, w, 0, x0, c)
        b0, b1, b2, b3 = _row_taps(r1, w, 1, x0, c)
        c0, c1, c2, c3 = _row_taps(r2, w, 2, x0, c)
        acc[0, c] = a0 + b0 + c0
        acc[1, c] = a1 + b1 + c1
        acc[2, c] = a2 + b2 + c2
        acc[3, c] = a3 + b3 + c3


@numba.njit(inline="always", cache=True, fastmath=FAST)
def _one(r0, r1, r2, w, x0, acc):
    """acc[0, c] for one output whose columns x0-..x0+2 may leave the row (zero padding)."""
    W = r0.shape[0]
    for c in range(acc.shape[1]):
        acc[0, c] = 0.0
    for kx in range(3):
        xx = x0 + kx
        if xx < 0 or xx >= W:
            continue
        for c in range(acc.shape[1]):
            acc[0, c] += r0[xx, c] * w[0, kx, c] + r1[xx, c] * w[1, kx, c] + r2[xx, c] * w[2, kx, c]


@numba.njit(inline="always", cache=True, fastmath=FAST)
def dw3x3_row(r0, r1, r2, w, sw, pl, acc, orow, rrow, has_res, bias, slope1, lo1, hi1, slope2, lo2, hi2):
    """One output row of a 3x3 depthwise conv from its three input rows (W x C each).

    ``orow`` is OW x C; ``rrow`` the matching residual row (read when has_res);
    ``acc`` a 4 x C scratch.
    """
    W, C = r0.shape
    OW = orow.shape[0]
    j = 0
    while j < OW:
        x0 = j * sw - pl
        if sw == 1 and x0 >= 0 and j + 3 < OW and x0 + 6 <= W:
            _four(r0, r1, r2, w, x0, acc)
            count = 4
        else:
            _one(r0, r1, r2, w, x0, acc)
            count = 1
        for k in range(count):
            o = orow[j + k]
            r = rrow[j + k] if has_res else rrow[0]
            a = acc[k]
            for c in range(C):
                o[c] = _finish(a[c], c, bias, slope1, lo1, hi1, r, has_res, slope2, lo2, hi2)
        j += count


@numba.njit(inline="always", cache=True, fastmath=FAST)
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


@numba.njit(parallel=True, cache=True, fastmath=FAST)
def depthwise(x, w, sh, sw, pt, pl, bias, slope1, lo1, hi1, res, has_res, slope2, lo2, hi2, out):
    """out = epilogue(depthwise_conv(x, w)); shapes are checked by the caller."""
    N, H, W, C = x.shape
    KH, KW, _ = w.shape
    _, OH, OW, _ = out.shape
    zero_row = np.zeros((W, C), np.float32)
    for row in prange(N * OH):
        n = row // OH
        i = row % OH
        acc = np.empty((4, C), np.float32)
        orow = out[n, i]
        rrow = res[n, i] if has_res else res[0, 0]
        if KH == 3 and KW == 3:
            y = i * sh - pt
            r0 = x[n, y] if 0 <= y < H else zero_row
            r1 = x[n, y + 1] if 0 <= y + 1 < H else zero_row
            r2 = x[n, y + 2] if 0 <= y + 2 < H else zero_row
            dw3x3_row(r0, r1, r2, w, sw, pl, acc, orow, rrow, has_res, bias, slope1, lo1, hi1,
                      slope2, lo2, hi2)
            continue
        for j in range(OW):
            _general_pixel(x, w, n, i, j, sh, sw, pt, pl, acc[0])
            o = orow[j]
            r = rrow[j] if has_res else rrow[0]
            for c in range(C):
                o[c] = _finish(acc[0, c], c, bias, slope1, lo1, hi1, r, has_res, slope2, lo2, hi2)
