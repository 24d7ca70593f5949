"""Depthwise convolution (groups = channels) on NHWC maps.

Layout: ``x`` is N x H x W x C, ``w`` is KH x KW x C (packed at load time from
ONNX's C x 1 x KH x KW), ``out`` is N x OH x OW x C::

    out[n, i, j, c] = epilogue(sum_{ky, kx} x[n, i*sh + ky - pt, j*sw + kx - pl, c] * w[ky, kx, c])

Output rows are independent and run in parallel; each reads three input rows
(a row of zeros stands in for a padding row).

3x3 kernels on a multiple of 16 channels -- every depthwise layer of the
papers' networks -- take the vector path (16 channels whatever the vector
width, so that every target takes the same path and computes the same bits):
for each block of ``LANES`` channels (``kernels.simd``) the
nine weight vectors, the bias and the activation slopes are loaded into
registers once per output row, then the row is swept left to right with
``kernels.simd`` vectors.  At stride 1 the window slides: each output loads
one new column of three vectors and reuses the two it shares with its left
neighbour, so per vector of outputs it does 3 loads, 9 fused multiply-adds, the
epilogue in registers and 1 store.  At stride 2 nothing slides, and the
inside of the row goes pixel by pixel instead, all channels of a pixel before
the next: the input is then read in order, where sweeping one vector of channels
block across the row read it with a stride of C floats (2 KB at C = 512; the
512-channel layer went 29 -> 23 us alone), at the cost of reloading the
weights (from L1) per output.  The nine taps are summed as three row
sums (bias first) that are then added, which shortens the chain of dependent
multiply-adds; the order differs from a plain loop only by float32 rounding.
Border columns (where the window leaves the map) check each column.

Other kernels (GDConv: a kernel as large as the map, 1 x 1 output) and other
channel counts take the general path, a loop over the taps that fall inside
the map with the channels innermost.
"""
import numba
import numpy as np
from numba import prange

from tinyface.kernels.epilogue import finish, finish_vector, vector_activations
from tinyface.kernels.simd import FAST, LANES, add, fma, load, load_column, load_column_if, load_strided, mul

CHANNEL_BLOCK = 16    # the vector path takes multiples of this many channels, on every target


@numba.njit(inline="always", cache=True)
def _three_rows(src, image, y, H, row_len, zero_row):
    """Input rows y, y+1 and y+2 of an image as ``simd.load_column`` takes them: row k is the
    flat ``src[image + k * row_len:]``, or ``zero_row`` (padding) where k is outside 0 <= k < H."""
    s0, b0 = (src, image + y * row_len) if 0 <= y < H else (zero_row, 0)
    s1, b1 = (src, image + (y + 1) * row_len) if 0 <= y + 1 < H else (zero_row, 0)
    s2, b2 = (src, image + (y + 2) * row_len) if 0 <= y + 2 < H else (zero_row, 0)
    return s0, b0, s1, b1, s2, b2


@numba.njit(inline="always", cache=True)
def _window(left, middle, right, w, bias):
    """bias + the nine taps of a 3x3 window given as three columns; ``w`` is the nine
    weight vectors, row by row.  Summed as three row sums (bias in the first)."""
    r0 = fma(right[0], w[2], fma(middle[0], w[1], fma(left[0], w[0], bias)))
    r1 = fma(right[1], w[5], fma(middle[1], w[4], mul(left[1], w[3])))
    r2 = fma(right[2], w[8], fma(middle[2], w[7], mul(left[2], w[6])))
    return add(add(r0, r1), r2)


@numba.njit(inline="always", cache=True)
def _row3x3(rows, W, C, w, sw, pl, out, res, o_row, OW, has_res, bias, act1, act2):
    """One output row of a 3x3 depthwise conv, ``LANES`` channels at a time.

    ``rows`` holds the three flat input rows (see ``simd.load_column``), ``w`` the flat
    3 x 3 x C weight; the row's outputs start at ``out[o_row]`` (``res`` alike).
    ``act<k>`` from ``epilogue.vector_activation``.  Only intrinsics touch the arrays
    inside the loops (no jitted helper takes one), so the loops take no Numba references.
    """
    j_lo = min(OW, (pl + sw - 1) // sw)                  # first output whose window is inside
    j_hi = max(j_lo, min(OW, (W - 3 + pl) // sw + 1))    # first output past the inside ones
    for c0 in range(0, C, LANES):
        wv, bv = load_strided(w, c0, C, 9), load(bias, c0)
        for t in range(j_lo + OW - j_hi):                # the outputs whose window may leave the map
            j = t if t < j_lo else j_hi + t - j_lo
            x0 = j * sw - pl
            acc = _window(load_column_if(rows, x0 * C + c0, 0 <= x0 < W),
                          load_column_if(rows, (x0 + 1) * C + c0, 0 <= x0 + 1 < W),
                          load_column_if(rows, (x0 + 2) * C + c0, 0 <= x0 + 2 < W), wv, bv)
            finish_vector(acc, c0, out, o_row + j * C + c0, res, has_res, act1, act2)
        if sw == 1 and j_hi > j_lo:                      # sliding window: one new column per output
            left = load_column(rows, (j_lo - pl) * C + c0)
            middle = load_column(rows, (j_lo - pl + 1) * C + c0)
            for j in range(j_lo, j_hi):
                right = load_column(rows, (j - pl + 2) * C + c0)
                finish_vector(_window(left, middle, right, wv, bv), c0, out, o_row + j * C + c0, res, has_res,
                              act1, act2)
                left, middle = middle, right
    if sw != 1:                 # no window to slide: the inside outputs one pixel (all channels) at a time
        for j in range(j_lo, j_hi):
            p = (j * sw - pl) * C
            for c0 in range(0, C, LANES):
                acc = _window(load_column(rows, p + c0), load_column(rows, p + C + c0),
                              load_column(rows, p + 2 * C + c0), load_strided(w, c0, C, 9), load(bias, c0))
                finish_vector(acc, c0, out, o_row + j * C + c0, res, has_res, act1, act2)


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


@numba.njit(cache=True, fastmath=FAST)
def _vector_row(x_flat, w_flat, out_flat, res_flat, zero_row, H, W, C, OH, OW, sh, sw, pt, pl, has_res,
                bias, act1, act2, row):
    """Output row ``row`` (of N x OH) of the 3x3 path, on the flat arrays."""
    n = row // OH
    y = (row % OH) * sh - pt
    rows = _three_rows(x_flat, n * H * W * C, y, H, W * C, zero_row)
    _row3x3(rows, W, C, w_flat, sw, pl, out_flat, res_flat, row * OW * C, OW, has_res, bias, act1, act2)


@numba.njit(cache=True, fastmath=FAST)
def _general_row(x, w, sh, sw, pt, pl, epilogue, out, row):
    """Output row ``row`` (of N x OH) of the general path."""
    bias, slope1, lo1, hi1, res, has_res, slope2, lo2, hi2 = epilogue
    OH, OW, C = out.shape[1:]
    n, i = row // OH, row % OH
    acc = np.empty(C, np.float32)
    orow = out[n, i]
    rrow = res[n, i] if has_res else res[0, 0]
    for j in range(OW):
        _general_pixel(x, w, n, i, j, sh, sw, pt, pl, acc)
        o = orow[j]
        r = rrow[j] if has_res else rrow[0]
        for c in range(C):
            o[c] = finish(acc[c], c, bias, slope1, lo1, hi1, r, has_res, slope2, lo2, hi2)


@numba.njit(parallel=True, cache=True, fastmath=FAST)
def depthwise(x, w, sh, sw, pt, pl, epilogue, out):
    """out = epilogue(depthwise_conv(x, w)); shapes are checked by the caller.  The
    epilogue's residual is N x OH x OW x C (any 4-D array when there is none).

    Each output row is a call of a row function compiled on its own (docs/kernels.md,
    "A parallel loop's body is one call")."""
    bias, slope1, lo1, hi1, res, has_res, slope2, lo2, hi2 = epilogue
    N, H, W, C = x.shape
    KH, KW, _ = w.shape
    _, OH, OW, _ = out.shape
    vector = KH == 3 and KW == 3 and C % CHANNEL_BLOCK == 0
    x_flat, w_flat, out_flat, res_flat = x.reshape(-1), w.reshape(-1), out.reshape(-1), res.reshape(-1)
    zero_row = np.empty(W * C, np.float32)
    for k in range(W * C):      # not np.zeros: that would be one more parallel loop to compile
        zero_row[k] = 0.0
    act1, act2 = vector_activations(epilogue)
    for row in prange(N * OH):
        if vector:
            _vector_row(x_flat, w_flat, out_flat, res_flat, zero_row, H, W, C, OH, OW, sh, sw, pt, pl, has_res,
                        bias, act1, act2, np.int64(row))
        else:
            _general_row(x, w, sh, sw, pt, pl, epilogue, out, np.int64(row))
