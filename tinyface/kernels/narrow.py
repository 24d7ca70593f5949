"""Dense convolution (groups = 1) in tiles of pixels, for few or odd output channels (MTCNN's 10-128).

Layout: ``x`` is N x H x W x Ci (NHWC), ``out`` N x OH x OW x Co, and ``w`` is
K x Cp: the rows of ``kernels.conv``'s packing (ky, kx, ci) with Co rounded up to
whole tiles of columns, Cp = ``padded(Co)``, by zero columns (``pad_columns``, at load time).  The epilogue is one tuple
(bias, slope1, lo1, hi1, res, has_res, slope2, lo2, hi2) whose bias and slopes
have Cp entries (``pad_epilogue``); ``res`` is N x OH x OW x Co.  As in
``kernels.conv``::

    out[n, i, j, o] = epilogue(sum_{ky, kx, c} x[n, i*sh + ky - pt, j*sw + kx - pl, c]
                                                * w[(ky*KW + kx)*Ci + c, o])

Why a kernel of its own.  The GEMM's register tiles get their independent
accumulators from four pixels times up to three vectors of channels; with ten
output channels that is one vector (on AVX2: 4 accumulators, while the FMA's
latency of 4 cycles on 2 pipes needs 8 in flight) or none (columns mod 16 go to
the GEMM's scalar leftover path).  Here more accumulators come from pixels: a
tile is ``PIXELS`` = 5 consecutive output pixels of one row times ``VECTORS``
vectors of channels (AVX2: 5 x 2, 10 accumulators).  Per reduction term it loads
``VECTORS`` vectors of ``w`` and broadcasts one input value per pixel, read
straight from a zero-padded copy of ``x`` (``conv._padded``): term k of pixel r
is xp[src + r*sw*Ci + offsets[k]], one table of the KH*KW*Ci window offsets per
call, so the tile is one flat loop over the reduction.

The cost of the padding: a tile computes whole tiles of columns (16 on AVX2 and
AVX-512, 8 on SSE), so Co = 10 does 16 columns of work (62 % useful), 28 does 32
(88 %); 16, 32, 48, 64 and 128 do no extra work.  Only the real columns are stored
(``simd.store_part``).  A row's last tile takes ``PIXELS`` pixels too: those
past the row's end read the next row's windows (the copy has spare rows of
zeros below each image, so they stay inside it), are computed and not stored.

Each output is one chain of fused multiply-adds over (ky, kx, ci) in order,
from zero, as the GEMM's and the direct conv's tiles sum it: where those take
every output (Co a multiple of 16, either path of ``kernels.conv``),
the results are the same bits.  Output rows run in parallel.
"""
import numba
import numpy as np
from numba import prange

from tinyface.kernels.conv import _padded
from tinyface.kernels.epilogue import activate_vector, block_activation, vector_activation
from tinyface.kernels.simd import (LANES, REGISTERS, add, fma_run, load, load_part, load_run, splat, store_part,
                                   zeros_run)
from tinyface.kernels.tuning import NARROW_PIXELS, NARROW_WIDEST

WIDEST = NARROW_WIDEST    # runtime.binders sends dense convs with at most this many output channels here
SAME_AS_GEMM = 16         # with a multiple of this many output channels, the GEMM's tiles give the same bits
PIXELS = NARROW_PIXELS    # output pixels per tile (kernels.tuning says why 5)
# vectors of channels per tile: at most 16 columns (so Co pads at most to a multiple of 16), and
# its PIXELS x VECTORS accumulators, a run of w and a broadcast fit in the registers (AVX2:
# 5 x 2, 13 of 16 registers; SSE and NEON: 5 x 2, 8 columns; AVX-512: 5 x 1, untested)
VECTORS = max(1, min((REGISTERS - 2) // (PIXELS + 1), 16 // LANES))
U2, U3, U4 = (np.uint64(k) for k in range(2, PIXELS))    # unsigned multiples of the pixel step


def padded(channels):
    """``channels`` rounded up to whole tiles (``VECTORS`` vectors)."""
    return -(-channels // (VECTORS * LANES)) * VECTORS * LANES


def pad_columns(w, fill=0.0):
    """``w`` (float32, channels last) with its last axis filled up to ``padded`` of its length."""
    channels = w.shape[-1]
    out = np.full(w.shape[:-1] + (padded(channels),), fill, np.float32)
    out[..., :channels] = w
    return out


def pad_epilogue(epilogue):
    """The epilogue tuple with its bias (zeros) and slopes (ones) padded as ``pad_columns`` pads ``w``."""
    bias, slope1, lo1, hi1, res, has_res, slope2, lo2, hi2 = epilogue
    return (pad_columns(bias), pad_columns(slope1, 1.0), lo1, hi1, res, has_res,
            pad_columns(slope2, 1.0), lo2, hi2)


@numba.njit(inline="always", cache=True)
def _finish_pixel(c, n0, out, o, CO, res, has_res, bias, act1, act2):
    """Epilogue of one pixel's run ``c`` (channels n0..) and store of its real columns (below
    CO) at flat offset ``o`` of ``out`` (``res`` alike)."""
    for v in range(len(c)):
        n = n0 + v * LANES
        a1, a2 = block_activation(act1, n), block_activation(act2, n)
        y = activate_vector(add(c[v], load(bias, n)), a1)
        if has_res:
            y = add(y, load_part(res, o + v * LANES, CO - n))
        store_part(out, o + v * LANES, activate_vector(y, a2), CO - n)


@numba.njit(inline="always", cache=True)
def _pixel_tile(xp, src, step, offsets, w, CP, n0, out, o, CO, count, res, has_res, bias, act1, act2):
    """``PIXELS`` output pixels x ``VECTORS`` vectors of channels from n0; the first ``count``
    pixels are stored, pixel r at flat offset o + r*CO.  Term k of pixel r's window is
    xp[src + r*step + offsets[k]] (all unsigned: no test for Python's negative indexing per
    load); ``w`` is flat, rows of CP."""
    c0 = c1 = c2 = c3 = c4 = zeros_run(VECTORS)
    p = numba.uint64(n0)
    for k in range(numba.uint64(offsets.size)):
        q = src + offsets[k]
        wk = load_run(w, p, VECTORS)
        c0 = fma_run(splat(xp[q]), wk, c0)
        c1 = fma_run(splat(xp[q + step]), wk, c1)
        c2 = fma_run(splat(xp[q + U2 * step]), wk, c2)
        c3 = fma_run(splat(xp[q + U3 * step]), wk, c3)
        c4 = fma_run(splat(xp[q + U4 * step]), wk, c4)
        p += numba.uint64(CP)
    _finish_pixel(c0, n0, out, o, CO, res, has_res, bias, act1, act2)
    if count > 1:
        _finish_pixel(c1, n0, out, o + CO, CO, res, has_res, bias, act1, act2)
    if count > 2:
        _finish_pixel(c2, n0, out, o + 2 * CO, CO, res, has_res, bias, act1, act2)
    if count > 3:
        _finish_pixel(c3, n0, out, o + 3 * CO, CO, res, has_res, bias, act1, act2)
    if count > 4:
        _finish_pixel(c4, n0, out, o + 4 * CO, CO, res, has_res, bias, act1, act2)


@numba.njit(cache=True, fastmath={"contract"})
def _row(xp, Hp, Wp, offsets, w, CP, out, CO, res, has_res, bias, act1, act2, OH, OW, C, sh, sw, row):
    """Output row ``row`` (of N x OH) of ``narrow_conv``, tile by tile, on the flat arrays: the
    kernel's loop body, compiled on its own (docs/kernels.md, "A parallel loop's body is one call")."""
    n = row // OH
    i = row % OH
    for j0 in range(0, OW, PIXELS):
        src = numba.uint64(((n * Hp + i * sh) * Wp + j0 * sw) * C)
        o = (row * OW + j0) * CO
        for n0 in range(0, CP, VECTORS * LANES):
            _pixel_tile(xp, src, numba.uint64(sw * C), offsets, w, CP, n0, out, o + n0, CO,
                        min(PIXELS, OW - j0), res, has_res, bias, act1, act2)


@numba.njit(parallel=True, cache=True, fastmath={"contract"})
def narrow_conv(x, w, kh, kw, sh, sw, pt, pl, epilogue, out):
    """out = epilogue(conv(x, w)) in tiles of ``PIXELS`` pixels x ``VECTORS`` vectors (see the
    module doc); shapes are checked by the caller."""
    bias, slope1, lo1, hi1, res, has_res, slope2, lo2, hi2 = epilogue
    N, OH, OW, CO = out.shape
    C = x.shape[3]
    CP = w.shape[1]
    act1, act2 = vector_activation(slope1, lo1, hi1), vector_activation(slope2, lo2, hi2)
    # spare rows of zeros below each image, enough for PIXELS windows past a row's end
    spare = -(-PIXELS * sw // (sh * ((OW - 1) * sw + kw)))
    xp, Hp, Wp = _padded(x, OH + spare, OW, kh, kw, sh, sw, pt, pl)
    offsets = np.empty(kh * kw * C, np.uint64)      # term (ky, kx, c) of a window, from its corner
    for ky in range(kh):
        for t in range(kw * C):
            offsets[ky * kw * C + t] = ky * Wp * C + t
    w_flat, out_flat, res_flat = w.reshape(-1), out.reshape(-1), res.reshape(-1)
    for row in prange(N * OH):
        _row(xp, Hp, Wp, offsets, w_flat, CP, out_flat, CO, res_flat, has_res, bias, act1, act2, OH, OW, C, sh, sw,
             np.int64(row))
