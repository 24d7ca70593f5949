"""Exact area resampling of regions of an image (MTCNN's pyramid levels and crops).

Layout: ``image`` is H x W x C uint8, ``regions`` is N x 4 float64
(left, top, right, bottom) in continuous pixel coordinates, where pixel k
covers [k, k+1); ``out`` is N x C x rows x cols, float32 or float64 (planes,
as the nets take their input).  The mean m of output pixel (r, c) of region n
over its footprint

    [left + c dx, left + (c+1) dx) x [top + r dy, top + (r+1) dy),
    dx = (right - left) / cols,  dy = (bottom - top) / rows,

the image being zero outside [0, W) x [0, H), is stored as
``out[n, ch, r, c] = (m - offset) * factor`` (computed in float64, then
rounded to ``out``'s type once): offset 0 and factor 1 store the mean itself,
127.5 and 1/128 MTCNN's normalised input.  A footprint covers source pixel
(i, j) by ov(y0, y1, i) ov(x0, x1, j), with ov(a, b, k) = max(0, min(b, k+1) -
max(a, k)), so the mean is separable::

    m[n, r, c] = sum_i ov_y(r, i) sum_j ov_x(c, j) image[i, j] / (dy dx)

and is computed one output row at a time: the weighted sum of its source
rows (whole rows, contiguous; rows it covers whole are added in int32,
exactly, the two it cuts in float32), then sums along that row (float64; for
3 channels the three sums run side by side, each still in its own order).
Against a float64 evaluation the error is below 1e-4 grey levels.  A footprint dx wide meets at most
ceil(dx) + 1 source columns.  The caller checks shapes and that every region
has positive width and height; Numba does not bounds-check.
"""
import math

import numba
import numpy as np


@numba.njit(cache=True)
def _taps(start, step, count, limit):
    """Source pixels and weights of ``count`` footprints [start + k step, start + (k+1) step).

    Returns ``first`` (count,) and ``weights`` (count x K): footprint k meets
    pixels first[k] + t, t < K, with weight weights[k, t] (0 for pixels
    outside [0, limit))."""
    taps = int(math.ceil(step)) + 1
    first = np.empty(count, np.int64)
    weights = np.zeros((count, taps))
    for k in range(count):
        a = start + k * step
        b = a + step
        f = int(math.floor(a))
        first[k] = f
        for t in range(taps):
            p = f + t
            if 0 <= p < limit:
                weights[k, t] = max(0.0, min(b, p + 1.0) - max(a, float(p)))
    return first, weights


@numba.njit(cache=True)
def area_resample(image, regions, offset, factor, out):
    H, W, C = image.shape
    N, _, rows, cols = out.shape
    flat = image.reshape(H, W * C)
    for n in range(N):
        left, top, right, bottom = regions[n, 0], regions[n, 1], regions[n, 2], regions[n, 3]
        dx = (right - left) / cols
        dy = (bottom - top) / rows
        fx, wx = _taps(left, dx, cols, W)
        fy, wy = _taps(top, dy, rows, H)
        j0 = min(W, max(0, fx[0]))                       # the source columns j0..j1-1 it meets
        j1 = max(j0, min(W, fx[cols - 1] + wx.shape[1]))
        lo, hi = j0 * C, j1 * C
        column = np.empty(hi - lo, np.float32)
        whole = np.empty(hi - lo, np.int32)
        scale = 1.0 / (dx * dy)
        for r in range(rows):                            # pass 1: output row r's source rows, summed:
            column[:] = 0.0                              # the rows it cuts weighted in floats,
            whole[:] = 0                                 # the rows it covers whole in integers
            for t in range(wy.shape[1]):
                i = fy[r] + t
                if 0 <= i < H:
                    w = wy[r, t]
                    src = flat[i, lo:hi]
                    if w == 1.0:
                        for k in range(hi - lo):
                            whole[k] += src[k]
                    else:
                        wf = np.float32(w)
                        for k in range(hi - lo):
                            column[k] += wf * src[k]
            for k in range(hi - lo):
                column[k] += whole[k]
            if C == 3:                                   # pass 2: along that row
                for c in range(cols):
                    t0 = max(0, j0 - fx[c])
                    t1 = min(wx.shape[1], j1 - fx[c])
                    a0 = a1 = a2 = 0.0
                    for t in range(t0, t1):
                        w = wx[c, t]
                        k = (fx[c] + t - j0) * 3
                        a0 += w * column[k]
                        a1 += w * column[k + 1]
                        a2 += w * column[k + 2]
                    out[n, 0, r, c] = (a0 * scale - offset) * factor
                    out[n, 1, r, c] = (a1 * scale - offset) * factor
                    out[n, 2, r, c] = (a2 * scale - offset) * factor
            else:
                for c in range(cols):
                    t0 = max(0, j0 - fx[c])
                    t1 = min(wx.shape[1], j1 - fx[c])
                    for ch in range(C):
                        acc = 0.0
                        for t in range(t0, t1):
                            acc += wx[c, t] * column[(fx[c] + t - j0) * C + ch]
                        out[n, ch, r, c] = (acc * scale - offset) * factor
